// The publisher against the mock cluster (publish_harness.hpp): the records as the contract describes them, per-team
// order at volume, backpressure on QUEUE_FULL, a partition without a leader.
#include "kafka/publisher.hpp"

#include <doctest/doctest.h>

#include <librdkafka/rdkafka_mock.h>
#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "kafka/murmur2.hpp"
#include "kafka/publish_harness.hpp"

using namespace std::chrono_literals;
using namespace rtm::test;

TEST_CASE("publish: records carry the contract's key, headers and envelope; partition = Java murmur2") {
  harness h;
  constexpr int partitions = 7;
  h.cluster->create_topic("rtm.message", partitions, 3);
  h.start();
  CHECK(h.run_until([&h] { return h.pub->healthy(); }, 5s));

  std::map<std::string, int> sent;
  std::vector<std::string> payloads;
  for (int t = 0; t < 16; ++t) {
    const std::string team = team_name(t);
    for (int n = 0; n < 3; ++n) {
      h.feed(team, n);
      ++sent[team];
    }
  }
  // One Slack Enterprise Grid event: rtm-enterprise header, source slack, a topic of its own.
  const std::string grid_team = "T024BE7LD";
  const std::string grid_payload = R"({"type":"message","text":"hi"})";
  rtm::pipeline::event grid = h.source.make(grid_team, grid_payload);
  grid.connection = "slack-1";
  grid.from = rtm::pipeline::source::slack;
  grid.name = "message";
  grid.name_space = "slack";
  grid.enterprise_id = "E0123";
  h.pub->on_event(grid);

  REQUIRE(h.settled(20s));
  CHECK(h.metrics.published_total() == 49);
  CHECK(h.metrics.render().find("rtm_bridge_events_published_total{connection=\"acme-main\",topic=\"rtm.message\"} "
                                "48") != std::string::npos);
  CHECK(h.metrics.render().find("rtm_bridge_kafka_queue_messages 0") != std::string::npos);
  CHECK(h.metrics.render().find("rtm_bridge_publish_latency_seconds_count 49") != std::string::npos);

  const auto records = read_topic(h.cluster->bootstrap_servers(), "rtm.message");
  REQUIRE(records.size() == 48);
  std::set<int> used_partitions;
  for (const auto& r : records) {
    REQUIRE(r.key.has_value());
    CAPTURE(*r.key);
    CHECK(r.partition == rtm::kafka::murmur2_partition(*r.key, partitions));
    used_partitions.insert(r.partition);
    CHECK(r.header("rtm-event") == "message:updated");
    CHECK(r.header("rtm-connection") == "acme-main");
    CHECK(r.header("rtm-source") == "acme");
    CHECK(r.header("content-type") == "application/json");
    CHECK_FALSE(r.header("rtm-enterprise").has_value());
    CHECK(r.headers.size() == 4);
    // The envelope: fixed field order, data verbatim (the integer above 2^53 keeps every digit).
    const std::string prefix = R"({"schema":"rtm-bridge.event/v1","id":"acme-main:)";
    CHECK(r.payload.rfind(prefix, 0) == 0);
    const std::string tail = R"(","source":"acme","connection":"acme-main","event":"message:updated","team_id":")" +
                             *r.key + R"(","received_at":")";
    CHECK(r.payload.find(tail) != std::string::npos);
    const std::string data = R"(","data":)" + payload_for(*r.key, n_of(r.payload)) + "}";
    CHECK(r.payload.size() > data.size());
    CHECK(r.payload.compare(r.payload.size() - data.size(), data.size(), data) == 0);
    simdjson::ondemand::parser parser;
    const simdjson::padded_string json(r.payload);
    auto doc = parser.iterate(json);
    std::string_view received_at;
    CHECK(doc["received_at"].get_string().get(received_at) == simdjson::SUCCESS);
    CHECK(received_at.size() == 27);
    CHECK(received_at.back() == 'Z');
  }
  CHECK(used_partitions.size() > 3);  // 16 teams really spread: the check above is not vacuous
  check_complete_in_order(collect(records), sent);

  const auto slack = read_topic(h.cluster->bootstrap_servers(), "rtm.slack");
  REQUIRE(slack.size() == 1);
  CHECK(slack[0].key == "T024BE7LD");
  CHECK(slack[0].header("rtm-enterprise") == "E0123");
  CHECK(slack[0].header("rtm-source") == "slack");
  CHECK(slack[0].header("rtm-event") == "message");
  CHECK(slack[0].partition == rtm::kafka::murmur2_partition("T024BE7LD", 4));  // auto-created: 4 partitions
  h.drain_and_stop();
}

TEST_CASE("publish: 10,000 events over 16 teams arrive complete and in per-team order") {
  harness h;
  h.cluster->create_topic("rtm.message", 8, 3);
  h.start();
  team_stream stream{h};
  for (int i = 0; i < 10000; ++i) {
    stream.feed(1);
    if (i % 500 == 0) {
      h.io.poll();  // let delivery reports flow as a real event loop would
    }
  }
  REQUIRE(h.settled(60s));
  CHECK(h.pub->stats().delivered == 10000);
  CHECK(stream.total() == 10000);
  stream.arrived_once_in_order();
  h.drain_and_stop();
}

TEST_CASE("publish: QUEUE_FULL pauses upstream, then resumes; nothing lost, order kept") {
  harness h;
  h.cluster->create_topic("rtm.message", 4, 3);
  h.cluster->set_broker_rtt(-1, 20);
  h.cfg.properties = {{"queue.buffering.max.messages", "50"}, {"linger.ms", "20"}};
  h.start();
  team_stream stream{h};
  std::size_t max_waiting = 0;
  for (int i = 0; i < 2000; ++i) {
    stream.feed(1);
    max_waiting = std::max(max_waiting, h.pub->waiting());
  }
  REQUIRE(h.settled(60s));
  CHECK(h.pub->stats().queue_full > 0);
  REQUIRE(h.backpressure.size() >= 2);
  CHECK(h.backpressure.front() == true);
  CHECK(h.backpressure.back() == false);
  check_alternating(h.backpressure);  // strictly alternating: true, false, true, ...
  CHECK(max_waiting > 0);
  CHECK(max_waiting < 100);  // feeding stopped while paused: the local queue stays small
  CHECK(stream.total() == 2000);
  stream.arrived_once_in_order();
  h.drain_and_stop();
}

TEST_CASE("publish: a partition without a leader holds back only its own teams, then catches up in order") {
  harness h;
  constexpr int partitions = 4;
  h.cluster->create_topic("rtm.message", partitions, 3);
  h.start();
  team_stream stream{h};
  stream.feed(16);  // one event per team
  REQUIRE(h.settled(20s));
  rd_kafka_mock_partition_set_leader(h.cluster->mock(), "rtm.message", 0, -1);
  std::size_t stuck = 0;
  for (int i = 0; i < 800; ++i) {
    stuck += rtm::kafka::murmur2_partition(team_name(stream.next % 16), partitions) == 0 ? 1 : 0;
    stream.feed(1);
  }
  REQUIRE(stuck > 0);
  REQUIRE(stuck < 800);
  // Everything for the other partitions is confirmed while partition 0 has no leader; only its records wait.
  CHECK(h.run_until([&h, stuck] { return h.pub->stats().delivered == 16 + 800 - stuck; }, 30s));
  CHECK(h.pub->outstanding() + h.pub->waiting() == stuck);
  CHECK_FALSE(h.paused());
  rd_kafka_mock_partition_set_leader(h.cluster->mock(), "rtm.message", 0, 1);
  REQUIRE(h.settled(60s));
  const auto got = collect(read_topic(h.cluster->bootstrap_servers(), "rtm.message"));
  CHECK(got.duplicates == 0);
  check_complete_in_order(got, stream.sent);
  h.drain_and_stop();
}
