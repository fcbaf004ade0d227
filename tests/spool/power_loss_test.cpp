// Simulated power loss and corruption for the spool (issue 16, "Proof"; design B9 items 5 and 6): seeded campaigns
// that drive segment_log and checkpoint on the model disk (tests/support/model_file_system.hpp) the way the spool
// does, cut the power or flip bytes, recover, and hold what comes back against an oracle the test keeps itself. Then
// the spool wrapper on the model disk: a failed fdatasync, and a clean close.
//
// Everything runs on the test thread except the spool wrapper's sync thread in the last cases; the campaigns are
// deterministic (a failure names the point and its seed; RTM_SPOOL_POWER_SEED and RTM_SPOOL_POWER_POINTS repeat or
// widen a run).
#include <doctest/doctest.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "spool/checkpoint.hpp"
#include "spool/format.hpp"
#include "spool/segment_log.hpp"
#include "spool/spool.hpp"
#include "support/model_file_system.hpp"
#include "support/process.hpp"

using namespace rtm::spool;
using rtm::test::model_file_system;

namespace {

constexpr const char* dir = "/spool";
// Small segments, so that a point rolls, seals and reclaims many times.
constexpr std::uint64_t segment_size = 8192;

// The campaigns check millions of things, and doctest's REQUIRE costs more than most of the work it would check: a
// plain test that fails the test case the same way, naming the expression and what the point was at.
#define CAMPAIGN_REQUIRE(cond, ...)                        \
  do {                                                     \
    if (!(cond)) {                                         \
      FAIL("CAMPAIGN_REQUIRE(" #cond ") " << __VA_ARGS__); \
    }                                                      \
  } while (false)

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* text = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): read before any thread
  if (text == nullptr || *text == '\0') {
    return fallback;
  }
  return std::strtoull(text, nullptr, 10);
}

// The seeded points of the power-loss campaign (the corruption campaign runs a quarter as many): 2000 in the suite
// (a tenth under valgrind), RTM_SPOOL_POWER_POINTS for more (the full campaign: 10000).
std::uint64_t campaign_points() {
  return env_number("RTM_SPOOL_POWER_POINTS", rtm::test::volume(2000));
}

std::uint64_t campaign_seed() {
  return env_number("RTM_SPOOL_POWER_SEED", 20261116);
}

std::uint64_t below(std::mt19937_64& rng, std::uint64_t n) {
  return n == 0 ? 0 : rng() % n;
}

bool chance(std::mt19937_64& rng, unsigned percent) {
  return rng() % 100 < percent;
}

// A payload that names its record (`tag`) and has a random size: mostly small, some large, some around a whole
// segment (one frame fills a segment exactly, or just does not fit, or needs a segment of its own beyond
// segment_size). The text contains the frame magic ("RTMS") now and then, so that a resync meets false candidates.
std::string make_payload(std::mt19937_64& rng, std::uint64_t tag) {
  std::size_t size = 0;
  const std::uint64_t pick = below(rng, 100);
  if (pick < 70) {
    size = below(rng, 200);
  } else if (pick < 90) {
    size = 200 + below(rng, 1800);
  } else if (pick < 97) {
    size = segment_size - frame_overhead - 16 + below(rng, 32);
  } else {
    size = segment_size + below(rng, segment_size);
  }
  std::string p = "r" + std::to_string(tag) + ":";
  const std::size_t head = p.size();
  p.resize(std::max(size, head), static_cast<char>('a' + below(rng, 26)));
  // A few letters at random places, and now and then the magic (cheap: the campaign makes ~400 MB of payloads).
  for (int i = 0; i < 8 && p.size() > head; ++i) {
    p[head + below(rng, p.size() - head)] = static_cast<char>('a' + below(rng, 26));
  }
  if (chance(rng, 30) && p.size() >= head + 4) {
    p.replace(head + below(rng, p.size() - head - 3), 4, "RTMS");
  }
  return p;
}

struct record {
  std::string payload;
  std::int64_t received_at = 0;
  [[nodiscard]] bool matches(const frame_view& f) const {
    return f.payload == payload && f.received_at_ns == received_at;
  }
};
// Records are shared by the oracle's lists, not copied into each (they add up to hundreds of megabytes).
using record_ptr = std::shared_ptr<const record>;

bool is_segment(const std::string& path) {
  return path.size() > 4 && path.compare(path.size() - 4, 4, ".seg") == 0;
}

std::string file_bytes(model_file_system& fs, const std::string& path) {
  std::shared_ptr<file> f;
  REQUIRE_FALSE(fs.open(path, open_mode::read_only, f));
  std::uint64_t size = 0;
  REQUIRE_FALSE(f->size(size));
  std::string out(size, '\0');
  std::size_t got = 0;
  REQUIRE_FALSE(f->read_at(0, out.data(), out.size(), got));
  REQUIRE(got == size);
  return out;
}

// ---- the power-loss campaign -----------------------------------------------------------------------------------

struct campaign_totals {
  std::uint64_t points = 0;
  std::uint64_t power_losses = 0;
  std::uint64_t records_appended = 0;
  std::uint64_t records_checked = 0;  // synced records the oracle required back, and got
  std::uint64_t records_read_back = 0;
  std::uint64_t torn_tails_cut = 0;
  std::uint64_t corrupt_regions = 0;
  std::uint64_t segments_removed = 0;
  std::uint64_t lwms_stored = 0;
};

// One seeded point: a process (segment_log + checkpoint on one model disk, driven as the spool drives them, without
// threads) runs a random sequence of operations, the power goes out, the next process recovers and is checked; up to
// three such lives per point, each starting from what the last power loss left.
class power_point {
 public:
  power_point(std::uint64_t seed, campaign_totals& totals) : rng_(seed), totals_(totals) {}

  void run() {
    open_checkpoint();
    log_ = std::make_unique<segment_log>(fs_, options());
    const recovery_report first = log_->open(cp_->lwm());
    REQUIRE(first.next_seq == 1);
    last_read_ = first.first_unconfirmed - 1;
    const std::uint64_t lives = 1 + below(rng_, 3);
    for (std::uint64_t life = 0; life < lives; ++life) {
      CAPTURE(life);
      live();
      lose_power();
      recover();
    }
    ++totals_.points;
  }

 private:
  static log_options options() {
    return {.dir = dir, .segment_size = segment_size, .max_size = 12 * segment_size, .min_free = 0};
  }

  void open_checkpoint() {
    cp_ = std::make_unique<checkpoint>();
    REQUIRE_FALSE(cp_->open(fs_, dir));
  }

  // What the spool's write path knows: once the buffer is empty, every record appended so far was written.
  void note_written() {
    if (!log_->has_buffered()) {
      written_.insert(written_.end(), buffered_.begin(), buffered_.end());
      buffered_.clear();
    }
  }

  void append_some() {
    const std::uint64_t n = 1 + below(rng_, 20);
    for (std::uint64_t i = 0; i < n; ++i) {
      const auto r =
          std::make_shared<const record>(record{make_payload(rng_, tag_++), static_cast<std::int64_t>(rng_() >> 1U)});
      std::uint64_t seq = 0;
      const segment_log::append_result res = log_->append(r->received_at, r->payload, seq);
      if (res == segment_log::append_result::full) {
        CAMPAIGN_REQUIRE(log_->full() != segment_log::full_reason::none, "");
        return;  // nothing consumed; the settle step makes room
      }
      CAMPAIGN_REQUIRE(res == segment_log::append_result::ok,
                       "append: " << log_->error_context() << ": " << log_->error().message());
      CAMPAIGN_REQUIRE(seq == seq_floor_, "seq " << seq);  // consecutive within a life
      seq_floor_ = seq + 1;
      appended_[seq].push_back(r);
      buffered_.emplace_back(seq, r);
      unread_.emplace_back(seq, r);
      ++totals_.records_appended;
      note_written();
    }
  }

  // The sync thread's pass: take the job, fdatasync each file, fsync the directory when asked. `complete` false: the
  // power goes out part way (some files synced, the directory perhaps not), which makes nothing required.
  void sync_pass(bool complete) {
    sync_job job = log_->take_sync_job();
    std::size_t files = job.files.size();
    if (!complete) {
      files = below(rng_, files + 1);
    }
    for (std::size_t i = 0; i < files; ++i) {
      REQUIRE_FALSE(job.files[i]->sync_data());
    }
    if (job.directory && (complete || chance(rng_, 50))) {
      REQUIRE_FALSE(fs_.sync_directory(dir));
    }
    if (complete) {
      for (auto& [seq, r] : written_) {
        durable_[seq] = r;
      }
      written_.clear();
    }
  }

  // The publisher: records come back in the order appended, none missing, none corrupt (nothing was lost yet in this
  // life), and join the window.
  void read_some() {
    const std::uint64_t n = 1 + below(rng_, 40);
    for (std::uint64_t i = 0; i < n; ++i) {
      frame_view f;
      const segment_log::read_result res = log_->read_next(f);
      CAMPAIGN_REQUIRE(res != segment_log::read_result::failed, log_->error_context());
      if (res == segment_log::read_result::end) {
        CAMPAIGN_REQUIRE(unread_.empty(), "the reader ended before seq " << unread_.front().first);
        CAMPAIGN_REQUIRE(log_->at_end(), "");
        break;
      }
      CAMPAIGN_REQUIRE(!unread_.empty(), "seq " << f.seq << " read, none unread");
      CAMPAIGN_REQUIRE(f.seq == unread_.front().first, "seq " << f.seq);
      CAMPAIGN_REQUIRE(unread_.front().second->matches(f), "seq " << f.seq);
      unread_.pop_front();
      window_.push_back(f.seq);
      last_read_ = f.seq;
    }
    note_written();  // reading flushes the buffer when it reaches it
  }

  // Kafka confirms a prefix of the window; the checkpoint persists the new lwm, then the segments below it go (the
  // spool's order: after_persisted runs once the store returned).
  void settle_some() { settle(below(rng_, window_.size() + 1)); }

  void settle(std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) {
      window_.pop_front();
    }
    const std::uint64_t lwm = window_.empty() ? last_read_ + 1 : window_.front();
    if (lwm > requested_lwm_) {
      requested_lwm_ = lwm;
      REQUIRE_FALSE(cp_->store(lwm));
      stored_.insert(lwm);
      last_stored_ = lwm;
      max_stored_ = std::max(max_stored_, lwm);
      ++totals_.lwms_stored;
      log_->reclaim_below(lwm);
      REQUIRE_FALSE(log_->error());
    }
    if (log_->full() != segment_log::full_reason::none) {
      log_->try_leave_full();
      REQUIRE_FALSE(log_->error());
    }
  }

  void live() {
    const std::uint64_t ops = 5 + below(rng_, 60);
    for (std::uint64_t op = 0; op < ops; ++op) {
      const std::uint64_t pick = below(rng_, 100);
      if (pick < 40) {
        append_some();
      } else if (pick < 55) {
        REQUIRE_FALSE(log_->flush());
        note_written();
      } else if (pick < 70) {
        sync_pass(true);
      } else if (pick < 85) {
        read_some();
      } else {
        settle_some();
      }
    }
    if (chance(rng_, 30)) {
      sync_pass(false);
    }
  }

  void lose_power() {
    fs_.power_loss(rng_);
    ++totals_.power_losses;
    // The process is gone: its objects go without touching the disk again (a segment_log's destructor writes
    // nothing; its files now point at what the power loss replaced).
    log_.reset();
    cp_.reset();
  }

  void recover() {
    const std::vector<std::string> paths = fs_.paths();
    const bool checkpoint_kept =
        std::find(paths.begin(), paths.end(), std::string(dir) + "/" + checkpoint::file_name) != paths.end();
    open_checkpoint();
    const std::uint64_t lwm = cp_->lwm();
    CAPTURE(lwm);
    // A store returns after its fdatasync: the file, if its entry survived, holds the last one.
    if (checkpoint_kept) {
      REQUIRE(lwm == last_stored_);
    } else {
      REQUIRE(lwm == 0);
      last_stored_ = 0;
    }
    REQUIRE((lwm == 0 || stored_.count(lwm) == 1));
    // Below the floor, records were confirmed: they may be gone. With the checkpoint file lost (possible only
    // before any directory fsync made it durable), segments below any lwm stored may have been reclaimed.
    const std::uint64_t floor = checkpoint_kept ? lwm : max_stored_;

    log_ = std::make_unique<segment_log>(fs_, options());
    const recovery_report report = log_->open(lwm);  // never throws: a throw fails the test case
    totals_.torn_tails_cut += report.truncated_bytes > 0 ? 1 : 0;
    totals_.segments_removed += report.segments_removed;
    REQUIRE(report.next_seq >= std::max<std::uint64_t>(1, lwm));
    REQUIRE(report.first_unconfirmed >= std::max<std::uint64_t>(1, lwm));

    // Everything, with a bound: reading must end by itself.
    std::map<std::uint64_t, record_ptr> got;
    std::uint64_t previous = 0;
    const std::uint64_t bound = totals_.records_appended + 16;
    std::uint64_t reads = 0;
    for (;;) {
      CAMPAIGN_REQUIRE(++reads <= bound, "the reader does not end");
      frame_view f;
      const segment_log::read_result res = log_->read_next(f);
      CAMPAIGN_REQUIRE(res != segment_log::read_result::failed, log_->error_context());
      if (res == segment_log::read_result::end) {
        break;
      }
      CAMPAIGN_REQUIRE(f.seq > previous, "seq " << f.seq << " after " << previous);
      CAMPAIGN_REQUIRE(f.seq >= lwm, "seq " << f.seq);
      CAMPAIGN_REQUIRE(f.seq < report.next_seq, "seq " << f.seq);
      previous = f.seq;
      const auto it = appended_.find(f.seq);
      CAMPAIGN_REQUIRE(it != appended_.end(), "seq " << f.seq << " was never appended");
      const auto same =
          std::find_if(it->second.begin(), it->second.end(), [&](const record_ptr& r) { return r->matches(f); });
      CAMPAIGN_REQUIRE(same != it->second.end(),
                       "seq " << f.seq << " is not a record appended with it");  // never invented
      got.emplace(f.seq, *same);
    }
    REQUIRE(log_->at_end());
    totals_.records_read_back += got.size();
    totals_.corrupt_regions += log_->corrupt_regions();

    // Every record synced by a completed pass (or read back by an earlier recovery: it was on the disk then) at or
    // above the floor is back, exactly.
    durable_.erase(durable_.begin(), durable_.lower_bound(floor));
    for (const auto& [seq, r] : durable_) {
      const auto it = got.find(seq);
      CAMPAIGN_REQUIRE(it != got.end(), "synced seq " << seq << " is lost");
      CAMPAIGN_REQUIRE(it->second == r, "synced seq " << seq << " came back changed");
      ++totals_.records_checked;
    }
    for (const auto& [seq, r] : got) {
      durable_[seq] = r;
    }

    // The next life starts where the spool would: the window holds what was read back, appending goes on above it.
    written_.clear();
    buffered_.clear();
    unread_.clear();
    window_.clear();
    requested_lwm_ = 0;
    last_read_ = report.first_unconfirmed - 1;
    for (const auto& [seq, r] : got) {
      window_.push_back(seq);
      last_read_ = seq;
    }
    seq_floor_ = report.next_seq;
    const auto fresh = std::make_shared<const record>(record{make_payload(rng_, tag_++), 7});
    std::uint64_t seq = 0;
    segment_log::append_result res = log_->append(fresh->received_at, fresh->payload, seq);
    if (res == segment_log::append_result::full) {
      // The recovered segments fill max_size: room comes once Kafka confirmed what was read back.
      settle(window_.size());
      REQUIRE(log_->full() == segment_log::full_reason::none);
      res = log_->append(fresh->received_at, fresh->payload, seq);
    }
    REQUIRE(res == segment_log::append_result::ok);
    REQUIRE(seq == report.next_seq);
    REQUIRE(seq > previous);
    appended_[seq].push_back(fresh);
    ++totals_.records_appended;
    seq_floor_ = seq + 1;
    frame_view f;
    REQUIRE(log_->read_next(f) == segment_log::read_result::record);
    REQUIRE(f.seq == seq);
    REQUIRE(fresh->matches(f));
    written_.emplace_back(seq, fresh);  // the read flushed it
    window_.push_back(seq);
    last_read_ = seq;
  }

  std::mt19937_64 rng_;
  campaign_totals& totals_;
  model_file_system fs_;
  std::unique_ptr<checkpoint> cp_;
  std::unique_ptr<segment_log> log_;
  std::uint64_t tag_ = 0;

  // The oracle, kept apart from the code under test.
  std::map<std::uint64_t, std::vector<record_ptr>> appended_;   // every record appended under each seq, in every life
  std::vector<std::pair<std::uint64_t, record_ptr>> buffered_;  // appended, not known to be written yet
  std::vector<std::pair<std::uint64_t, record_ptr>> written_;   // written, not yet covered by a completed sync pass
  std::map<std::uint64_t, record_ptr> durable_;                 // covered by a completed sync pass: must come back
  std::deque<std::pair<std::uint64_t, record_ptr>> unread_;     // appended in this life, not read yet
  std::uint64_t seq_floor_ = 1;                                 // the next append gets at least this
  std::set<std::uint64_t> stored_;                              // every lwm the checkpoint stored
  std::uint64_t last_stored_ = 0;                               // the last one, in the current checkpoint file
  std::uint64_t max_stored_ = 0;

  // The publisher's window: seqs read and not settled.
  std::deque<std::uint64_t> window_;
  std::uint64_t last_read_ = 0;
  std::uint64_t requested_lwm_ = 0;
};

// ---- the corruption campaign -----------------------------------------------------------------------------------

struct corruption_totals {
  std::uint64_t points = 0;
  std::uint64_t flips = 0;
  std::uint64_t records_hit = 0;
  std::uint64_t records_delivered = 0;
  std::uint64_t regions_counted = 0;
  std::uint64_t tails_cut = 0;
};

struct frame_at {
  std::string path;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
  std::uint64_t seq = 0;
  bool hit = false;
};

// One seeded point: a clean run writes records into several segments, then bytes flip at random places in sealed
// segments and in the tail (the last segment, which recovery scans); the next start must deliver every record whose
// frame no flip touched, none that a flip touched, count each run of damaged frames as one region, and read each
// file about once.
void corruption_point(std::uint64_t seed, corruption_totals& totals) {
  std::mt19937_64 rng(seed);
  model_file_system fs;
  const log_options opts{.dir = dir, .segment_size = segment_size, .max_size = std::uint64_t{1} << 30U, .min_free = 0};
  std::map<std::uint64_t, record> appended;
  {
    segment_log log(fs, opts);
    log.open(0);
    const std::uint64_t n = 20 + below(rng, 300);
    for (std::uint64_t i = 0; i < n; ++i) {
      record r{make_payload(rng, i), static_cast<std::int64_t>(rng() >> 1U)};
      std::uint64_t seq = 0;
      CAMPAIGN_REQUIRE(log.append(r.received_at, r.payload, seq) == segment_log::append_result::ok, "");
      appended.emplace(seq, r);
      if (chance(rng, 20)) {
        REQUIRE_FALSE(log.flush());
      }
    }
    REQUIRE_FALSE(log.flush());
  }

  // The layout, from the clean files (they must hold exactly what was appended, in order).
  std::vector<std::string> segments;
  for (const std::string& p : fs.paths()) {
    if (is_segment(p)) {
      segments.push_back(p);  // sorted: the names are zero-padded first seqs
    }
  }
  REQUIRE_FALSE(segments.empty());
  std::vector<frame_at> frames;
  std::map<std::string, std::uint64_t> sizes;
  std::uint64_t total_bytes = 0;
  for (const std::string& p : segments) {
    const std::string bytes = file_bytes(fs, p);
    sizes[p] = bytes.size();
    total_bytes += bytes.size();
    std::size_t at = 0;
    while (at < bytes.size()) {
      frame_view f;
      CAMPAIGN_REQUIRE(decode_frame(std::string_view(bytes).substr(at), f) == decode_status::ok, p << " at " << at);
      frames.push_back({p, at, f.size, f.seq, false});
      at += f.size;
    }
  }
  REQUIRE(frames.size() == appended.size());

  // The flips: each at a distinct byte (a second flip of the same byte would undo the first).
  std::set<std::pair<std::string, std::uint64_t>> flips;
  const std::uint64_t k = 1 + below(rng, 4);
  while (flips.size() < k) {
    const std::string& p = chance(rng, 40) ? segments.back() : segments[below(rng, segments.size())];
    flips.emplace(p, below(rng, sizes[p]));
  }
  for (const auto& [p, offset] : flips) {
    fs.corrupt(p, offset);
    for (frame_at& f : frames) {
      if (f.path == p && offset >= f.offset && offset < f.offset + f.size) {
        f.hit = true;
      }
    }
  }
  totals.flips += flips.size();

  // Expected: each run of damaged frames in a file is one region, except a run that ends the last file: recovery
  // cannot tell it from a torn tail and cuts it (a whole file of them goes).
  std::uint64_t regions = 0;
  std::uint64_t cut = 0;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    if (!frames[i].hit) {
      continue;
    }
    ++totals.records_hit;
    const bool starts_run = i == 0 || !frames[i - 1].hit || frames[i - 1].path != frames[i].path;
    bool ends_last_file = frames[i].path == segments.back();
    for (std::size_t j = i; j < frames.size() && ends_last_file; ++j) {
      ends_last_file = frames[j].hit;
    }
    if (ends_last_file) {
      cut += frames[i].size;
    } else if (starts_run) {
      ++regions;
    }
  }

  fs.bytes_read = 0;
  segment_log log(fs, opts);
  const recovery_report report = log.open(0);
  CHECK(report.truncated_bytes == cut);
  // Appending goes on after the last record kept, or at the first seq of a last file that had none left.
  std::uint64_t next = 0;
  for (const frame_at& f : frames) {
    if (f.path == segments.back() && (next == 0 || !f.hit)) {
      next = f.hit ? f.seq : f.seq + 1;
    }
  }
  CHECK(report.next_seq == next);
  totals.tails_cut += cut > 0 ? 1 : 0;
  std::set<std::uint64_t> got;
  std::uint64_t previous = 0;
  for (std::uint64_t reads = 0;; ++reads) {
    CAMPAIGN_REQUIRE(reads <= frames.size() + 16, "the reader does not end");  // never loops
    frame_view f;
    const segment_log::read_result res = log.read_next(f);
    CAMPAIGN_REQUIRE(res != segment_log::read_result::failed, log.error_context());
    if (res == segment_log::read_result::end) {
      break;
    }
    CAMPAIGN_REQUIRE(f.seq > previous, "seq " << f.seq << " after " << previous);
    previous = f.seq;
    const auto it = appended.find(f.seq);
    CAMPAIGN_REQUIRE(it != appended.end(), "seq " << f.seq << " was never appended");
    CAMPAIGN_REQUIRE(it->second.matches(f),
                     "seq " << f.seq << " is not the record appended with it");  // never invented
    got.insert(f.seq);
  }
  for (const frame_at& f : frames) {
    // Every other record delivered; a damaged one never.
    CAMPAIGN_REQUIRE(got.count(f.seq) == (f.hit ? 0 : 1), "seq " << f.seq
                                                                 << std::string(f.hit ? " (damaged)" : " (intact)")
                                                                 << " in " << f.path << " at " << f.offset);
  }
  CHECK(log.corrupt_regions() == regions);
  // Never stalls: the recovery scan and the reader each go through a file about once.
  CHECK(fs.bytes_read <= 3 * total_bytes);
  totals.records_delivered += got.size();
  totals.regions_counted += log.corrupt_regions();
  std::uint64_t seq = 0;
  REQUIRE(log.append(0, "after", seq) == segment_log::append_result::ok);
  CHECK(seq > previous);
  CHECK(seq == next);
  ++totals.points;
}

// What the spool tells its owner, recorded. Called on the io_context thread (the test's).
class recording_listener final : public listener {
 public:
  void on_spool_room() noexcept override { ++rooms; }
  void on_spool_failed(const std::string& why) noexcept override {
    ++failures;
    reason = why;
  }
  int rooms = 0;
  int failures = 0;
  std::string reason;
};

// Runs the io_context (the test is its thread) until `done`, at most `limit`.
template <typename Done>
bool run_until(boost::asio::io_context& io, std::chrono::milliseconds limit, Done done) {
  const auto deadline = std::chrono::steady_clock::now() + rtm::test::patience(limit);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    if (io.stopped()) {
      io.restart();
    }
    io.run_for(std::chrono::milliseconds(5));
  }
  return true;
}

options spool_options() {
  options o;
  o.path = dir;
  o.segment_size = segment_size;
  o.max_size = std::uint64_t{1} << 20U;
  o.min_free = 0;
  o.fsync_interval = std::chrono::milliseconds(0);  // every flush asks the sync thread for a pass
  o.checkpoint_interval = std::chrono::hours(1);    // the lwm is stored only by close(): the test knows when
  return o;
}

}  // namespace

TEST_CASE("power loss at seeded points: every synced record comes back, nothing invalid or invented, no wedge") {
  const std::uint64_t points = campaign_points();
  const std::uint64_t base = campaign_seed();
  campaign_totals totals;
  const auto start = std::chrono::steady_clock::now();
  for (std::uint64_t point = 0; point < points; ++point) {
    const std::uint64_t seed = base + point;
    CAPTURE(point);
    CAPTURE(seed);
    power_point(seed, totals).run();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "spool power loss: %llu points (seed %llu), %llu power losses, %llu records appended, %llu synced records "
      "checked, %llu read back, %llu torn tails cut, %llu corrupt regions seen, %llu segments removed at recovery, "
      "%llu lwms stored, %.1f s\n",
      static_cast<unsigned long long>(totals.points), static_cast<unsigned long long>(base),
      static_cast<unsigned long long>(totals.power_losses), static_cast<unsigned long long>(totals.records_appended),
      static_cast<unsigned long long>(totals.records_checked),
      static_cast<unsigned long long>(totals.records_read_back), static_cast<unsigned long long>(totals.torn_tails_cut),
      static_cast<unsigned long long>(totals.corrupt_regions), static_cast<unsigned long long>(totals.segments_removed),
      static_cast<unsigned long long>(totals.lwms_stored), seconds);
  std::fflush(stdout);
  CHECK(totals.points == points);
  // The campaign must reach what it is for: without these it proves little.
  if (points >= 200) {
    CHECK(totals.records_checked > points);
    CHECK(totals.torn_tails_cut > points / 20);
    CHECK(totals.corrupt_regions > 0);
    CHECK(totals.segments_removed > 0);
  }
}

TEST_CASE("flipped bytes in sealed segments and in the tail: every other record, regions counted, no loop or stall") {
  const std::uint64_t points = campaign_points() / 4;
  const std::uint64_t base = campaign_seed();
  corruption_totals totals;
  for (std::uint64_t point = 0; point < points; ++point) {
    const std::uint64_t seed = base + point;
    CAPTURE(point);
    CAPTURE(seed);
    corruption_point(seed, totals);
  }
  std::printf(
      "spool corruption: %llu points (seed %llu), %llu bytes flipped, %llu records hit, %llu delivered, %llu corrupt "
      "regions counted, %llu damaged tails cut\n",
      static_cast<unsigned long long>(totals.points), static_cast<unsigned long long>(base),
      static_cast<unsigned long long>(totals.flips), static_cast<unsigned long long>(totals.records_hit),
      static_cast<unsigned long long>(totals.records_delivered),
      static_cast<unsigned long long>(totals.regions_counted), static_cast<unsigned long long>(totals.tails_cut));
  std::fflush(stdout);
  CHECK(totals.points == points);
  if (points >= 100) {
    CHECK(totals.regions_counted > points / 2);
    CHECK(totals.tails_cut > 0);
  }
}

TEST_CASE("a resync through a payload full of false magics reads the segment about once, not once per candidate") {
  model_file_system fs;
  const log_options opts{
      .dir = dir, .segment_size = std::uint64_t{4} << 20U, .max_size = std::uint64_t{1} << 30U, .min_free = 0};
  std::string magics;
  for (int i = 0; i < 2048; ++i) {
    magics += "RTMS";  // text such as an event may carry: each one a candidate frame start for a resync
  }
  std::uint64_t first_size = 0;
  {
    segment_log log(fs, opts);
    log.open(0);
    std::uint64_t seq = 0;
    REQUIRE(log.append(1, "before", seq) == segment_log::append_result::ok);
    first_size = frame_overhead + 6;
    REQUIRE(log.append(2, magics, seq) == segment_log::append_result::ok);
    for (int i = 0; i < 48; ++i) {
      REQUIRE(log.append(3, std::string(std::size_t{32} << 10U, 'x'), seq) == segment_log::append_result::ok);
    }
    // Does not fit in the rest of the first segment: that one is sealed, 1.5 MiB of it after the damaged frame.
    REQUIRE(log.append(4, std::string(std::size_t{3} << 20U, 'y'), seq) == segment_log::append_result::ok);
    REQUIRE(seq == 51);
    REQUIRE_FALSE(log.flush());
    REQUIRE(log.segment_count() == 2);
  }
  std::uint64_t total_bytes = 0;
  std::string first_segment;
  for (const std::string& p : fs.paths()) {
    if (is_segment(p)) {
      total_bytes += file_bytes(fs, p).size();
      if (first_segment.empty()) {
        first_segment = p;
      }
    }
  }
  fs.corrupt(first_segment, first_size);  // the magic of record 2
  fs.bytes_read = 0;
  segment_log log(fs, opts);
  log.open(0);
  std::vector<std::uint64_t> seqs;
  for (int reads = 0; reads < 100; ++reads) {
    frame_view f;
    const segment_log::read_result res = log.read_next(f);
    REQUIRE(res != segment_log::read_result::failed);
    if (res == segment_log::read_result::end) {
      break;
    }
    seqs.push_back(f.seq);
  }
  REQUIRE(seqs.size() == 50);
  CHECK(seqs.front() == 1);
  CHECK(seqs[1] == 3);
  CHECK(seqs.back() == 51);
  CHECK(log.corrupt_regions() == 1);
  CAPTURE(total_bytes);
  CHECK(fs.bytes_read <= 3 * total_bytes);
}

// ---- what the campaigns found, one case each -------------------------------------------------------------------

TEST_CASE("a frame larger than a segment, just after leaving full, grows the empty segment instead of failing") {
  // try_leave_full() creates the next segment before any record is in it; the oversized frame used to make the log
  // create a second segment with the same first seq, so the same name: EEXIST, and the spool failed.
  model_file_system fs;
  segment_log log(fs, {.dir = dir, .segment_size = 4096, .max_size = 3 * 4096, .min_free = 0});
  log.open(0);
  std::uint64_t seq = 0;
  for (int appended = 0; log.append(0, std::string(200, 'f'), seq) == segment_log::append_result::ok; ++appended) {
    REQUIRE(appended < 100);
  }
  REQUIRE(log.full() == segment_log::full_reason::max_size);
  frame_view f;
  while (log.read_next(f) == segment_log::read_result::record) {
  }
  log.reclaim_below(log.next_seq());
  REQUIRE(log.try_leave_full());
  const std::string big(6000, 'B');
  REQUIRE(log.append(1, big, seq) == segment_log::append_result::ok);
  CHECK_FALSE(log.error());
  REQUIRE(log.read_next(f) == segment_log::read_result::record);
  CHECK(f.seq == seq);
  CHECK(f.payload == big);
}

TEST_CASE("a flipped byte inside the tail costs that record only, even in the tail's first record") {
  for (const std::size_t victim : {std::size_t{0}, std::size_t{4}}) {
    CAPTURE(victim);
    model_file_system fs;
    const log_options opts{.dir = dir, .segment_size = 1 << 20, .max_size = 1 << 22, .min_free = 0};
    std::string path;
    {
      segment_log log(fs, opts);
      log.open(0);
      for (int i = 0; i < 20; ++i) {
        std::uint64_t seq = 0;
        REQUIRE(log.append(i, "record-" + std::to_string(100 + i), seq) == segment_log::append_result::ok);
      }
      REQUIRE_FALSE(log.flush());
    }
    for (const std::string& p : fs.paths()) {
      if (is_segment(p)) {
        path = p;
      }
    }
    const std::size_t frame = frame_overhead + 10;  // every payload here is 10 bytes
    fs.corrupt(path, victim * frame + frame - 2);
    segment_log log(fs, opts);
    const recovery_report report = log.open(0);
    CHECK(report.truncated_bytes == 0);
    CHECK(report.tail_records == 19);
    CHECK(report.next_seq == 21);
    std::vector<std::uint64_t> seqs;
    frame_view f;
    while (log.read_next(f) == segment_log::read_result::record && seqs.size() < 30) {
      seqs.push_back(f.seq);
    }
    CHECK(seqs.size() == 19);
    CHECK(std::find(seqs.begin(), seqs.end(), victim + 1) == seqs.end());
    CHECK(log.corrupt_regions() == 1);
  }
}

TEST_CASE("spool: a failed fdatasync is reported once, ends appending, and is never retried") {
  model_file_system fs;
  {
    boost::asio::io_context io;
    recording_listener owner;
    spool s(io, spool_options(), owner, fs);
    std::uint64_t seq = 0;
    REQUIRE(s.append(1, "synced", seq) == spool::append_result::ok);
    const bool first_synced = run_until(io, std::chrono::seconds(5), [&] { return fs.sync_count() >= 1; });
    REQUIRE(first_synced);
    CHECK(owner.failures == 0);

    fs.set_fail_sync(true);
    REQUIRE(s.append(2, "its fdatasync fails", seq) == spool::append_result::ok);
    const bool reported = run_until(io, std::chrono::seconds(5), [&] { return owner.failures > 0; });
    REQUIRE(reported);
    const std::uint64_t at_failure = fs.sync_count();
    CHECK(at_failure == 2);  // the good one, the failed one
    CHECK(owner.reason.find("fdatasync") != std::string::npos);
    CHECK(owner.reason.find(dir) != std::string::npos);
    CHECK(s.failed());
    CHECK(s.append(3, "refused", seq) == spool::append_result::failed);
    frame_view f;
    CHECK(s.read_next(f) == spool::read_result::failed);

    // Time for a retry, then the stop: neither syncs again (fsyncgate: the kernel forgot the failed pages).
    const bool never = run_until(io, std::chrono::milliseconds(100), [] { return false; });
    CHECK_FALSE(never);
    s.close();
    CHECK(fs.sync_count() == at_failure);
    CHECK(owner.failures == 1);
    CHECK(owner.rooms == 0);
  }
  // What was synced before the failure survives the power loss that may follow.
  fs.set_fail_sync(false);
  std::mt19937_64 rng(16);
  fs.power_loss(rng);
  boost::asio::io_context io;
  recording_listener owner;
  spool s(io, spool_options(), owner, fs);
  frame_view f;
  REQUIRE(s.read_next(f) == spool::read_result::record);
  CHECK(f.seq == 1);
  CHECK(f.payload == "synced");
  s.close();
}

TEST_CASE("spool: a clean close persists the lwm, and the next start reads from it") {
  model_file_system fs;
  {
    boost::asio::io_context io;
    recording_listener owner;
    spool s(io, spool_options(), owner, fs);
    for (int i = 1; i <= 30; ++i) {
      std::uint64_t seq = 0;
      REQUIRE(s.append(i, "event-" + std::to_string(i), seq) == spool::append_result::ok);
    }
    std::vector<std::uint64_t> read;
    for (int reads = 0; reads < 40; ++reads) {
      frame_view f;
      const spool::read_result res = s.read_next(f);
      REQUIRE(res != spool::read_result::failed);
      if (res == spool::read_result::end) {
        break;
      }
      read.push_back(f.seq);
    }
    REQUIRE(read.size() == 30);
    for (std::uint64_t seq = 20; seq >= 1; --seq) {
      s.settle(seq);  // delivery reports come in any order
    }
    CHECK(s.lwm() == 21);
    s.close();
    CHECK(owner.failures == 0);
  }
  // close() synced the data and stored the lwm with fdatasync: a power loss right after keeps both.
  std::mt19937_64 rng(16);
  fs.power_loss(rng);
  checkpoint c;
  REQUIRE_FALSE(c.open(fs, dir));
  CHECK(c.lwm() == 21);

  boost::asio::io_context io;
  recording_listener owner;
  spool s(io, spool_options(), owner, fs);
  CHECK(s.recovery().first_unconfirmed == 21);
  CHECK(s.recovery().next_seq == 31);
  for (std::uint64_t want = 21; want <= 30; ++want) {
    frame_view f;
    REQUIRE(s.read_next(f) == spool::read_result::record);
    CHECK(f.seq == want);
    CHECK(f.payload == "event-" + std::to_string(want));
  }
  frame_view f;
  CHECK(s.read_next(f) == spool::read_result::end);
  CHECK(s.lwm() == 21);
  s.close();
  CHECK(owner.failures == 0);
}
