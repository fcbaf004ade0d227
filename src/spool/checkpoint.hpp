#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <system_error>

#include "spool/file_system.hpp"

// The persisted commit point: the delivery low-water mark (every record below it is confirmed by Kafka). Two slots
// in one file, 512 bytes apart (separate sectors), each {magic, version, generation, lwm, crc32c}, rewritten
// alternately with fdatasync; load() takes the valid slot with the higher generation, so a write torn by a power
// loss costs at most one interval. It is only a lower bound for reclaiming and replaying: the write position is
// always found by scanning the segments, never read from here (no ledger to disagree with the data).
//
// Threading: load() at open on the opening thread; store() on the spool's sync thread only.
namespace rtm::spool {

class checkpoint {
 public:
  static constexpr const char* file_name = "checkpoint";

  // Opens (creating) DIR/checkpoint and reads it: lwm() is 0 when no slot is valid (a new spool).
  [[nodiscard]] std::error_code open(file_system& fs, const std::string& dir);
  [[nodiscard]] std::uint64_t lwm() const noexcept { return lwm_; }
  // Writes `lwm` into the older slot and fdatasyncs. A failed sync is not retried by the caller (fsyncgate).
  [[nodiscard]] std::error_code store(std::uint64_t lwm);

  // Reads the valid slots of the bytes of a checkpoint file (for the dump and the tests): the lwm of the newest, 0
  // when none is valid.
  [[nodiscard]] static std::uint64_t parse(const char* data, std::size_t size, std::uint64_t* generation = nullptr);

 private:
  std::shared_ptr<file> file_;
  std::uint64_t generation_ = 0;
  std::uint64_t lwm_ = 0;
};

}  // namespace rtm::spool
