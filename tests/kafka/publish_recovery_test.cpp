// The publisher against the mock cluster (publish_harness.hpp): broker outages, fatal producer errors and the
// producer's re-creation, giving up, and a drain that cannot finish.
#include "kafka/publisher.hpp"

#include <doctest/doctest.h>

#include <librdkafka/rdkafka_mock.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "kafka/publish_harness.hpp"

using namespace std::chrono_literals;
using namespace rtm::test;
using rtm::kafka::publisher;

TEST_CASE("publish: every broker down for 5 s mid-stream loses and duplicates nothing") {
  harness h;
  h.cluster->create_topic("rtm.message", 6, 3);
  publisher::tuning tune;
  tune.broker_down_grace = 2s;
  h.start(tune);
  team_stream stream{h};
  stream.feed(1500);
  h.run_for(200ms);
  h.cluster->set_broker_down(-1);
  const auto down_at = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - down_at < 5s) {
    stream.feed(20);
    h.run_for(100ms);
  }
  CHECK(h.pub->outstanding() > 0);  // the outage really held records back
  CHECK_FALSE(h.pub->healthy());    // no broker for longer than the grace
  h.cluster->set_broker_up(-1);
  stream.feed(1500);
  REQUIRE(h.settled(90s));
  stream.arrived_once_in_order();
  CHECK(h.metrics.failed_total() == 0);
  CHECK(h.run_until([&h] { return h.pub->healthy(); }, 10s));
  h.drain_and_stop();
}

TEST_CASE("publish: a fatal producer error mid-stream recreates the producer; nothing lost, order kept") {
  harness h;
  h.cluster->create_topic("rtm.message", 6, 3);
  // Keeps records in flight when the error strikes. Stretched like the test's waits: under valgrind the producer
  // keeps up with the slowed feeding, and a 50 ms round trip left nothing in flight to produce again.
  h.cluster->set_broker_rtt(-1, static_cast<int>(rtm::test::patience(50ms).count()));
  h.start();
  team_stream stream{h};
  stream.feed(1501);
  h.run_for(30ms);
  REQUIRE(h.pub->inject_fatal_error_for_testing() == RD_KAFKA_RESP_ERR_NO_ERROR);
  stream.feed(1499);
  REQUIRE(h.settled(60s));
  CHECK(h.pub->stats().producers_created == 2);
  CHECK(h.pub->stats().fatal_errors == 1);
  CHECK(h.pub->stats().reproduced > 0);
  CHECK(h.pub->healthy());
  CHECK_FALSE(h.fatal.has_value());
  // Paused while the producer was replaced, resumed after.
  REQUIRE(h.backpressure.size() >= 2);
  CHECK(h.backpressure.front() == true);
  CHECK(h.backpressure.back() == false);

  const auto got = collect(read_topic(h.cluster->bootstrap_servers(), "rtm.message"));
  check_complete_in_order(got, stream.sent);
  // Duplicates only where the old producer may have written the record already.
  CHECK(got.duplicates <= h.pub->stats().possibly_duplicated);
  MESSAGE("reproduced ", h.pub->stats().reproduced, ", possibly duplicated ", h.pub->stats().possibly_duplicated,
          ", duplicates seen ", got.duplicates);
  h.drain_and_stop();
}

TEST_CASE("publish: repeated fatal errors make the publisher give up and call the fatal handler") {
  harness h;
  publisher::tuning tune;
  tune.fatal_limit = 3;
  h.start(tune);
  for (int round = 0; round < 3; ++round) {
    REQUIRE(h.run_until([&h] { return h.pub->healthy() || h.pub->gave_up(); }, 10s));
    h.feed(team_name(round), 0);
    REQUIRE(h.pub->inject_fatal_error_for_testing() == RD_KAFKA_RESP_ERR_NO_ERROR);
    REQUIRE(
        h.run_until([&h, round] { return h.pub->stats().fatal_errors == static_cast<std::uint64_t>(round + 1); }, 10s));
  }
  REQUIRE(h.run_until([&h] { return h.fatal.has_value(); }, 5s));
  CHECK(h.pub->gave_up());
  CHECK_FALSE(h.pub->healthy());
  CHECK(h.paused());
  CHECK(h.pub->stats().producers_created == 3);
  std::optional<std::size_t> left;
  h.pub->drain(std::chrono::steady_clock::now() + 5s, [&left](std::size_t n) { left = n; });
  REQUIRE(h.run_until([&left] { return left.has_value(); }, 10s));
}

TEST_CASE(
    "publish: three outages with a small librdkafka queue pause upstream while it is full and resume after; "
    "nothing lost or duplicated, per-team order kept, the idempotent producer recovers by itself") {
  harness h;
  h.cluster->create_topic("rtm.message", 6, 3);
  h.cfg.properties = {{"queue.buffering.max.messages", "300"}};
  publisher::tuning tune;
  tune.broker_down_grace = 1s;
  h.start(tune);
  REQUIRE(h.run_until([&h] { return h.pub->healthy(); }, 10s));
  team_stream stream{h};
  for (int cycle = 0; cycle < 3; ++cycle) {
    CAPTURE(cycle);
    stream.feed(400);
    h.cluster->set_broker_down(-1);
    // Events keep coming until librdkafka's queue is full and the publisher asks upstream to pause.
    const auto down_at = std::chrono::steady_clock::now();
    while (!h.paused() && std::chrono::steady_clock::now() - down_at < 20s) {
      stream.offer();
    }
    REQUIRE(h.paused());
    h.run_for(2s);  // the outage goes on while paused: nothing is read, the local queue stays bounded
    CHECK(h.paused());
    CHECK_FALSE(h.pub->healthy());
    CHECK(h.pub->outstanding() <= 300);
    CHECK(h.pub->waiting() <= 2);
    h.cluster->set_broker_up(-1);
    CHECK(h.run_until([&h] { return !h.paused(); }, 30s));
    CHECK(h.run_until([&h] { return h.pub->healthy(); }, 15s));
  }
  stream.feed(400);
  REQUIRE(h.settled(60s));
  const int pauses = check_alternating(h.backpressure);
  CHECK(pauses >= 3);
  CHECK(h.pub->stats().queue_full > 0);
  CHECK(h.pub->stats().fatal_errors == 0);
  CHECK(h.pub->stats().producers_created == 1);
  CHECK(h.metrics.failed_total() == 0);
  // The publisher produced each record once (one producer, no fatal error). librdkafka retries what was in flight
  // when the brokers went away; 2.0.2's mock cluster does not always recognise such a retry as a duplicate, so a
  // record may land twice (same envelope id). Nothing may be missing, and the order holds for the first copies.
  const auto got = collect(read_topic(h.cluster->bootstrap_servers(), "rtm.message"));
  CHECK(got.total == static_cast<std::size_t>(stream.total()) + got.duplicates);
  check_complete_in_order(got, stream.sent);
  MESSAGE(stream.total(), " events over 3 outages, ", pauses, " pauses, ", h.pub->stats().queue_full,
          " QUEUE_FULL answers, duplicates from librdkafka retries: ", got.duplicates);
  h.drain_and_stop();
}

TEST_CASE(
    "publish: after an outage the broker answers OUT_OF_ORDER_SEQUENCE_NUMBER (the 2.0.2 wedge): librdkafka "
    "raises a fatal error, the producer is recreated, nothing lost, order kept") {
  harness h;
  h.cluster->create_topic("rtm.message", 4, 3);
  publisher::tuning tune;
  // The three injected errors can meet three successive producers (each new producer's first requests draw the
  // next one): three fatal errors. Tolerating one more than that keeps this test on recovery, deterministically;
  // giving up at the limit has a test of its own.
  tune.fatal_limit = 4;
  h.start(tune);
  team_stream stream{h};
  stream.feed(500);
  REQUIRE(h.settled(20s));
  h.cluster->set_broker_down(-1);
  stream.feed(300);
  h.run_for(1s);
  CHECK(h.pub->outstanding() > 0);
  // What a broker that lost the producer's sequence state answers to the first ProduceRequests after the outage.
  rd_kafka_mock_push_request_errors(
      h.cluster->mock(), 0 /* Produce */, 3, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
      RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
  h.cluster->set_broker_up(-1);
  stream.feed(500);
  REQUIRE(h.settled(60s));
  CHECK(h.pub->stats().fatal_errors >= 1);
  CHECK(h.pub->stats().producers_created == h.pub->stats().fatal_errors + 1);
  CHECK_FALSE(h.fatal.has_value());
  CHECK(h.run_until([&h] { return h.pub->healthy(); }, 10s));
  CHECK(h.metrics.failed_total() == 0);
  const auto got = collect(read_topic(h.cluster->bootstrap_servers(), "rtm.message"));
  check_complete_in_order(got, stream.sent);
  CHECK(got.duplicates <= h.pub->stats().possibly_duplicated);
  MESSAGE("fatal errors ", h.pub->stats().fatal_errors, ", reproduced ", h.pub->stats().reproduced,
          ", possibly duplicated ", h.pub->stats().possibly_duplicated, ", duplicates seen ", got.duplicates);
  h.drain_and_stop();
}

TEST_CASE("publish: drain with an unreachable broker gives up at the deadline and reports what was left") {
  harness h;
  const std::string nowhere = "127.0.0.1:" + std::to_string(closed_loopback_port());
  h.start({}, nowhere);
  for (int n = 0; n < 5; ++n) {
    h.feed("T1", n);
  }
  h.run_for(200ms);
  CHECK(h.pub->outstanding() == 5);
  const auto started = std::chrono::steady_clock::now();
  std::optional<std::size_t> left;
  h.pub->drain(started + 1500ms, [&left](std::size_t n) { left = n; });
  REQUIRE(h.run_until([&left] { return left.has_value(); }, 15s));
  const auto took = std::chrono::steady_clock::now() - started;
  CHECK(*left == 5);
  CHECK(took >= 1400ms);
  CHECK(took < 6s);
  CHECK_FALSE(h.pub->healthy());
  // A second drain call after the end is answered at once, with the same count.
  std::optional<std::size_t> again;
  h.pub->drain(std::chrono::steady_clock::now() + 1s, [&again](std::size_t n) { again = n; });
  CHECK(again == 5);
  // After the drain nothing more is accepted; it is counted, not silently dropped.
  h.pub->on_event(h.source.make("T1", R"({"late":true})"));
  CHECK(h.metrics.render().find("reason=\"publisher_stopped\"} 1") != std::string::npos);
}
