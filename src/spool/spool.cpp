#include "spool/spool.hpp"

#include <sys/vfs.h>
#include <algorithm>

#include <boost/asio/post.hpp>
#include <stdexcept>

#include "util/log.hpp"

namespace rtm::spool {
namespace {

using clock = std::chrono::steady_clock;

// Copy-on-write file systems make preallocation a hint: a write into a "reserved" segment can still fail for lack of
// space, and then the daemon stops instead of applying spool.when_full.
void warn_about_file_system(const std::string& path) {
  struct statfs st {};
  if (::statfs(path.c_str(), &st) != 0) {
    return;
  }
  constexpr auto btrfs = 0x9123683EL;
  constexpr auto zfs = 0x2FC12FC1L;
  const auto type = static_cast<long>(st.f_type);
  if (type == btrfs || type == zfs) {
    log::warn("", "spool: ", path, " is on ", type == btrfs ? "btrfs" : "ZFS",
              ": copy-on-write makes segment preallocation a hint, so a full disk may fail a write (the daemon "
              "stops) instead of applying spool.when_full; ext4 or xfs is recommended");
  }
}

log_options log_options_of(const options& o) {
  return {.dir = o.path, .segment_size = o.segment_size, .max_size = o.max_size, .min_free = o.min_free};
}

std::string_view describe(segment_log::full_reason r) noexcept {
  switch (r) {
    case segment_log::full_reason::max_size:
      return "spool.max_size is reached";
    case segment_log::full_reason::min_free:
      return "the file system's free space would drop below spool.min_free";
    case segment_log::full_reason::no_space:
      return "the file system has no space left for a new segment";
    case segment_log::full_reason::none:
      break;
  }
  return "not full";
}

}  // namespace

spool::spool(boost::asio::io_context& io, options opts, listener& owner, file_system& fs)
    : io_(io),
      opts_(std::move(opts)),
      owner_(owner),
      fs_(fs),
      log_(fs, log_options_of(opts_)),
      checkpoint_timer_(io),
      full_timer_(io) {
  if (const std::error_code ec = fs_.create_directories(opts_.path)) {
    throw std::runtime_error("spool: cannot create spool.path " + opts_.path + ": " + ec.message());
  }
  if (&fs_ == &real_file_system()) {
    lock_ = std::make_unique<directory_lock>(opts_.path);
    warn_about_file_system(opts_.path);
  }
  if (const std::error_code ec = checkpoint_.open(fs_, opts_.path)) {
    throw std::runtime_error("spool: cannot read the checkpoint in " + opts_.path + ": " + ec.message());
  }
  recovery_ = log_.open(checkpoint_.lwm());
  last_read_ = recovery_.first_unconfirmed - 1;
  sync_thread_ = std::thread([this] { sync_loop(); });
  arm_checkpoint_timer();
}

spool::~spool() {
  close();
  alive_.reset();
}

// ---- writing ------------------------------------------------------------------------------------------------------

spool::append_result spool::append(std::int64_t received_at_ns, std::string_view payload, std::uint64_t& seq) {
  if (failed_ || closed_) {
    return append_result::failed;
  }
  switch (log_.append(received_at_ns, payload, seq)) {
    case segment_log::append_result::ok:
      if (log_.preallocation_unsupported() && !warned_preallocation_) {
        warned_preallocation_ = true;
        log::warn("", "spool: the file system under ", opts_.path,
                  " cannot preallocate segments (fallocate: not "
                  "supported): a full disk then fails a write, which stops the daemon, instead of applying "
                  "spool.when_full; use ext4 or xfs");
      }
      schedule_flush();
      return append_result::ok;
    case segment_log::append_result::full:
      if (!was_full_) {
        was_full_ = true;
        log::warn("", "spool: full (", describe(log_.full()), "; ", log_.used_bytes(), " bytes in ",
                  log_.segment_count(), " segments under ", opts_.path,
                  "): spool.when_full applies until "
                  "Kafka confirms enough to free a segment");
        arm_full_timer();
      }
      return append_result::full;
    case segment_log::append_result::failed:
      break;
  }
  report_failure(log_.error_context() + ": " + log_.error().message());
  return append_result::failed;
}

void spool::schedule_flush() {
  if (flush_posted_) {
    return;
  }
  // After the current handler: every event of one upstream read goes out in one write().
  boost::asio::post(io_, [this, token = std::weak_ptr<int>(alive_)]() noexcept {
    if (token.lock()) {
      flush_now();
    }
  });
  flush_posted_ = true;
}

void spool::flush_now() {
  flush_posted_ = false;
  if (failed_ || closed_) {
    return;
  }
  if (const std::error_code ec = log_.flush()) {
    report_failure(log_.error_context() + ": " + ec.message());
    return;
  }
  const std::uint64_t through = log_.next_seq() - 1;
  if (opts_.fsync_interval.count() == 0) {
    // Told after the fdatasync that covers this write (sync_loop()), not now.
    const std::lock_guard lock(mutex_);
    sync_now_ = true;
    synced_want_ = through;
    wake_.notify_one();
    return;
  }
  owner_.on_spool_written(through);
}

// ---- the window ---------------------------------------------------------------------------------------------------

void spool::take_live(std::uint64_t seq, std::int64_t received_at_ns) {
  log_.skip_to_end();
  window_.push_back({seq, received_at_ns, false});
  last_read_ = seq;
}

spool::read_result spool::read_next(frame_view& out) {
  if (failed_) {
    return read_result::failed;
  }
  switch (log_.read_next(out)) {
    case segment_log::read_result::record:
      window_.push_back({out.seq, out.received_at_ns, false});
      last_read_ = out.seq;
      if (out.seq < recovery_.next_seq) {
        ++replayed_;
      }
      return read_result::record;
    case segment_log::read_result::end:
      return read_result::end;
    case segment_log::read_result::failed:
      break;
  }
  report_failure(log_.error_context() + ": " + log_.error().message());
  return read_result::failed;
}

void spool::settle(std::uint64_t seq) noexcept {
  const auto it = std::lower_bound(window_.begin(), window_.end(), seq,
                                   [](const window_entry& e, std::uint64_t s) { return e.seq < s; });
  if (it == window_.end() || it->seq != seq || it->settled) {
    return;
  }
  it->settled = true;
  ++settled_in_window_;
  while (!window_.empty() && window_.front().settled) {
    window_.pop_front();
    --settled_in_window_;
  }
}

std::uint64_t spool::lwm() const noexcept {
  return window_.empty() ? last_read_ + 1 : window_.front().seq;
}

spool::figures spool::current() const {
  figures f;
  f.bytes = log_.used_bytes();
  f.records = log_.next_seq() - std::min(log_.next_seq(), lwm());
  if (!window_.empty()) {
    const auto now_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    f.oldest_age_seconds = std::max<double>(0, static_cast<double>(now_ns - window_.front().received_at_ns) / 1e9);
  }
  f.corrupt = log_.corrupt_regions();
  f.replayed = replayed_;
  f.segments = log_.segment_count();
  return f;
}

// ---- checkpoint, reclaim, full ------------------------------------------------------------------------------------

void spool::arm_checkpoint_timer() {
  checkpoint_timer_.expires_after(opts_.checkpoint_interval);
  checkpoint_timer_.async_wait(
      [this, token = std::weak_ptr<int>(alive_)](const boost::system::error_code& ec) noexcept {
        if (ec || !token.lock() || closed_ || failed_) {
          return;
        }
        const std::uint64_t l = lwm();
        if (l > requested_lwm_) {
          requested_lwm_ = l;
          const std::lock_guard lock(mutex_);
          checkpoint_want_ = l;
          wake_.notify_one();
        }
        arm_checkpoint_timer();
      });
}

void spool::after_persisted(std::uint64_t persisted) {
  if (failed_ || closed_) {
    return;
  }
  if (log_.reclaim_below(persisted) > 0) {
    // The sync thread closes the removed segments (which frees their space) and syncs the directory now, not at
    // its next fsync_interval (with fsync_interval 0 and no appends, that could be never).
    const std::lock_guard lock(mutex_);
    sync_now_ = true;
    wake_.notify_one();
  }
  if (log_.error()) {
    report_failure(log_.error_context() + ": " + log_.error().message());
    return;
  }
  if (was_full_ && log_.try_leave_full()) {
    was_full_ = false;
    boost::system::error_code ignored;
    full_timer_.cancel(ignored);
    log::info("", "spool: room again (", log_.used_bytes(), " bytes in ", log_.segment_count(), " segments)");
    owner_.on_spool_room();
  }
}

void spool::arm_full_timer() {
  full_timer_.expires_after(opts_.full_retry);
  full_timer_.async_wait([this, token = std::weak_ptr<int>(alive_)](const boost::system::error_code& ec) noexcept {
    if (ec || !token.lock() || closed_ || failed_ || !was_full_) {
      return;
    }
    if (log_.try_leave_full()) {
      was_full_ = false;
      log::info("", "spool: room again (", log_.used_bytes(), " bytes in ", log_.segment_count(), " segments)");
      owner_.on_spool_room();
      return;
    }
    if (log_.error()) {
      report_failure(log_.error_context() + ": " + log_.error().message());
      return;
    }
    arm_full_timer();
  });
}

void spool::report_failure(const std::string& reason) noexcept {
  if (failed_) {
    return;
  }
  failed_ = true;
  log::error("", "spool: ", reason, "; the spool takes nothing more and the daemon stops (a failed write or fdatasync ",
             "is never retried: the next start recovers what is on disk and sends it again)");
  owner_.on_spool_failed(reason);
}

// ---- the sync thread ----------------------------------------------------------------------------------------------

void spool::sync_loop() noexcept {
  const bool periodic = opts_.fsync_interval.count() > 0;
  auto next_sync = clock::now() + opts_.fsync_interval;
  std::unique_lock lock(mutex_);
  for (;;) {
    const auto ready = [this] { return stop_ || sync_now_ || checkpoint_want_ != 0; };
    if (periodic) {
      wake_.wait_until(lock, next_sync, ready);
    } else {
      wake_.wait(lock, ready);
    }
    const bool stopping = stop_;
    const std::uint64_t want = std::exchange(checkpoint_want_, 0);
    const std::uint64_t synced_through = std::exchange(synced_want_, 0);
    const bool due = sync_now_ || stopping || (periodic && clock::now() >= next_sync);
    sync_now_ = false;
    lock.unlock();

    std::string failure;
    if (due) {
      sync_job job = log_.take_sync_job();
      for (const std::shared_ptr<file>& f : job.files) {
        if (const std::error_code ec = f->sync_data()) {
          failure = "fdatasync of a segment under " + opts_.path + " failed: " + ec.message();
          break;
        }
      }
      if (failure.empty() && job.directory) {
        if (const std::error_code ec = fs_.sync_directory(opts_.path)) {
          failure = "fsync of the directory " + opts_.path + " failed: " + ec.message();
        }
      }
      next_sync = clock::now() + opts_.fsync_interval;
      if (failure.empty() && synced_through != 0) {
        boost::asio::post(io_, [this, synced_through, token = std::weak_ptr<int>(alive_)]() noexcept {
          if (token.lock() && !failed_) {
            owner_.on_spool_written(synced_through);
          }
        });
      }
    }
    if (failure.empty() && want != 0) {
      if (const std::error_code ec = checkpoint_.store(want)) {
        failure = "writing the checkpoint under " + opts_.path + " failed: " + ec.message();
      } else {
        boost::asio::post(io_, [this, want, token = std::weak_ptr<int>(alive_)]() noexcept {
          if (token.lock()) {
            after_persisted(want);
          }
        });
      }
    }
    if (!failure.empty()) {
      boost::asio::post(io_, [this, failure, token = std::weak_ptr<int>(alive_)]() noexcept {
        if (token.lock()) {
          report_failure(failure);
        }
      });
      return;
    }
    lock.lock();
    if (stopping) {
      return;
    }
  }
}

void spool::close() noexcept {
  if (closed_) {
    return;
  }
  closed_ = true;
  boost::system::error_code ignored;
  checkpoint_timer_.cancel(ignored);
  full_timer_.cancel(ignored);
  if (!failed_) {
    if (const std::error_code ec = log_.flush()) {
      log::error("", "spool: ", log_.error_context(), ": ", ec.message(), " at the stop");
      failed_ = true;
    }
  }
  {
    const std::lock_guard lock(mutex_);
    stop_ = true;
    if (!failed_) {
      checkpoint_want_ = lwm();
    }
    wake_.notify_one();
  }
  if (sync_thread_.joinable()) {
    sync_thread_.join();
  }
}

}  // namespace rtm::spool
