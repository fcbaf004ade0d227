#pragma once

#include <cstdint>
#include <string_view>

// Kafka's Java client partitioning (org.apache.kafka.common.utils.Utils.murmur2 / toPositive), which librdkafka's
// `murmur2_random` partitioner reproduces for non-empty keys. Pure; used by tests and tools to predict where a team's
// records land, so every client agrees on it.
namespace rtm::kafka {

// MurmurHash2 with Kafka's seed 0x9747b28c, the 32-bit result as Java's `int` would hold it (two's complement).
[[nodiscard]] std::int32_t murmur2(std::string_view key) noexcept;

// Java's Utils.toPositive: clears the sign bit (not abs(), which would be wrong for INT32_MIN).
[[nodiscard]] constexpr std::int32_t to_positive(std::int32_t h) noexcept {
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(h) & 0x7fffffffU);
}

// toPositive(murmur2(key)) % partitions; `partitions` must be > 0 (returns -1 otherwise).
[[nodiscard]] std::int32_t murmur2_partition(std::string_view key, std::int32_t partitions) noexcept;

}  // namespace rtm::kafka
