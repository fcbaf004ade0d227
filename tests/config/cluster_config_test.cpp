// The `cluster:` section and a connection's `bucket:` (docs/CONTRACT.md, "Several instances"): defaults, the timing
// rules of the design study (A3), the refusals at load, each with its file position and key path.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "config/cluster_rules.hpp"
#include "config/loader.hpp"

using namespace std::chrono_literals;
using rtm::config::load_error;

namespace {

const std::string kafka_head = "kafka:\n  brokers: \"localhost:9092\"\n";  // lines 1-2
const std::string one_acme =
    "connections:\n  - name: a1\n    kind: acme\n    identifier: {value: i1}\n    key: {value: k1}\n";

// The cluster section's keys from line 4, then connection a1 (its name at line 5 + keys).
std::string cluster_file(const std::string& keys, const std::string& connection_tail = "",
                         const std::string& head = kafka_head) {
  return head + "cluster:\n" + keys + one_acme + connection_tail;
}

struct found {
  std::string key_path;
  int line = 0;
  std::string message;
};

std::vector<found> problems_of(const std::string& yaml) {
  try {
    (void)rtm::config::load_string(yaml, "test.yaml");
  } catch (const load_error& e) {
    std::vector<found> out;
    for (const auto& p : e.problems()) {
      out.push_back({p.key_path, p.line, p.message});
    }
    return out;
  }
  return {};
}

void expect_only(const std::string& yaml, const std::string& key_path, int line, const std::string& fragment) {
  INFO("yaml:\n" << yaml);
  const auto problems = problems_of(yaml);
  REQUIRE(problems.size() == 1);
  INFO("message: " << problems[0].message);
  CHECK(problems[0].key_path == key_path);
  CHECK(problems[0].line == line);
  CHECK(problems[0].message.find(fragment) != std::string::npos);
}

}  // namespace

TEST_CASE("cluster mode is off by default, with the contract's defaults") {
  const auto cfg = rtm::config::load_string(kafka_head + one_acme, "test.yaml");
  CHECK_FALSE(cfg.cluster.enabled());
  CHECK(cfg.cluster.assignment_topic == "rtm-bridge.assignment");
  CHECK(cfg.cluster.buckets == 64);
  CHECK_FALSE(cfg.cluster.instance_id.has_value());
  CHECK(cfg.cluster.session_timeout == 10s);
  CHECK(cfg.cluster.heartbeat_interval == 1s);
  CHECK(cfg.cluster.rebalance_timeout == 10s);
  CHECK(cfg.cluster.fence_margin == 3s);
  CHECK(cfg.cluster.properties.empty());
  CHECK_FALSE(cfg.connections.at(0).bucket.has_value());
}

TEST_CASE("a cluster section with every key, and explicit buckets") {
  const auto cfg = rtm::config::load_string(
      cluster_file("  group_id: bridges\n  assignment_topic: assign\n  buckets: 16\n  instance_id: host-a\n"
                   "  session_timeout: 6s\n  heartbeat_interval: 500ms\n  rebalance_timeout: 6s\n"
                   "  fence_margin: 2s\n  properties: {security.protocol: plaintext}\n",
                   "    bucket: 15\n"),
      "test.yaml");
  CHECK(cfg.cluster.enabled());
  CHECK(cfg.cluster.group_id == "bridges");
  CHECK(cfg.cluster.buckets == 16);
  CHECK(cfg.cluster.instance_id == std::optional<std::string>("host-a"));
  CHECK(cfg.cluster.session_timeout == 6s);
  CHECK(cfg.cluster.fence_margin == 2s);
  REQUIRE(cfg.cluster.properties.size() == 1);
  CHECK(cfg.cluster.properties[0].first == "security.protocol");
  CHECK(cfg.connections.at(0).bucket == std::optional<std::size_t>(15));
}

TEST_CASE("cluster mode is refused with the embedded cluster, which no two processes share") {
  expect_only(cluster_file("  group_id: bridges\n", "", "kafka:\n  brokers: embedded\n"), "cluster.group_id", 4,
              "kafka.brokers is embedded");
  // Off, the section is fine with embedded.
  CHECK(problems_of(cluster_file("  group_id: null\n", "", "kafka:\n  brokers: embedded\n")).empty());
}

TEST_CASE("timings that would let the lease run out, or fence too late, are refused at the key") {
  // S - M < 3 H: 10 s - 8 s = 2 s < 3 s.
  expect_only(cluster_file("  group_id: g\n  fence_margin: 8s\n"), "cluster.fence_margin", 5,
              "must be at least 3 x heartbeat_interval");
  // M < 2 H: 1 s < 2 x 1 s.
  expect_only(cluster_file("  group_id: g\n  fence_margin: 1s\n"), "cluster.fence_margin", 5,
              "must be at least 2 x heartbeat_interval");
  // Only the heartbeat given: the problem is reported there.
  expect_only(cluster_file("  group_id: g\n  heartbeat_interval: 3s\n"), "cluster.heartbeat_interval", 5,
              "at least 3 x heartbeat_interval");
  expect_only(cluster_file("  group_id: g\n  rebalance_timeout: 5s\n"), "cluster.rebalance_timeout", 5,
              "must be at least session_timeout");
  // The boundaries themselves hold: S - M = 3 H and M = 2 H.
  CHECK(problems_of(cluster_file("  session_timeout: 5s\n  heartbeat_interval: 1s\n  fence_margin: 2s\n  "
                                 "rebalance_timeout: 5s\n"))
            .empty());
}

TEST_CASE("the timing rules alone") {
  using rtm::config::check_cluster_timing;
  CHECK_FALSE(check_cluster_timing({10s, 1s, 10s, 3s}).has_value());
  CHECK(check_cluster_timing({10s, 1s, 10s, 10s})->key == "fence_margin");  // M = S
  CHECK(check_cluster_timing({10s, 1s, 10s, 11s})->key == "fence_margin");  // M > S: no underflow
  CHECK(check_cluster_timing({10s, 2s, 10s, 5s})->key == "fence_margin");   // 5 s < 6 s
  CHECK(check_cluster_timing({10s, 1s, 9s, 3s})->key == "rebalance_timeout");
}

TEST_CASE("a bucket outside the assignment topic, and properties the bridge owns") {
  expect_only(cluster_file("  buckets: 8\n", "    bucket: 8\n"), "connections[0].bucket", 10,
              "must be below cluster.buckets (8), got 8");
  expect_only(cluster_file("  buckets: 8\n", "    bucket: -1\n"), "connections[0].bucket", 10, "");
  expect_only(cluster_file("  properties: {session.timeout.ms: 3000}\n"), "cluster.properties.session.timeout.ms", 4,
              "use cluster.session_timeout instead");
  expect_only(cluster_file("  properties: {group.id: x}\n"), "cluster.properties.group.id", 4,
              "use cluster.group_id instead");
  expect_only(cluster_file("  properties: {no.such.property: 1}\n"), "cluster.properties.no.such.property", 4,
              "librdkafka");
  // The producer's own rules still apply to kafka.properties, and the consumer's do not leak into them.
  CHECK(problems_of(kafka_head + "  properties: {session.timeout.ms: 3000}\n" + one_acme).empty());
}
