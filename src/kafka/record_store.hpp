#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory_resource>
#include <string>
#include <utility>
#include <vector>

#include "kafka/record.hpp"
#include "util/scope_exit.hpp"

// The ordered record store: every record the publisher accepted and that is not settled yet (confirmed by the
// cluster, or failed and dealt with), by sequence number, which is the order of acceptance, of production and of
// re-production after a producer is replaced. Pure bookkeeping: no librdkafka, no I/O, no clock. Owned by the
// publisher and used on the io_context thread only.
//
// It keeps:
//   - the records. A record's address stays the same from append() to settle() (map nodes do not move), which
//     librdkafka needs: it reads a record's value in place, without a copy;
//   - the cursor: the first record that may still need producing (next_waiting() looks from there);
//   - the counts the backpressure decision reads: records waiting, records and value bytes in flight;
//   - buffers. A settled record's buffer is kept (spare) for the next record, and the map's nodes come from a pool
//     that keeps the nodes of settled records, so once both have grown to the peak number of unsettled records,
//     accepting and settling records allocates nothing. While a retired producer handle is still being destroyed
//     it may read the values it was given: those buffers are held, not reused, until release_held().
//
// With the durable spool (spool/spool.hpp), the store holds the spool's window: the records read back from the
// spool (or taken live at receipt) and not settled yet, at most spool.max_in_flight. Each carries its spool
// sequence number (record::spool_seq); settling it tells the settle listener, which moves the spool's commit point.
// The cursor, re-production after retire() and the counts are the same with and without the spool.
namespace rtm::kafka {

// Told when a record that came from the spool is settled (on the io_context thread, inside settle()).
class settle_listener {
 public:
  settle_listener() = default;
  settle_listener(const settle_listener&) = delete;
  settle_listener& operator=(const settle_listener&) = delete;
  settle_listener(settle_listener&&) = delete;
  settle_listener& operator=(settle_listener&&) = delete;
  virtual void on_settled(std::uint64_t spool_seq) noexcept = 0;

 protected:
  ~settle_listener() = default;
};

class record_store {
 public:
  struct spare_limits {
    std::size_t buffers = 0;                          // how many settled buffers are kept for reuse
    std::size_t max_buffer = std::size_t{16} * 1024;  // a larger buffer (a rare huge record) is freed
    std::size_t max_total = std::size_t{64} << 20U;   // the kept buffers' capacities, summed
  };

  // What retire() found: records to produce again, and how many of those a retired handle may have written.
  struct retired_counts {
    std::size_t again = 0;
    std::size_t maybe_persisted = 0;
  };

  // The publisher keeps up to one spare buffer per record its backpressure bound lets be in flight: at full speed
  // the number of unsettled records swings between the low and high water marks, and each new record should find
  // a buffer. The kept memory is what those records used at their peak anyway.
  explicit record_store(spare_limits limits);
  record_store(const record_store&) = delete;
  record_store& operator=(const record_store&) = delete;
  record_store(record_store&&) = delete;
  record_store& operator=(record_store&&) = delete;
  ~record_store() = default;

  // Appends a record with the next sequence number, waiting, on a spare buffer when there is one, and fills it with
  // `build(record&)`. If `build` throws, the record is removed again and the exception propagates: the store is as
  // it was (a record already in the store, e.g. the one `build` copies from, stays valid throughout).
  template <typename Build>
  record& append(Build&& build) {
    record& r = emplace_last();
    util::scope_exit undo([this] { drop_last(); });
    std::forward<Build>(build)(r);
    undo.release();
    ++waiting_;
    return r;
  }

  // The first waiting record at or after the cursor, or nullptr when none waits there; the cursor moves to it.
  [[nodiscard]] record* next_waiting() noexcept;
  // Handed to producer `generation`: in flight, and the cursor moves past it.
  void mark_in_flight(record& r, std::uint32_t generation) noexcept;
  // In flight → waiting without a verdict (the handle dropped it): it is produced again, by the next producer.
  void mark_waiting(record& r, bool maybe_persisted) noexcept;
  // Done (confirmed, or failed and dealt with): the record leaves at once, wherever it is, so one record stuck in
  // flight never holds back the memory of everything settled after it. Its buffer becomes a spare, or is held.
  void settle(record& r) noexcept;
  [[nodiscard]] record* find(std::uint64_t seq) noexcept;
  void set_settle_listener(settle_listener* listener) noexcept { settled_ = listener; }

  // Producer `generation` is retired: every record it was given is marked (its buffer is held when it settles,
  // until release_held()), every record in flight goes back to waiting (maybe persisted: no verdict came), and the
  // cursor goes back to the first record. Needs prepare_retire() first: then it allocates nothing.
  void prepare_retire();  // throws std::bad_alloc, changing nothing
  retired_counts retire(std::uint32_t generation) noexcept;
  // No retired handle is alive any more: the held buffers are freed, and from now on reused again.
  void release_held() noexcept;

  [[nodiscard]] std::size_t waiting() const noexcept { return waiting_; }
  [[nodiscard]] std::size_t in_flight() const noexcept { return in_flight_; }
  [[nodiscard]] std::size_t in_flight_bytes() const noexcept { return in_flight_bytes_; }
  [[nodiscard]] std::size_t unsettled() const noexcept { return waiting_ + in_flight_; }
  // The oldest unsettled record's sequence number (the next one to be appended when none is unsettled).
  [[nodiscard]] std::uint64_t low_water_mark() const noexcept;
  [[nodiscard]] std::uint64_t cursor() const noexcept { return cursor_; }
  [[nodiscard]] std::size_t spare_buffers() const noexcept { return spare_.size(); }
  [[nodiscard]] std::size_t held_buffers() const noexcept { return held_.size(); }

 private:
  record& emplace_last();
  void drop_last() noexcept;
  void keep_spare(std::string bytes) noexcept;

  spare_limits limits_;
  // Declared before the map: it outlives it.
  std::pmr::unsynchronized_pool_resource pool_;
  std::pmr::map<std::uint64_t, record> records_{&pool_};
  std::uint64_t next_seq_ = 1;
  std::uint64_t cursor_ = 1;
  std::size_t waiting_ = 0;
  std::size_t in_flight_ = 0;
  std::size_t in_flight_bytes_ = 0;
  std::vector<std::string> spare_;  // capacity reserved up front (limits_.buffers), never grown
  std::size_t spare_total_ = 0;
  std::vector<std::string> held_;  // capacity reserved by prepare_retire()
  bool holding_ = false;           // a retired handle may still read the values it was given
  settle_listener* settled_ = nullptr;
};

}  // namespace rtm::kafka
