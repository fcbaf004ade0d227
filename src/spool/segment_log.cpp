#include "spool/segment_log.hpp"

#include <algorithm>
#include <stdexcept>

#include "spool/segment_reader.hpp"

namespace rtm::spool {
namespace {

constexpr std::size_t write_buffer_reserve = std::size_t{256} * 1024;
// The write buffer is written out at this size even within one handler's batch: bounded memory and a bounded
// amount of data a kill can catch unwritten.
constexpr std::size_t write_buffer_flush = std::size_t{64} * 1024;

std::runtime_error open_error(const std::string& what, const std::string& path, const std::error_code& ec) {
  return std::runtime_error("spool: cannot " + what + " " + path + ": " + ec.message());
}

bool is_no_space(const std::error_code& ec) noexcept {
  return ec == std::errc::no_space_on_device || ec.value() == EDQUOT;
}

}  // namespace

segment_log::segment_log(file_system& fs, log_options opts) : fs_(fs), opts_(std::move(opts)) {
  buffer_.reserve(write_buffer_reserve);
}

std::string segment_log::path_of(std::uint64_t first_seq) const {
  return opts_.dir + "/" + segment_file_name(first_seq);
}

recovery_report segment_log::open(std::uint64_t checkpoint_lwm) {
  recovery_report report;
  if (const std::error_code ec = fs_.create_directories(opts_.dir)) {
    throw open_error("create the spool directory", opts_.dir, ec);
  }
  std::vector<std::string> names;
  if (const std::error_code ec = fs_.list(opts_.dir, names)) {
    throw open_error("list the spool directory", opts_.dir, ec);
  }
  std::vector<std::uint64_t> firsts;
  for (const std::string& name : names) {
    std::uint64_t first = 0;
    if (parse_segment_file_name(name, first)) {
      firsts.push_back(first);
    }
  }
  std::sort(firsts.begin(), firsts.end());

  // Wholly confirmed before the stop: the next segment starts at or below the lwm.
  std::size_t keep_from = 0;
  while (keep_from + 1 < firsts.size() && firsts[keep_from + 1] <= checkpoint_lwm) {
    ++keep_from;
  }
  for (std::size_t i = 0; i < keep_from; ++i) {
    if (const std::error_code ec = fs_.remove(path_of(firsts[i]))) {
      throw open_error("remove the confirmed segment", path_of(firsts[i]), ec);
    }
    ++report.segments_removed;
  }
  firsts.erase(firsts.begin(), firsts.begin() + static_cast<std::ptrdiff_t>(keep_from));

  std::uint64_t next = std::max<std::uint64_t>({1, checkpoint_lwm});
  for (std::size_t i = 0; i < firsts.size(); ++i) {
    segment s;
    s.first_seq = firsts[i];
    s.path = path_of(firsts[i]);
    next = std::max(next, s.first_seq);
    const bool last = i + 1 == firsts.size();
    if (const std::error_code ec = fs_.open(s.path, last ? open_mode::read_write : open_mode::read_only, s.f)) {
      throw open_error("open the segment", s.path, ec);
    }
    if (const std::error_code ec = s.f->size(s.size)) {
      throw open_error("stat the segment", s.path, ec);
    }
    if (last) {
      // The tail: scan from the start and cut after the last valid frame (a kill leaves whole frames; a power loss
      // may leave a torn or half-synced one). Bad bytes with valid frames after them are not a torn tail but damage
      // inside (a flipped byte, a page written back after a later one): the scan resynchronises past them and keeps
      // what follows, which the reader then counts and skips like corruption in a sealed segment. Stopping at the
      // first bad frame would cut every record after it (found by the corruption campaign,
      // tests/spool/power_loss_test.cpp).
      segment_reader scan(s.f, s.size);
      std::uint64_t last_seq = 0;
      std::uint64_t good = 0;  // the end of the last valid frame
      for (;;) {
        frame_view f;
        std::error_code ec;
        const decode_status st = scan.next(f, ec);
        if (ec) {
          throw open_error("read the segment", s.path, ec);
        }
        if (st == decode_status::ok) {
          if (f.seq <= last_seq || f.seq < s.first_seq) {
            break;  // out of sequence: not ours to keep
          }
          last_seq = f.seq;
          good = scan.offset();
          ++report.tail_records;
          continue;
        }
        if (scan.at_end() || !scan.resync(ec)) {
          if (ec) {
            throw open_error("read the segment", s.path, ec);
          }
          break;
        }
      }
      report.truncated_bytes = s.size - good;
      next = std::max(next, last_seq + 1);
      if (good == 0) {
        // Nothing valid (created just before a stop, or torn whole): its first seq still bounds the next one.
        s.f.reset();
        if (const std::error_code ec = fs_.remove(s.path)) {
          throw open_error("remove the empty segment", s.path, ec);
        }
        ++report.segments_removed;
        continue;
      }
      // Also releases the preallocation past the data.
      if (const std::error_code ec = s.f->truncate(good)) {
        throw open_error("truncate the torn tail of", s.path, ec);
      }
      s.size = good;
    }
    s.reserved = s.size;
    report.bytes += s.size;
    segments_.push_back(std::move(s));
  }
  next_seq_ = next;
  read_min_ = std::max<std::uint64_t>(1, checkpoint_lwm);
  last_returned_ = 0;
  // Reading starts in the segment that holds the lwm: the last one starting at or below it.
  read_segment_ = segments_.empty() ? next_seq_ : segments_.front().first_seq;
  for (const segment& s : segments_) {
    if (s.first_seq <= read_min_) {
      read_segment_ = s.first_seq;
    }
  }
  report.next_seq = next_seq_;
  report.first_unconfirmed = segments_.empty() ? next_seq_ : std::max(read_min_, segments_.front().first_seq);
  report.segments = segments_.size();
  mark_dirty(nullptr, report.segments_removed > 0);
  return report;
}

// ---- writing ------------------------------------------------------------------------------------------------------

void segment_log::fail(std::error_code ec, std::string context) {
  if (!error_) {
    error_ = ec;
    error_context_ = std::move(context);
  }
}

void segment_log::mark_dirty(const std::shared_ptr<file>& f, bool directory) {
  const std::lock_guard lock(dirty_mutex_);
  if (f && std::find(dirty_files_.begin(), dirty_files_.end(), f) == dirty_files_.end()) {
    dirty_files_.push_back(f);
  }
  dirty_directory_ = dirty_directory_ || directory;
}

sync_job segment_log::take_sync_job() {
  const std::lock_guard lock(dirty_mutex_);
  sync_job job;
  job.files.swap(dirty_files_);
  job.directory = dirty_directory_;
  dirty_directory_ = false;
  job.retired.swap(retired_files_);
  return job;
}

std::uint64_t segment_log::used_bytes() const noexcept {
  std::uint64_t total = 0;
  for (const segment& s : segments_) {
    total += std::max(s.size, s.reserved);
  }
  return total;
}

bool segment_log::roll(std::size_t frame_size) {
  const std::uint64_t capacity = std::max<std::uint64_t>(opts_.segment_size, frame_size);
  // The active segment's preallocation beyond its data is given back when it is sealed below, so it is not
  // counted twice against the limit.
  std::uint64_t used = 0;
  for (const segment& s : segments_) {
    used += s.size;
  }
  if (used + capacity > opts_.max_size) {
    full_ = full_reason::max_size;
    return false;
  }
  std::uint64_t free = 0;
  if (const std::error_code ec = fs_.free_space(opts_.dir, free)) {
    fail(ec, "cannot query the free space of " + opts_.dir);
    return false;
  }
  if (free < capacity + opts_.min_free) {
    // A segment that does not fit at all is the disk being full (what fallocate would say), whatever min_free is:
    // with min_free 0 the log must not blame a reserve the operator never set.
    full_ = free < capacity ? full_reason::no_space : full_reason::min_free;
    return false;
  }
  if (!segments_.empty() && segments_.back().active && segments_.back().size == 0 && buffer_.empty()) {
    // The active segment is empty (try_leave_full() made it before a record came) and `frame_size` exceeds its
    // preallocation. A new segment would start at the same seq, so under the same name: EEXIST, a fatal error. This
    // one's preallocation grows instead (found by the power-loss campaign, tests/spool/power_loss_test.cpp).
    segment& empty = segments_.back();
    if (const std::error_code ec = empty.f->reserve(capacity); ec && ec != std::errc::operation_not_supported) {
      if (is_no_space(ec)) {
        full_ = full_reason::no_space;
        return false;
      }
      fail(ec, "cannot preallocate " + std::to_string(capacity) + " bytes for the segment " + empty.path);
      return false;
    }
    empty.reserved = std::max(empty.reserved, capacity);
    full_ = full_reason::none;
    return true;
  }
  segment s;
  s.first_seq = next_seq_;
  s.path = path_of(next_seq_);
  if (const std::error_code ec = fs_.open(s.path, open_mode::create_new, s.f)) {
    if (is_no_space(ec)) {
      full_ = full_reason::no_space;
      return false;
    }
    fail(ec, "cannot create the segment " + s.path);
    return false;
  }
  if (const std::error_code ec = s.f->reserve(capacity)) {
    if (ec == std::errc::operation_not_supported) {
      warned_no_prealloc_ = true;  // the spool reports it: without preallocation ENOSPC can hit a write
    } else {
      s.f.reset();
      const std::error_code removed = fs_.remove(s.path);
      if (is_no_space(ec) && !removed) {
        full_ = full_reason::no_space;
        mark_dirty(nullptr, true);
        return false;
      }
      fail(ec, "cannot preallocate " + std::to_string(capacity) + " bytes for the segment " + s.path);
      return false;
    }
  }
  if (!segments_.empty() && segments_.back().active) {
    segment& old = segments_.back();
    old.active = false;
    // Gives the unused preallocation back; the data stays.
    if (const std::error_code ec = old.f->truncate(old.size)) {
      fail(ec, "cannot seal the segment " + old.path);
      return false;
    }
    old.reserved = old.size;
  }
  s.reserved = capacity;
  s.active = true;
  segments_.push_back(std::move(s));
  mark_dirty(segments_.back().f, true);
  full_ = full_reason::none;
  return true;
}

segment_log::append_result segment_log::append(std::int64_t received_at_ns, std::string_view payload,
                                               std::uint64_t& seq) {
  if (error_) {
    return append_result::failed;
  }
  if (full_ != full_reason::none) {
    return append_result::full;
  }
  const std::size_t frame_size = frame_overhead + payload.size();
  if (payload.size() > max_payload) {
    return append_result::full;  // the upstream size limits keep events far below this
  }
  if (segments_.empty() || !segments_.back().active ||
      segments_.back().size + buffer_.size() + frame_size > segments_.back().reserved) {
    if (flush()) {
      return append_result::failed;
    }
    if (!roll(frame_size)) {
      return error_ ? append_result::failed : append_result::full;
    }
  }
  seq = next_seq_++;
  const std::size_t at = buffer_.size();
  buffer_.resize(at + frame_size);
  encode_frame_into(buffer_.data() + at, seq, received_at_ns, 0, payload);
  if (buffer_.size() >= write_buffer_flush && flush()) {
    return append_result::failed;  // `seq` was assigned, but nothing after the error counts as written
  }
  return append_result::ok;
}

std::error_code segment_log::flush() {
  if (error_) {
    return error_;
  }
  if (buffer_.empty()) {
    return {};
  }
  segment& s = segments_.back();
  if (const std::error_code ec = s.f->write_at(s.size, buffer_.data(), buffer_.size())) {
    fail(ec, "cannot write to the segment " + s.path);
    return error_;
  }
  s.size += buffer_.size();
  buffer_.clear();
  mark_dirty(s.f, false);
  return {};
}

bool segment_log::try_leave_full() {
  if (full_ == full_reason::none) {
    return true;
  }
  if (error_ || flush()) {
    return false;
  }
  return roll(0);
}

// ---- reading ------------------------------------------------------------------------------------------------------

segment_log::segment* segment_log::find_segment(std::uint64_t first_seq) noexcept {
  for (segment& s : segments_) {
    if (s.first_seq == first_seq) {
      return &s;
    }
  }
  return nullptr;
}

bool segment_log::at_end() const noexcept {
  if (segments_.empty()) {
    return true;
  }
  const segment& back = segments_.back();
  return read_segment_ == back.first_seq && read_offset() >= back.size + buffer_.size();
}

std::uint64_t segment_log::read_offset() const noexcept {
  return reader_ ? reader_->offset() : 0;
}

void segment_log::skip_to_end() {
  if (segments_.empty()) {
    return;
  }
  segment& back = segments_.back();
  if (!reader_ || read_segment_ != back.first_seq) {
    read_segment_ = back.first_seq;
    reader_.emplace(back.f, back.size);
  }
  reader_->seek(back.size + buffer_.size());
}

segment_log::read_result segment_log::read_next(frame_view& out) {
  for (;;) {
    if (error_) {
      return read_result::failed;
    }
    segment* s = find_segment(read_segment_);
    if (s == nullptr) {
      // Not created yet, or removed: go on with the first segment after it.
      const auto it = std::find_if(segments_.begin(), segments_.end(),
                                   [this](const segment& x) { return x.first_seq > read_segment_; });
      if (it == segments_.end()) {
        return read_result::end;
      }
      read_segment_ = it->first_seq;
      reader_.reset();
      continue;
    }
    if (!reader_) {
      if (!s->f) {
        if (const std::error_code ec = fs_.open(s->path, open_mode::read_only, s->f)) {
          fail(ec, "cannot open the segment " + s->path);
          return read_result::failed;
        }
      }
      reader_.emplace(s->f, s->size);
      in_corrupt_region_ = false;
    }
    reader_->set_limit(s->size);
    if (reader_->at_end()) {
      if (s->active) {
        if (buffer_.empty()) {
          return read_result::end;
        }
        if (flush()) {
          return read_result::failed;
        }
        continue;
      }
      if (s == &segments_.back()) {
        return read_result::end;  // the last one, sealed at a restart: appends go to a segment made later
      }
      // Sealed and read through: the next segment.
      read_segment_ = s->first_seq + 1;
      reader_.reset();
      continue;
    }
    std::error_code ec;
    const decode_status st = reader_->next(out, ec);
    if (ec) {
      fail(ec, "cannot read the segment " + s->path);
      return read_result::failed;
    }
    if (st == decode_status::ok && out.seq > last_returned_) {
      in_corrupt_region_ = false;
      if (out.seq < read_min_) {
        continue;  // confirmed before the restart
      }
      last_returned_ = out.seq;
      return read_result::record;
    }
    if (st == decode_status::ok) {
      // A valid frame out of sequence (only a damaged or foreign file has one): the window needs increasing
      // sequence numbers, so it counts as corruption and is skipped.
      if (!in_corrupt_region_) {
        ++corrupt_;
        in_corrupt_region_ = true;
      }
      continue;
    }
    // Corrupt bytes, or a frame cut short by the end of a sealed segment: count the region once and go on at the
    // next whole valid frame (or the segment's end). Reading never stops on corruption.
    if (!in_corrupt_region_) {
      ++corrupt_;
      in_corrupt_region_ = true;
    }
    if (!reader_->resync(ec) && ec) {
      fail(ec, "cannot read the segment " + s->path);
      return read_result::failed;
    }
  }
}

// ---- space --------------------------------------------------------------------------------------------------------

std::size_t segment_log::reclaim_below(std::uint64_t lwm) {
  std::size_t removed = 0;
  while (segments_.size() >= 2 && !segments_.front().active && segments_[1].first_seq <= lwm &&
         segments_.front().first_seq < read_segment_) {
    segment& s = segments_.front();
    if (const std::error_code ec = fs_.remove(s.path); ec && ec != std::errc::no_such_file_or_directory) {
      fail(ec, "cannot remove the confirmed segment " + s.path);
      break;
    }
    if (s.f) {
      // Not closed here: freeing the unlinked file's blocks at its last close takes the file system tens of ms
      // per 64 MiB, on whichever thread drops the last reference. The sync thread does it (sync_job::retired).
      const std::lock_guard lock(dirty_mutex_);
      retired_files_.push_back(std::move(s.f));
    }
    segments_.pop_front();
    ++removed;
  }
  if (removed > 0) {
    mark_dirty(nullptr, true);
  }
  return removed;
}

}  // namespace rtm::spool
