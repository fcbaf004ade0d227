#include "metrics/registry.hpp"

#include <doctest/doctest.h>

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
