#include "metrics/registry.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <set>
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

TEST_CASE("metrics: librdkafka's figures render once statistics arrived, replaced wholesale") {
  rtm::metrics::registry r;
  CHECK(r.render().find("rtm_bridge_kafka_brokers_up") == std::string::npos);  // nothing invented before the first
  rtm::metrics::kafka_client_figures f;
  f.queue_messages = 12;
  f.queue_max_messages = 100000;
  f.brokers_known = 4;
  f.brokers_up = 3;
  f.brokers.push_back({"k1:9092/1", 1, true, 0.0015, 0.25, 0.005, 0.00004, 2, 5});
  f.brokers.push_back({"k2:9092/2", 2, false, 0, 0, 0, 0, 0, 0});
  r.kafka_client(f);
  std::string text = r.render();
  CHECK(text.find("\nrtm_bridge_kafka_librdkafka_queue_messages 12\n") != std::string::npos);
  CHECK(text.find("\nrtm_bridge_kafka_librdkafka_queue_max_messages 100000\n") != std::string::npos);
  CHECK(text.find("\nrtm_bridge_kafka_brokers_up 3\n") != std::string::npos);
  CHECK(text.find("\nrtm_bridge_kafka_broker_up{broker=\"k2:9092/2\"} 0\n") != std::string::npos);
  CHECK(text.find("\nrtm_bridge_kafka_broker_rtt_p99_seconds{broker=\"k1:9092/1\"} 0.25\n") != std::string::npos);
  CHECK(text.find("\nrtm_bridge_kafka_broker_requests_in_flight{broker=\"k1:9092/1\"} 5\n") != std::string::npos);
  // A later snapshot without k2 (it left the cluster, or the producer was re-created) leaves no stale series.
  f.brokers.pop_back();
  r.kafka_client(f);
  text = r.render();
  CHECK(text.find("k2:9092/2") == std::string::npos);
  CHECK(text.find("k1:9092/1") != std::string::npos);
}

TEST_CASE("metrics: every series the Grafana dashboard queries is one the bridge exports") {
  rtm::metrics::registry r;
  r.event_received("c", "e");
  r.event_published("c", "t");
  r.event_failed("c", "r");
  r.dead_letter("c", "r");
  r.reconnect("c", "r");
  r.connection_up("c", true);
  r.publish_latency(0.001);
  rtm::metrics::kafka_client_figures f;
  f.brokers.push_back({"k1:9092/1", 1, true, 0, 0, 0, 0, 0, 0});
  r.kafka_client(f);
  r.enable_commands();
  r.command_answered("c", "ok", 0.5);
  r.command_queue("c", 1);
  r.envelope_acknowledged("c", 0.01);
  r.set_spool_source([] { return rtm::metrics::registry::spool_figures{}; });
  r.spool_dropped("c");
  r.set_cluster_source([] { return rtm::metrics::registry::cluster_figures{}; });
  const std::string exported = r.render();

  const char* root = std::getenv("RTM_SOURCE_ROOT");
  REQUIRE(root != nullptr);
  std::ifstream in(std::string(root) + "/docs/grafana/rtm-bridge.json");
  REQUIRE(in.good());
  const std::string dashboard((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::set<std::string> names;
  for (std::size_t at = dashboard.find("rtm_bridge_"); at != std::string::npos;
       at = dashboard.find("rtm_bridge_", at + 1)) {
    std::size_t end = at;
    while (end < dashboard.size() &&
           (std::isalnum(static_cast<unsigned char>(dashboard[end])) != 0 || dashboard[end] == '_')) {
      ++end;
    }
    names.insert(dashboard.substr(at, end - at));
    at = end;
  }
  CHECK(names.size() >= 15);
  for (const auto& name : names) {
    const bool found =
        exported.find("\n" + name + "{") != std::string::npos || exported.find("\n" + name + " ") != std::string::npos;
    CHECK_MESSAGE(found, name << " is queried by docs/grafana/rtm-bridge.json but not exported");
  }
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

TEST_CASE("metrics: upstream-chosen event names are capped per connection, the rest counted as event=\"other\"") {
  using rtm::metrics::registry;
  registry r;
  // A server inventing a fresh name for every event: only the first max_event_labels get a series.
  for (std::size_t i = 0; i < registry::max_event_labels + 50; ++i) {
    r.event_received("acme-main", "invented:" + std::to_string(i));
  }
  // A name far beyond the size cap (the issue: about 1 MiB) never becomes a label, even on a fresh connection.
  const std::string huge(1 << 20, 'x');
  r.event_received("slack-1", huge);
  auto handle = r.received_counter("slack-1", std::string(registry::max_event_label_size + 1, 'y'));
  handle.increment();
  r.event_received("slack-1", std::string(registry::max_event_label_size, 'z'));  // at the cap: its own series

  CHECK(r.received("acme-main", "invented:0") == 1);
  CHECK(r.received("acme-main", "invented:" + std::to_string(registry::max_event_labels - 1)) == 1);
  CHECK(r.received("acme-main", "invented:" + std::to_string(registry::max_event_labels)) == 0);
  CHECK(r.received("acme-main", "other") == 50);
  CHECK(r.event_labels_overflowed("acme-main") == 50);
  CHECK(r.received("slack-1", "other") == 2);
  CHECK(r.event_labels_overflowed("slack-1") == 2);
  CHECK(r.received_total() == registry::max_event_labels + 50 + 3);  // nothing is lost from the total

  // A name that already has its series keeps counting there after the cap is reached.
  r.event_received("acme-main", "invented:7");
  CHECK(r.received("acme-main", "invented:7") == 2);
  CHECK(r.event_labels_overflowed("acme-main") == 50);

  const std::string text = r.render();
  std::size_t acme_series = 0;
  const std::string prefix = "rtm_bridge_events_received_total{connection=\"acme-main\",";
  for (std::size_t at = text.find(prefix); at != std::string::npos; at = text.find(prefix, at + 1)) {
    ++acme_series;
  }
  CHECK(acme_series == registry::max_event_labels + 1);  // the capped names and "other"
  CHECK(text.find(huge.substr(0, registry::max_event_label_size + 1)) == std::string::npos);
  CHECK(text.find("rtm_bridge_events_received_total{connection=\"acme-main\",event=\"other\"} 50\n") !=
        std::string::npos);
  CHECK(text.find("rtm_bridge_event_labels_overflow_total{connection=\"acme-main\"} 50\n") != std::string::npos);
  CHECK(text.find("rtm_bridge_event_labels_overflow_total{connection=\"slack-1\"} 2\n") != std::string::npos);
  CHECK(text.size() < 64 * 1024);
}

TEST_CASE("cluster mode's metrics: shown once a source is set, with the map's fingerprint as a label") {
  rtm::metrics::registry r;
  CHECK(r.render().find("rtm_bridge_cluster_") == std::string::npos);
  r.set_cluster_source([] {
    rtm::metrics::registry::cluster_figures f;
    f.buckets_owned = 5;
    f.rebalances = 3;
    f.fenced = 1;
    f.held_back = 7;
    f.fingerprint = "0123456789abcdef";
    return f;
  });
  const std::string text = r.render();
  CHECK(text.find("\nrtm_bridge_cluster_buckets_owned 5\n") != std::string::npos);
  CHECK(text.find("\nrtm_bridge_cluster_rebalances_total 3\n") != std::string::npos);
  CHECK(text.find("\nrtm_bridge_cluster_fenced_total 1\n") != std::string::npos);
  CHECK(text.find("\nrtm_bridge_cluster_held_back_total 7\n") != std::string::npos);
  CHECK(text.find("\nrtm_bridge_cluster_map_info{fingerprint=\"0123456789abcdef\"} 1\n") != std::string::npos);
  CHECK(text.find("# TYPE rtm_bridge_cluster_fenced_total counter") != std::string::npos);
}
