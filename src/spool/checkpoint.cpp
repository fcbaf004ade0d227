#include "spool/checkpoint.hpp"

#include <array>
#include <cstring>
#include <string_view>

#include "spool/crc32c.hpp"

namespace rtm::spool {
namespace {

constexpr std::uint32_t checkpoint_magic = 0x434D5452U;  // "RTMC"
constexpr std::uint32_t checkpoint_version = 1;
constexpr std::size_t slot_stride = 512;
constexpr std::size_t slot_size = 28;  // magic, version, generation, lwm, crc

struct slot {
  std::uint64_t generation = 0;
  std::uint64_t lwm = 0;
};

bool read_slot(const char* p, slot& out) noexcept {
  std::uint32_t magic = 0;
  std::uint32_t version = 0;
  std::uint32_t crc = 0;
  std::memcpy(&magic, p, 4);
  std::memcpy(&version, p + 4, 4);
  std::memcpy(&out.generation, p + 8, 8);
  std::memcpy(&out.lwm, p + 16, 8);
  std::memcpy(&crc, p + 24, 4);
  return magic == checkpoint_magic && version == checkpoint_version && crc == crc32c(std::string_view(p, 24));
}

}  // namespace

std::uint64_t checkpoint::parse(const char* data, std::size_t size, std::uint64_t* generation) {
  slot best;
  bool any = false;
  for (std::size_t at = 0; at + slot_size <= size && at <= slot_stride; at += slot_stride) {
    slot s;
    if (read_slot(data + at, s) && (!any || s.generation > best.generation)) {
      best = s;
      any = true;
    }
  }
  if (generation != nullptr) {
    *generation = any ? best.generation : 0;
  }
  return any ? best.lwm : 0;
}

std::error_code checkpoint::open(file_system& fs, const std::string& dir) {
  if (const std::error_code ec = fs.open(dir + "/" + file_name, open_mode::create_or_open, file_)) {
    return ec;
  }
  std::array<char, slot_stride + slot_size> buf{};
  std::size_t got = 0;
  if (const std::error_code ec = file_->read_at(0, buf.data(), buf.size(), got)) {
    return ec;
  }
  lwm_ = parse(buf.data(), got, &generation_);
  return {};
}

std::error_code checkpoint::store(std::uint64_t lwm) {
  const std::uint64_t generation = generation_ + 1;
  std::array<char, slot_size> buf{};
  std::memcpy(buf.data(), &checkpoint_magic, 4);
  std::memcpy(buf.data() + 4, &checkpoint_version, 4);
  std::memcpy(buf.data() + 8, &generation, 8);
  std::memcpy(buf.data() + 16, &lwm, 8);
  const std::uint32_t crc = crc32c(std::string_view(buf.data(), 24));
  std::memcpy(buf.data() + 24, &crc, 4);
  // Generation n goes to slot n % 2: the slot overwritten is always the older one.
  if (const std::error_code ec = file_->write_at((generation % 2) * slot_stride, buf.data(), buf.size())) {
    return ec;
  }
  if (const std::error_code ec = file_->sync_data()) {
    return ec;
  }
  generation_ = generation;
  lwm_ = lwm;
  return {};
}

}  // namespace rtm::spool
