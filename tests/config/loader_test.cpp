// Good input: defaults, every key read, every secret source, the shipped example, the summary, and robustness.
#include "config/loader.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>

#include "support/process.hpp"

using namespace rtm::config;
using namespace std::chrono_literals;

namespace {

config load(const std::string& yaml) {
  try {
    return load_string(yaml, "test.yaml");
  } catch (const load_error& e) {
    FAIL("unexpected load_error:\n" << e.what());
    throw;
  }
}

// Captures what the process writes to stderr (fd 2) while `fn` runs: the logger writes there.
template <typename Fn>
std::string capture_stderr(Fn fn) {
  const rtm::test::temp_dir dir;
  const std::string path = dir.file("stderr");
  const int saved = ::dup(STDERR_FILENO);
  REQUIRE(saved >= 0);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  ::dup2(fd, STDERR_FILENO);
  ::close(fd);
  fn();
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  return rtm::test::read_file(path);
}

}  // namespace

TEST_CASE("a minimal config gets every default of config.hpp") {
  const config cfg = load(R"(kafka:
  brokers: "kafka1:9092, kafka2:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: ident-1}
    key: {value: key-1}
  - name: s1
    kind: slack
    key: {value: xoxb-1}
)");
  CHECK(cfg.path == "test.yaml");
  CHECK(cfg.kafka.brokers == "kafka1:9092,kafka2:9092");
  CHECK_FALSE(cfg.kafka.embedded());
  const kafka_config defaults_k;
  CHECK(cfg.kafka.client_id == defaults_k.client_id);
  CHECK(cfg.kafka.properties.empty());
  CHECK(cfg.kafka.topic == "rtm.{namespace}");
  CHECK(cfg.kafka.routes.empty());
  CHECK(cfg.kafka.dead_letter_topic == "rtm.dead-letter");
  CHECK(cfg.kafka.delivery_timeout == 0ms);
  CHECK(cfg.kafka.shutdown_timeout == 30s);
  CHECK(cfg.metrics == metrics_config{});
  CHECK(cfg.metrics.listen == "127.0.0.1:9464");
  CHECK(cfg.log == log_config{});
  // No spool unless a path is given; the defaults of the contract all the same.
  CHECK(cfg.spool == spool_config{});
  CHECK_FALSE(cfg.spool.enabled());
  CHECK(cfg.spool.path.empty());
  CHECK(cfg.spool.max_size == std::uint64_t{8} << 30);
  CHECK(cfg.spool.segment_size == std::uint64_t{64} << 20);
  CHECK(cfg.spool.min_free == std::uint64_t{1} << 30);
  CHECK(cfg.spool.fsync_interval == 200ms);
  CHECK(cfg.spool.checkpoint_interval == 100ms);
  CHECK(cfg.spool.max_in_flight == 20000);
  CHECK(cfg.spool.when_full == spool_full_policy::drop_newest);
  // No command consumer unless a topic is given.
  CHECK(cfg.commands == commands_config{});
  CHECK_FALSE(cfg.commands.enabled());
  CHECK(cfg.commands.group_id == "rtm-bridge-commands");
  CHECK(cfg.commands.reply_topic == "rtm.command-replies");
  CHECK(cfg.commands.max_age == 30s);

  REQUIRE(cfg.connections.size() == 2);
  const connection_config& a = cfg.connections[0];
  CHECK(a.name == "a1");
  CHECK(a.kind == connection_kind::acme);
  CHECK(a.url.empty());  // discovery over api_url
  CHECK(a.protocol == 4);
  CHECK(a.api_url == default_acme_api_url);
  CHECK(a.tier == acme_tier::user);
  CHECK(a.identifier.from == secret::source::value);
  CHECK(a.identifier.value == "ident-1");
  CHECK(a.key.value == "key-1");
  CHECK(a.events.empty());
  CHECK_FALSE(a.team_id.has_value());
  CHECK(a.reconnect == reconnect_policy{});
  CHECK(a.ping_timeout == 30s);
  CHECK(a.tls == tls_config{});
  CHECK(a.limits.max_frame_size == 16 * 1024 * 1024);
  CHECK(a.limits.max_event_size == 960 * 1024);

  const connection_config& s = cfg.connections[1];
  CHECK(s.kind == connection_kind::slack);
  CHECK(s.url == default_slack_url);
  CHECK(s.key.value == "xoxb-1");
}

TEST_CASE("every key is read") {
  const rtm::test::temp_dir dir;
  // A real (self-signed) certificate: the loader checks that ca_file holds one.
  const std::string real_ca = dir.file("real-ca.pem");
  const std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=t "
      "-keyout " +
      dir.file("k.pem") + " -out " + real_ca + " >/dev/null 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);  // NOLINT(cert-env33-c): a test-only helper with fixed arguments

  const config cfg = load(R"(kafka:
  brokers: embedded
  client_id: bridge-7
  properties:
    linger.ms: 20
    compression.type: zstd
    acks: all
  topic: "{source}.{namespace}"
  routes:
    - {match: "message:*", topic: "rtm.messages"}
    - {match: "session:update_?", topic: "rtm.{connection}.sessions"}
  dead_letter_topic: dlq
  delivery_timeout: 2m
  shutdown_timeout: 1500ms
connections:
  - name: acme-main
    kind: acme
    url: "wss://rtm.acme.com/"
    protocol: 3
    api_url: "https://api.acme.com/v2/"
    tier: app
    identifier: {value: i1}
    key: {value: k1}
    events: ["session:*", "message:updated"]
    team_id: "42286ab3"
    reconnect: {initial_delay: 250ms, max_delay: 2m, jitter: 0}
    ping_timeout: 10s
    tls: {ca_file: ")" + real_ca +
                          R"(", verify: false}
    limits: {max_frame_size: 4MiB, max_event_size: 1000000}
  - name: slack_2
    kind: slack
    url: "http://127.0.0.1:8080/api"
    key: {value: xoxp-2}
    team_id: null
    limits: {max_event_size: 64kB}
metrics:
  listen: "[::1]:0"
log:
  level: debug
  format: json
)");
  const kafka_config& k = cfg.kafka;
  CHECK(k.embedded());
  CHECK(k.client_id == "bridge-7");
  using property = std::pair<std::string, std::string>;
  CHECK(k.properties == std::vector<property>{{"linger.ms", "20"}, {"compression.type", "zstd"}, {"acks", "all"}});
  CHECK(k.topic == "{source}.{namespace}");
  CHECK(k.routes ==
        std::vector<route>{{"message:*", "rtm.messages"}, {"session:update_?", "rtm.{connection}.sessions"}});
  CHECK(k.dead_letter_topic == "dlq");
  CHECK(k.delivery_timeout == 2min);
  CHECK(k.shutdown_timeout == 1500ms);

  const connection_config& a = cfg.connections.at(0);
  CHECK(a.url == "wss://rtm.acme.com/");
  CHECK(a.protocol == 3);
  CHECK(a.api_url == "https://api.acme.com/v2");  // trailing '/' dropped: paths are appended with one
  CHECK(a.tier == acme_tier::app);
  CHECK(a.events == std::vector<std::string>{"session:*", "message:updated"});
  CHECK(a.team_id == "42286ab3");
  CHECK(a.reconnect.initial_delay == 250ms);
  CHECK(a.reconnect.max_delay == 2min);
  CHECK(a.reconnect.jitter == 0.0);
  CHECK(a.ping_timeout == 10s);
  CHECK(a.tls.ca_file == real_ca);
  CHECK_FALSE(a.tls.verify);
  CHECK(a.limits.max_frame_size == 4 * 1024 * 1024);
  CHECK(a.limits.max_event_size == 1000000);

  const connection_config& s = cfg.connections.at(1);
  CHECK(s.url == "http://127.0.0.1:8080/api/");  // stored with a trailing '/'
  CHECK_FALSE(s.team_id.has_value());
  CHECK(s.limits.max_frame_size == 16 * 1024 * 1024);
  CHECK(s.limits.max_event_size == 64000);
  CHECK(cfg.metrics.listen == "[::1]:0");
  CHECK(cfg.log.level == log_level::debug);
  CHECK(cfg.log.format == log_format::json);
}

TEST_CASE("every spool key is read; a null path or an empty section is no spool") {
  const std::string connections = R"(connections:
  - name: a1
    kind: acme
    identifier: {value: i1}
    key: {value: k1}
)";
  const config cfg = load(R"(kafka:
  brokers: embedded
  delivery_timeout: 0
spool:
  path: /var/lib/rtm-bridge/spool
  max_size: 20GiB
  segment_size: 1GiB
  min_free: 0
  fsync_interval: 0
  checkpoint_interval: 10s
  max_in_flight: 1000000
  when_full: block
)" + connections);
  const spool_config& s = cfg.spool;
  CHECK(s.enabled());
  CHECK(s.path == "/var/lib/rtm-bridge/spool");
  CHECK(s.max_size == std::uint64_t{20} << 30);  // above 4 GiB: 64-bit
  CHECK(s.segment_size == std::uint64_t{1} << 30);
  CHECK(s.min_free == 0);
  CHECK(s.fsync_interval == 0ms);  // fdatasync after every write batch
  CHECK(s.checkpoint_interval == 10s);
  CHECK(s.max_in_flight == 1000000);
  CHECK(s.when_full == spool_full_policy::block);

  // The smallest of each range, and max_size exactly 2 x segment_size; a relative path is kept as written (it is
  // relative to the working directory, like tls.ca_file and secret files).
  const config low = load(
      "kafka: {brokers: embedded}\nspool:\n  path: spool-dir\n  max_size: 16MiB\n"
      "  segment_size: 8MiB\n  checkpoint_interval: 10ms\n  max_in_flight: 1\n" +
      connections);
  CHECK(low.spool.path == "spool-dir");
  CHECK(low.spool.max_size == std::uint64_t{16} << 20);
  CHECK(low.spool.segment_size == std::uint64_t{8} << 20);
  CHECK(low.spool.checkpoint_interval == 10ms);
  CHECK(low.spool.max_in_flight == 1);

  // Off: no spool section, `spool:` with nothing under it, or `path: null` (other keys may stay set, and then a
  // delivery timeout is fine).
  for (const std::string& spool : {std::string(), std::string("spool:\n"), std::string("spool: {}\n"),
                                   std::string("spool:\n  path: null\n  when_full: block\n")}) {
    INFO(spool);
    const config off = load("kafka:\n  brokers: embedded\n  delivery_timeout: 5m\n" + spool + connections);
    CHECK_FALSE(off.spool.enabled());
    CHECK(off.spool.path.empty());
    CHECK(off.kafka.delivery_timeout == 5min);
  }
}

TEST_CASE("acme url \"\" means discovery; metrics.listen \"\" disables; delivery_timeout 0 means never") {
  const config cfg = load(R"(kafka:
  brokers: "localhost:9092"
  delivery_timeout: 0
connections:
  - name: a1
    kind: acme
    url: ""
    identifier: {value: i1}
    key: {value: k1}
metrics: {listen: ""}
)");
  CHECK(cfg.connections.at(0).url.empty());
  CHECK(cfg.metrics.listen.empty());
  CHECK(cfg.kafka.delivery_timeout == 0ms);
}

TEST_CASE("every secret source resolves; files lose their trailing newlines") {
  const rtm::test::temp_dir dir;
  const std::string file = dir.write("acme-key", "key-from-file\r\n\n");
  const std::string creds = dir.path() + "/creds";
  REQUIRE(::mkdir(creds.c_str(), 0700) == 0);
  (void)dir.write("creds/acme-id", "id-from-credential\n");
  (void)dir.write("creds/kafka-password", "pw-from-credential");
  ::setenv("CREDENTIALS_DIRECTORY", creds.c_str(), 1);
  ::setenv("RTM_TEST_SLACK_TOKEN", "xoxb-from-env", 1);

  const config cfg = load(R"(kafka:
  brokers: "localhost:9092"
  properties:
    sasl.password: {credential: kafka-password}
connections:
  - name: a1
    kind: acme
    identifier: {credential: acme-id}
    key: {file: ")" + file +
                          R"("}
  - name: s1
    kind: slack
    key: {env: RTM_TEST_SLACK_TOKEN}
  - name: a2
    kind: acme
    identifier: {value: "id with spaces "}
    key: {value: k2}
)");
  ::unsetenv("CREDENTIALS_DIRECTORY");

  const connection_config& a = cfg.connections.at(0);
  CHECK(a.identifier.from == secret::source::credential);
  CHECK(a.identifier.reference == "acme-id");
  CHECK(a.identifier.value == "id-from-credential");
  CHECK(a.key.from == secret::source::file);
  CHECK(a.key.reference == file);
  CHECK(a.key.value == "key-from-file");
  const connection_config& s = cfg.connections.at(1);
  CHECK(s.key.from == secret::source::env);
  CHECK(s.key.reference == "RTM_TEST_SLACK_TOKEN");
  CHECK(s.key.value == "xoxb-from-env");
  CHECK(cfg.connections.at(2).identifier.value == "id with spaces ");
  CHECK(cfg.connections.at(2).identifier.reference.empty());

  // A property given as a secret is resolved into `properties` and remembered in `secret_properties`.
  REQUIRE(cfg.kafka.properties.size() == 1);
  CHECK(cfg.kafka.properties[0] == std::pair<std::string, std::string>{"sasl.password", "pw-from-credential"});
  REQUIRE(cfg.kafka.secret_properties.size() == 1);
  CHECK(cfg.kafka.secret_properties[0].first == "sasl.password");
  CHECK(cfg.kafka.secret_properties[0].second.describe() == "credential:kafka-password");
}

TEST_CASE("the shipped example file loads") {
  ::setenv("ACME_ID", "example-acme-id", 1);
  ::setenv("ACME_KEY", "example-acme-key", 1);
  ::setenv("SLACK_TOKEN", "xoxb-example", 1);
  ::setenv("SLACK_APP_TOKEN", "xapp-1-example", 1);
  const std::string path = rtm::test::env_path("RTM_SOURCE_ROOT") + "/config/rtm-bridge.example.yaml";
  config cfg;
  try {
    cfg = load_file(path);
  } catch (const load_error& e) {
    FAIL("the example file does not load:\n" << e.what());
  }
  CHECK(cfg.kafka.embedded());
  REQUIRE(cfg.connections.size() == 3);
  CHECK(cfg.connections[0].kind == connection_kind::acme);
  CHECK(cfg.connections[0].identifier.describe() == "env:ACME_ID");
  CHECK(cfg.connections[0].key.value == "example-acme-key");
  CHECK(cfg.connections[1].kind == connection_kind::slack);
  CHECK(cfg.connections[1].key.value == "xoxb-example");
  CHECK(cfg.connections[2].kind == connection_kind::slack_socket);
  CHECK(cfg.connections[2].key.value == "xapp-1-example");
  CHECK(cfg.connections[2].url == default_slack_url);
  CHECK(cfg.connections[2].reconnect == reconnect_policy{});
  CHECK(cfg.commands.topic == "rtm.commands");
  CHECK(cfg.commands.group_id == commands_config{}.group_id);
  CHECK(cfg.commands.reply_topic == commands_config{}.reply_topic);
  CHECK(cfg.commands.max_age == commands_config{}.max_age);
  // The example documents the defaults: apart from what it sets on purpose, it equals them.
  CHECK(cfg.kafka.client_id == kafka_config{}.client_id);
  CHECK(cfg.kafka.topic == kafka_config{}.topic);
  CHECK(cfg.kafka.dead_letter_topic == kafka_config{}.dead_letter_topic);
  CHECK(cfg.kafka.delivery_timeout == kafka_config{}.delivery_timeout);
  CHECK(cfg.kafka.shutdown_timeout == kafka_config{}.shutdown_timeout);
  CHECK(cfg.connections[0].reconnect == reconnect_policy{});
  CHECK(cfg.connections[0].ping_timeout == connection_config{}.ping_timeout);
  CHECK(cfg.connections[0].tls == tls_config{});
  CHECK(cfg.connections[0].limits == rtm::config::size_limits{});
  CHECK(cfg.connections[1].limits == rtm::config::size_limits{});
  CHECK(cfg.connections[0].api_url == default_acme_api_url);
  CHECK(cfg.connections[1].url == default_slack_url);
  CHECK(cfg.metrics == metrics_config{});
  CHECK(cfg.log == log_config{});
  // The one key it sets on purpose: the spool where the unit's StateDirectory= is (the contract's path).
  CHECK(cfg.spool.path == "/var/lib/rtm-bridge/spool");
  spool_config spool_defaults;
  spool_defaults.path = cfg.spool.path;
  CHECK(cfg.spool == spool_defaults);
}

TEST_CASE("summary() shows the setup and masks every secret") {
  const rtm::test::temp_dir dir;
  const std::string file = dir.write("key", "SECRET-from-file-4471\n");
  const std::string creds = dir.path() + "/creds";
  REQUIRE(::mkdir(creds.c_str(), 0700) == 0);
  (void)dir.write("creds/acme-id", "SECRET-from-credential-9032");
  ::setenv("CREDENTIALS_DIRECTORY", creds.c_str(), 1);
  ::setenv("RTM_TEST_SUMMARY_TOKEN", "xoxb-SECRET-from-env-5810", 1);
  ::setenv("RTM_TEST_SASL", "SECRET-sasl-env-7781", 1);

  const config cfg = load(R"(kafka:
  brokers: "kafka1:9092,kafka2:9092"
  properties:
    sasl.username: bridge
    sasl.password: SECRET-inline-property-6620
    ssl.key.password: {env: RTM_TEST_SASL}
  routes:
    - {match: "message:*", topic: "rtm.messages"}
connections:
  - name: acme-main
    kind: acme
    identifier: {credential: acme-id}
    key: {file: ")" + file +
                          R"("}
    events: ["session:*"]
  - name: acme-two
    kind: acme
    url: "wss://rtm.acme.com/"
    identifier: {value: SECRET-inline-id-1234}
    key: {value: SECRET-inline-key-5678}
  - name: slack-main
    kind: slack
    key: {env: RTM_TEST_SUMMARY_TOKEN}
)");
  ::unsetenv("CREDENTIALS_DIRECTORY");
  const std::string text = summary(cfg);
  INFO(text);
  for (const char* secret_text :
       {"SECRET-from-file-4471", "SECRET-from-credential-9032", "SECRET-from-env-5810", "SECRET-sasl-env-7781",
        "SECRET-inline-property-6620", "SECRET-inline-id-1234", "SECRET-inline-key-5678", "SECRET"}) {
    CHECK(text.find(secret_text) == std::string::npos);
  }
  CHECK(text.find("config test.yaml") != std::string::npos);
  CHECK(text.find("brokers: kafka1:9092,kafka2:9092") != std::string::npos);
  CHECK(text.find("client id: rtm-bridge") != std::string::npos);
  CHECK(text.find("sasl.username=bridge") != std::string::npos);
  CHECK(text.find("sasl.password=****") != std::string::npos);
  CHECK(text.find("ssl.key.password=env:RTM_TEST_SASL") != std::string::npos);
  CHECK(text.find("topic: rtm.{namespace}") != std::string::npos);
  CHECK(text.find("message:* -> rtm.messages") != std::string::npos);
  CHECK(text.find("dead-letter topic: rtm.dead-letter") != std::string::npos);
  CHECK(text.find("delivery timeout: never give up, shutdown timeout: 30s") != std::string::npos);
  CHECK(text.find("connections (3):") != std::string::npos);
  CHECK(text.find("acme-main: acme, url discovered via https://api.acme.com/v1") != std::string::npos);
  CHECK(text.find("identifier credential:acme-id, key file:" + file) != std::string::npos);
  CHECK(text.find("events session:*") != std::string::npos);
  CHECK(text.find("subscription (32 sent in authentication): session:update_availability,") != std::string::npos);
  CHECK(text.find(",session:error\n") != std::string::npos);
  CHECK(text.find("subscription (82 sent in authentication): all 82 known events\n") != std::string::npos);
  CHECK(text.find("warning:") == std::string::npos);
  CHECK(text.find("acme-two: acme, url wss://rtm.acme.com/, protocol 4, tier user") != std::string::npos);
  CHECK(text.find("identifier value:****, key value:****") != std::string::npos);
  CHECK(text.find("slack-main: slack, api https://slack.com/api/, key env:RTM_TEST_SUMMARY_TOKEN") !=
        std::string::npos);
  CHECK(text.find("metrics: listen 127.0.0.1:9464") != std::string::npos);
  CHECK(text.find("log: level info, format text") != std::string::npos);
  CHECK(text.find("\nspool: off (events wait in memory for Kafka)\n") != std::string::npos);

  kafka_config embedded;
  embedded.brokers = "embedded";
  config other;
  other.kafka = embedded;
  other.metrics.listen = "";
  const std::string text2 = summary(other);
  CHECK(text2.find("brokers: embedded (in-process mock cluster, demo/tests only)") != std::string::npos);
  CHECK(text2.find("metrics: disabled") != std::string::npos);

  // A spool: one line, with what an operator sizes the disk by and what happens when it is full.
  config spooled = other;
  spooled.spool.path = "/var/lib/rtm-bridge/spool";
  spooled.spool.max_size = std::uint64_t{20} << 30;
  spooled.spool.when_full = spool_full_policy::block;
  const std::string text3 = summary(spooled);
  CHECK(text3.find("\nspool: /var/lib/rtm-bridge/spool, max size 20GiB, when full block\n") != std::string::npos);
}

TEST_CASE("to_string for kinds and tiers") {
  CHECK(std::string(to_string(connection_kind::acme)) == "acme");
  CHECK(std::string(to_string(connection_kind::slack)) == "slack");
  CHECK(std::string(to_string(acme_tier::user)) == "user");
  CHECK(std::string(to_string(acme_tier::app)) == "app");
}

TEST_CASE("an inline secret in a group/other-readable file is a warning, not an error") {
  const rtm::test::temp_dir dir;
  const std::string yaml = R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {value: inline-id-3321}
    key: {value: inline-key-3322}
)";
  const std::string open_path = dir.write("open.yaml", yaml, 0644);
  const std::string closed_path = dir.write("closed.yaml", yaml, 0600);
  ::setenv("RTM_TEST_ENV_KEY", "k", 1);
  const std::string env_path = dir.write("env.yaml", R"(kafka:
  brokers: "localhost:9092"
connections:
  - name: a1
    kind: acme
    identifier: {env: RTM_TEST_ENV_KEY}
    key: {env: RTM_TEST_ENV_KEY}
)",
                                         0644);

  const std::string warned = capture_stderr([&] { CHECK(load_file(open_path).connections.size() == 1); });
  CHECK(warned.find("config " + open_path + " holds inline secrets") != std::string::npos);
  CHECK(warned.find("readable by everyone") != std::string::npos);
  CHECK(warned.find("inline-id-3321") == std::string::npos);
  CHECK(warned.find("inline-key-3322") == std::string::npos);
  CHECK(capture_stderr([&] { (void)load_file(closed_path); }).empty());
  CHECK(capture_stderr([&] { (void)load_file(env_path); }).empty());
}

TEST_CASE("no input crashes the loader: mutations of the example file only ever give load_error") {
  ::setenv("ACME_ID", "example-acme-id", 1);
  ::setenv("ACME_KEY", "example-acme-key", 1);
  ::setenv("SLACK_TOKEN", "xoxb-example", 1);
  ::setenv("SLACK_APP_TOKEN", "xapp-1-example", 1);
  const std::string base =
      rtm::test::read_file(rtm::test::env_path("RTM_SOURCE_ROOT") + "/config/rtm-bridge.example.yaml");
  REQUIRE_FALSE(base.empty());
  std::mt19937 rng(20261123);  // fixed seed: a failure is reproducible
  const std::string alphabet = "{}[]:,-'\"#&*!|>%@` \n\t0123456789abcxyz.\\?~";
  int loaded = 0;
  int rejected = 0;
  for (int round = 0; round < 1500; ++round) {
    std::string text = base;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      const std::size_t at = rng() % text.size();
      switch (rng() % 4) {
        case 0:
          text.erase(at, 1 + rng() % 8);
          break;
        case 1:
          text.insert(at, 1, alphabet[rng() % alphabet.size()]);
          break;
        case 2:
          text[at] = alphabet[rng() % alphabet.size()];
          break;
        default:
          text.insert(at, text.substr(rng() % text.size(), 1 + rng() % 40));
          break;
      }
    }
    try {
      (void)load_string(text, "fuzz.yaml");
      ++loaded;
    } catch (const load_error& e) {
      ++rejected;
      CHECK_FALSE(e.problems().empty());
    }
  }
  CHECK(loaded + rejected == 1500);
  CHECK(rejected > 0);
  MESSAGE("mutations loaded: " << loaded << ", rejected: " << rejected);

  // Deep nesting is a reported problem, not a stack overflow.
  const std::string deep = "kafka: " + std::string(100000, '[');
  try {
    (void)load_string(deep, "deep.yaml");
    FAIL("loaded a deeply nested file");
  } catch (const load_error& e) {
    REQUIRE(e.problems().size() == 1);
    CHECK(e.problems()[0].message.find("too deep") != std::string::npos);
  }
}
