// The publisher with the durable spool (CONTRACT "Durable spool") against the mock cluster: write-through at
// receipt, reading on through an outage, a restart that sends what an earlier publisher left, the full policies,
// and a fatal producer error.
#include <doctest/doctest.h>

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kafka/publish_harness.hpp"
#include "kafka/publisher.hpp"
#include "spool/directory_lock.hpp"
#include "spool/spool.hpp"
#include "support/process.hpp"

using namespace std::chrono_literals;
using namespace rtm::test;
using rtm::kafka::publisher;

namespace {

publisher::tuning with_spool(const temp_dir& dir, std::uint64_t segment = std::uint64_t{1} << 20U,
                             std::uint64_t max = std::uint64_t{64} << 20U) {
  publisher::tuning tune;
  rtm::spool::options o;
  o.path = dir.path() + "/spool";
  o.segment_size = segment;
  o.max_size = max;
  o.min_free = 0;
  o.fsync_interval = 50ms;
  o.checkpoint_interval = 20ms;
  o.max_in_flight = 2000;
  o.full_retry = 100ms;
  tune.spool = o;
  return tune;
}

// Everything the spool holds is confirmed: read through and settled.
bool spool_drained(harness& h, std::chrono::milliseconds timeout) {
  return h.run_until(
      [&h] {
        return h.pub->outstanding() == 0 && h.pub->waiting() == 0 && h.pub->spool()->at_end() &&
               h.pub->spool()->current().records == 0;
      },
      timeout);
}

}  // namespace

TEST_CASE("spool: every event goes through the spool and reaches Kafka once, in per-team order") {
  temp_dir dir;
  harness h;
  h.cluster->create_topic("rtm.message", 6, 3);
  h.start(with_spool(dir));
  team_stream stream{h};
  stream.feed(3000);
  REQUIRE(spool_drained(h, 60s));
  stream.arrived_once_in_order();
  CHECK(h.pub->spool()->lwm() == 3001);  // every record confirmed, so the commit point is past the last one
  CHECK(h.metrics.failed_total() == 0);
  CHECK(h.renders("rtm_bridge_spool_records 0"));
  CHECK(h.renders("rtm_bridge_spool_replayed_total 0"));
  h.drain_and_stop();
}

TEST_CASE("spool: during an outage of every broker upstream is never paused; the spool grows, then drains") {
  temp_dir dir;
  harness h;
  h.cluster->create_topic("rtm.message", 6, 3);
  h.start(with_spool(dir));
  team_stream stream{h};
  stream.feed(500);
  REQUIRE(spool_drained(h, 30s));
  h.cluster->set_broker_down(-1);
  for (int i = 0; i < 20000; ++i) {
    REQUIRE(stream.offer());  // never refused: upstream reading does not wait for Kafka
  }
  h.run_for(200ms);
  CHECK(h.backpressure.empty());
  CHECK(h.pub->outstanding() + h.pub->waiting() <= 2000);  // only the window is in memory
  CHECK(h.pub->spool()->current().records >= 18000);
  CHECK(h.pub->stats().spool_read_back == 0);
  h.cluster->set_broker_up(-1);
  REQUIRE(spool_drained(h, 120s));
  CHECK(h.pub->stats().spool_read_back > 15000);  // the backlog came back from the files
  stream.arrived_once_in_order();
  h.drain_and_stop();
}

TEST_CASE("spool: a new publisher on the same directory sends what the last one left, with the same ids") {
  temp_dir dir;
  harness h;
  h.cluster->create_topic("rtm.message", 6, 3);
  h.start(with_spool(dir));
  team_stream stream{h};
  stream.feed(200);
  REQUIRE(spool_drained(h, 30s));
  h.cluster->set_broker_down(-1);
  stream.feed(3000);
  h.run_for(100ms);
  // Gone without a drain: the records are only in the spool.
  h.pub.reset();
  h.cluster->set_broker_up(-1);
  h.start(with_spool(dir));
  CHECK(h.pub->spool()->recovery().first_unconfirmed <= 201);
  REQUIRE(spool_drained(h, 60s));
  CHECK(h.pub->spool()->current().replayed == 3000);
  CHECK(h.renders("rtm_bridge_spool_replayed_total 3000"));
  stream.arrived_once_in_order();
  h.drain_and_stop();
}

TEST_CASE("spool: one process per directory; the second is refused naming the holder") {
  temp_dir dir;
  harness h;
  h.start(with_spool(dir));
  rtm::metrics::registry other_metrics;
  CHECK_THROWS_AS(publisher(h.io, h.cfg, other_metrics, h.cluster->bootstrap_servers(), with_spool(dir)),
                  rtm::spool::directory_in_use);
  try {
    publisher second(h.io, h.cfg, other_metrics, h.cluster->bootstrap_servers(), with_spool(dir));
  } catch (const rtm::spool::directory_in_use& e) {
    CHECK(std::string(e.what()).find("PID " + std::to_string(::getpid())) != std::string::npos);
  }
  h.drain_and_stop();
}

TEST_CASE("spool full, drop_newest: the session is never paused and delivered + dropped = received") {
  temp_dir dir;
  harness h;
  h.cluster->create_topic("rtm.message", 6, 3);
  h.start(with_spool(dir, 64 * 1024, 3 * 64 * 1024));
  team_stream stream{h};
  h.cluster->set_broker_down(-1);
  const int received = 8000;
  for (int i = 0; i < received; ++i) {
    REQUIRE(stream.offer());
  }
  CHECK(h.pub->spool()->full());
  CHECK(h.pub->stats().spool_dropped > 0);
  CHECK(h.backpressure.empty());
  h.cluster->set_broker_up(-1);
  REQUIRE(spool_drained(h, 60s));
  // Room again once the checkpoint of the confirmed records is persisted and their segments are removed.
  CHECK(h.run_until([&h] { return !h.pub->spool()->full(); }, 10s));
  CHECK(h.pub->stats().delivered + h.pub->stats().spool_dropped == static_cast<std::uint64_t>(received));
  CHECK(h.metrics.spool_dropped_total() == h.pub->stats().spool_dropped);
  CHECK(h.renders("rtm_bridge_spool_dropped_total{connection=\"acme-main\"} " +
                  std::to_string(h.pub->stats().spool_dropped)));
  h.drain_and_stop();
}

TEST_CASE("spool full, block: reading stops while full and resumes once Kafka confirmed enough; nothing lost") {
  temp_dir dir;
  harness h;
  h.cluster->create_topic("rtm.message", 6, 3);
  publisher::tuning tune = with_spool(dir, 64 * 1024, 3 * 64 * 1024);
  tune.spool->block_when_full = true;
  h.start(tune);
  team_stream stream{h};
  h.cluster->set_broker_down(-1);
  int refused = 0;
  for (int i = 0; i < 8000 && refused == 0; ++i) {
    refused += stream.offer() ? 0 : 1;
  }
  CHECK(refused == 1);
  CHECK(h.paused());
  CHECK(h.pub->stats().spool_dropped == 0);
  h.cluster->set_broker_up(-1);
  REQUIRE(h.run_until([&h] { return !h.paused(); }, 60s));
  stream.feed(500);
  REQUIRE(spool_drained(h, 60s));
  stream.arrived_once_in_order();
  h.drain_and_stop();
}

TEST_CASE("spool: a fatal producer error mid-stream loses nothing; order kept after removing duplicate ids") {
  temp_dir dir;
  harness h;
  h.cluster->create_topic("rtm.message", 6, 3);
  h.cluster->set_broker_rtt(-1, static_cast<int>(rtm::test::patience(50ms).count()));
  h.start(with_spool(dir));
  team_stream stream{h};
  stream.feed(1501);
  h.run_for(30ms);
  REQUIRE(h.pub->inject_fatal_error_for_testing() == RD_KAFKA_RESP_ERR_NO_ERROR);
  stream.feed(1499);
  REQUIRE(spool_drained(h, 60s));
  CHECK(h.pub->stats().producers_created == 2);
  CHECK(h.backpressure.empty());  // the spool kept reading while the producer was replaced
  const auto got = collect(read_topic(h.cluster->bootstrap_servers(), "rtm.message"));
  check_complete_in_order(got, stream.sent);
  MESSAGE("duplicates after the fatal error: ", got.duplicates);
  h.drain_and_stop();
}

namespace {

// A session waiting for acknowledgements after durability: which tokens were told, in order.
struct ack_recorder final : rtm::pipeline::durability_listener {
  std::vector<std::uint64_t> durable;
  void on_durable(std::uint64_t token) noexcept override { durable.push_back(token); }
};

// Offers `count` events carrying tokens from `first` for `listener`; none of them is told inside on_event().
void offer_with_acks(harness& h, std::uint32_t listener, std::uint64_t first, int count, ack_recorder& acks) {
  for (int i = 0; i < count; ++i) {
    const std::string team = team_name(i % 4);
    const std::string payload = payload_for(team, i);
    rtm::pipeline::event ev = h.source.make(team, payload);
    ev.ack = {listener, first + static_cast<std::uint64_t>(i)};
    const std::size_t before = acks.durable.size();
    h.pub->on_event(ev);
    CHECK(acks.durable.size() == before);
  }
}

}  // namespace

TEST_CASE("durability acks without a spool: only once Kafka confirmed; none while every broker is down") {
  harness h;
  h.cluster->create_topic("rtm.message", 6, 3);
  h.start();
  ack_recorder acks;
  const std::uint32_t id = h.pub->durability()->add(acks);
  h.cluster->set_broker_down(-1);
  offer_with_acks(h, id, 1, 200, acks);
  h.run_for(500ms);
  CHECK(acks.durable.empty());
  h.cluster->set_broker_up(-1);
  REQUIRE(h.run_until([&acks] { return acks.durable.size() == 200; }, 60s));
  std::set<std::uint64_t> distinct(acks.durable.begin(), acks.durable.end());
  CHECK(distinct.size() == 200);
  // A listener that is gone is told nothing.
  h.pub->durability()->remove(id);
  offer_with_acks(h, id, 1000, 10, acks);
  REQUIRE(h.settled(30s));
  CHECK(acks.durable.size() == 200);
  h.drain_and_stop();
}

TEST_CASE("durability acks with a spool: once written to the spool, in order, even while every broker is down") {
  temp_dir dir;
  harness h;
  h.cluster->create_topic("rtm.message", 6, 3);
  h.start(with_spool(dir));
  ack_recorder acks;
  const std::uint32_t id = h.pub->durability()->add(acks);
  h.cluster->set_broker_down(-1);
  offer_with_acks(h, id, 1, 300, acks);
  REQUIRE(h.run_until([&acks] { return acks.durable.size() == 300; }, 10s));
  for (std::size_t i = 0; i < acks.durable.size(); ++i) {
    CHECK(acks.durable[i] == i + 1);
  }
  CHECK(h.pub->spool()->current().records == 300);  // written, not confirmed by Kafka
  h.cluster->set_broker_up(-1);
  REQUIRE(spool_drained(h, 60s));
  CHECK(acks.durable.size() == 300);  // told once, at the write
  h.drain_and_stop();
}

TEST_CASE("durability acks with a full spool under drop_newest: a dropped event is never acknowledged") {
  temp_dir dir;
  harness h;
  h.cluster->create_topic("rtm.message", 6, 3);
  h.start(with_spool(dir, 64 * 1024, 3 * 64 * 1024));
  ack_recorder acks;
  const std::uint32_t id = h.pub->durability()->add(acks);
  h.cluster->set_broker_down(-1);
  offer_with_acks(h, id, 1, 4000, acks);
  h.run_for(300ms);
  REQUIRE(h.pub->stats().spool_dropped > 0);
  CHECK(acks.durable.size() + h.pub->stats().spool_dropped == 4000);
  h.cluster->set_broker_up(-1);
  REQUIRE(spool_drained(h, 60s));
  h.drain_and_stop();
}
