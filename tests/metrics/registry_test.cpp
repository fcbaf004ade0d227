#include "metrics/registry.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>

TEST_CASE("metrics registry counts by labels and renders Prometheus text") {
  rtm::metrics::registry r;
  r.event_received("acme-main", "message:updated");
  r.event_received("acme-main", "message:updated");
  r.event_received("acme-main", "session:update_verify");
  r.dead_letter("acme-main", "bad_json");
  r.connection_up("acme-main", true);
  r.connection_up("slack-1", false);
  r.publish_latency(0.003);
  CHECK(r.received("acme-main", "message:updated") == 2);
  CHECK(r.received_total() == 3);
  CHECK(r.dead_letters("acme-main", "bad_json") == 1);
  CHECK(r.connections_up() == 1);
  const std::string text = r.render();
  CHECK(text.find("rtm_bridge_events_received_total{connection=\"acme-main\",event=\"message:updated\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("rtm_bridge_connection_up{connection=\"slack-1\"} 0\n") != std::string::npos);
  CHECK(text.find("rtm_bridge_publish_latency_seconds_bucket{le=\"0.005\"} 1\n") != std::string::npos);
  CHECK(text.find("rtm_bridge_publish_latency_seconds_bucket{le=\"0.0025\"} 0\n") != std::string::npos);
  CHECK(text.find("rtm_bridge_publish_latency_seconds_count 1\n") != std::string::npos);
  r.forget_connection("slack-1");
  CHECK(r.render().find("slack-1") == std::string::npos);
}

TEST_CASE("metrics label values are escaped") {
  rtm::metrics::registry r;
  r.event_received("c", "we\"ird\\name\n");
  CHECK(r.render().find("event=\"we\\\"ird\\\\name\\n\"") != std::string::npos);
}

TEST_CASE("metrics counter handles count into the same series as the label calls") {
  rtm::metrics::registry r;
  CHECK_FALSE(rtm::metrics::counter{});
  auto received = r.received_counter("acme-main", "message:updated");
  REQUIRE(received);
  // Made at 0: the series exists before anything is counted.
  CHECK(r.render().find("rtm_bridge_events_received_total{connection=\"acme-main\",event=\"message:updated\"} 0\n") !=
        std::string::npos);
  received.increment();
  received.increment();
  r.event_received("acme-main", "message:updated");
  CHECK(r.received("acme-main", "message:updated") == 3);
  CHECK(r.received_total() == 3);
  auto published = r.published_counter("acme-main", "rtm.message");
  published.increment();
  r.event_published("acme-main", "rtm.message");
  r.event_published("acme-main", "rtm.other");
  CHECK(r.published_total() == 3);
  const std::string text = r.render();
  CHECK(text.find("rtm_bridge_events_published_total{connection=\"acme-main\",topic=\"rtm.message\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("rtm_bridge_events_published_total{connection=\"acme-main\",topic=\"rtm.other\"} 1\n") !=
        std::string::npos);
}

TEST_CASE("metrics latency histogram: bounds are inclusive, buckets cumulative, the 5-10 ms range is fine-grained") {
  rtm::metrics::registry r;
  r.publish_latency(0.007);   // on a bound: counts in le="0.007"
  r.publish_latency(0.0071);  // the next bound up
  r.publish_latency(0.0049);
  r.publish_latency(20.0);  // beyond the last bound: only +Inf
  const std::string text = r.render();
  auto bucket = [&text](const std::string& le) {
    const std::string line = "rtm_bridge_publish_latency_seconds_bucket{le=\"" + le + "\"} ";
    const auto at = text.find(line);
    REQUIRE(at != std::string::npos);
    return std::stoull(text.substr(at + line.size()));
  };
  CHECK(bucket("0.004") == 0);
  CHECK(bucket("0.005") == 1);
  CHECK(bucket("0.006") == 1);
  CHECK(bucket("0.007") == 2);
  CHECK(bucket("0.0075") == 3);
  CHECK(bucket("0.008") == 3);
  CHECK(bucket("10") == 3);
  CHECK(bucket("+Inf") == 4);
  CHECK(text.find("rtm_bridge_publish_latency_seconds_count 4\n") != std::string::npos);
  // Bounds strictly increasing, so every sample has exactly one bucket.
  const auto& b = rtm::metrics::registry::latency_buckets;
  CHECK(std::is_sorted(b.begin(), b.end()));
  CHECK(std::adjacent_find(b.begin(), b.end()) == b.end());
}
