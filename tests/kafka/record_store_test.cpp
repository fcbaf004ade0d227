// The ordered record store alone: no librdkafka, no cluster, no io_context.
#include "kafka/record_store.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using rtm::kafka::record;
using rtm::kafka::record_field;
using rtm::kafka::record_store;

record_store::spare_limits spares(std::size_t buffers) {
  record_store::spare_limits limits;
  limits.buffers = buffers;
  return limits;
}

// A record whose value is `value`: the raw frame of a dead letter (the store does not care what kind).
record& add(record_store& store, const std::string& value) {
  rtm::pipeline::dead_letter dl;
  dl.connection = "acme-main";
  dl.reason = "bad_json";
  dl.raw = value;
  return store.append([&dl](record& r) { rtm::kafka::build_dead_letter_record(r, dl, "rtm.dead-letter", 1 << 20); });
}

std::string value_of(const record* r) {
  REQUIRE(r != nullptr);
  return std::string(r->field(record_field::value));
}

// Hands out every waiting record to `generation`, in order: their values.
std::vector<std::string> produce_all(record_store& store, std::uint32_t generation) {
  std::vector<std::string> out;
  while (record* r = store.next_waiting()) {
    out.push_back(value_of(r));
    store.mark_in_flight(*r, generation);
  }
  return out;
}

// "a", "bb" and "ccc" (sequence numbers 1 to 3), handed to producer 1.
void three_in_flight(record_store& store) {
  add(store, "a");
  add(store, "bb");
  add(store, "ccc");
  REQUIRE(produce_all(store, 1).size() == 3);
}

}  // namespace

TEST_CASE("record store: records wait in acceptance order, the cursor hands each out once, the counts follow") {
  record_store store(spares(8));
  CHECK(add(store, "a").seq == 1);
  CHECK(add(store, "bb").seq == 2);
  CHECK(add(store, "ccc").seq == 3);
  CHECK(store.waiting() == 3);
  CHECK(store.unsettled() == 3);

  record* first = store.next_waiting();
  CHECK(value_of(first) == "a");
  CHECK(store.next_waiting() == first);  // not handed over yet: still the next one
  store.mark_in_flight(*first, 1);
  CHECK(first->st == record::state::in_flight);
  CHECK(first->generation == 1);
  CHECK(store.waiting() == 2);
  CHECK(store.in_flight() == 1);
  CHECK(store.in_flight_bytes() == 1);

  CHECK(produce_all(store, 1) == std::vector<std::string>{"bb", "ccc"});
  CHECK(store.next_waiting() == nullptr);
  CHECK(store.waiting() == 0);
  CHECK(store.in_flight() == 3);
  CHECK(store.in_flight_bytes() == 6);
  // A record appended later is found after the others.
  add(store, "dddd");
  CHECK(value_of(store.next_waiting()) == "dddd");
}

TEST_CASE("record store: settled records leave at once, in any order; only the oldest moves the low-water mark") {
  record_store store(spares(8));
  three_in_flight(store);
  CHECK(store.low_water_mark() == 1);

  store.settle(*store.find(2));  // confirmed out of order
  CHECK(store.find(2) == nullptr);
  CHECK(store.in_flight() == 2);
  CHECK(store.in_flight_bytes() == 4);
  CHECK(store.low_water_mark() == 1);  // 1 is not confirmed: the commit point stays

  store.settle(*store.find(1));
  CHECK(store.low_water_mark() == 3);
  // A waiting record can be settled too (refused before it left, dead-lettered in its place).
  add(store, "dddd");
  store.settle(*store.find(4));
  CHECK(store.waiting() == 0);
  store.settle(*store.find(3));
  CHECK(store.unsettled() == 0);
  CHECK(store.in_flight_bytes() == 0);
  CHECK(store.low_water_mark() == 5);  // the next record's number
}

TEST_CASE("record store: a builder that throws leaves the store as it was") {
  record_store store(spares(8));
  record& kept = add(store, "kept");
  CHECK_THROWS_AS(store.append([](record&) { throw std::bad_alloc(); }), std::bad_alloc);
  CHECK(store.waiting() == 1);
  CHECK(store.find(2) == nullptr);
  CHECK(store.low_water_mark() == 1);
  // A builder that reads another record (a failed delivery's dead letter) and then throws: that record is intact.
  CHECK_THROWS_AS(store.append([&kept](record& r) {
    rtm::kafka::build_failed_delivery_record(r, kept, "rtm.dead-letter", "msg_size_too_large", "", 1024);
    throw std::runtime_error("after building");
  }),
                  std::runtime_error);
  CHECK(value_of(store.find(1)) == "kept");
  CHECK(add(store, "next").seq == 2);  // the number of the record that was never added
  CHECK(produce_all(store, 1) == std::vector<std::string>{"kept", "next"});
}

TEST_CASE("record store: a settled record's buffer serves the next record; the spare limits hold") {
  record_store::spare_limits limits = spares(2);
  limits.max_buffer = 4096;
  limits.max_total = 2048 + 1024;
  record_store store(limits);
  record& a = add(store, "first");
  const char* buffer = a.field(record_field::value).data();
  store.settle(a);
  CHECK(store.spare_buffers() == 1);
  record& b = add(store, "second");
  CHECK(b.field(record_field::value).data() == buffer);  // the same allocation, reused
  CHECK(store.spare_buffers() == 0);

  // At most `buffers` spares.
  add(store, "x");
  add(store, "y");
  for (std::uint64_t seq = 2; seq <= 4; ++seq) {
    store.settle(*store.find(seq));
  }
  CHECK(store.spare_buffers() == 2);  // 1 KiB each: within max_total too
  // A buffer above max_buffer is freed, not kept.
  record_store small(limits);
  small.settle(add(small, std::string(5000, 'z')));  // an 8 KiB buffer
  CHECK(small.spare_buffers() == 0);
  // Nor one that would take the kept capacities above max_total (1 KiB + 2 KiB, then 1 KiB more > 3 KiB).
  limits.buffers = 3;
  record_store total(limits);
  add(total, "a");
  add(total, std::string(1500, 'b'));  // a 2 KiB buffer
  add(total, "c");
  total.settle(*total.find(1));
  total.settle(*total.find(2));
  CHECK(total.spare_buffers() == 2);
  total.settle(*total.find(3));
  CHECK(total.spare_buffers() == 2);
}

TEST_CASE("record store: a record the handle dropped without a verdict is produced again, before later ones") {
  record_store store(spares(8));
  three_in_flight(store);
  store.mark_waiting(*store.find(2), true);
  CHECK(store.find(2)->maybe_persisted);
  CHECK(store.waiting() == 1);
  CHECK(store.in_flight() == 2);
  CHECK(store.in_flight_bytes() == 4);
  CHECK(produce_all(store, 2) == std::vector<std::string>{"bb"});
  CHECK(store.find(2)->generation == 2);
}

TEST_CASE("record store: retiring a producer sends its records back in order; their buffers are held meanwhile") {
  record_store store(spares(8));
  three_in_flight(store);
  add(store, "dddd");  // waiting, never handed to generation 1
  store.settle(*store.find(2));
  const std::size_t spare_before = store.spare_buffers();

  store.prepare_retire();
  const record_store::retired_counts counts = store.retire(1);
  CHECK(counts.again == 2);  // 1 and 3; 4 was never produced
  CHECK(counts.maybe_persisted == 2);
  CHECK(store.in_flight() == 0);
  CHECK(store.in_flight_bytes() == 0);
  CHECK(store.waiting() == 3);
  CHECK(store.cursor() == store.low_water_mark());
  CHECK(store.find(1)->produced_by_retired);
  CHECK_FALSE(store.find(4)->produced_by_retired);
  CHECK(produce_all(store, 2) == std::vector<std::string>{"a", "ccc", "dddd"});

  // While the retired handle may still read them, a delivered record's buffer is held, not reused.
  store.settle(*store.find(1));
  CHECK(store.held_buffers() == 1);
  CHECK(store.spare_buffers() == spare_before);
  store.settle(*store.find(4));  // never given to the retired handle: a spare at once
  CHECK(store.spare_buffers() == spare_before + 1);
  store.release_held();
  CHECK(store.held_buffers() == 0);
  store.settle(*store.find(3));  // the handle is gone: reused again
  CHECK(store.held_buffers() == 0);
  CHECK(store.spare_buffers() == spare_before + 2);
}
