#include "kafka/murmur2.hpp"

#include <cstddef>

namespace rtm::kafka {

std::int32_t murmur2(std::string_view key) noexcept {
  constexpr std::uint32_t seed = 0x9747b28cU;
  constexpr std::uint32_t m = 0x5bd1e995U;
  constexpr unsigned r = 24;
  const auto* data = reinterpret_cast<const unsigned char*>(key.data());
  const std::size_t length = key.size();
  // Java computes `seed ^ length` on ints: the length wraps to 32 bits the same way.
  std::uint32_t h = seed ^ static_cast<std::uint32_t>(length);

  const std::size_t words = length / 4;
  for (std::size_t i = 0; i < words; ++i) {
    const std::size_t o = i * 4;
    std::uint32_t k = static_cast<std::uint32_t>(data[o]) | (static_cast<std::uint32_t>(data[o + 1]) << 8U) |
                      (static_cast<std::uint32_t>(data[o + 2]) << 16U) |
                      (static_cast<std::uint32_t>(data[o + 3]) << 24U);
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }

  const std::size_t tail = words * 4;
  switch (length % 4) {
    case 3:
      h ^= static_cast<std::uint32_t>(data[tail + 2]) << 16U;
      [[fallthrough]];
    case 2:
      h ^= static_cast<std::uint32_t>(data[tail + 1]) << 8U;
      [[fallthrough]];
    case 1:
      h ^= static_cast<std::uint32_t>(data[tail]);
      h *= m;
      break;
    default:
      break;
  }

  h ^= h >> 13U;
  h *= m;
  h ^= h >> 15U;
  return static_cast<std::int32_t>(h);
}

std::int32_t murmur2_partition(std::string_view key, std::int32_t partitions) noexcept {
  if (partitions <= 0) {
    return -1;
  }
  return to_positive(murmur2(key)) % partitions;
}

}  // namespace rtm::kafka
