#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <system_error>

#include "spool/file_system.hpp"
#include "spool/format.hpp"

// Sequential frame reading from one segment file, in chunks (pread), up to a limit the owner moves as the file
// grows: the recovery's tail scan, the spool's reader and --spool-dump all read segments this way. Pure reading,
// no policy: what to do about a bad frame is the caller's (resync() finds the next valid one).
// Threading: one thread at a time (the owner's).
namespace rtm::spool {

class segment_reader {
 public:
  segment_reader(std::shared_ptr<file> f, std::uint64_t limit) noexcept : file_(std::move(f)), limit_(limit) {}

  // Decodes the frame at the offset. ok: `out` (valid until the next call) and the offset moves past it;
  // incomplete: the data ends inside it (or exactly at the offset: at_end()); otherwise the offset stays.
  [[nodiscard]] decode_status next(frame_view& out, std::error_code& ec);
  // Moves the offset to the next position after it where a whole valid frame starts, or to the limit. True when
  // one was found.
  [[nodiscard]] bool resync(std::error_code& ec);

  [[nodiscard]] std::uint64_t offset() const noexcept { return offset_; }
  [[nodiscard]] bool at_end() const noexcept { return offset_ >= limit_; }
  void set_limit(std::uint64_t limit) noexcept { limit_ = limit; }
  void seek(std::uint64_t offset) noexcept { offset_ = offset; }

 private:
  // Makes the chunk hold [offset_, offset_ + need) or up to the limit.
  [[nodiscard]] std::error_code fill(std::size_t need);
  [[nodiscard]] std::string_view view() const noexcept;

  std::shared_ptr<file> file_;
  std::uint64_t limit_;
  std::uint64_t offset_ = 0;
  std::string chunk_;
  std::uint64_t chunk_offset_ = 0;
};

}  // namespace rtm::spool
