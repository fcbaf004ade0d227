#include "kafka/policy.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "kafka/producer.hpp"

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

TEST_CASE("producer statistics: broker states are counted from librdkafka's JSON") {
  int up = -1;
  int known = -1;
  // The shape of librdkafka's statistics (STATISTICS.md), trimmed to what matters.
  const std::string stats =
      R"({"name":"rtm-bridge#producer-1","type":"producer","msg_cnt":3,"brokers":{)"
      R"("127.0.0.1:9092/bootstrap":{"name":"127.0.0.1:9092/bootstrap","nodeid":-1,"state":"UP"},)"
      R"("127.0.0.1:9093/2":{"name":"127.0.0.1:9093/2","nodeid":2,"state":"DOWN","rtt":{"avg":0}},)"
      R"("127.0.0.1:9094/3":{"name":"127.0.0.1:9094/3","nodeid":3,"state":"UP"}},"topics":{}})";
  REQUIRE(rtm::kafka::parse_broker_state(stats, up, known));
  CHECK(up == 2);
  CHECK(known == 3);
  REQUIRE(rtm::kafka::parse_broker_state(R"({"brokers":{}})", up, known));
  CHECK(up == 0);
  CHECK(known == 0);
  CHECK_FALSE(rtm::kafka::parse_broker_state("not json", up, known));
  CHECK_FALSE(rtm::kafka::parse_broker_state(R"({"brokers":[]})", up, known));
  CHECK_FALSE(rtm::kafka::parse_broker_state(R"({"brokers":{"x":{"nodeid":1}}})", up, known));
  CHECK(rtm::kafka::bridge_owned_property("enable.idempotence"));
  CHECK(rtm::kafka::bridge_owned_property("partitioner"));
  CHECK_FALSE(rtm::kafka::bridge_owned_property("linger.ms"));
}
