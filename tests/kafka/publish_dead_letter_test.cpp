// The publisher against the mock cluster (publish_harness.hpp): dead letters of every reason, records too large for
// the client, the broker or librdkafka's queue, and topics that do not exist.
#include "kafka/publisher.hpp"

#include <doctest/doctest.h>

#include <librdkafka/rdkafka_mock.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "kafka/publish_harness.hpp"

using namespace std::chrono_literals;
using namespace rtm::test;

TEST_CASE("publish: each dead-letter reason produces exactly one dead letter with its rtm-error") {
  harness h;
  h.cfg.properties = {{"message.max.bytes", "20000"}};
  h.create_dead_letter_topics();
  h.start();
  // Refused by the cluster: the next Produce request is answered with a topic authorization error (alone in flight,
  // so no other record shares that request).
  {
    rd_kafka_mock_push_request_errors(h.cluster->mock(), 0 /* Produce */, 1,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    const std::string team = "T2";
    const std::string payload = R"({"team_id":"T2","denied":true})";
    h.pub->on_event(h.source.make(team, payload));
    REQUIRE(h.run_until([&h] { return h.metrics.failed_total() == 1; }, 20s));
  }

  const std::vector<std::string> upstream_reasons = {"bad_json", "unknown_packet", "binary_event", "frame_too_large"};
  for (const auto& reason : upstream_reasons) {
    const std::string raw = "42[\"raw frame for " + reason + "\"";
    h.pub->on_dead_letter(rtm::pipeline::dead_letter{"acme-main", rtm::pipeline::source::acme, reason, raw,
                                                     std::chrono::system_clock::now()});
  }
  // No team id: never a keyless record.
  h.pub->on_event(h.source.make("", R"({"no":"team"})"));
  // Larger than message.max.bytes: refused by librdkafka before it leaves.
  const std::string big = R"({"team_id":"T1","blob":")" + std::string(30000, 'x') + "\"}";
  h.pub->on_event(h.source.make("T1", big));
  // And an ordinary event still goes through. (Not to rtm.message: after the authorization error librdkafka keeps
  // that topic in an error state until its next metadata refresh, and refuses its records at once; they would be
  // dead-lettered too, correctly, but this one is meant to pass.)
  const event_source presence = presence_events();
  h.pub->on_event(presence.make("T3", R"({"team_id":"T3"})"));

  REQUIRE(h.settled(60s));
  const auto dead = read_topic(h.cluster->bootstrap_servers(), "rtm.dead-letter");
  std::map<std::string, std::vector<const consumed*>> by_reason;
  for (const auto& r : dead) {
    const auto reason = r.header("rtm-error");
    REQUIRE(reason.has_value());
    by_reason[*reason].push_back(&r);
    CHECK(r.key == "acme-main");
    CHECK(r.header("rtm-connection") == "acme-main");
    CHECK(r.header("rtm-source") == "acme");
  }
  for (const auto& reason : upstream_reasons) {
    CAPTURE(reason);
    REQUIRE(by_reason[reason].size() == 1);
    const consumed& r = *by_reason[reason][0];
    CHECK(r.payload == "42[\"raw frame for " + reason + "\"");
    CHECK(r.header("content-type") == "application/octet-stream");
    CHECK(h.metrics.dead_letters("acme-main", reason) == 1);
  }
  REQUIRE(by_reason["no_team_id"].size() == 1);
  CHECK(by_reason["no_team_id"][0]->payload == R"({"no":"team"})");

  REQUIRE(by_reason["msg_size_too_large"].size() == 1);
  const consumed& too_large = *by_reason["msg_size_too_large"][0];
  CHECK(too_large.header("rtm-event") == "message:updated");
  CHECK(too_large.header("rtm-original-topic") == "rtm.message");
  CHECK(too_large.header("content-type") == "application/octet-stream");  // cut, so no longer valid JSON
  const auto truncated = too_large.header("rtm-truncated");
  REQUIRE(truncated.has_value());
  CHECK(std::stoul(*truncated) > 30000);
  CHECK(too_large.payload.rfind(R"({"schema":"rtm-bridge.event/v1")", 0) == 0);
  CHECK(too_large.payload.size() < 20000);

  REQUIRE(by_reason["topic_authorization_failed"].size() == 1);
  const consumed& denied = *by_reason["topic_authorization_failed"][0];
  CHECK(denied.header("rtm-original-topic") == "rtm.message");
  CHECK(denied.header("rtm-event") == "message:updated");
  CHECK(denied.header("content-type") == "application/json");
  CHECK_FALSE(denied.header("rtm-truncated").has_value());
  CHECK(denied.payload.rfind(R"({"schema":"rtm-bridge.event/v1")", 0) == 0);
  CHECK(denied.payload.find(R"("data":{"team_id":"T2","denied":true}})") != std::string::npos);

  CHECK(dead.size() == upstream_reasons.size() + 3);
  CHECK(h.renders("rtm_bridge_events_failed_total{connection=\"acme-main\",reason=\"topic_authorization_failed\"} 1"));
  CHECK(h.renders("rtm_bridge_events_failed_total{connection=\"acme-main\",reason=\"msg_size_too_large\"} 1"));
  const auto ok = read_topic(h.cluster->bootstrap_servers(), "rtm.presence");
  REQUIRE(ok.size() == 1);
  CHECK(ok[0].key == "T3");
  h.drain_and_stop();
}

TEST_CASE("publish: a record the broker refuses as too large is dead-lettered whole; later events flow") {
  harness h;
  h.create_dead_letter_topics();
  h.start();
  h.feed("T1", 0);
  REQUIRE(h.settled(20s));
  // A topic whose max.message.bytes is below the client's message.max.bytes: the broker refuses the batch. The
  // record is alone in its request, so nothing else shares the verdict.
  rd_kafka_mock_push_request_errors(h.cluster->mock(), 0 /* Produce */, 1, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
  const std::string big = R"({"team_id":"T1","n":100,"blob":")" + std::string(5000, 'x') + "\"}";
  h.pub->on_event(h.source.make("T1", big));
  REQUIRE(h.run_until([&h] { return h.metrics.failed_total() == 1; }, 20s));
  for (int n = 1; n <= 3; ++n) {
    h.feed("T1", n);
  }
  REQUIRE(h.settled(30s));

  const consumed r = failed_event_dead_letter(h, "msg_size_too_large");
  CHECK(r.header("content-type") == "application/json");
  CHECK(r.header("rtm-error-detail").has_value());
  CHECK_FALSE(r.header("rtm-truncated").has_value());
  CHECK(r.payload.find(R"("data":)" + big + "}") != std::string::npos);
  CHECK(h.metrics.dead_letters("acme-main", "msg_size_too_large") == 1);
  CHECK(h.renders("rtm_bridge_events_failed_total{connection=\"acme-main\",reason=\"msg_size_too_large\"} 1"));
  const auto ok = read_topic(h.cluster->bootstrap_servers(), "rtm.message");
  CHECK(n_sequence(ok) == std::vector<int>{0, 1, 2, 3});
  CHECK(h.pub->healthy());
  MESSAGE("producers created ", h.pub->stats().producers_created, ", fatal errors ", h.pub->stats().fatal_errors);
  h.drain_and_stop();
}

TEST_CASE(
    "publish: a topic that does not exist on a broker without auto-creation: its events are dead-lettered "
    "as unknown_topic, the other topics keep flowing, nothing waits forever") {
  harness h;
  // librdkafka declares a topic missing once it has been absent for topic.metadata.propagation.max.ms (30 s by
  // default, shortened here).
  h.cfg.properties = {{"topic.metadata.propagation.max.ms", "1000"}};
  h.create_dead_letter_topics();
  // What a broker with auto.create.topics.enable=false answers for a topic it does not have. (The mock cannot turn
  // auto-creation off; a topic in this error state is reported exactly like a missing one: no partitions.)
  rd_kafka_mock_topic_set_error(h.cluster->mock(), "rtm.presence", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
  h.start();
  const event_source presence = presence_events();
  std::map<std::string, int> sent;
  const auto send_presence = [&h, &presence](int n) {
    const std::string payload = R"({"team_id":"T3","n":)" + std::to_string(n) + "}";
    h.pub->on_event(presence.make("T3", payload));
  };
  for (int n = 0; n < 10; ++n) {
    h.feed("T1", sent["T1"]++);
    send_presence(n);
  }
  REQUIRE(h.settled(30s));
  CHECK_FALSE(h.paused());
  // Once librdkafka knows the topic is missing, it refuses at once: these are dead-lettered without waiting.
  const auto second_round = std::chrono::steady_clock::now();
  for (int n = 10; n < 15; ++n) {
    send_presence(n);
    h.feed("T1", sent["T1"]++);
  }
  REQUIRE(h.settled(30s));
  const auto second_round_took = std::chrono::steady_clock::now() - second_round;
  CHECK(second_round_took < 1s);

  const auto dead = read_topic(h.cluster->bootstrap_servers(), "rtm.dead-letter");
  REQUIRE(dead.size() == 15);
  std::vector<int> order;
  for (const auto& r : dead) {
    CHECK(r.header("rtm-error") == "unknown_topic");
    CHECK(r.header("rtm-original-topic") == "rtm.presence");
    CHECK(r.header("rtm-event") == "presence:change");
    CHECK(r.header("content-type") == "application/json");
    order.push_back(n_of(r.payload));
  }
  std::vector<int> expected(15);
  for (int n = 0; n < 15; ++n) {
    expected[n] = n;
  }
  CHECK(order == expected);  // one connection's dead letters share one partition: in order
  CHECK(h.metrics.dead_letters("acme-main", "unknown_topic") == 15);
  const auto got = collect(read_topic(h.cluster->bootstrap_servers(), "rtm.message"));
  CHECK(got.duplicates == 0);
  check_complete_in_order(got, sent);
  CHECK(h.pub->healthy());
  h.drain_and_stop();
}

TEST_CASE(
    "publish: a record larger than librdkafka's whole queue is dead-lettered as record_too_large with a prefix; "
    "reading resumes and later events are delivered") {
  harness h;
  // 64 KiB: librdkafka 2.0.2 answers QUEUE_FULL, even with an empty queue, to a larger record value.
  h.cfg.properties = {{"queue.buffering.max.kbytes", "64"}};
  h.create_dead_letter_topics();
  h.start();
  h.feed("T1", 0);
  REQUIRE(h.settled(20s));
  const std::string big = R"({"team_id":"T1","n":1,"blob":")" + std::string(100000, 'x') + "\"}";
  h.pub->on_event(h.source.make("T1", big));
  REQUIRE(h.run_until([&h] { return h.metrics.failed_total() == 1; }, 20s));
  for (int n = 2; n <= 4; ++n) {
    h.feed("T1", n);  // requires upstream reading to have resumed
  }
  REQUIRE(h.settled(30s));
  CHECK_FALSE(h.paused());
  CHECK(h.pub->healthy());

  const consumed r = failed_event_dead_letter(h, "record_too_large");
  CHECK(r.header("content-type") == "application/octet-stream");  // cut, so no longer valid JSON
  const auto detail = r.header("rtm-error-detail");
  REQUIRE(detail.has_value());
  CHECK(detail->find("queue.buffering.max.kbytes") != std::string::npos);
  const auto truncated = r.header("rtm-truncated");
  REQUIRE(truncated.has_value());
  CHECK(std::stoul(*truncated) > 100000);
  // The dead letter itself fits: its envelope's first 64 KiB (the event_too_large prefix), within the queue.
  CHECK(r.payload.size() == rtm::pipeline::oversized_event_prefix);
  CHECK(r.payload.rfind(R"({"schema":"rtm-bridge.event/v1")", 0) == 0);
  CHECK(h.metrics.dead_letters("acme-main", "record_too_large") == 1);
  CHECK(h.renders("rtm_bridge_events_failed_total{connection=\"acme-main\",reason=\"record_too_large\"} 1"));
  CHECK(h.metrics.failed_total() == 1);
  CHECK(h.pub->stats().dead_letters_lost == 0);

  CHECK(n_sequence(read_topic(h.cluster->bootstrap_servers(), "rtm.message")) == std::vector<int>{0, 2, 3, 4});
  h.drain_and_stop();
}
