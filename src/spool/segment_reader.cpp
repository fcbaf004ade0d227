#include "spool/segment_reader.hpp"

#include <algorithm>
#include <cstring>

namespace rtm::spool {
namespace {

constexpr std::size_t read_chunk = std::size_t{1} << 20U;

}  // namespace

std::string_view segment_reader::view() const noexcept {
  if (offset_ < chunk_offset_ || offset_ > chunk_offset_ + chunk_.size()) {
    return {};
  }
  return std::string_view(chunk_).substr(static_cast<std::size_t>(offset_ - chunk_offset_));
}

std::error_code segment_reader::fill(std::size_t need) {
  const std::uint64_t available = limit_ - std::min(limit_, offset_);
  const std::uint64_t wanted = std::min<std::uint64_t>(need, available);
  if (offset_ >= chunk_offset_ && offset_ + wanted <= chunk_offset_ + chunk_.size()) {
    return {};
  }
  const auto size = static_cast<std::size_t>(std::min<std::uint64_t>(std::max(need, read_chunk), available));
  chunk_.resize(size);
  std::size_t got = 0;
  const std::error_code ec = file_->read_at(offset_, chunk_.data(), size, got);
  chunk_.resize(ec ? 0 : got);
  chunk_offset_ = offset_;
  return ec;
}

decode_status segment_reader::next(frame_view& out, std::error_code& ec) {
  if ((ec = fill(frame_prefix))) {
    return decode_status::incomplete;
  }
  std::string_view v = view();
  decode_status st = decode_frame(v, out);
  if (st == decode_status::incomplete && v.size() >= frame_prefix) {
    // Longer than what the chunk holds from here: read the whole frame.
    std::uint32_t len = 0;
    std::memcpy(&len, v.data() + 4, 4);
    if ((ec = fill(frame_prefix + std::min<std::size_t>(len, frame_fixed + max_payload)))) {
      return decode_status::incomplete;
    }
    v = view();
    st = decode_frame(v, out);
  }
  if (st == decode_status::ok) {
    offset_ += out.size;
  }
  return st;
}

bool segment_reader::resync(std::error_code& ec) {
  char magic[4];
  std::memcpy(magic, &frame_magic, 4);
  const std::string_view needle(magic, 4);
  ++offset_;
  while (offset_ < limit_) {
    // Only as much as a frame's prefix must be in the chunk: asking for a whole read_chunk from the offset would
    // re-read one after every false candidate (a payload can hold the magic thousands of times), a pread of 1 MiB
    // per candidate that stalled a resync for seconds (found by tests/spool/power_loss_test.cpp).
    if ((ec = fill(frame_prefix))) {
      return false;
    }
    const std::string_view v = view();
    const std::size_t at = v.find(needle);
    if (at == std::string_view::npos) {
      if (chunk_offset_ + chunk_.size() >= limit_) {
        offset_ = limit_;
        return false;
      }
      // A magic may straddle the chunk's end: go on from its last three bytes.
      offset_ = std::max(offset_ + 1, chunk_offset_ + chunk_.size() - 3);
      continue;
    }
    offset_ += at;
    // A magic alone is not enough (a payload may contain it): the whole frame must check, read in full if the
    // chunk cuts it short.
    frame_view f;
    const std::uint64_t candidate = offset_;
    const decode_status st = next(f, ec);
    if (ec) {
      return false;
    }
    if (st == decode_status::ok) {
      offset_ = candidate;
      return true;
    }
    offset_ = candidate + 1;
  }
  return false;
}

}  // namespace rtm::spool
