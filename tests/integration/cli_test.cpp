// The command line of the contract, against the real binary: exit codes, --check-config output, secrets masked.
#include <doctest/doctest.h>
#include <unistd.h>

#include <csignal>
#include <string>

#include "app/fd_limit.hpp"
#include "config/loader.hpp"
#include "support/daemon.hpp"
#include "support/process.hpp"

using namespace std::chrono_literals;
using rtm::test::child_process;

namespace {

struct run_result {
  int code = -1;
  std::string out;
  std::string err;
};

// `prefix` runs the binary through another command (e.g. prlimit).
run_result run(std::vector<std::string> args, std::map<std::string, std::string> env = {},
               std::vector<std::string> prefix = {}) {
  rtm::test::temp_dir dir;
  args.insert(args.begin(), rtm::test::env_path("RTM_BRIDGE_BIN"));
  args.insert(args.begin(), prefix.begin(), prefix.end());
  child_process::options opts;
  opts.argv = std::move(args);
  opts.env = std::move(env);
  opts.stdout_file = dir.file("out");
  opts.stderr_file = dir.file("err");
  child_process p(std::move(opts));
  run_result r;
  const auto code = p.wait(30s);
  REQUIRE(code.has_value());
  r.code = *code;
  r.out = rtm::test::read_file(dir.file("out"));
  r.err = rtm::test::read_file(dir.file("err"));
  return r;
}

const char* valid_config = R"(kafka:
  brokers: "127.0.0.1:9092"
connections:
  - name: acme-main
    kind: acme
    url: "ws://127.0.0.1:1/"
    identifier: {env: CLI_TEST_ACME_ID}
    key: {value: "sup3r-s3cret-acme-key-7731"}
  - name: slack-main
    kind: slack
    key: {env: CLI_TEST_SLACK_TOKEN}
)";

}  // namespace

TEST_CASE("--version and --help exit 0") {
  const auto v = run({"--version"});
  CHECK(v.code == 0);
  CHECK(v.out.find("rtm-bridge ") == 0);
  const auto h = run({"--help"});
  CHECK(h.code == 0);
  CHECK(h.out.find("--check-config") != std::string::npos);
}

TEST_CASE("a bad command line exits 64 with the usage") {
  const auto r = run({"--frobnicate"});
  CHECK(r.code == 64);
  CHECK(r.err.find("unknown argument '--frobnicate'") != std::string::npos);
  CHECK(r.err.find("Usage:") != std::string::npos);
  CHECK(run({"--config"}).code == 64);
}

TEST_CASE("--check-config on a valid file prints a summary with every secret masked") {
  rtm::test::temp_dir dir;
  const auto path = dir.write("rtm-bridge.yaml", valid_config);
  const auto r = run({"--check-config", "--config", path},
                     {{"CLI_TEST_ACME_ID", "acme-identifier-5521"}, {"CLI_TEST_SLACK_TOKEN", "xoxb-slack-token-9904"}});
  CHECK(r.code == 0);
  CHECK(r.out.find("acme-main") != std::string::npos);
  CHECK(r.out.find("slack-main") != std::string::npos);
  CHECK(r.out.find("127.0.0.1:9092") != std::string::npos);
  for (const char* secret : {"sup3r-s3cret-acme-key-7731", "acme-identifier-5521", "xoxb-slack-token-9904"}) {
    CHECK_MESSAGE(r.out.find(secret) == std::string::npos, secret);
    CHECK_MESSAGE(r.err.find(secret) == std::string::npos, secret);
  }
}

TEST_CASE("--check-config prints the expanded Acme subscription and warns about a glob that matches no known event") {
  rtm::test::temp_dir dir;
  const auto path = dir.write("rtm-bridge.yaml", R"(kafka:
  brokers: "127.0.0.1:9092"
connections:
  - name: acme-main
    kind: acme
    url: "ws://127.0.0.1:1/"
    identifier: {value: id}
    key: {value: key}
    events: ["spam:*", "nothing:known:*", "vendor:brand_new"]
    team_id: T-fixed
)");
  const auto r = run({"--check-config", "--config", path});
  INFO(r.out);
  CHECK(r.code == 0);
  CHECK(r.out.find("subscription (3 sent in authentication): spam:message,spam:decision,vendor:brand_new\n") !=
        std::string::npos);
  CHECK(r.out.find("warning: events glob \"nothing:known:*\" matches no event this build knows") != std::string::npos);
  CHECK(r.out.find("warning: events glob \"spam:*\"") == std::string::npos);
  CHECK(r.out.find("team_id T-fixed for events without one") != std::string::npos);
}

TEST_CASE("--check-config on an invalid file exits 78 with PATH:LINE:COL: key.path: message") {
  rtm::test::temp_dir dir;
  const auto path = dir.write("bad.yaml", R"(kafka:
  brokers: "127.0.0.1:9092"
  linger: 5
connections:
  - name: acme-main
    kind: acme
    url: "ws://127.0.0.1:1/"
    identifier: {value: "id"}
    key: {value: "key"}
    reconnect: {initial_delay: 5}
)");
  const auto r = run({"--check-config", "--config", path});
  CHECK(r.code == 78);
  CHECK(r.err.find(path + ":3:3: kafka.linger:") != std::string::npos);
  CHECK(r.err.find(path + ":10:") != std::string::npos);
  CHECK(r.err.find("connections[0].reconnect.initial_delay") != std::string::npos);
}

TEST_CASE("--check-config shows the spool on one line, and refuses a spool with a delivery timeout (78)") {
  rtm::test::temp_dir dir;
  const std::string spool = dir.file("spool");
  const std::string connection = R"(connections:
  - name: acme-main
    kind: acme
    url: "ws://127.0.0.1:1/"
    identifier: {value: id}
    key: {value: key}
)";
  const auto off = run(
      {"--check-config", "--config", dir.write("off.yaml", "kafka:\n  brokers: \"127.0.0.1:9092\"\n" + connection)});
  CHECK(off.code == 0);
  CHECK_MESSAGE(off.out.find("\nspool: off (events wait in memory for Kafka)\n") != std::string::npos, off.out);

  const auto on = run({"--check-config", "--config",
                       dir.write("on.yaml", "kafka:\n  brokers: \"127.0.0.1:9092\"\nspool:\n  path: " + spool +
                                                "\n  max_size: 1GiB\n  when_full: block\n" + connection)});
  CHECK(on.code == 0);
  CHECK_MESSAGE(on.out.find("\nspool: " + spool + ", max size 1GiB, when full block\n") != std::string::npos, on.out);

  const auto refused_path = dir.write(
      "refused.yaml",
      "kafka:\n  brokers: \"127.0.0.1:9092\"\n  delivery_timeout: 5m\nspool:\n  path: " + spool + "\n" + connection);
  const auto refused = run({"--check-config", "--config", refused_path});
  CHECK(refused.code == 78);
  CHECK_MESSAGE(refused.err.find(refused_path + ":3:21: kafka.delivery_timeout: must be 0 while the spool is on "
                                                "(spool.path at line 5)") != std::string::npos,
                refused.err);
  CHECK(run({"--config", refused_path}).code == 78);  // the daemon refuses it the same way
}

TEST_CASE("a missing config file exits 78 naming the file, with or without --check-config") {
  const auto r = run({"--config", "/nonexistent/rtm-bridge.yaml"});
  CHECK(r.code == 78);
  CHECK(r.err.find("/nonexistent/rtm-bridge.yaml") != std::string::npos);
  CHECK(run({"--check-config", "--config", "/nonexistent/rtm-bridge.yaml"}).code == 78);
}

TEST_CASE("kafka.properties that --check-config accepts, the daemon starts with; what it refuses, both refuse") {
  const std::string head = R"(kafka:
  brokers: embedded
  properties:
)";
  const std::string connections = R"(connections:
  - name: acme-main
    kind: acme
    url: "ws://127.0.0.1:1/"
    identifier: {value: "id"}
    key: {value: "key"}
metrics:
  listen: ""
)";
  // The bridge's own values, spelled out: a no-op, so accepted by both (the daemon used to exit 1 on them, a
  // restart loop under systemd after --check-config said the file was fine).
  rtm::test::temp_dir dir;
  const std::string same =
      head + "    acks: all\n    enable.idempotence: true\n    partitioner: murmur2_random\n" + connections;
  CHECK(run({"--check-config", "--config", dir.write("same.yaml", same)}).code == 0);
  {
    rtm::test::temp_dir run_dir;
    rtm::test::daemon_process d(run_dir, same);
    CHECK_MESSAGE(d.log_has("rtm-bridge ready", 30s), d.log());
    d.signal(SIGTERM);
    const auto code = d.wait(30s);
    REQUIRE(code.has_value());
    CHECK_MESSAGE(*code == 0, d.log());
  }
  // What the producer refuses, --check-config refuses first (exit 78), and the daemon the same way.
  for (const std::string property : {"transactional.id: t1", "delivery.timeout.ms: 1000", "acks: 1"}) {
    CAPTURE(property);
    const std::string path = dir.write("refused.yaml", head + "    " + property + "\n" + connections);
    const auto checked = run({"--check-config", "--config", path});
    CHECK(checked.code == 78);
    CHECK(checked.err.find("kafka.properties." + property.substr(0, property.find(':'))) != std::string::npos);
    CHECK(run({"--config", path}).code == 78);
  }
}

namespace {

// `count` acme connections with distinct tokens; `discover` leaves url out, so each needs a REST call too.
std::string many_connections(std::size_t count, bool discover) {
  std::string yaml = "kafka:\n  brokers: \"127.0.0.1:9092\"\nconnections:\n";
  for (std::size_t i = 0; i < count; ++i) {
    const std::string n = std::to_string(i);
    yaml += "  - {name: acme-" + n + ", kind: acme, " + (discover ? "" : "url: \"ws://127.0.0.1:1/\", ") +
            "identifier: {value: \"id-" + n + "\"}, key: {value: \"key-" + n + "\"}}\n";
  }
  return yaml;
}

std::vector<std::string> nofile(const std::string& soft, const std::string& hard) {
  return {"prlimit", "--nofile=" + soft + ":" + hard, "--"};
}

}  // namespace

TEST_CASE("--check-config fails loudly when the connections cannot have the file descriptors they need") {
  rtm::test::temp_dir dir;
  const auto path = dir.write("many.yaml", many_connections(300, true));
  // The hard limit is what counts: the soft one is raised to it.
  const auto tight = run({"--check-config", "--config", path}, {}, nofile("256", "256"));
  CHECK(tight.code == 78);
  CHECK_MESSAGE(tight.err.find(path + ": connections: 300 connection(s) need about ") == 0, tight.err);
  CHECK(tight.err.find("file descriptors, but the process may open only 256") != std::string::npos);
  CHECK(tight.err.find("LimitNOFILE=") != std::string::npos);
  CHECK(tight.out.find("valid") == std::string::npos);
  // The daemon refuses the same way instead of failing connection by connection later.
  const auto daemon = run({"--config", path}, {}, nofile("256", "256"));
  CHECK(daemon.code == 78);
  CHECK(daemon.err.find("LimitNOFILE=") != std::string::npos);

  const auto raised = run({"--check-config", "--config", path}, {}, nofile("256", "4096"));
  CHECK_MESSAGE(raised.code == 0, raised.err);
  CHECK(raised.out.find(", limit 4096 (raised from 256)\n") != std::string::npos);
}

TEST_CASE("the unit's LimitNOFILE holds the 10,000 connections the README promises") {
  const std::string unit = rtm::test::read_file(rtm::test::env_path("RTM_SOURCE_ROOT") + "/systemd/rtm-bridge.service");
  const auto at = unit.find("\nLimitNOFILE=");
  REQUIRE_MESSAGE(at != std::string::npos, "systemd/rtm-bridge.service sets no LimitNOFILE=");
  const std::string limit = unit.substr(at + 13, unit.find('\n', at + 1) - at - 13);
  rtm::test::temp_dir dir;
  // Worst case: every connection discovers its endpoint over REST.
  const auto path = dir.write("ten-thousand.yaml", many_connections(10000, true));
  // The daemon's own estimate (raising the hard limit to the unit's needs a privilege the test may not have).
  const auto need = rtm::app::descriptors_needed(rtm::config::load_file(path));
  CHECK_MESSAGE(need <= std::stoull(limit), need << " descriptors needed, LimitNOFILE=" << limit);
  // systemd's default without LimitNOFILE= (1,024) does not hold them, and --check-config says so.
  CHECK(run({"--check-config", "--config", path}, {}, nofile("1024", "1024")).code == 78);
}

TEST_CASE("the README's opening commands run as written in a fresh root shell, which has no sudo") {
  const std::string root = rtm::test::env_path("RTM_SOURCE_ROOT");
  const std::string readme = rtm::test::read_file(root + "/README.md");
  const auto open = readme.find("```sh\n");
  REQUIRE(open != std::string::npos);
  const auto body = open + 6;
  const auto close = readme.find("```", body);
  REQUIRE(close != std::string::npos);
  std::size_t commands = 0;
  for (std::size_t at = body; at < close;) {
    const auto end = readme.find('\n', at);
    const std::string line = readme.substr(at, end - at);
    at = end + 1;
    if (line.empty()) {
      continue;
    }
    ++commands;
    const std::string program = line.substr(0, line.find(' '));
    // Run from the checkout: the program is one of its own executables, nothing the fresh machine lacks.
    CHECK_MESSAGE(::access((root + "/" + program).c_str(), X_OK) == 0, "README runs '" << program << "': " << line);
  }
  CHECK(commands == 2);
}
