// Bad input: every case asserts the exact key path and line of the problem, and that nothing else was reported.
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "config/loader.hpp"
#include "support/process.hpp"

using rtm::config::load_error;
using rtm::config::problem;

namespace {

std::string all_text(const std::vector<problem>& problems) {
  std::string text;
  for (const problem& p : problems) {
    text += p.format() + "\n";
  }
  return text;
}

std::vector<problem> problems_of(std::string_view yaml) {
  try {
    (void)rtm::config::load_string(yaml, "test.yaml");
  } catch (const load_error& e) {
    return e.problems();
  }
  FAIL_CHECK("the config loaded, but a load_error was expected");
  return {};
}

// Checks that `problems` holds one with exactly this key path and line, `fragment` in its message, and that its
// formatted line is "test.yaml:LINE:COL: key.path: ...".
void check_has(const std::vector<problem>& problems, const std::string& key_path, int line,
               const std::string& fragment) {
  INFO("problems:\n" << all_text(problems));
  const auto it = std::find_if(problems.begin(), problems.end(),
                               [&](const problem& p) { return p.key_path == key_path && p.line == line; });
  REQUIRE_MESSAGE(it != problems.end(), (std::string("no problem at ") + key_path + " line " + std::to_string(line)));
  CHECK_MESSAGE(it->message.find(fragment) != std::string::npos, (std::string("message lacks: ") + fragment));
  const std::string prefix = "test.yaml:" + std::to_string(line) + ":" + std::to_string(it->column) + ": " +
                             (key_path.empty() ? "" : key_path + ": ");
  CHECK(it->format().starts_with(prefix));
  CHECK(it->column >= 1);
}

// The file must fail with exactly one problem, at this key path and line.
void expect_problem(std::string_view yaml, const std::string& key_path, int line, const std::string& fragment) {
  INFO("yaml:\n" << std::string(yaml));
  const std::vector<problem> problems = problems_of(yaml);
  CHECK_MESSAGE(problems.size() == 1, (std::string("expected exactly one problem, got:\n") + all_text(problems)));
  check_has(problems, key_path, line, fragment);
}

// Runs `load_string(yaml)` without root's power to bypass file permissions (the tests may run as root in a
// container): a forked child drops to nobody first. Returns the formatted problems, or a "child: ..." diagnosis.
std::string load_unprivileged(const std::string& yaml) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string out;
    if (::geteuid() == 0 && (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0)) {
      out = "child: cannot drop privileges";
    } else {
      try {
        (void)rtm::config::load_string(yaml, "test.yaml");
        out = "child: loaded";
      } catch (const load_error& e) {
        out = e.what();
      } catch (const std::exception& e) {
        out = std::string("child: unexpected exception: ") + e.what();
      }
    }
    const ssize_t ignored = ::write(fds[1], out.data(), out.size());
    (void)ignored;
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) {
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------- unknown keys

TEST_CASE("unknown key at the top level, with a did-you-mean hint") {
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
metric:
  listen: ""
)",
                 "metric", 8, "unknown key \"metric\", did you mean \"metrics\"? (expected one of: kafka,");
}

TEST_CASE("unknown key in kafka") {
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
  topics: "rtm.x"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
)",
                 "kafka.topics", 3, "unknown key \"topics\", did you mean \"topic\"?");
}

TEST_CASE("unknown key in a connection") {
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
    ping_timout: 5s
)",
                 "connections[0].ping_timout", 8, "did you mean \"ping_timeout\"?");
}

TEST_CASE("unknown keys in reconnect, tls, metrics, log, a route and a secret, all reported at once") {
  const auto problems = problems_of(R"(kafka:
  brokers: "localhost:9092"
  routes:
    - {match: "a:*", topic: "rtm.a", to: "x"}
connections:
  - name: a1
    kind: acme
    identifier: {value: i1, envv: X}
    key: {value: k1}
    reconnect: {initial_delay: 1s, max: 5s}
    tls:
      verify: true
      ca: /etc/ssl/ca.pem
metrics:
  port: 9464
log:
  colour: true
)");
  CHECK(problems.size() == 6);
  check_has(problems, "kafka.routes[0].to", 4, "unknown key \"to\"");
  check_has(problems, "connections[0].identifier.envv", 8, "did you mean \"env\"?");
  check_has(problems, "connections[0].reconnect.max", 10, "(expected one of: initial_delay, max_delay, jitter)");
  check_has(problems, "connections[0].tls.ca", 13, "unknown key \"ca\"");
  check_has(problems, "metrics.port", 15, "unknown key \"port\"");
  check_has(problems, "log.colour", 17, "unknown key \"colour\"");
}

TEST_CASE("a key set twice in one map") {
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
  brokers: "other:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
)",
                 "kafka.brokers", 3, "duplicate key \"brokers\" (first set at line 2)");
}

// ------------------------------------------------------------------------------------------------------ wrong types

TEST_CASE("wrong types: a section given as a list, a string given as a map") {
  const auto problems = problems_of(R"(kafka:
  brokers: {host: k1}
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
log: [info]
)");
  CHECK(problems.size() == 2);
  check_has(problems, "kafka.brokers", 2, "expected a string, got a map");
  check_has(problems, "log", 8, "expected a map (level, format), got a list");
}

TEST_CASE("wrong types: bool, number and list") {
  const auto problems = problems_of(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
    tls: {verify: yes}
    reconnect: {jitter: lots}
    events: "message:*"
)");
  CHECK(problems.size() == 3);
  check_has(problems, "connections[0].tls.verify", 8, "expected true or false, got \"yes\"");
  check_has(problems, "connections[0].reconnect.jitter", 9, "expected a number, got \"lots\"");
  check_has(problems, "connections[0].events", 10, "expected a list of event globs, got \"message:*\"");
}

TEST_CASE("connections given as a map") {
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  name: a1
  kind: acme
)",
                 "connections", 4, "expected a list of connections, got a map");
}

TEST_CASE("a connection that is not a map") {
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  - a1
)",
                 "connections[0]", 4, "expected a connection: a map with name, kind and its keys, got \"a1\"");
}

// ------------------------------------------------------------------------------------------------------- durations

TEST_CASE("bad duration: a number without a unit") {
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
    ping_timeout: 5
)",
                 "connections[0].ping_timeout", 8, "expected a duration with a unit (250ms, 5s, 2m, 1h), got \"5\"");
}

TEST_CASE("bad durations: negative, fraction, unknown unit, garbage, overflow") {
  const auto problems = problems_of(R"(kafka:
  brokers: "localhost:9092"
  shutdown_timeout: -5s
  delivery_timeout: 1.5s
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
    ping_timeout: 3d
    reconnect:
      initial_delay: soon
      max_delay: 99999999999999999999h
)");
  CHECK(problems.size() == 5);
  check_has(problems, "kafka.shutdown_timeout", 3, "must not be negative, got \"-5s\"");
  check_has(problems, "kafka.delivery_timeout", 4, "whole number");
  check_has(problems, "connections[0].ping_timeout", 10, "unknown duration unit \"d\"");
  check_has(problems, "connections[0].reconnect.initial_delay", 12, "expected a duration with a unit");
  check_has(problems, "connections[0].reconnect.max_delay", 13, "is too large");
}

TEST_CASE("bad durations: zero where a positive duration is needed, bare 0 only for delivery_timeout") {
  const auto problems = problems_of(R"(kafka:
  brokers: "localhost:9092"
  delivery_timeout: 0
  shutdown_timeout: 0
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
    ping_timeout: 0s
)");
  CHECK(problems.size() == 2);
  check_has(problems, "kafka.shutdown_timeout", 4, "expected a duration with a unit");
  check_has(problems, "connections[0].ping_timeout", 10, "must be longer than 0, got 0s");
}

// ----------------------------------------------------------------------------------------------------- size limits

TEST_CASE("bad size limits: unit, range, garbage, a map expected") {
  const auto problems = problems_of(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
    limits:
      max_frame_size: 16M
      max_event_size: 512
  - name: a2
    kind: acme
    identifier: {value: i2}
    key: {value: k2}
    limits: {max_frame_size: 2GiB, max_event_size: -1, max_frame_sze: 1MiB}
  - name: s1
    kind: slack
    key: {value: xoxb-1}
    limits: 1MiB
)");
  CHECK(problems.size() == 6);
  check_has(problems, "connections[0].limits.max_frame_size", 9,
            "unknown size unit \"M\" in \"16M\": expected B, kB, KiB, MB, MiB, GB or GiB");
  check_has(problems, "connections[0].limits.max_event_size", 10, "expected from 1KiB to 1GiB, got \"512\"");
  check_has(problems, "connections[1].limits.max_frame_size", 15, "expected from 1KiB to 1GiB, got \"2GiB\"");
  check_has(problems, "connections[1].limits.max_event_size", 15, "must not be negative");
  check_has(problems, "connections[1].limits.max_frame_sze", 15, "did you mean \"max_frame_size\"?");
  check_has(problems, "connections[2].limits", 19, "expected a map (max_frame_size, max_event_size)");
}

TEST_CASE("an event limit above the frame limit") {
  const auto problems = problems_of(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
    limits: {max_frame_size: 1MiB, max_event_size: 2MiB}
  - name: a2
    kind: acme
    identifier: {value: i2}
    key: {value: k2}
    limits:
      max_frame_size: 512KiB
)");
  CHECK(problems.size() == 2);
  check_has(problems, "connections[0].limits.max_event_size", 8, "must not exceed max_frame_size (1MiB), got 2MiB");
  check_has(problems, "connections[1].limits.max_frame_size", 14,
            "is smaller than max_event_size (960KiB by default): set max_event_size too");
}

TEST_CASE("delivery_timeout beyond librdkafka's 32-bit limit") {
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
  delivery_timeout: 600h
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
)",
                 "kafka.delivery_timeout", 3, "at most 2147483647ms");
}

// --------------------------------------------------------------------------------------------------------- brokers

TEST_CASE("missing brokers") {
  expect_problem(R"(kafka:
  client_id: x
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
)",
                 "kafka.brokers", 2, "missing required key \"brokers\"");
}

TEST_CASE("empty brokers") {
  expect_problem(R"(kafka:
  brokers: ""
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
)",
                 "kafka.brokers", 2, "expected \"embedded\" or a host:port list, got an empty string");
}

TEST_CASE("bad broker entries") {
  expect_problem(R"(kafka:
  brokers: "kafka1:9092,kafka2"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
)",
                 "kafka.brokers", 2, "the port is missing in \"kafka2\"");
  expect_problem(R"(kafka:
  brokers: "kafka1:99999"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
)",
                 "kafka.brokers", 2, "expected a numeric port 1-65535 in \"kafka1:99999\"");
}

// ----------------------------------------------------------------------------------------------------- connections

TEST_CASE("duplicate connection name names the first occurrence's line") {
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
  - name: a1
    kind: acme
    identifier: {value: i2}
    key: {value: k2}
)",
                 "connections[1].name", 8, "duplicate connection name \"a1\" (first used at line 4)");
}

TEST_CASE("malformed connection names") {
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: Acme Main
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
)",
                 "connections[0].name", 4, "expected a name of lower-case letters, digits, '_' and '-'");
  expect_problem("kafka:\n  brokers: \"localhost:9092\"\nconnections:\n  - name: " + std::string(65, 'a') +
                     "\n    kind: acme\n    identifier: {value: i1}\n    key: {value: k1}\n",
                 "connections[0].name", 4, "at most 64 characters, got 65");
}

TEST_CASE("missing name") {
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  - kind: acme
    identifier: {value: i1}
    key: {value: k1}
)",
                 "connections[0].name", 4, "missing required key \"name\"");
}

TEST_CASE("acme-only keys on a slack connection") {
  const auto problems = problems_of(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: s1
    kind: slack
    key: {value: xoxb-1}
    protocol: 4
    tier: app
    identifier: {value: i1}
    events: ["message"]
    api_url: "https://api.acme.com/v1"
)");
  CHECK(problems.size() == 5);
  check_has(problems, "connections[0].protocol", 7, "only valid for kind: acme (this connection is kind: slack)");
  check_has(problems, "connections[0].tier", 8, "only valid for kind: acme");
  check_has(problems, "connections[0].identifier", 9, "only valid for kind: acme");
  check_has(problems, "connections[0].events", 10, "only valid for kind: acme");
  check_has(problems, "connections[0].api_url", 11, "only valid for kind: acme");
}

TEST_CASE("missing kind") {
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    identifier: {value: i1}
    key: {value: k1}
)",
                 "connections[0].kind", 4, "missing required key \"kind\"");
}

TEST_CASE("unknown kind") {
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: d1
    kind: discord
    key: {value: k1}
)",
                 "connections[0].kind", 5, "expected acme or slack, got \"discord\"");
}

TEST_CASE("acme without identifier, and an empty connection list") {
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    key: {value: k1}
)",
                 "connections[0].identifier", 4, "missing required key \"identifier\"");
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections: []
)",
                 "connections", 3, "at least one connection is required");
}

TEST_CASE("protocol 5") {
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    protocol: 5
    identifier: {value: i1}
    key: {value: k1}
)",
                 "connections[0].protocol", 6, "expected 4 or 3 (the Engine.IO revision), got \"5\"");
}

TEST_CASE("unknown tier") {
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    tier: admin
    identifier: {value: i1}
    key: {value: k1}
)",
                 "connections[0].tier", 6, "expected user or app, got \"admin\"");
}

TEST_CASE("bad url schemes for acme url, acme api_url and slack url") {
  const auto problems = problems_of(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    url: "https://rtm.acme.com/"
    api_url: "ftp://api.acme.com/v1"
    identifier: {value: i1}
    key: {value: k1}
  - name: s1
    kind: slack
    url: "wss://slack.com/api/"
    key: {value: xoxb-1}
)");
  CHECK(problems.size() == 3);
  check_has(problems, "connections[0].url", 6, "expected a wss:// or ws:// URL, got \"https://rtm.acme.com/\"");
  check_has(problems, "connections[0].api_url", 7, "expected a https:// or http:// URL");
  check_has(problems, "connections[1].url", 12, "expected a https:// or http:// URL, got \"wss://slack.com/api/\"");
}

TEST_CASE("empty events list and empty team_id") {
  const auto problems = problems_of(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
    events: []
    team_id: ""
)");
  CHECK(problems.size() == 2);
  check_has(problems, "connections[0].events", 8, "omit events to receive all events of the tier");
  check_has(problems, "connections[0].team_id", 9, "expected a team id, got \"\"");
}

TEST_CASE("jitter out of range") {
  const auto problems = problems_of(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
    reconnect: {jitter: 1.5}
  - name: a2
    kind: acme
    identifier: {value: i2}
    key: {value: k2}
    reconnect:
      jitter: -0.1
)");
  CHECK(problems.size() == 2);
  check_has(problems, "connections[0].reconnect.jitter", 8, "expected a fraction from 0 to 1, got 1.5");
  check_has(problems, "connections[1].reconnect.jitter", 14, "expected a fraction from 0 to 1, got -0.1");
}

TEST_CASE("max_delay shorter than initial_delay") {
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
    reconnect:
      initial_delay: 10s
      max_delay: 5s
)",
                 "connections[0].reconnect.max_delay", 10, "must be at least initial_delay (10s), got 5s");
  // With max_delay left at its default, the blame goes to initial_delay.
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
    reconnect: {initial_delay: 2m}
)",
                 "connections[0].reconnect.initial_delay", 8, "is longer than max_delay (1m by default)");
}

TEST_CASE("the same token on two connections") {
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: s1
    kind: slack
    key: {value: xoxb-same}
  - name: s2
    kind: slack
    key: {value: xoxb-same}
)",
                 "connections[1].key", 9, "the same token as the connection at line 6");
}

// The credential is the token, whatever URL reaches it: a trailing slash, another spelling of the host, or discovery
// instead of a fixed URL must not let two connections hold it at once.
TEST_CASE("the same token under two spellings of its endpoint is still one token") {
  const auto acme_pair = [](const std::string& first, const std::string& second) {
    return "kafka:\n  brokers: \"localhost:9092\"\nconnections:\n"
           "  - name: a1\n    kind: acme\n    identifier: {value: same-id}\n    key: {value: k1}\n" +
           first + "  - name: a2\n    kind: acme\n    identifier: {value: same-id}\n    key: {value: k1}\n" + second;
  };
  SUBCASE("a fixed url and discovery") {
    expect_problem(acme_pair("    url: wss://rtm.acme.com/\n", ""), "connections[1].identifier", 11,
                   "the same token as the connection at line 6");
  }
  SUBCASE("with and without a trailing slash") {
    expect_problem(acme_pair("    url: wss://rtm.acme.com/\n", "    url: wss://rtm.acme.com\n"),
                   "connections[1].identifier", 11, "the same token as the connection at line 6");
  }
  SUBCASE("host names differing in case") {
    expect_problem(acme_pair("    url: wss://RTM.Acme.com/\n", "    url: wss://rtm.acme.com/\n"),
                   "connections[1].identifier", 11, "the same token as the connection at line 6");
  }
  SUBCASE("discovery over two api_urls") {
    expect_problem(acme_pair("    api_url: https://api.acme.com/v1\n", "    api_url: https://API.acme.com/v1/\n"),
                   "connections[1].identifier", 11, "the same token as the connection at line 6");
  }
  SUBCASE("slack: two spellings of the Web API base") {
    expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: s1
    kind: slack
    key: {value: xoxb-same}
    url: https://slack.com/api/
  - name: s2
    kind: slack
    key: {value: xoxb-same}
    url: https://SLACK.com/api
)",
                   "connections[1].key", 10, "the same token as the connection at line 6");
  }
}

TEST_CASE("a slack key that is not a Slack token") {
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: s1
    kind: slack
    key: {value: "Bearer abc"}
)",
                 "connections[0].key", 6, "the secret from value:**** is not a Slack token");
}

TEST_CASE("a missing or non-PEM tls.ca_file") {
  const rtm::test::temp_dir dir;
  const std::string not_pem = dir.write("not-a-ca.pem", "hello\n");
  const auto problems = problems_of(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
    tls: {ca_file: ")" + dir.file("missing.pem") +
                                    R"("}
  - name: a2
    kind: acme
    identifier: {value: i2}
    key: {value: k2}
    tls:
      ca_file: ")" + not_pem + R"("
)");
  CHECK(problems.size() == 2);
  check_has(problems, "connections[0].tls.ca_file", 8, "No such file or directory (ENOENT)");
  check_has(problems, "connections[1].tls.ca_file", 14, "holds no PEM certificate");
}

// --------------------------------------------------------------------------------------------------------- topics

TEST_CASE("unknown placeholder in kafka.topic") {
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
  topic: "rtm.{team}"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
)",
                 "kafka.topic", 3, "unknown placeholder {team}");
}

TEST_CASE("bad route topics and a dead-letter topic with a placeholder") {
  const auto problems = problems_of(R"(kafka:
  brokers: "localhost:9092"
  routes:
    - match: "message:*"
      topic: "rtm.{event"
    - {match: "session:*", topic: "rtm sessions"}
    - {match: "x"}
  dead_letter_topic: "rtm.dead.{connection}"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
)");
  CHECK(problems.size() == 4);
  check_has(problems, "kafka.routes[0].topic", 5, "unbalanced '{'");
  check_has(problems, "kafka.routes[1].topic", 6, "invalid character a space");
  check_has(problems, "kafka.routes[2].topic", 7, "missing required key \"topic\"");
  check_has(problems, "kafka.dead_letter_topic", 8, "the dead-letter topic takes no placeholders");
}

TEST_CASE("bad glob in events and in routes") {
  const auto problems = problems_of(R"(kafka:
  brokers: "localhost:9092"
  routes:
    - {match: "message:[", topic: "rtm.messages"}
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
    events:
      - "session:*"
      - "message:[abc"
)");
  CHECK(problems.size() == 2);
  check_has(problems, "kafka.routes[0].match", 4, "invalid glob \"message:[\": unterminated character class");
  check_has(problems, "connections[0].events[1]", 12, "invalid glob \"message:[abc\"");
}

// --------------------------------------------------------------------------------------------------------- secrets

TEST_CASE("missing secret env var") {
  ::unsetenv("RTM_TEST_SURELY_UNSET");
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {env: RTM_TEST_SURELY_UNSET}
)",
                 "connections[0].key.env", 7, "environment variable RTM_TEST_SURELY_UNSET is not set");
}

TEST_CASE("empty env var and bad env var name") {
  ::setenv("RTM_TEST_EMPTY", "", 1);
  const auto problems = problems_of(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {env: RTM_TEST_EMPTY}
    key: {env: "ACME-KEY"}
)");
  CHECK(problems.size() == 2);
  check_has(problems, "connections[0].identifier.env", 6, "environment variable RTM_TEST_EMPTY is empty");
  check_has(problems, "connections[0].key.env", 7, "expected an environment variable name");
}

TEST_CASE("secret file that does not exist (ENOENT)") {
  const rtm::test::temp_dir dir;
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {file: ")" + dir.file("nope") +
                     R"("}
)",
                 "connections[0].key.file", 7,
                 "cannot read secret file " + dir.file("nope") + ": No such file or directory (ENOENT)");
}

TEST_CASE("secret file that cannot be read (EACCES)") {
  const rtm::test::temp_dir dir;
  const std::string path = dir.write("key", "secret-unreadable\n", 0000);
  // nobody must be able to reach the file, so that the failure is the file's mode and not the directory's.
  REQUIRE(::chmod(dir.path().c_str(), 0711) == 0);
  const std::string text = load_unprivileged(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {file: ")" + path + R"("}
)");
  CHECK(text ==
        "test.yaml:7:17: connections[0].key.file: cannot read secret file " + path + ": Permission denied (EACCES)");
}

TEST_CASE("empty secret file and a secret file that is a directory") {
  const rtm::test::temp_dir dir;
  const std::string empty = dir.write("empty", "\n\n");
  const auto problems = problems_of(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {file: ")" + empty + R"("}
    key: {file: ")" + dir.path() + R"("}
)");
  CHECK(problems.size() == 2);
  check_has(problems, "connections[0].identifier.file", 6, "secret file " + empty + " is empty");
  check_has(problems, "connections[0].key.file", 7, "is a directory");
}

TEST_CASE("credential without CREDENTIALS_DIRECTORY") {
  ::unsetenv("CREDENTIALS_DIRECTORY");
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {credential: acme-key}
)",
                 "connections[0].key.credential", 7,
                 "credential acme-key: $CREDENTIALS_DIRECTORY is not set (systemd sets it for a unit with "
                 "LoadCredential=acme-key:PATH");
}

TEST_CASE("credential missing from CREDENTIALS_DIRECTORY") {
  const rtm::test::temp_dir dir;
  ::setenv("CREDENTIALS_DIRECTORY", dir.path().c_str(), 1);
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {credential: acme-key}
)",
                 "connections[0].key.credential", 7,
                 "cannot read credential acme-key (" + dir.path() + "/acme-key): No such file or directory (ENOENT)");
  ::unsetenv("CREDENTIALS_DIRECTORY");
}

TEST_CASE("plain-scalar secret names the four forms") {
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: "my-plain-key"
)",
                 "connections[0].key", 7,
                 "a plain string is not accepted: use {env: NAME}, {file: PATH}, {credential: NAME} or "
                 "{value: \"...\"}");
}

TEST_CASE("secret with two sources") {
  ::setenv("RTM_TEST_KEY", "k", 1);
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key:
      env: RTM_TEST_KEY
      value: "inline"
)",
                 "connections[0].key", 9, "a secret takes exactly one source, got both env and value");
}

TEST_CASE("empty secret map and empty inline value") {
  const auto problems = problems_of(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {}
    key: {value: ""}
)");
  CHECK(problems.size() == 2);
  check_has(problems, "connections[0].identifier", 6, "a secret needs exactly one source");
  check_has(problems, "connections[0].key.value", 7, "the secret value is empty");
}

// ------------------------------------------------------------------------------------------------ kafka.properties

TEST_CASE("bad librdkafka property value: librdkafka's own error text") {
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
  properties:
    compression.type: zstd
    linger.ms: abc
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
)",
                 "kafka.properties.linger.ms", 5,
                 "librdkafka: Invalid value for configuration property \"queue.buffering.max.ms\"");
}

TEST_CASE("unknown librdkafka property") {
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
  properties: {lingr.ms: 5}
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
)",
                 "kafka.properties.lingr.ms", 3, "librdkafka: No such configuration property: \"lingr.ms\"");
}

TEST_CASE("forbidden properties name the key to use instead") {
  const auto problems = problems_of(R"(kafka:
  brokers: "localhost:9092"
  properties:
    bootstrap.servers: "k1:9092"
    enable.idempotence: false
    acks: 1
    partitioner: consistent_random
    message.timeout.ms: 1000
    client.id: other
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
)");
  CHECK(problems.size() == 6);
  check_has(problems, "kafka.properties.bootstrap.servers", 4, "use kafka.brokers instead");
  check_has(problems, "kafka.properties.enable.idempotence", 5, "enable.idempotence cannot be false");
  check_has(problems, "kafka.properties.acks", 6, "the contract requires acks=all (got \"1\")");
  check_has(problems, "kafka.properties.partitioner", 7, "murmur2_random");
  check_has(problems, "kafka.properties.message.timeout.ms", 8, "use kafka.delivery_timeout instead");
  check_has(problems, "kafka.properties.client.id", 9, "use kafka.client_id instead");
}

TEST_CASE("a property value that is a list") {
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
  properties:
    linger.ms: [5]
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
)",
                 "kafka.properties.linger.ms", 4, "expected a value (a string, number or true/false) or a secret");
}

// ------------------------------------------------------------------------------------------------- metrics and log

TEST_CASE("bad metrics.listen") {
  const auto problems = problems_of(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
metrics:
  listen: "localhost"
)");
  REQUIRE(problems.size() == 1);
  check_has(problems, "metrics.listen", 9, "the port is missing in \"localhost\" (\"\" disables the metrics endpoint)");
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
metrics: {listen: "[::1:9464"}
)",
                 "metrics.listen", 8, "unterminated IPv6 address");
}

TEST_CASE("bad log level and format") {
  const auto problems = problems_of(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
log:
  level: verbose
  format: xml
)");
  CHECK(problems.size() == 2);
  check_has(problems, "log.level", 9, "expected trace, debug, info, warn or error, got \"verbose\"");
  check_has(problems, "log.format", 10, "expected text or json, got \"xml\"");
}

// ------------------------------------------------------------------------------------------------ file-level shape

TEST_CASE("YAML syntax error reports yaml-cpp's line and column") {
  const auto problems = problems_of("kafka:\n  brokers: [localhost:9092\nconnections: []\n");
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].line == 3);
  CHECK(problems[0].key_path.empty());
  CHECK(problems[0].message.starts_with("YAML syntax error: "));
  CHECK(problems[0].format().starts_with("test.yaml:3:"));
  expect_problem("kafka: {brokers: a: b}\n", "", 1, "YAML syntax error: ");
}

TEST_CASE("empty file, comment-only file, and a top level that is not a map") {
  for (const char* text : {"", "\n\n", "# nothing here\n", "---\n"}) {
    const auto problems = problems_of(text);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].line == 0);
    CHECK(problems[0].format() ==
          "test.yaml: the file is empty: expected a map with at least kafka.brokers and connections");
  }
  expect_problem("- kafka\n- connections\n", "", 1,
                 "expected a map at the top level (kafka, connections, metrics, log), got a list");
  expect_problem("just a string\n", "", 1, "got \"just a string\"");
}

TEST_CASE("missing top-level sections") {
  const auto problems = problems_of("log: {level: info}\n");
  CHECK(problems.size() == 2);
  check_has(problems, "kafka", 1, "missing required key \"kafka\"");
  check_has(problems, "connections", 1, "missing required key \"connections\"");
}

TEST_CASE("two YAML documents in one file") {
  expect_problem(R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
---
log: {level: debug}
)",
                 "", 9, "the file holds 2 YAML documents ('---'): expected one");
}

TEST_CASE("multiple errors are all reported at once, in file order") {
  ::unsetenv("RTM_TEST_MISSING_ID");
  const std::string yaml = R"(kafka:
  brokers: "kafka1"
  topic: "rtm.{bad}"
  delivery_timeout: 5
  properties: {linger.ms: nope}
connections:
  - name: Bad Name
    kind: acme
    protocol: 5
    identifier: {env: RTM_TEST_MISSING_ID}
    key: plain
    reconnect: {initial_delay: 1s, max_delay: 1s, jitter: 2}
  - name: s1
    kind: slack
    key: {value: xoxb-1}
    tier: app
log: {level: loud}
)";
  const auto problems = problems_of(yaml);
  CHECK(problems.size() == 11);
  check_has(problems, "kafka.brokers", 2, "the port is missing");
  check_has(problems, "kafka.topic", 3, "unknown placeholder {bad}");
  check_has(problems, "kafka.delivery_timeout", 4, "expected a duration with a unit");
  check_has(problems, "kafka.properties.linger.ms", 5, "librdkafka: Invalid value");
  check_has(problems, "connections[0].name", 7, "expected a name of lower-case letters");
  check_has(problems, "connections[0].protocol", 9, "expected 4 or 3");
  check_has(problems, "connections[0].identifier.env", 10, "RTM_TEST_MISSING_ID is not set");
  check_has(problems, "connections[0].key", 11, "a plain string is not accepted");
  check_has(problems, "connections[0].reconnect.jitter", 12, "from 0 to 1");
  check_has(problems, "connections[1].tier", 16, "only valid for kind: acme");
  check_has(problems, "log.level", 17, "got \"loud\"");
  for (std::size_t i = 1; i < problems.size(); ++i) {
    CHECK(problems[i - 1].line <= problems[i].line);
  }
  // what() is one contract-format line per problem, ready for stderr.
  try {
    (void)rtm::config::load_string(yaml, "test.yaml");
  } catch (const load_error& e) {
    const std::string what = e.what();
    CHECK(std::count(what.begin(), what.end(), '\n') == 10);
    CHECK(what.starts_with("test.yaml:2:12: kafka.brokers: "));
  }
}

TEST_CASE("a config file that does not exist") {
  const rtm::test::temp_dir dir;
  const std::string path = dir.file("missing.yaml");
  try {
    (void)rtm::config::load_file(path);
    FAIL("loaded a missing file");
  } catch (const load_error& e) {
    REQUIRE(e.problems().size() == 1);
    CHECK(e.problems()[0].line == 0);
    CHECK(std::string(e.what()) == path + ": cannot read the config file: No such file or directory (ENOENT)");
  }
}

TEST_CASE("an empty config file on disk") {
  const rtm::test::temp_dir dir;
  const std::string path = dir.write("empty.yaml", "");
  try {
    (void)rtm::config::load_file(path);
    FAIL("loaded an empty file");
  } catch (const load_error& e) {
    REQUIRE(e.problems().size() == 1);
    CHECK(e.problems()[0].line == 0);
    CHECK(std::string(e.what()) ==
          path + ": the file is empty: expected a map with at least kafka.brokers and connections");
  }
}

TEST_CASE("a stray ',' at the top level is a syntax error, not a runaway parse (found by fuzz_config_loader)") {
  // yaml-cpp 0.7's LoadAll() loops forever on these, allocating until the process dies (jbeder/yaml-cpp#1319).
  for (const std::string_view yaml :
       {std::string_view(", with \xa4\xf5  broke\nconnectkafka::\n wns:\n  -  "), std::string_view("\n,\n")}) {
    const auto problems = problems_of(yaml);
    REQUIRE(problems.size() == 1);
    CHECK(problems.front().message.find("YAML syntax error") != std::string::npos);
  }
}

TEST_CASE("a librdkafka queue too small for the largest event is refused at load") {
  // librdkafka 2.0.2 answers QUEUE_FULL, even with an empty queue, to a record above queue.buffering.max.kbytes:
  // such a record could never leave. Default max_event_size 960 KiB + 16 KiB for the envelope = 976 KiB.
  const std::string head = R"(kafka:
  brokers: "localhost:9092"
  properties:
    linger.ms: 5
    queue.buffering.max.kbytes: )";
  const std::string connections = R"(
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
  - name: a2
    kind: acme
    identifier: {value: i2}
    key: {value: k2}
    limits: {max_event_size: 64KiB}
)";
  expect_problem(head + "975" + connections, "kafka.properties.queue.buffering.max.kbytes", 5,
                 "must be at least 976 (KiB) to hold the largest record: connection a1's limits.max_event_size "
                 "(983040 bytes)");
  CHECK_NOTHROW((void)rtm::config::load_string(head + "976" + connections, "test.yaml"));

  // The largest max_event_size counts, whichever connection has it.
  const std::string bigger = R"(
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
    limits: {max_event_size: 64KiB}
  - name: a2
    kind: acme
    identifier: {value: i2}
    key: {value: k2}
    limits: {max_frame_size: 4MiB, max_event_size: 2MiB}
)";
  // Its 2 MiB + 16 KiB is capped by message.max.bytes (1,000,000 bytes: 977 KiB rounded up).
  expect_problem(head + "976" + bigger, "kafka.properties.queue.buffering.max.kbytes", 5,
                 "must be at least 977 (KiB) to hold the largest record: connection a2's");
  CHECK_NOTHROW((void)rtm::config::load_string(head + "977" + bigger, "test.yaml"));
  const std::string small_events = R"(
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
    limits: {max_event_size: 64KiB}
)";
  expect_problem(head + "79" + small_events, "kafka.properties.queue.buffering.max.kbytes", 5,
                 "must be at least 80 (KiB)");
  CHECK_NOTHROW((void)rtm::config::load_string(head + "80" + small_events, "test.yaml"));

  // A record above message.max.bytes is refused as msg_size_too_large before the queue is asked: the queue only
  // needs to hold message.max.bytes then.
  const std::string capped = R"(kafka:
  brokers: "localhost:9092"
  properties:
    message.max.bytes: 100000
    queue.buffering.max.kbytes: 98
connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
)";
  CHECK_NOTHROW((void)rtm::config::load_string(capped, "test.yaml"));
  std::string too_small = capped;
  too_small.replace(too_small.find("kbytes: 98"), 10, "kbytes: 97");
  expect_problem(too_small, "kafka.properties.queue.buffering.max.kbytes", 5, "must be at least 98 (KiB)");
}
