#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "spool/file_system.hpp"
#include "spool/format.hpp"
#include "spool/segment_reader.hpp"

// The spool's data files: an append-only log of checksummed frames (format.hpp) in segment files of about
// `segment_size` bytes, each preallocated when it is created so that a write into it cannot fail for lack of space
// (ENOSPC surfaces when a segment is created, before any record is at risk). Synchronous and without Asio: the
// spool (spool.hpp) decides when to flush, sync, read and reclaim.
//
// - append() copies a frame into the write buffer and assigns the next sequence number; flush() write()s the
//   buffer. A record is "written" (survives SIGKILL: the page cache has it) once its flush returned.
// - The reader returns records in sequence order from the read position: from the files (pread), flushing the
//   buffer first when it reaches records still there. Corrupt bytes in a segment are counted and skipped by
//   resynchronising on the next valid frame: reading never stops on corruption.
// - reclaim_below(lwm) removes whole segments whose records are all below the confirmed low-water mark.
// - open() recovers: segments wholly below the checkpoint's lwm are removed, the last segment is scanned from its
//   start and cut after its last valid frame (a torn tail; damage with valid frames after it stays, for the reader to
//   count and skip), the others are read lazily. Appends always go to a new segment after a start, so a recovered
//   file is never written again.
//
// Threading: everything runs on the io_context thread except take_sync_job(), which the spool's sync thread calls
// (the dirty set is the only state both touch, under a mutex).
namespace rtm::spool {

struct log_options {
  std::string dir;
  std::uint64_t segment_size = std::uint64_t{64} << 20U;
  std::uint64_t max_size = std::uint64_t{8} << 30U;  // whole segments, the preallocated active one included
  std::uint64_t min_free = std::uint64_t{1} << 30U;
};

struct recovery_report {
  std::uint64_t next_seq = 1;           // the first sequence number this process appends
  std::uint64_t first_unconfirmed = 1;  // where reading starts: the checkpoint's lwm, or the oldest record
  std::size_t segments = 0;             // segment files kept
  std::size_t segments_removed = 0;     // wholly below the lwm (confirmed before the stop), or empty
  std::uint64_t tail_records = 0;       // valid records in the last segment
  std::uint64_t truncated_bytes = 0;    // cut from the last segment after its last valid frame
  std::uint64_t bytes = 0;              // the kept segments' sizes
};

// What the sync thread must make durable: files written since the last job, and whether the directory changed.
// `retired`: reclaimed segments (already unlinked) whose last reference the sync thread drops: the close of an
// unlinked file is where the file system frees its blocks (~25 ms for 64 MiB on ext4, more for larger segments),
// which must not stall the io_context thread.
struct sync_job {
  std::vector<std::shared_ptr<file>> files;
  bool directory = false;
  std::vector<std::shared_ptr<file>> retired;
  [[nodiscard]] bool empty() const noexcept { return files.empty() && !directory && retired.empty(); }
};

class segment_log {
 public:
  enum class append_result { ok, full, failed };
  enum class full_reason { none, max_size, min_free, no_space };

  segment_log(file_system& fs, log_options opts);
  segment_log(const segment_log&) = delete;
  segment_log& operator=(const segment_log&) = delete;
  segment_log(segment_log&&) = delete;
  segment_log& operator=(segment_log&&) = delete;
  ~segment_log() = default;

  // Recovery (see above). `checkpoint_lwm` is the persisted low-water mark (0: none). Throws std::runtime_error
  // naming the directory and the error when the directory cannot be created, listed or its last segment read.
  recovery_report open(std::uint64_t checkpoint_lwm);

  // ---- writing --------------------------------------------------------------------------------------------------
  // Assigns `seq` and buffers the frame; `full`: no room (full_reason()), nothing consumed; `failed`: an I/O error
  // (error()) that ends the spool: the caller stops appending and the process exits (recovery re-sends).
  append_result append(std::int64_t received_at_ns, std::string_view payload, std::uint64_t& seq);
  [[nodiscard]] bool has_buffered() const noexcept { return !buffer_.empty(); }
  // write()s the buffer. An error is returned once and stays in error(): nothing is written after it.
  std::error_code flush();
  // While full: tries to create a segment again (after a reclaim, or when space was freed). True once appending
  // works again.
  bool try_leave_full();
  [[nodiscard]] full_reason full() const noexcept { return full_; }
  [[nodiscard]] const std::error_code& error() const noexcept { return error_; }
  [[nodiscard]] const std::string& error_context() const noexcept { return error_context_; }
  [[nodiscard]] std::uint64_t next_seq() const noexcept { return next_seq_; }
  // The file system refused to preallocate a segment (EOPNOTSUPP): a write may then meet ENOSPC, which is fatal.
  [[nodiscard]] bool preallocation_unsupported() const noexcept { return warned_no_prealloc_; }

  // ---- reading --------------------------------------------------------------------------------------------------
  enum class read_result { record, end, failed };
  // The next valid record from the read position (its view is valid until the next reader or append call).
  read_result read_next(frame_view& out);
  // Nothing is left to read: the read position is the end of what was appended.
  [[nodiscard]] bool at_end() const noexcept;
  // The record just appended is taken from memory (the live path): the read position moves past it. Only when
  // at_end() held before that append.
  void skip_to_end();
  // Regions of corrupt bytes found while reading (each counted once) since open.
  [[nodiscard]] std::uint64_t corrupt_regions() const noexcept { return corrupt_; }

  // ---- space ----------------------------------------------------------------------------------------------------
  // Removes the segments before the reader's whose records are all below `lwm`. Returns how many were removed;
  // their open files go to the next sync job (`retired`), so the sync thread closes them.
  std::size_t reclaim_below(std::uint64_t lwm);
  // The bytes the spool holds on disk: sealed segments' sizes and the active segment's preallocation.
  [[nodiscard]] std::uint64_t used_bytes() const noexcept;
  [[nodiscard]] std::size_t segment_count() const noexcept { return segments_.size(); }

  // The sync thread's share: what was written since the last call (thread-safe).
  [[nodiscard]] sync_job take_sync_job();

 private:
  struct segment {
    std::uint64_t first_seq = 0;
    std::string path;
    std::shared_ptr<file> f;
    std::uint64_t size = 0;      // bytes written (the active one: flushed, not buffered)
    std::uint64_t reserved = 0;  // the active segment's preallocation; sealed: its size
    bool active = false;
  };

  bool roll(std::size_t frame_size);
  void fail(std::error_code ec, std::string context);
  void mark_dirty(const std::shared_ptr<file>& f, bool directory);
  segment* find_segment(std::uint64_t first_seq) noexcept;
  [[nodiscard]] std::string path_of(std::uint64_t first_seq) const;
  [[nodiscard]] std::uint64_t read_offset() const noexcept;

  file_system& fs_;
  log_options opts_;
  std::deque<segment> segments_;
  std::uint64_t next_seq_ = 1;
  std::string buffer_;  // frames not yet written; they go to the back (active) segment
  full_reason full_ = full_reason::none;
  bool warned_no_prealloc_ = false;
  std::error_code error_;
  std::string error_context_;

  // Reader: the segment (by first seq) and offset of the next frame; records below read_min_ are skipped (they were
  // confirmed before a restart, in a segment that also holds later ones).
  std::uint64_t read_segment_ = 0;
  std::uint64_t read_min_ = 0;
  std::uint64_t last_returned_ = 0;       // the reader returns strictly increasing sequence numbers
  std::optional<segment_reader> reader_;  // over the read segment, from its start (created when first read)
  bool in_corrupt_region_ = false;
  std::uint64_t corrupt_ = 0;

  std::mutex dirty_mutex_;
  std::vector<std::shared_ptr<file>> dirty_files_;
  bool dirty_directory_ = false;
  std::vector<std::shared_ptr<file>> retired_files_;
};

}  // namespace rtm::spool
