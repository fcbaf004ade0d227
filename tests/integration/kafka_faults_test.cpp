// Kafka faults seen from outside the daemon: the real rtm-bridge binary between the npm socket.io upstream and the
// librdkafka mock cluster hosted by this test process (outages, latency and refusals are injected through the mock
// API while the daemon runs), checked through what landed (kcat), the metrics and health endpoints, and the log.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <doctest/doctest.h>

#include <csignal>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "kafka/embedded_cluster.hpp"
#include "support/daemon.hpp"
#include "support/kcat.hpp"
#include "support/process.hpp"

using namespace std::chrono_literals;

namespace {

using namespace rtm::test;  // the integration fixtures: support/daemon.hpp, kcat.hpp, process.hpp

const std::map<std::string, std::string> acme_env{{"ACME_KEY", "acme-K3y-5ecret-77"}};

// A daemon with one acme connection to `upstream`, the metrics endpoint on an ephemeral port and `kafka_extra`
// (indented YAML lines under `kafka:`).
std::string daemon_config(const rtm::kafka::embedded_cluster& cluster, const fixture& upstream,
                          const std::string& kafka_extra) {
  return "kafka:\n  brokers: \"" + cluster.bootstrap_servers() + "\"\n  shutdown_timeout: 60s\n" + kafka_extra +
         "connections:\n" + acme_connection("acme-main", upstream.port(), "acme-id", "ACME_KEY") +
         "metrics:\n  listen: \"127.0.0.1:0\"\n";
}

// The fixture's emit command for a payload given as raw JSON text.
std::string emit_command(const std::string& event, const std::string& payload) {
  std::string escaped;
  for (const char c : payload) {
    if (c == '"' || c == '\\') {
      escaped += '\\';
    }
    escaped += c;
  }
  return R"({"cmd":"emit","event":")" + event + R"(","payload":")" + escaped + R"("})";
}

// Per team (record key): the burst fixture's "seq" in offset order must be 0, 1, 2, ... without gaps or repeats.
void check_bursts_in_order(const std::vector<rtm::test::consumed>& records, std::size_t total, std::size_t teams) {
  std::map<std::string, int> next_seq;
  std::set<std::string> ids;
  int out_of_order = 0;
  for (const auto& r : records) {
    REQUIRE(r.key.has_value());
    const auto at = r.payload.find("\"seq\":");
    REQUIRE(at != std::string::npos);
    const int seq = std::stoi(r.payload.substr(at + 6));
    int& expected = next_seq[*r.key];
    out_of_order += seq != expected ? 1 : 0;
    expected = seq + 1;
    const auto id_at = r.payload.find("\"id\":\"");
    ids.insert(r.payload.substr(id_at + 6, r.payload.find('"', id_at + 6) - id_at - 6));
  }
  CHECK(records.size() == total);
  CHECK(ids.size() == total);
  CHECK(out_of_order == 0);
  CHECK(next_seq.size() == teams);
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

}  // namespace

TEST_CASE(
    "daemon: broker outages with a small librdkafka queue pause upstream reading until Kafka is back; "
    "every event arrives once, in per-team order, without an upstream reconnect") {
  rtm::kafka::embedded_cluster cluster;
  cluster.create_topic("rtm.message", 8);
  // Server pings every 25 s (the vendor's timing): a pause of a few seconds must not cost the connection. While
  // paused the daemon reads nothing, pings included, so pauses adding up to more than the dead-peer bound (30 s)
  // within one ping interval do end the connection, and the unread events in its socket with it; librdkafka's
  // reconnect back-off (up to 10 s by default) is kept at 1 s here so that three outages stay well below that.
  auto upstream = acme_upstream(25000, 20000);
  rtm::test::temp_dir dir;
  daemon_process d(
      dir,
      daemon_config(cluster, upstream,
                    "  properties: {queue.buffering.max.messages: \"500\", reconnect.backoff.max.ms: \"1000\"}\n"),
      acme_env);
  const endpoint http(d.metrics_port());
  REQUIRE_MESSAGE(upstream.wait_event("AUTH acme-id ok", 30s), d.log());

  std::uint64_t total = 2000;
  upstream.command(R"({"cmd":"burst","event":"message:updated","count":2000,"teams":16})");
  REQUIRE(rtm::test::eventually([&] { return http.sum("rtm_bridge_events_published_total") == total; }, 60s));

  std::size_t pauses = 0;
  for (int cycle = 0; cycle < 3; ++cycle) {
    CAPTURE(cycle);
    cluster.set_broker_down(-1);
    upstream.command(R"({"cmd":"burst","event":"message:updated","count":5000,"teams":16,"continue":true})");
    total += 5000;
    // Paused: what was read fills librdkafka's queue, then nothing more is read while Kafka is away.
    REQUIRE_MESSAGE(rtm::test::eventually(
                        [&] { return count_of(d.log(), "Kafka queue full: pausing upstream reads") > pauses; }, 30s),
                    d.log());
    ++pauses;
    std::uint64_t before = 0;
    REQUIRE(rtm::test::eventually(
        [&] {
          before = http.sum("rtm_bridge_events_received_total");
          std::this_thread::sleep_for(1s);
          return http.sum("rtm_bridge_events_received_total") == before;
        },
        20s));
    CHECK(before < total);
    const std::string text = http.metrics();
    CHECK(metric_sum(text, "rtm_bridge_kafka_queue_messages") > 0);
    // librdkafka's 500, plus what the last read had already taken off the socket when the pause came.
    CHECK(metric_sum(text, "rtm_bridge_kafka_queue_messages") <= 1500);
    CHECK(http.health_status() == 200);  // the event loop turns; only readiness may say Kafka is away
    cluster.set_broker_up(-1);
    REQUIRE_MESSAGE(rtm::test::eventually([&] { return http.sum("rtm_bridge_events_published_total") == total; }, 90s),
                    "published ", http.sum("rtm_bridge_events_published_total"), " of ", total, "\n", http.metrics(),
                    "\n", d.log().substr(d.log().size() > 6000 ? d.log().size() - 6000 : 0));
  }
  const std::string text = http.metrics();
  CHECK(metric_sum(text, "rtm_bridge_events_received_total") == total);
  CHECK(metric_sum(text, "rtm_bridge_events_failed_total") == 0);
  CHECK(metric_sum(text, "rtm_bridge_dead_letters_total") == 0);
  CHECK(metric_sum(text, "rtm_bridge_reconnects_total") == 0);
  CHECK(upstream.count_events("AUTH acme-id ok") == 0);  // authenticated once, at start
  CHECK(count_of(d.log(), "Kafka queue full: pausing upstream reads") >= 3);
  CHECK(count_of(d.log(), "Kafka queue drained: resuming upstream reads") >= 3);
  d.signal(SIGTERM);
  REQUIRE(d.wait(60s) == 0);
  check_bursts_in_order(rtm::test::read_topic(cluster.bootstrap_servers(), "rtm.message"), total, 16);
}

TEST_CASE("daemon: 500 ms broker RTT: every event delivered in order, ready throughout, no phase times out") {
  rtm::kafka::embedded_cluster cluster;
  cluster.create_topic("rtm.message", 8);
  cluster.set_broker_rtt(-1, 500);
  auto upstream = acme_upstream(25000, 20000);
  rtm::test::temp_dir dir;
  daemon_process d(dir, daemon_config(cluster, upstream, ""), acme_env);
  const endpoint http(d.metrics_port());
  REQUIRE_MESSAGE(upstream.wait_event("AUTH acme-id ok", 30s), d.log());
  REQUIRE_MESSAGE(rtm::test::eventually([&] { return http.ready_status() == 200; }, 30s), d.log());

  constexpr std::uint64_t total = 3000;
  upstream.command(R"({"cmd":"burst","event":"message:updated","count":3000,"teams":16})");
  int probes = 0;
  int not_ready = 0;
  const auto deadline = std::chrono::steady_clock::now() + rtm::test::patience(90s);
  while (http.sum("rtm_bridge_events_published_total") < total && std::chrono::steady_clock::now() < deadline) {
    ++probes;
    not_ready += http.ready_status() == 200 ? 0 : 1;
    std::this_thread::sleep_for(200ms);
  }
  CHECK(http.sum("rtm_bridge_events_published_total") == total);
  CHECK(probes >= 3);  // the run lasted long enough for readiness to be probed under load
  CHECK(not_ready == 0);
  CHECK(http.health_status() == 200);
  // Receipt to acknowledgement takes at least one round trip, and every sample is counted.
  const std::string text = http.metrics();
  CHECK(text.find("rtm_bridge_publish_latency_seconds_bucket{le=\"0.5\"} 0") != std::string::npos);
  CHECK(text.find("rtm_bridge_publish_latency_seconds_count 3000") != std::string::npos);
  CHECK(metric_sum(text, "rtm_bridge_reconnects_total") == 0);
  CHECK(metric_sum(text, "rtm_bridge_events_failed_total") == 0);

  const auto stop_at = std::chrono::steady_clock::now();
  d.signal(SIGTERM);
  REQUIRE(d.wait(30s) == 0);
  MESSAGE("stop took ",
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - stop_at).count(),
          " ms; ", probes, " readiness probes during delivery");
  const std::string log = d.log();
  CHECK(log.find("timed out") == std::string::npos);
  CHECK(log.find("reconnecting") == std::string::npos);
  CHECK(log.find("brokers are down") == std::string::npos);
  check_bursts_in_order(rtm::test::read_topic(cluster.bootstrap_servers(), "rtm.message"), total, 16);
}

TEST_CASE(
    "daemon: events too large for Kafka (client-side check and broker refusal) are dead-lettered and "
    "counted; the connection lives on") {
  rtm::kafka::embedded_cluster cluster;
  cluster.create_topic("rtm.message", 4);
  cluster.create_topic("rtm.dead-letter", 2);
  auto upstream = acme_upstream(25000, 20000);
  rtm::test::temp_dir dir;
  daemon_process d(dir, daemon_config(cluster, upstream, "  properties: {message.max.bytes: \"20000\"}\n"), acme_env);
  const endpoint http(d.metrics_port());
  REQUIRE_MESSAGE(upstream.wait_event("AUTH acme-id ok", 30s), d.log());
  const auto payload = [](int n, std::size_t blob) {
    return R"({"team_id":"T1","n":)" + std::to_string(n) + R"(,"blob":")" + std::string(blob, 'x') + "\"}";
  };

  upstream.command(emit_command("message:updated", payload(0, 10)));
  upstream.command(emit_command("message:updated", payload(1, 30000)));  // above message.max.bytes
  upstream.command(emit_command("message:updated", payload(2, 10)));
  REQUIRE_MESSAGE(rtm::test::eventually(
                      [&] {
                        const std::string text = http.metrics();
                        return metric_sum(text, "rtm_bridge_events_published_total") == 2 &&
                               metric_sum(text, "rtm_bridge_dead_letters_total") == 1 &&
                               metric_sum(text, "rtm_bridge_kafka_queue_messages") == 0;  // the dead letter too
                      },
                      30s),
                  d.log());
  // The broker refuses the next request (a topic whose max.message.bytes is below the client's limit); the event
  // travels alone, everything before it is confirmed.
  rd_kafka_mock_push_request_errors(cluster.mock(), 0 /* Produce */, 1, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
  upstream.command(emit_command("message:updated", payload(3, 5000)));
  REQUIRE_MESSAGE(rtm::test::eventually([&] { return http.sum("rtm_bridge_dead_letters_total") == 2; }, 30s), d.log());
  upstream.command(emit_command("message:updated", payload(4, 10)));
  REQUIRE(rtm::test::eventually([&] { return http.sum("rtm_bridge_events_published_total") == 3; }, 30s));

  const std::string text = http.metrics();
  CHECK(text.find("rtm_bridge_dead_letters_total{connection=\"acme-main\",reason=\"msg_size_too_large\"} 2") !=
        std::string::npos);
  CHECK(text.find("rtm_bridge_events_failed_total{connection=\"acme-main\",reason=\"msg_size_too_large\"} 2") !=
        std::string::npos);
  CHECK(metric_sum(text, "rtm_bridge_reconnects_total") == 0);
  CHECK(text.find("rtm_bridge_connection_up{connection=\"acme-main\"} 1") != std::string::npos);
  CHECK(http.ready_status() == 200);
  CHECK(upstream.count_events("AUTH acme-id ok") == 0);
  d.signal(SIGTERM);
  REQUIRE(d.wait(30s) == 0);

  const auto ok = rtm::test::read_topic(cluster.bootstrap_servers(), "rtm.message");
  REQUIRE(ok.size() == 3);
  CHECK(ok[0].payload.find(R"("n":0)") != std::string::npos);
  CHECK(ok[1].payload.find(R"("n":2)") != std::string::npos);
  CHECK(ok[2].payload.find(R"("n":4)") != std::string::npos);
  const auto dead = rtm::test::read_topic(cluster.bootstrap_servers(), "rtm.dead-letter");
  REQUIRE(dead.size() == 2);
  for (const auto& r : dead) {
    CHECK(r.key == "acme-main");
    CHECK(r.header("rtm-error") == "msg_size_too_large");
    CHECK(r.header("rtm-connection") == "acme-main");
    CHECK(r.header("rtm-source") == "acme");
    CHECK(r.header("rtm-event") == "message:updated");
    CHECK(r.header("rtm-original-topic") == "rtm.message");
    CHECK(r.header("rtm-error-detail").has_value());
    CHECK(r.payload.rfind(R"({"schema":"rtm-bridge.event/v1")", 0) == 0);
  }
  // Client-side: cut to fit, so no longer JSON, and says how large it was.
  CHECK(dead[0].header("content-type") == "application/octet-stream");
  REQUIRE(dead[0].header("rtm-truncated").has_value());
  CHECK(std::stoul(*dead[0].header("rtm-truncated")) > 30000);
  CHECK(dead[0].payload.size() < 20000);
  // Broker-side: the whole envelope.
  CHECK(dead[1].header("content-type") == "application/json");
  CHECK_FALSE(dead[1].header("rtm-truncated").has_value());
  CHECK(dead[1].payload.find(R"("data":)" + payload(3, 5000) + "}") != std::string::npos);
  const std::string log = d.log();
  CHECK(log.find("connection=acme-main") != std::string::npos);
  CHECK(log.find("failed permanently") != std::string::npos);
}

TEST_CASE(
    "daemon: a topic that does not exist with auto-creation off: its events are dead-lettered, the log names "
    "the topic, other topics keep flowing") {
  rtm::kafka::embedded_cluster cluster;
  cluster.create_topic("rtm.message", 4);
  cluster.create_topic("rtm.dead-letter", 2);
  // librdkafka 2.0.2's mock advertises Metadata v2 only, where a broker creates any topic asked for; from v4 on the
  // request carries the client's allow.auto.create.topics, as with any Kafka >= 0.11.
  REQUIRE(rd_kafka_mock_set_apiversion(cluster.mock(), 3 /* Metadata */, 0, 4) == RD_KAFKA_RESP_ERR_NO_ERROR);
  auto upstream = acme_upstream(25000, 20000);
  rtm::test::temp_dir dir;
  // The client asks the cluster not to create topics; librdkafka declares a missing one after 2 s (30 s by default).
  daemon_process d(dir,
                   daemon_config(cluster, upstream,
                                 "  properties: {allow.auto.create.topics: \"false\", "
                                 "topic.metadata.propagation.max.ms: \"2000\"}\n"),
                   acme_env);
  const endpoint http(d.metrics_port());
  REQUIRE_MESSAGE(upstream.wait_event("AUTH acme-id ok", 30s), d.log());
  for (int n = 0; n < 3; ++n) {
    upstream.command(emit_command("session:update_availability",
                                  R"({"team_id":"T1","n":)" + std::to_string(n) + "}"));  // → rtm.session: missing
    upstream.command(emit_command("message:updated", R"({"team_id":"T1","n":)" + std::to_string(n) + "}"));
  }
  REQUIRE_MESSAGE(rtm::test::eventually(
                      [&] {
                        const std::string text = http.metrics();
                        return metric_sum(text, "rtm_bridge_events_published_total") == 3 &&
                               metric_sum(text, "rtm_bridge_dead_letters_total") == 3 &&
                               metric_sum(text, "rtm_bridge_kafka_queue_messages") == 0;
                      },
                      30s),
                  d.log());
  const std::string text = http.metrics();
  CHECK(text.find("rtm_bridge_dead_letters_total{connection=\"acme-main\",reason=\"unknown_topic\"} 3") !=
        std::string::npos);
  CHECK(text.find("rtm_bridge_events_failed_total{connection=\"acme-main\",reason=\"unknown_topic\"} 3") !=
        std::string::npos);
  CHECK(http.ready_status() == 200);
  const std::string log = d.log();
  CHECK_MESSAGE(log.find("topic rtm.session does not exist") != std::string::npos, log);
  d.signal(SIGTERM);
  REQUIRE(d.wait(30s) == 0);
  const auto dead = rtm::test::read_topic(cluster.bootstrap_servers(), "rtm.dead-letter");
  REQUIRE(dead.size() == 3);
  for (int n = 0; n < 3; ++n) {
    CHECK(dead[n].header("rtm-error") == "unknown_topic");
    CHECK(dead[n].header("rtm-original-topic") == "rtm.session");
    CHECK(dead[n].header("rtm-event") == "session:update_availability");
    CHECK(dead[n].payload.find(R"("data":{"team_id":"T1","n":)" + std::to_string(n) + "}}") != std::string::npos);
  }
  CHECK(rtm::test::read_topic(cluster.bootstrap_servers(), "rtm.message").size() == 3);
}
