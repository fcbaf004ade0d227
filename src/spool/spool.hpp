#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "spool/checkpoint.hpp"
#include "spool/directory_lock.hpp"
#include "spool/file_system.hpp"
#include "spool/segment_log.hpp"

// The durable spool (CONTRACT "Durable spool"): a write-through log between upstream receipt and the Kafka
// producer. Every record is appended at receipt; the publisher reads records back in order into its window of at
// most max_in_flight unconfirmed records (straight from memory when it is at the end, from the segment files when
// it is behind), and settles each when Kafka confirmed it; the first unsettled sequence number is the low-water
// mark (lwm), persisted by the checkpoint. Whole segments below a persisted lwm are removed.
//
// Durability: an appended record is in the write buffer; it is written (survives SIGKILL) when the buffer is
// flushed, which happens after the current handler (a post: one write() per upstream read batch) or at 64 KiB.
// The sync thread fdatasyncs what was written every fsync_interval (0: after every flush) and writes the checkpoint
// every checkpoint_interval; a failed fdatasync or write is never retried (Linux forgets the failed pages: a retry
// would "succeed" over lost data): the spool reports failed() and the daemon exits non-zero, and the next start
// recovers from what is on disk.
//
// Threading: every public member runs on the io_context thread. The sync thread touches only the segment log's
// dirty set (locked), the files it syncs and the reclaimed ones it closes, the checkpoint file, and the
// request/result fields under mutex_; it posts its results (persisted lwm, failure) back to the io_context.
namespace rtm::spool {

struct options {
  std::string path;
  std::uint64_t max_size = std::uint64_t{8} << 30U;
  std::uint64_t segment_size = std::uint64_t{64} << 20U;
  std::uint64_t min_free = std::uint64_t{1} << 30U;
  std::chrono::milliseconds fsync_interval{200};
  std::chrono::milliseconds checkpoint_interval{100};
  std::size_t max_in_flight = 20000;
  // when_full: block (stop reading upstream) instead of drop_newest. The spool only reports full; what happens to
  // the record that did not fit is its owner's policy (kafka::publisher).
  bool block_when_full = false;
  // While full, how often the spool tries again to create a segment (space freed by something else than its own
  // reclaim, e.g. an operator deleting files).
  std::chrono::milliseconds full_retry{1000};
};

// What the spool tells its owner (the publisher); called on the io_context thread, must not throw.
class listener {
 public:
  listener() = default;
  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;
  listener(listener&&) = delete;
  listener& operator=(listener&&) = delete;

  // The spool was full and has room again.
  virtual void on_spool_room() noexcept = 0;
  // Every record up to `through_seq` is as durable as configured: written (survives SIGKILL) after each flush, and
  // with fsync_interval 0 also fdatasync'd (survives power loss), then told after the sync.
  virtual void on_spool_written(std::uint64_t /*through_seq*/) noexcept {}
  // A write, read or fdatasync failed: the spool accepts nothing any more. `reason` names the file and the error.
  virtual void on_spool_failed(const std::string& reason) noexcept = 0;

 protected:
  ~listener() = default;
};

class spool {
 public:
  enum class append_result { ok, full, failed };
  enum class read_result { record, end, failed };

  struct figures {
    std::uint64_t bytes = 0;        // on disk (segments, the active one's preallocation included)
    std::uint64_t records = 0;      // appended and not confirmed (appended since the lwm)
    double oldest_age_seconds = 0;  // the oldest unconfirmed record's age (0 when none)
    std::uint64_t corrupt = 0;      // corrupt regions skipped since start
    std::uint64_t replayed = 0;     // records read back that an earlier process had appended
    std::size_t segments = 0;
  };

  // Opens the directory (creating it), takes its lock, reads the checkpoint and recovers the segments, and starts
  // the sync thread. Throws directory_in_use (another process holds the lock) or std::runtime_error (naming the
  // path and the error). `fs` and `owner` must outlive the spool.
  spool(boost::asio::io_context& io, options opts, listener& owner, file_system& fs = real_file_system());
  spool(const spool&) = delete;
  spool& operator=(const spool&) = delete;
  spool(spool&&) = delete;
  spool& operator=(spool&&) = delete;
  // close() if not done yet.
  ~spool();

  [[nodiscard]] const recovery_report& recovery() const noexcept { return recovery_; }

  // ---- writing --------------------------------------------------------------------------------------------------
  append_result append(std::int64_t received_at_ns, std::string_view payload, std::uint64_t& seq);
  [[nodiscard]] bool full() const noexcept { return log_.full() != segment_log::full_reason::none; }
  [[nodiscard]] segment_log::full_reason full_reason() const noexcept { return log_.full(); }
  [[nodiscard]] bool failed() const noexcept { return failed_; }

  // ---- the publisher's window -------------------------------------------------------------------------------------
  // Nothing appended is unread (the next append may be taken live).
  [[nodiscard]] bool at_end() const noexcept { return log_.at_end(); }
  // The record `seq` just appended (at_end() held before) is taken from memory: it joins the window unread from disk.
  void take_live(std::uint64_t seq, std::int64_t received_at_ns);
  // The next record from the files into the window; the view is valid until the next spool call.
  read_result read_next(frame_view& out);
  // The window: records read (or taken live) from the lwm on, settled or not. Bounded by max_in_flight, so one record
  // stuck unconfirmed holds back at most that many behind it (memory, and the duplicates a crash can cause).
  [[nodiscard]] std::size_t window() const noexcept { return window_.size(); }
  [[nodiscard]] std::size_t unsettled() const noexcept { return window_.size() - settled_in_window_; }
  [[nodiscard]] std::size_t max_in_flight() const noexcept { return opts_.max_in_flight; }
  // Kafka confirmed `seq` (or it was dealt with for good): the lwm moves past it once everything before is settled.
  void settle(std::uint64_t seq) noexcept;
  [[nodiscard]] std::uint64_t lwm() const noexcept;

  [[nodiscard]] figures current() const;

  // A stop: writes what is buffered, fdatasyncs, persists the lwm and ends the sync thread (blocking: at the end of
  // the run). Idempotent.
  void close() noexcept;

 private:
  struct window_entry {
    std::uint64_t seq;
    std::int64_t received_at_ns;
    bool settled;
  };

  void schedule_flush();
  void flush_now();
  void arm_checkpoint_timer();
  void arm_full_timer();
  void after_persisted(std::uint64_t lwm);
  void report_failure(const std::string& reason) noexcept;
  void sync_loop() noexcept;

  boost::asio::io_context& io_;
  options opts_;
  listener& owner_;
  file_system& fs_;
  std::unique_ptr<directory_lock> lock_;
  segment_log log_;
  checkpoint checkpoint_;
  recovery_report recovery_;

  std::deque<window_entry> window_;
  std::size_t settled_in_window_ = 0;
  std::uint64_t last_read_ = 0;  // the highest sequence number read or taken live
  std::uint64_t replayed_ = 0;
  bool flush_posted_ = false;
  bool failed_ = false;
  bool closed_ = false;
  bool was_full_ = false;
  bool warned_preallocation_ = false;
  std::uint64_t requested_lwm_ = 0;
  boost::asio::steady_timer checkpoint_timer_;
  boost::asio::steady_timer full_timer_;

  // Shared with the sync thread (under mutex_).
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  bool sync_now_ = false;              // fsync_interval 0: a flush asks for a sync at once; a reclaim too
  std::uint64_t checkpoint_want_ = 0;  // lwm to persist (0: nothing new)
  std::uint64_t synced_want_ = 0;      // fsync_interval 0: the last seq flushed, told once the next sync completed
  std::thread sync_thread_;

  // Posted handlers hold a weak reference: once the spool is gone they do nothing.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace rtm::spool
