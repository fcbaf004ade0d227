#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "spool/checkpoint.hpp"
#include "spool/format.hpp"
#include "spool/segment_log.hpp"
#include "support/model_file_system.hpp"

using namespace rtm::spool;
using rtm::test::model_file_system;

namespace {

constexpr const char* dir = "/spool";

log_options small(std::uint64_t segment = 4096, std::uint64_t max = 1 << 20) {
  return {.dir = dir, .segment_size = segment, .max_size = max, .min_free = 0};
}

std::string payload_of(std::uint64_t i) {
  return "record-" + std::to_string(i) + std::string(i % 50, 'p');
}

// Appends n records, flushing each; returns their seqs.
std::vector<std::uint64_t> append_n(segment_log& log, std::uint64_t from, std::uint64_t n) {
  std::vector<std::uint64_t> seqs;
  for (std::uint64_t i = from; i < from + n; ++i) {
    std::uint64_t seq = 0;
    REQUIRE(log.append(static_cast<std::int64_t>(i), payload_of(i), seq) == segment_log::append_result::ok);
    seqs.push_back(seq);
  }
  REQUIRE_FALSE(log.flush());
  return seqs;
}

std::vector<std::string> read_all(segment_log& log) {
  std::vector<std::string> out;
  frame_view f;
  while (log.read_next(f) == segment_log::read_result::record) {
    out.emplace_back(f.payload);
  }
  return out;
}

}  // namespace

TEST_CASE("records read back in order across segments, from the buffer and from the files") {
  model_file_system fs;
  segment_log log(fs, small());
  log.open(0);
  const auto seqs = append_n(log, 0, 200);
  CHECK(seqs.front() == 1);
  CHECK(seqs.back() == 200);
  CHECK(log.segment_count() > 3);  // 4 KiB segments
  const auto got = read_all(log);
  REQUIRE(got.size() == 200);
  for (std::size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i] == payload_of(i));
  }
  CHECK(log.at_end());
  // Appended but not flushed: the reader flushes to reach it.
  std::uint64_t seq = 0;
  REQUIRE(log.append(1, "unflushed", seq) == segment_log::append_result::ok);
  CHECK_FALSE(log.at_end());
  frame_view f;
  REQUIRE(log.read_next(f) == segment_log::read_result::record);
  CHECK(f.payload == "unflushed");
  CHECK_FALSE(log.has_buffered());
}

TEST_CASE("after a restart reading starts at the checkpoint's lwm and appending after the last record") {
  model_file_system fs;
  {
    segment_log log(fs, small());
    log.open(0);
    append_n(log, 0, 150);
  }
  segment_log log(fs, small());
  const recovery_report r = log.open(101);
  CHECK(r.next_seq == 151);
  CHECK(r.first_unconfirmed == 101);
  CHECK(r.segments_removed > 0);  // wholly below 101
  frame_view f;
  REQUIRE(log.read_next(f) == segment_log::read_result::record);
  CHECK(f.seq == 101);
  std::uint64_t seq = 0;
  REQUIRE(log.append(0, "new", seq) == segment_log::append_result::ok);
  CHECK(seq == 151);
  std::uint64_t n = 1;
  while (log.read_next(f) == segment_log::read_result::record) {
    ++n;
  }
  CHECK(n == 51);
}

TEST_CASE("recovery cuts a torn tail after the last valid record") {
  model_file_system fs;
  std::string last_path;
  {
    segment_log log(fs, small(1 << 20));
    log.open(0);
    append_n(log, 0, 20);
  }
  for (const std::string& p : fs.paths()) {
    if (p.find(".seg") != std::string::npos) {
      last_path = p;
    }
  }
  // Tear the last record: garbage over its end, as a power loss leaves it.
  std::shared_ptr<file> f;
  REQUIRE_FALSE(fs.open(last_path, open_mode::read_write, f));
  std::uint64_t size = 0;
  REQUIRE_FALSE(f->size(size));
  REQUIRE_FALSE(f->write_at(size - 5, "XXXXXXXXXX", 10));
  segment_log log(fs, small(1 << 20));
  const recovery_report r = log.open(0);
  CHECK(r.tail_records == 19);
  CHECK(r.truncated_bytes > 0);
  CHECK(r.next_seq == 20);
  CHECK(read_all(log).size() == 19);
  CHECK(log.corrupt_regions() == 0);  // cut at recovery, never read as corrupt
}

TEST_CASE("corruption in a sealed segment is counted and skipped; everything else is read") {
  model_file_system fs;
  {
    segment_log log(fs, small());
    log.open(0);
    append_n(log, 0, 200);
  }
  std::vector<std::string> segs;
  for (const std::string& p : fs.paths()) {
    if (p.find(".seg") != std::string::npos) {
      segs.push_back(p);
    }
  }
  REQUIRE(segs.size() > 3);
  fs.corrupt(segs[1], 100);  // inside a record of the second segment
  segment_log log(fs, small());
  log.open(0);
  const auto got = read_all(log);
  CHECK(log.corrupt_regions() == 1);
  CHECK(got.size() == 199);  // exactly the record hit
  CHECK(log.at_end());
}

TEST_CASE("max_size: full before any record is at risk, room again after reclaim") {
  model_file_system fs;
  segment_log log(fs, small(4096, 3 * 4096));
  log.open(0);
  std::uint64_t seq = 0;
  std::uint64_t appended = 0;
  while (log.append(0, std::string(200, 'z'), seq) == segment_log::append_result::ok) {
    ++appended;
    REQUIRE(appended < 1000);
  }
  CHECK(log.full() == segment_log::full_reason::max_size);
  CHECK(log.used_bytes() <= 3 * 4096);
  REQUIRE_FALSE(log.flush());
  CHECK(read_all(log).size() == appended);
  CHECK_FALSE(log.try_leave_full());
  const std::size_t removed = log.reclaim_below(seq + 1);  // everything confirmed
  CHECK(removed > 0);
  // Their files are handed to the sync thread, which closes them (an unlinked file's last close frees its blocks:
  // tens of ms per 64 MiB, not for the io thread).
  CHECK(log.take_sync_job().retired.size() == removed);
  CHECK(log.try_leave_full());
  CHECK(log.append(0, "after", seq) == segment_log::append_result::ok);
}

TEST_CASE("ENOSPC at preallocation is full, not an error, and nothing written is lost") {
  model_file_system fs;
  fs.capacity = 5 * 4096 + 100;
  segment_log log(fs, small(4096, 1 << 30));
  log.open(0);
  std::uint64_t seq = 0;
  std::uint64_t appended = 0;
  segment_log::append_result res{};
  while ((res = log.append(0, std::string(300, 'n'), seq)) == segment_log::append_result::ok) {
    ++appended;
    REQUIRE(appended < 1000);
  }
  CHECK(res == segment_log::append_result::full);
  CHECK(log.full() == segment_log::full_reason::no_space);  // min_free is 0: the disk itself is full
  CHECK_FALSE(log.error());
  CHECK(read_all(log).size() == appended);
  fs.capacity = 1 << 20;  // space freed by someone
  CHECK(log.try_leave_full());
}

TEST_CASE("a failed write is an error that stays; nothing is appended after it") {
  model_file_system fs;
  segment_log log(fs, small());
  log.open(0);
  append_n(log, 0, 3);
  fs.fail_write = true;
  std::uint64_t seq = 0;
  REQUIRE(log.append(0, "x", seq) == segment_log::append_result::ok);
  CHECK(log.flush());
  CHECK(log.append(0, "y", seq) == segment_log::append_result::failed);
  CHECK(log.error());
}

TEST_CASE("the checkpoint keeps the newest valid slot, and the older one when the newest is torn") {
  model_file_system fs;
  {
    checkpoint c;
    REQUIRE_FALSE(c.open(fs, dir));
    CHECK(c.lwm() == 0);
    REQUIRE_FALSE(c.store(10));
    REQUIRE_FALSE(c.store(20));
    REQUIRE_FALSE(c.store(30));
  }
  checkpoint c;
  REQUIRE_FALSE(c.open(fs, dir));
  CHECK(c.lwm() == 30);
  // Generation 3 went to slot 1 (offset 512): tear it; slot 0 (generation 2, lwm 20) remains.
  fs.corrupt(std::string(dir) + "/checkpoint", 512 + 17);
  checkpoint d;
  REQUIRE_FALSE(d.open(fs, dir));
  CHECK(d.lwm() == 20);
}
