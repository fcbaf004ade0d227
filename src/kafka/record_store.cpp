#include "kafka/record_store.hpp"

#include <algorithm>
#include <cassert>

namespace rtm::kafka {

record_store::record_store(spare_limits limits) : limits_(limits) {
  spare_.reserve(limits_.buffers);
}

record& record_store::emplace_last() {
  // Always the largest key: the insertion hint makes it constant time.
  record& r = records_.emplace_hint(records_.end(), next_seq_, record{})->second;
  r.seq = next_seq_++;
  if (!spare_.empty()) {
    spare_total_ -= spare_.back().capacity();
    r.recycle_bytes(std::move(spare_.back()));
    spare_.pop_back();
  }
  return r;
}

void record_store::drop_last() noexcept {
  records_.erase(--next_seq_);
}

record* record_store::next_waiting() noexcept {
  // The store holds only unsettled records: what it skips here is in flight.
  auto it = records_.lower_bound(cursor_);
  while (it != records_.end() && it->second.st != record::state::waiting) {
    ++it;
  }
  if (it == records_.end()) {
    cursor_ = next_seq_;
    return nullptr;
  }
  cursor_ = it->first;
  return &it->second;
}

void record_store::mark_in_flight(record& r, std::uint32_t generation) noexcept {
  assert(r.st == record::state::waiting);
  r.st = record::state::in_flight;
  r.generation = generation;
  --waiting_;
  ++in_flight_;
  in_flight_bytes_ += r.field(record_field::value).size();
  cursor_ = std::max(cursor_, r.seq + 1);
}

void record_store::mark_waiting(record& r, bool maybe_persisted) noexcept {
  assert(r.st == record::state::in_flight);
  r.st = record::state::waiting;
  r.maybe_persisted = r.maybe_persisted || maybe_persisted;
  --in_flight_;
  in_flight_bytes_ -= std::min(in_flight_bytes_, r.field(record_field::value).size());
  ++waiting_;
  cursor_ = std::min(cursor_, r.seq);
}

void record_store::settle(record& r) noexcept {
  if (r.st == record::state::in_flight) {
    --in_flight_;
    in_flight_bytes_ -= std::min(in_flight_bytes_, r.field(record_field::value).size());
  } else if (r.st == record::state::waiting) {
    --waiting_;
  }
  r.st = record::state::done;
  if (r.spool_seq != 0 && settled_ != nullptr) {
    settled_->on_settled(r.spool_seq);
  }
  std::string bytes = r.release_bytes();
  if (r.produced_by_retired && holding_) {
    // prepare_retire() reserved the room: this push_back does not allocate.
    assert(held_.size() < held_.capacity());
    held_.push_back(std::move(bytes));
  } else {
    // librdkafka is done with them (delivery reported, or never handed over): reuse them for the next record.
    keep_spare(std::move(bytes));
  }
  records_.erase(r.seq);
}

void record_store::keep_spare(std::string bytes) noexcept {
  if (spare_.size() < spare_.capacity() && bytes.capacity() <= limits_.max_buffer &&
      spare_total_ + bytes.capacity() <= limits_.max_total) {
    spare_total_ += bytes.capacity();
    spare_.push_back(std::move(bytes));  // within the reserved capacity: no allocation
  }
}

record* record_store::find(std::uint64_t seq) noexcept {
  const auto it = records_.find(seq);
  return it == records_.end() ? nullptr : &it->second;
}

std::uint64_t record_store::low_water_mark() const noexcept {
  return records_.empty() ? next_seq_ : records_.begin()->first;
}

void record_store::prepare_retire() {
  // At most every unsettled record can be marked: room for all of them, beside what is held already.
  held_.reserve(held_.size() + records_.size());
}

record_store::retired_counts record_store::retire(std::uint32_t generation) noexcept {
  retired_counts out;
  for (auto& [seq, r] : records_) {
    if (r.generation == generation) {
      r.produced_by_retired = true;
    }
    if (r.st == record::state::in_flight) {
      // No verdict: it may or may not have been written.
      r.st = record::state::waiting;
      r.maybe_persisted = true;
      --in_flight_;
      ++waiting_;
    }
    if (r.st == record::state::waiting && r.generation != 0) {
      ++out.again;
      out.maybe_persisted += r.maybe_persisted ? 1 : 0;
    }
  }
  in_flight_bytes_ = 0;
  cursor_ = low_water_mark();
  holding_ = true;
  return out;
}

void record_store::release_held() noexcept {
  holding_ = false;
  std::vector<std::string>().swap(held_);  // frees the buffers and the room reserved for them
}

}  // namespace rtm::kafka
