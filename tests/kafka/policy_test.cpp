#include "kafka/policy.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "kafka/producer.hpp"
#include "kafka/statistics.hpp"

TEST_CASE("policy: delivery outcomes") {
  using rtm::kafka::classify_delivery;
  using rtm::kafka::delivery_outcome;
  CHECK(classify_delivery(RD_KAFKA_RESP_ERR_NO_ERROR) == delivery_outcome::persisted);
  CHECK(classify_delivery(RD_KAFKA_RESP_ERR__PURGE_QUEUE) == delivery_outcome::reproduce);
  CHECK(classify_delivery(RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) == delivery_outcome::reproduce);
  CHECK(classify_delivery(RD_KAFKA_RESP_ERR__FATAL) == delivery_outcome::reproduce);
  CHECK(classify_delivery(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) == delivery_outcome::failed);
  CHECK(classify_delivery(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT) == delivery_outcome::failed);
  CHECK(classify_delivery(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) == delivery_outcome::failed);
}

TEST_CASE("policy: failure reasons are short snake_case words") {
  CHECK(rtm::kafka::failure_reason(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) == "msg_size_too_large");
  CHECK(rtm::kafka::failure_reason(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT) == "msg_timed_out");
  CHECK(rtm::kafka::failure_reason(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) == "topic_authorization_failed");
  CHECK(rtm::kafka::failure_reason(RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) == "unknown_topic");
  CHECK(rtm::kafka::failure_reason(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) == "unknown_topic");
  CHECK(rtm::kafka::failure_reason(RD_KAFKA_RESP_ERR_INVALID_RECORD) == "invalid_record");
}

TEST_CASE("policy: fatal budget gives up at the limit-th error within the window") {
  using clock = rtm::kafka::fatal_budget::clock;
  rtm::kafka::fatal_budget budget(3, std::chrono::minutes(5));
  const auto t0 = clock::time_point{} + std::chrono::hours(1);
  CHECK(budget.allow_recreate(t0));
  CHECK(budget.allow_recreate(t0 + std::chrono::minutes(1)));
  // The first one is more than 5 minutes old by now: only two within the window.
  CHECK(budget.allow_recreate(t0 + std::chrono::minutes(5) + std::chrono::seconds(1)));
  CHECK(budget.recent() == 2);
  CHECK_FALSE(budget.allow_recreate(t0 + std::chrono::minutes(5) + std::chrono::seconds(30)));
  CHECK(budget.recent() == 3);
}

TEST_CASE("policy: backpressure hysteresis") {
  rtm::kafka::backpressure_limits limits;
  limits.high_records = 100;
  limits.low_records = 50;
  limits.high_bytes = 1000;
  limits.low_bytes = 500;
  using rtm::kafka::should_pause;
  CHECK_FALSE(should_pause(false, 0, 99, 0, limits));
  CHECK(should_pause(false, 0, 100, 0, limits));
  CHECK(should_pause(false, 1, 0, 0, limits));  // anything waiting locally pauses
  CHECK(should_pause(false, 0, 0, 1000, limits));
  CHECK(should_pause(true, 0, 51, 0, limits));  // stays paused until the low-water mark
  CHECK(should_pause(true, 0, 50, 501, limits));
  CHECK_FALSE(should_pause(true, 0, 50, 500, limits));
  CHECK(should_pause(true, 3, 0, 0, limits));
}

TEST_CASE("policy: broker health turns false once no broker was up for the grace period") {
  using clock = rtm::kafka::broker_health::clock;
  const auto t0 = clock::time_point{} + std::chrono::hours(1);
  const auto grace = std::chrono::seconds(30);
  rtm::kafka::broker_health health;
  CHECK(health.healthy(t0, grace));
  health.all_down(t0);
  health.all_down(t0 + std::chrono::seconds(20));  // still counted from the first
  CHECK(health.healthy(t0 + std::chrono::seconds(29), grace));
  CHECK_FALSE(health.healthy(t0 + std::chrono::seconds(30), grace));
  health.statistics(1, 3, t0 + std::chrono::seconds(31));  // one broker up again
  CHECK(health.healthy(t0 + std::chrono::seconds(100), grace));
  health.statistics(0, 3, t0 + std::chrono::seconds(100));  // statistics alone notice an outage
  CHECK_FALSE(health.healthy(t0 + std::chrono::seconds(130), grace));
  health.up();  // a delivery
  CHECK(health.healthy(t0 + std::chrono::seconds(130), grace));
  health.statistics(0, 0, t0 + std::chrono::seconds(130));  // no broker known yet: not an outage
  CHECK(health.healthy(t0 + std::chrono::seconds(200), grace));
}

TEST_CASE("producer statistics: librdkafka's JSON becomes queue, broker state and latency figures") {
  // The shape of librdkafka's statistics (STATISTICS.md), trimmed to what matters; latencies in microseconds.
  const std::string stats =
      R"({"name":"rtm-bridge#producer-1","type":"producer","msg_cnt":3,"msg_size":4096,"msg_max":100000,)"
      R"("msg_size_max":1073741824,"brokers":{)"
      R"("127.0.0.1:9092/bootstrap":{"name":"127.0.0.1:9092/bootstrap","nodeid":-1,"state":"UP"},)"
      R"("127.0.0.1:9094/3":{"name":"127.0.0.1:9094/3","nodeid":3,"state":"UP","outbuf_cnt":2,"waitresp_cnt":5,)"
      R"("int_latency":{"p50":100,"p99":2500},"outbuf_latency":{"p99":40},"rtt":{"p50":1500,"p99":500000}},)"
      R"("127.0.0.1:9093/2":{"name":"127.0.0.1:9093/2","nodeid":2,"state":"DOWN","rtt":{"avg":0}}},"topics":{}})";
  const auto figures = rtm::kafka::parse_statistics(stats);
  REQUIRE(figures.has_value());
  CHECK(figures->brokers_up == 2);
  CHECK(figures->brokers_known == 3);
  CHECK(figures->queue_messages == 3);
  CHECK(figures->queue_bytes == 4096);
  CHECK(figures->queue_max_messages == 100000);
  CHECK(figures->queue_max_bytes == 1073741824);
  // The bootstrap entry is not a broker of its own; the learned ones come sorted by name.
  REQUIRE(figures->brokers.size() == 2);
  CHECK(figures->brokers[0].name == "127.0.0.1:9093/2");
  CHECK_FALSE(figures->brokers[0].up);
  CHECK(figures->brokers[0].rtt_p99 == 0.0);
  const auto& b = figures->brokers[1];
  CHECK(b.name == "127.0.0.1:9094/3");
  CHECK(b.node_id == 3);
  CHECK(b.up);
  CHECK(b.rtt_p50 == doctest::Approx(0.0015));
  CHECK(b.rtt_p99 == doctest::Approx(0.5));
  CHECK(b.queue_latency_p99 == doctest::Approx(0.0025));
  CHECK(b.outbuf_latency_p99 == doctest::Approx(0.00004));
  CHECK(b.requests_queued == 2);
  CHECK(b.requests_in_flight == 5);

  const auto empty = rtm::kafka::parse_statistics(R"({"brokers":{}})");
  REQUIRE(empty.has_value());
  CHECK(empty->brokers_up == 0);
  CHECK(empty->brokers_known == 0);
  CHECK_FALSE(rtm::kafka::parse_statistics("not json").has_value());
  CHECK_FALSE(rtm::kafka::parse_statistics(R"({"brokers":[]})").has_value());
  CHECK_FALSE(rtm::kafka::parse_statistics(R"({"brokers":{"x":{"nodeid":1}}})").has_value());
}

TEST_CASE("producer settings: the bridge owns the delivery guarantees") {
  CHECK(rtm::kafka::bridge_owned_property("enable.idempotence"));
  CHECK(rtm::kafka::bridge_owned_property("partitioner"));
  CHECK_FALSE(rtm::kafka::bridge_owned_property("linger.ms"));
}
