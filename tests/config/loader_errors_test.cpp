// Bad input: every case asserts the exact key path and line of each problem, and that nothing else was reported.
// Most cases are rows of one table (the YAML and the problems it must give); cases that need files, environment
// variables or more than the problem list are test cases of their own below it.
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

// ---------------------------------------------------------------------------------------------- the shared YAML
// Lines 1-2: the kafka section with its one required key.
const std::string kafka_head = "kafka:\n  brokers: \"localhost:9092\"\n";
// Five lines: one valid acme connection.
const std::string one_acme =
    "connections:\n  - name: a1\n    kind: acme\n    identifier: {value: i1}\n    key: {value: k1}\n";

// A valid seven-line file, then `tail` from line 8: more keys of connection a1 (indented by four), or top-level keys.
std::string acme_file(const std::string& tail = "") {
  return kafka_head + one_acme + tail;
}
// `kafka_keys` from line 3, then the acme connection, then `connection_tail` (more keys of it).
std::string kafka_file(const std::string& kafka_keys, const std::string& connection_tail = "") {
  return kafka_head + kafka_keys + one_acme + connection_tail;
}
// "connections:" at line 3, then `items` from line 4.
std::string connections_file(const std::string& items) {
  return kafka_head + "connections:\n" + items;
}
// Connection a1 with these secrets: identifier at line 6, key at line 7.
std::string secrets_file(const std::string& identifier, const std::string& key) {
  return connections_file("  - name: a1\n    kind: acme\n    identifier: " + identifier + "\n    key: " + key + "\n");
}

// ------------------------------------------------------------------------------------------------ the assertions

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

struct expected_problem {
  std::string key_path;
  int line = 0;
  std::string fragment;
};

// The file must fail with exactly these problems.
void expect_problems(std::string_view yaml, const std::vector<expected_problem>& expected) {
  INFO("yaml:\n" << std::string(yaml));
  const std::vector<problem> problems = problems_of(yaml);
  CHECK_MESSAGE(problems.size() == expected.size(),
                (std::to_string(expected.size()) + " problem(s) expected, got:\n" + all_text(problems)));
  for (const expected_problem& e : expected) {
    check_has(problems, e.key_path, e.line, e.fragment);
  }
}

void expect_problem(std::string_view yaml, const std::string& key_path, int line, const std::string& fragment) {
  expect_problems(yaml, {{key_path, line, fragment}});
}

// ---------------------------------------------------------------------------------------------------- the table

struct bad_file {
  std::string name;
  std::string yaml;
  std::vector<expected_problem> problems;
};

std::vector<bad_file> unknown_keys_and_types() {
  return {
      {"unknown key at the top level, with a did-you-mean hint",
       acme_file("metric:\n  listen: \"\"\n"),
       {{"metric", 8, "unknown key \"metric\", did you mean \"metrics\"? (expected one of: kafka,"}}},
      {"unknown key in kafka",
       kafka_file("  topics: \"rtm.x\"\n"),
       {{"kafka.topics", 3, "unknown key \"topics\", did you mean \"topic\"?"}}},
      {"unknown key in a connection",
       acme_file("    ping_timout: 5s\n"),
       {{"connections[0].ping_timout", 8, "did you mean \"ping_timeout\"?"}}},
      {"unknown keys in reconnect, tls, metrics, log, a route and a secret, all reported at once",
       kafka_head + "  routes:\n    - {match: \"a:*\", topic: \"rtm.a\", to: \"x\"}\n" +
           "connections:\n  - name: a1\n    kind: acme\n    identifier: {value: i1, envv: X}\n"
           "    key: {value: k1}\n    reconnect: {initial_delay: 1s, max: 5s}\n    tls:\n      verify: true\n"
           "      ca: /etc/ssl/ca.pem\nmetrics:\n  port: 9464\nlog:\n  colour: true\n",
       {{"kafka.routes[0].to", 4, "unknown key \"to\""},
        {"connections[0].identifier.envv", 8, "did you mean \"env\"?"},
        {"connections[0].reconnect.max", 10, "(expected one of: initial_delay, max_delay, jitter)"},
        {"connections[0].tls.ca", 13, "unknown key \"ca\""},
        {"metrics.port", 15, "unknown key \"port\""},
        {"log.colour", 17, "unknown key \"colour\""}}},
      {"a key set twice in one map",
       kafka_file("  brokers: \"other:9092\"\n"),
       {{"kafka.brokers", 3, "duplicate key \"brokers\" (first set at line 2)"}}},
      {"wrong types: a section given as a list, a string given as a map",
       "kafka:\n  brokers: {host: k1}\n" + one_acme + "log: [info]\n",
       {{"kafka.brokers", 2, "expected a string, got a map"},
        {"log", 8, "expected a map (level, format), got a list"}}},
      {"wrong types: bool, number and list",
       acme_file("    tls: {verify: yes}\n    reconnect: {jitter: lots}\n    events: \"message:*\"\n"),
       {{"connections[0].tls.verify", 8, "expected true or false, got \"yes\""},
        {"connections[0].reconnect.jitter", 9, "expected a number, got \"lots\""},
        {"connections[0].events", 10, "expected a list of event globs, got \"message:*\""}}},
      {"connections given as a map",
       kafka_head + "connections:\n  name: a1\n  kind: acme\n",
       {{"connections", 4, "expected a list of connections, got a map"}}},
      {"a connection that is not a map",
       connections_file("  - a1\n"),
       {{"connections[0]", 4, "expected a connection: a map with name, kind and its keys, got \"a1\""}}},
  };
}

std::vector<bad_file> durations_and_sizes() {
  return {
      {"bad duration: a number without a unit",
       acme_file("    ping_timeout: 5\n"),
       {{"connections[0].ping_timeout", 8, "expected a duration with a unit (250ms, 5s, 2m, 1h), got \"5\""}}},
      {"bad durations: negative, fraction, unknown unit, garbage, overflow",
       kafka_file("  shutdown_timeout: -5s\n  delivery_timeout: 1.5s\n",
                  "    ping_timeout: 3d\n    reconnect:\n      initial_delay: soon\n"
                  "      max_delay: 99999999999999999999h\n"),
       {{"kafka.shutdown_timeout", 3, "must not be negative, got \"-5s\""},
        {"kafka.delivery_timeout", 4, "whole number"},
        {"connections[0].ping_timeout", 10, "unknown duration unit \"d\""},
        {"connections[0].reconnect.initial_delay", 12, "expected a duration with a unit"},
        {"connections[0].reconnect.max_delay", 13, "is too large"}}},
      {"bad durations: zero where a positive duration is needed, bare 0 only for delivery_timeout",
       kafka_file("  delivery_timeout: 0\n  shutdown_timeout: 0\n", "    ping_timeout: 0s\n"),
       {{"kafka.shutdown_timeout", 4, "expected a duration with a unit"},
        {"connections[0].ping_timeout", 10, "must be longer than 0, got 0s"}}},
      {"bad size limits: unit, range, garbage, a map expected",
       connections_file("  - name: a1\n    kind: acme\n    identifier: {value: i1}\n    key: {value: k1}\n"
                        "    limits:\n      max_frame_size: 16M\n      max_event_size: 512\n"
                        "  - name: a2\n    kind: acme\n    identifier: {value: i2}\n    key: {value: k2}\n"
                        "    limits: {max_frame_size: 2GiB, max_event_size: -1, max_frame_sze: 1MiB}\n"
                        "  - name: s1\n    kind: slack\n    key: {value: xoxb-1}\n    limits: 1MiB\n"),
       {{"connections[0].limits.max_frame_size", 9,
         "unknown size unit \"M\" in \"16M\": expected B, kB, KiB, MB, MiB, GB or GiB"},
        {"connections[0].limits.max_event_size", 10, "expected from 1KiB to 1GiB, got \"512\""},
        {"connections[1].limits.max_frame_size", 15, "expected from 1KiB to 1GiB, got \"2GiB\""},
        {"connections[1].limits.max_event_size", 15, "must not be negative"},
        {"connections[1].limits.max_frame_sze", 15, "did you mean \"max_frame_size\"?"},
        {"connections[2].limits", 19, "expected a map (max_frame_size, max_event_size)"}}},
      {"an event limit above the frame limit",
       connections_file("  - name: a1\n    kind: acme\n    identifier: {value: i1}\n    key: {value: k1}\n"
                        "    limits: {max_frame_size: 1MiB, max_event_size: 2MiB}\n"
                        "  - name: a2\n    kind: acme\n    identifier: {value: i2}\n    key: {value: k2}\n"
                        "    limits:\n      max_frame_size: 512KiB\n"),
       {{"connections[0].limits.max_event_size", 8, "must not exceed max_frame_size (1MiB), got 2MiB"},
        {"connections[1].limits.max_frame_size", 14,
         "is smaller than max_event_size (960KiB by default): set max_event_size too"}}},
      {"delivery_timeout beyond librdkafka's 32-bit limit",
       kafka_file("  delivery_timeout: 600h\n"),
       {{"kafka.delivery_timeout", 3, "at most 2147483647ms"}}},
      {"delivery_timeout one millisecond beyond librdkafka's 32-bit limit",
       kafka_file("  delivery_timeout: 2147483648ms\n"),
       {{"kafka.delivery_timeout", 3, "at most 2147483647ms"}}},
  };
}

std::vector<bad_file> brokers_and_connections() {
  const std::string acme_a1 = "  - name: a1\n    kind: acme\n    identifier: {value: i1}\n    key: {value: k1}\n";
  return {
      {"missing brokers",
       "kafka:\n  client_id: x\n" + one_acme,
       {{"kafka.brokers", 2, "missing required key \"brokers\""}}},
      {"empty brokers",
       "kafka:\n  brokers: \"\"\n" + one_acme,
       {{"kafka.brokers", 2, "expected \"embedded\" or a host:port list, got an empty string"}}},
      {"bad broker entries: a port missing",
       "kafka:\n  brokers: \"kafka1:9092,kafka2\"\n" + one_acme,
       {{"kafka.brokers", 2, "the port is missing in \"kafka2\""}}},
      {"bad broker entries: a port out of range",
       "kafka:\n  brokers: \"kafka1:99999\"\n" + one_acme,
       {{"kafka.brokers", 2, "expected a numeric port 1-65535 in \"kafka1:99999\""}}},
      {"duplicate connection name names the first occurrence's line",
       connections_file(acme_a1 + "  - name: a1\n    kind: acme\n    identifier: {value: i2}\n    key: {value: k2}\n"),
       {{"connections[1].name", 8, "duplicate connection name \"a1\" (first used at line 4)"}}},
      {"malformed connection name: a space and capitals",
       connections_file("  - name: Acme Main\n    kind: acme\n    identifier: {value: i1}\n    key: {value: k1}\n"),
       {{"connections[0].name", 4, "expected a name of lower-case letters, digits, '_' and '-'"}}},
      {"malformed connection name: too long",
       connections_file("  - name: " + std::string(65, 'a') +
                        "\n    kind: acme\n    identifier: {value: i1}\n    key: {value: k1}\n"),
       {{"connections[0].name", 4, "at most 64 characters, got 65"}}},
      {"missing name",
       connections_file("  - kind: acme\n    identifier: {value: i1}\n    key: {value: k1}\n"),
       {{"connections[0].name", 4, "missing required key \"name\""}}},
      {"acme-only keys on a slack connection",
       connections_file("  - name: s1\n    kind: slack\n    key: {value: xoxb-1}\n    protocol: 4\n    tier: app\n"
                        "    identifier: {value: i1}\n    events: [\"message\"]\n"
                        "    api_url: \"https://api.acme.com/v1\"\n"),
       {{"connections[0].protocol", 7, "only valid for kind: acme (this connection is kind: slack)"},
        {"connections[0].tier", 8, "only valid for kind: acme"},
        {"connections[0].identifier", 9, "only valid for kind: acme"},
        {"connections[0].events", 10, "only valid for kind: acme"},
        {"connections[0].api_url", 11, "only valid for kind: acme"}}},
      {"missing kind",
       connections_file("  - name: a1\n    identifier: {value: i1}\n    key: {value: k1}\n"),
       {{"connections[0].kind", 4, "missing required key \"kind\""}}},
      {"unknown kind",
       connections_file("  - name: d1\n    kind: discord\n    key: {value: k1}\n"),
       {{"connections[0].kind", 5, "expected acme, slack or slack_socket, got \"discord\""}}},
      {"acme without identifier",
       connections_file("  - name: a1\n    kind: acme\n    key: {value: k1}\n"),
       {{"connections[0].identifier", 4, "missing required key \"identifier\""}}},
      {"an empty connection list",
       kafka_head + "connections: []\n",
       {{"connections", 3, "at least one connection is required"}}},
      {"protocol 5",
       connections_file("  - name: a1\n    kind: acme\n    protocol: 5\n    identifier: {value: i1}\n"
                        "    key: {value: k1}\n"),
       {{"connections[0].protocol", 6, "expected 4 or 3 (the Engine.IO revision), got \"5\""}}},
      {"unknown tier",
       connections_file("  - name: a1\n    kind: acme\n    tier: admin\n    identifier: {value: i1}\n"
                        "    key: {value: k1}\n"),
       {{"connections[0].tier", 6, "expected user or app, got \"admin\""}}},
      {"bad url schemes for acme url, acme api_url and slack url",
       connections_file("  - name: a1\n    kind: acme\n    url: \"https://rtm.acme.com/\"\n"
                        "    api_url: \"ftp://api.acme.com/v1\"\n    identifier: {value: i1}\n    key: {value: k1}\n"
                        "  - name: s1\n    kind: slack\n    url: \"wss://slack.com/api/\"\n    key: {value: xoxb-1}\n"),
       {{"connections[0].url", 6, "expected a wss:// or ws:// URL, got \"https://rtm.acme.com/\""},
        {"connections[0].api_url", 7, "expected a https:// or http:// URL"},
        {"connections[1].url", 12, "expected a https:// or http:// URL, got \"wss://slack.com/api/\""}}},
      {"empty events list and empty team_id",
       acme_file("    events: []\n    team_id: \"\"\n"),
       {{"connections[0].events", 8, "omit events to receive all events of the tier"},
        {"connections[0].team_id", 9, "expected a team id, got \"\""}}},
      {"jitter out of range",
       connections_file(acme_a1 + "    reconnect: {jitter: 1.5}\n" +
                        "  - name: a2\n    kind: acme\n    identifier: {value: i2}\n    key: {value: k2}\n"
                        "    reconnect:\n      jitter: -0.1\n"),
       {{"connections[0].reconnect.jitter", 8, "expected a fraction from 0 to 1, got 1.5"},
        {"connections[1].reconnect.jitter", 14, "expected a fraction from 0 to 1, got -0.1"}}},
      {"max_delay shorter than initial_delay",
       acme_file("    reconnect:\n      initial_delay: 10s\n      max_delay: 5s\n"),
       {{"connections[0].reconnect.max_delay", 10, "must be at least initial_delay (10s), got 5s"}}},
      // With max_delay left at its default, the blame goes to initial_delay.
      {"initial_delay longer than the default max_delay",
       acme_file("    reconnect: {initial_delay: 2m}\n"),
       {{"connections[0].reconnect.initial_delay", 8, "is longer than max_delay (1m by default)"}}},
      {"the same token on two connections",
       connections_file("  - name: s1\n    kind: slack\n    key: {value: xoxb-same}\n"
                        "  - name: s2\n    kind: slack\n    key: {value: xoxb-same}\n"),
       {{"connections[1].key", 9, "the same token as the connection at line 6"}}},
      {"a slack key that is not a Slack token",
       connections_file("  - name: s1\n    kind: slack\n    key: {value: \"Bearer abc\"}\n"),
       {{"connections[0].key", 6, "the secret from value:**** is not a Slack token"}}},
  };
}

std::vector<bad_file> topics_secrets_and_properties() {
  return {
      {"unknown placeholder in kafka.topic",
       kafka_file("  topic: \"rtm.{team}\"\n"),
       {{"kafka.topic", 3, "unknown placeholder {team}"}}},
      {"bad route topics and a dead-letter topic with a placeholder",
       kafka_file("  routes:\n    - match: \"message:*\"\n      topic: \"rtm.{event\"\n"
                  "    - {match: \"session:*\", topic: \"rtm sessions\"}\n    - {match: \"x\"}\n"
                  "  dead_letter_topic: \"rtm.dead.{connection}\"\n"),
       {{"kafka.routes[0].topic", 5, "unbalanced '{'"},
        {"kafka.routes[1].topic", 6, "invalid character a space"},
        {"kafka.routes[2].topic", 7, "missing required key \"topic\""},
        {"kafka.dead_letter_topic", 8, "the dead-letter topic takes no placeholders"}}},
      {"bad glob in events and in routes",
       kafka_file("  routes:\n    - {match: \"message:[\", topic: \"rtm.messages\"}\n",
                  "    events:\n      - \"session:*\"\n      - \"message:[abc\"\n"),
       {{"kafka.routes[0].match", 4, "invalid glob \"message:[\": unterminated character class"},
        {"connections[0].events[1]", 12, "invalid glob \"message:[abc\""}}},
      {"missing secret env var",
       secrets_file("{value: i1}", "{env: RTM_TEST_SURELY_UNSET}"),
       {{"connections[0].key.env", 7, "environment variable RTM_TEST_SURELY_UNSET is not set"}}},
      {"empty env var and bad env var name",
       secrets_file("{env: RTM_TEST_EMPTY}", "{env: \"ACME-KEY\"}"),
       {{"connections[0].identifier.env", 6, "environment variable RTM_TEST_EMPTY is empty"},
        {"connections[0].key.env", 7, "expected an environment variable name"}}},
      {"plain-scalar secret names the four forms",
       secrets_file("{value: i1}", "\"my-plain-key\""),
       {{"connections[0].key", 7,
         "a plain string is not accepted: use {env: NAME}, {file: PATH}, {credential: NAME} or {value: \"...\"}"}}},
      {"secret with two sources",
       secrets_file("{value: i1}", "\n      env: RTM_TEST_KEY\n      value: \"inline\""),
       {{"connections[0].key", 9, "a secret takes exactly one source, got both env and value"}}},
      {"empty secret map and empty inline value",
       secrets_file("{}", "{value: \"\"}"),
       {{"connections[0].identifier", 6, "a secret needs exactly one source"},
        {"connections[0].key.value", 7, "the secret value is empty"}}},
      {"bad librdkafka property value: librdkafka's own error text",
       kafka_file("  properties:\n    compression.type: zstd\n    linger.ms: abc\n"),
       {{"kafka.properties.linger.ms", 5,
         "librdkafka: Invalid value for configuration property \"queue.buffering.max.ms\""}}},
      {"unknown librdkafka property",
       kafka_file("  properties: {lingr.ms: 5}\n"),
       {{"kafka.properties.lingr.ms", 3, "librdkafka: No such configuration property: \"lingr.ms\""}}},
      {"forbidden properties name the key to use instead",
       kafka_file("  properties:\n    bootstrap.servers: \"k1:9092\"\n    enable.idempotence: false\n    acks: 1\n"
                  "    partitioner: consistent_random\n    message.timeout.ms: 1000\n    client.id: other\n"),
       {{"kafka.properties.bootstrap.servers", 4, "use kafka.brokers instead"},
        {"kafka.properties.enable.idempotence", 5, "enable.idempotence cannot be false"},
        {"kafka.properties.acks", 6, "the contract requires acks=all (got \"1\")"},
        {"kafka.properties.partitioner", 7, "murmur2_random"},
        {"kafka.properties.message.timeout.ms", 8, "use kafka.delivery_timeout instead"},
        {"kafka.properties.client.id", 9, "use kafka.client_id instead"}}},
      {"a property value that is a list",
       kafka_file("  properties:\n    linger.ms: [5]\n"),
       {{"kafka.properties.linger.ms", 4, "expected a value (a string, number or true/false) or a secret"}}},
  };
}

std::vector<bad_file> metrics_log_and_file_shape() {
  return {
      {"bad metrics.listen: no port",
       acme_file("metrics:\n  listen: \"localhost\"\n"),
       {{"metrics.listen", 9, "the port is missing in \"localhost\" (\"\" disables the metrics endpoint)"}}},
      {"bad metrics.listen: an unterminated IPv6 address",
       acme_file("metrics: {listen: \"[::1:9464\"}\n"),
       {{"metrics.listen", 8, "unterminated IPv6 address"}}},
      {"bad log level and format",
       acme_file("log:\n  level: verbose\n  format: xml\n"),
       {{"log.level", 9, "expected trace, debug, info, warn or error, got \"verbose\""},
        {"log.format", 10, "expected text or json, got \"xml\""}}},
      {"a YAML syntax error inside a flow map", "kafka: {brokers: a: b}\n", {{"", 1, "YAML syntax error: "}}},
      {"a top level that is a list",
       "- kafka\n- connections\n",
       {{"", 1,
         "expected a map at the top level (kafka, spool, commands, cluster, connections, metrics, log), got a list"}}},
      {"a top level that is a string", "just a string\n", {{"", 1, "got \"just a string\""}}},
      {"missing top-level sections",
       "log: {level: info}\n",
       {{"kafka", 1, "missing required key \"kafka\""}, {"connections", 1, "missing required key \"connections\""}}},
      {"two YAML documents in one file",
       acme_file("---\nlog: {level: debug}\n"),
       {{"", 9, "the file holds 2 YAML documents ('---'): expected one"}}},
  };
}

// The spool section from line 8 (after a valid seven-line file): "spool:" at line 8, its keys from line 9.
std::string spool_file(const std::string& keys) {
  return acme_file("spool:\n" + keys);
}

std::vector<bad_file> spool_section() {
  return {
      {"unknown key under spool, with a did-you-mean hint",
       spool_file("  path: /var/lib/rtm-bridge/spool\n  max_in_flights: 100\n"),
       {{"spool.max_in_flights", 10,
         "did you mean \"max_in_flight\"? (expected one of: path, max_size, segment_size, min_free, fsync_interval, "
         "checkpoint_interval, max_in_flight, when_full)"}}},
      {"spool given as a path instead of a map",
       acme_file("spool: /var/lib/rtm-bridge/spool\n"),
       {{"spool", 8, "expected a map (path, max_size, segment_size, min_free, "}}},
      {"an empty path",
       spool_file("  path: \"\"\n"),
       {{"spool.path", 9, "expected a directory, got \"\" (null or leaving the key out turns the spool off)"}}},
      {"a path that is a list", spool_file("  path: [a, b]\n"), {{"spool.path", 9, "expected a string, got a list"}}},
      {"segment_size below 8MiB",
       spool_file("  segment_size: 4MiB\n"),
       {{"spool.segment_size", 9, "expected from 8MiB to 1GiB, got \"4MiB\""}}},
      {"segment_size above 1GiB",
       spool_file("  segment_size: 2GiB\n"),
       {{"spool.segment_size", 9, "expected from 8MiB to 1GiB, got \"2GiB\""}}},
      {"max_size below the smallest two segments, and not a size",
       spool_file("  max_size: 10MiB\n  min_free: lots\n"),
       {{"spool.max_size", 9, "expected at least 16MiB, got \"10MiB\""}, {"spool.min_free", 10, "expected a size"}}},
      {"max_size below 2 x segment_size",
       spool_file("  path: /var/lib/rtm-bridge/spool\n  max_size: 100MiB\n  segment_size: 64MiB\n"),
       {{"spool.max_size", 10,
         "must be at least 2 x segment_size (64MiB): one segment is written while another waits for Kafka; got "
         "100MiB"}}},
      {"max_size below 2 x the default segment_size",
       spool_file("  max_size: 127MiB\n"),
       {{"spool.max_size", 9, "must be at least 2 x segment_size (64MiB)"}}},
      {"negative sizes and durations",
       spool_file("  min_free: -1GiB\n  fsync_interval: -200ms\n"),
       {{"spool.min_free", 9, "must not be negative"}, {"spool.fsync_interval", 10, "must not be negative"}}},
      {"checkpoint_interval below 10ms",
       spool_file("  checkpoint_interval: 5ms\n"),
       {{"spool.checkpoint_interval", 9, "must be at least 10ms, got 5ms"}}},
      {"checkpoint_interval above 10s, and a fraction",
       spool_file("  checkpoint_interval: 11s\n  fsync_interval: 1.5s\n"),
       {{"spool.checkpoint_interval", 9, "must be at most 10s, got 11s"},
        {"spool.fsync_interval", 10, "whole number"}}},
      {"checkpoint_interval 0 needs a unit and is below the range anyway",
       spool_file("  checkpoint_interval: 0\n"),
       {{"spool.checkpoint_interval", 9, "expected a duration with a unit"}}},
      {"max_in_flight 0",
       spool_file("  max_in_flight: 0\n"),
       {{"spool.max_in_flight", 9, "expected from 1 to 1000000, got 0"}}},
      {"max_in_flight above 1000000",
       spool_file("  max_in_flight: 1000001\n"),
       {{"spool.max_in_flight", 9, "expected from 1 to 1000000, got 1000001"}}},
      {"max_in_flight beyond 64 bits",
       spool_file("  max_in_flight: 99999999999999999999999\n"),
       {{"spool.max_in_flight", 9, "expected from 1 to 1000000, got 99999999999999999999999"}}},
      {"max_in_flight is a count: no unit",
       spool_file("  max_in_flight: 20KiB\n"),
       {{"spool.max_in_flight", 9, "expected a whole number (no unit), got \"20KiB\""}}},
      {"max_in_flight negative",
       spool_file("  max_in_flight: -5\n"),
       {{"spool.max_in_flight", 9, "expected a whole number (no unit), got \"-5\""}}},
      {"max_in_flight a fraction",
       spool_file("  max_in_flight: 2.5\n"),
       {{"spool.max_in_flight", 9, "expected a whole number (no unit), got \"2.5\""}}},
      {"when_full with a value it does not take",
       spool_file("  when_full: drop_oldest\n"),
       {{"spool.when_full", 9, "expected drop_newest or block, got \"drop_oldest\""}}},
      // The kafka key is the one blamed: it is what a spool cannot work with.
      {"a delivery timeout with a spool",
       kafka_file("  delivery_timeout: 5m\n", "spool:\n  path: /var/lib/rtm-bridge/spool\n"),
       {{"kafka.delivery_timeout", 3,
         "must be 0 while the spool is on (spool.path at line 10): librdkafka gives up on a record at this timeout, "
         "and sending it again from the spool would put it behind later events of its team; set delivery_timeout: "
         "0, or turn the spool off (spool.path: null)"}}},
  };
}

void check_table(const std::vector<bad_file>& cases) {
  ::unsetenv("RTM_TEST_SURELY_UNSET");
  ::setenv("RTM_TEST_EMPTY", "", 1);
  ::setenv("RTM_TEST_KEY", "k", 1);
  for (const bad_file& c : cases) {
    SUBCASE(c.name.c_str()) {
      expect_problems(c.yaml, c.problems);
    }
  }
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

TEST_CASE("bad files: unknown keys and wrong types") {
  check_table(unknown_keys_and_types());
}
TEST_CASE("bad files: durations and sizes") {
  check_table(durations_and_sizes());
}
TEST_CASE("bad files: brokers and connections") {
  check_table(brokers_and_connections());
}
TEST_CASE("bad files: topics, secrets and kafka.properties") {
  check_table(topics_secrets_and_properties());
}
TEST_CASE("bad files: metrics, log and the shape of the file") {
  check_table(metrics_log_and_file_shape());
}
TEST_CASE("bad files: the spool section") {
  check_table(spool_section());
}

// The commands section from line 8, as the spool's.
std::vector<bad_file> commands_section() {
  const auto commands_file = [](const std::string& keys) { return acme_file("commands:\n" + keys); };
  return {
      {"unknown key under commands, with a did-you-mean hint",
       commands_file("  topic: rtm.commands\n  reply_topics: rtm.replies\n"),
       {{"commands.reply_topics", 10, "did you mean \"reply_topic\"?"}}},
      {"the reply topic is the command topic",
       commands_file("  topic: rtm.commands\n  reply_topic: rtm.commands\n"),
       {{"commands.reply_topic", 10, "the reply topic must differ from the command topic (rtm.commands)"}}},
      {"a command topic that is no topic name",
       commands_file("  topic: \"rtm commands\"\n"),
       {{"commands.topic", 9, "rtm commands"}}},
      {"an empty group id",
       commands_file("  topic: rtm.commands\n  group_id: \"\"\n"),
       {{"commands.group_id", 10, "non-empty"}}},
      {"max_age 0 and without a unit",
       commands_file("  topic: rtm.commands\n  max_age: 0s\n"),
       {{"commands.max_age", 10, "must be longer than 0"}}},
  };
}

TEST_CASE("bad files: the commands section") {
  check_table(commands_section());
}

TEST_CASE("delivery_timeout up to librdkafka's 32-bit limit loads") {
  CHECK(rtm::config::load_string(kafka_file("  delivery_timeout: 2147483647ms\n"), "test.yaml")
            .kafka.delivery_timeout.count() == 2147483647);
}

// The credential is the token, whatever URL reaches it: a trailing slash, another spelling of the host, or discovery
// instead of a fixed URL must not let two connections hold it at once.
TEST_CASE("the same token under two spellings of its endpoint is still one token") {
  const auto acme_pair = [](const std::string& first, const std::string& second) {
    return connections_file("  - name: a1\n    kind: acme\n    identifier: {value: same-id}\n    key: {value: k1}\n" +
                            first + "  - name: a2\n    kind: acme\n    identifier: {value: same-id}\n" +
                            "    key: {value: k1}\n" + second);
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
    expect_problem(connections_file("  - name: s1\n    kind: slack\n    key: {value: xoxb-same}\n"
                                    "    url: https://slack.com/api/\n  - name: s2\n    kind: slack\n"
                                    "    key: {value: xoxb-same}\n    url: https://SLACK.com/api\n"),
                   "connections[1].key", 10, "the same token as the connection at line 6");
  }
}

TEST_CASE("a missing or non-PEM tls.ca_file") {
  const rtm::test::temp_dir dir;
  const std::string not_pem = dir.write("not-a-ca.pem", "hello\n");
  expect_problems(acme_file("    tls: {ca_file: \"" + dir.file("missing.pem") + "\"}\n" +
                            "  - name: a2\n    kind: acme\n    identifier: {value: i2}\n    key: {value: k2}\n" +
                            "    tls:\n      ca_file: \"" + not_pem + "\"\n"),
                  {{"connections[0].tls.ca_file", 8, "No such file or directory (ENOENT)"},
                   {"connections[1].tls.ca_file", 14, "holds no PEM certificate"}});
}

TEST_CASE("secret file that does not exist (ENOENT)") {
  const rtm::test::temp_dir dir;
  expect_problem(secrets_file("{value: i1}", "{file: \"" + dir.file("nope") + "\"}"), "connections[0].key.file", 7,
                 "cannot read secret file " + dir.file("nope") + ": No such file or directory (ENOENT)");
}

TEST_CASE("secret file that cannot be read (EACCES)") {
  const rtm::test::temp_dir dir;
  const std::string path = dir.write("key", "secret-unreadable\n", 0000);
  // nobody must be able to reach the file, so that the failure is the file's mode and not the directory's.
  REQUIRE(::chmod(dir.path().c_str(), 0711) == 0);
  const std::string text = load_unprivileged(secrets_file("{value: i1}", "{file: \"" + path + "\"}"));
  CHECK(text ==
        "test.yaml:7:17: connections[0].key.file: cannot read secret file " + path + ": Permission denied (EACCES)");
}

TEST_CASE("empty secret file and a secret file that is a directory") {
  const rtm::test::temp_dir dir;
  const std::string empty = dir.write("empty", "\n\n");
  expect_problems(secrets_file("{file: \"" + empty + "\"}", "{file: \"" + dir.path() + "\"}"),
                  {{"connections[0].identifier.file", 6, "secret file " + empty + " is empty"},
                   {"connections[0].key.file", 7, "is a directory"}});
}

TEST_CASE("credential without CREDENTIALS_DIRECTORY") {
  ::unsetenv("CREDENTIALS_DIRECTORY");
  expect_problem(secrets_file("{value: i1}", "{credential: acme-key}"), "connections[0].key.credential", 7,
                 "credential acme-key: $CREDENTIALS_DIRECTORY is not set (systemd sets it for a unit with "
                 "LoadCredential=acme-key:PATH");
}

TEST_CASE("credential missing from CREDENTIALS_DIRECTORY") {
  const rtm::test::temp_dir dir;
  ::setenv("CREDENTIALS_DIRECTORY", dir.path().c_str(), 1);
  expect_problem(secrets_file("{value: i1}", "{credential: acme-key}"), "connections[0].key.credential", 7,
                 "cannot read credential acme-key (" + dir.path() + "/acme-key): No such file or directory (ENOENT)");
  ::unsetenv("CREDENTIALS_DIRECTORY");
}

TEST_CASE("YAML syntax error reports yaml-cpp's line and column") {
  const auto problems = problems_of("kafka:\n  brokers: [localhost:9092\nconnections: []\n");
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].line == 3);
  CHECK(problems[0].key_path.empty());
  CHECK(problems[0].message.starts_with("YAML syntax error: "));
  CHECK(problems[0].format().starts_with("test.yaml:3:"));
}

TEST_CASE("empty file and comment-only file") {
  for (const char* text : {"", "\n\n", "# nothing here\n", "---\n"}) {
    const auto problems = problems_of(text);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].line == 0);
    CHECK(problems[0].format() ==
          "test.yaml: the file is empty: expected a map with at least kafka.brokers and connections");
  }
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
  const std::string head = kafka_head + "  properties:\n    linger.ms: 5\n    queue.buffering.max.kbytes: ";
  const auto with_events = [](const std::string& a1_limits, const std::string& a2) {
    return "\nconnections:\n  - name: a1\n    kind: acme\n    identifier: {value: i1}\n    key: {value: k1}\n" +
           a1_limits + a2;
  };
  const std::string a2 = "  - name: a2\n    kind: acme\n    identifier: {value: i2}\n    key: {value: k2}\n";
  const std::string connections = with_events("", a2 + "    limits: {max_event_size: 64KiB}\n");
  expect_problem(head + "975" + connections, "kafka.properties.queue.buffering.max.kbytes", 5,
                 "must be at least 976 (KiB) to hold the largest record: connection a1's limits.max_event_size "
                 "(983040 bytes)");
  CHECK_NOTHROW((void)rtm::config::load_string(head + "976" + connections, "test.yaml"));

  // The largest max_event_size counts, whichever connection has it.
  const std::string bigger = with_events("    limits: {max_event_size: 64KiB}\n",
                                         a2 + "    limits: {max_frame_size: 4MiB, max_event_size: 2MiB}\n");
  // Its 2 MiB + 16 KiB is capped by message.max.bytes (1,000,000 bytes: 977 KiB rounded up).
  expect_problem(head + "976" + bigger, "kafka.properties.queue.buffering.max.kbytes", 5,
                 "must be at least 977 (KiB) to hold the largest record: connection a2's");
  CHECK_NOTHROW((void)rtm::config::load_string(head + "977" + bigger, "test.yaml"));
  const std::string small_events = with_events("    limits: {max_event_size: 64KiB}\n", "");
  expect_problem(head + "79" + small_events, "kafka.properties.queue.buffering.max.kbytes", 5,
                 "must be at least 80 (KiB)");
  CHECK_NOTHROW((void)rtm::config::load_string(head + "80" + small_events, "test.yaml"));

  // A record above message.max.bytes is refused as msg_size_too_large before the queue is asked: the queue only
  // needs to hold message.max.bytes then.
  const std::string capped =
      kafka_file("  properties:\n    message.max.bytes: 100000\n    queue.buffering.max.kbytes: 98\n");
  CHECK_NOTHROW((void)rtm::config::load_string(capped, "test.yaml"));
  std::string too_small = capped;
  too_small.replace(too_small.find("kbytes: 98"), 10, "kbytes: 97");
  expect_problem(too_small, "kafka.properties.queue.buffering.max.kbytes", 5, "must be at least 98 (KiB)");
}
