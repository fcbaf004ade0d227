#pragma once

#include <cstdint>
#include <string_view>

// CRC-32C (Castagnoli, the iSCSI/ext4 polynomial), the spool's per-record checksum. The SSE4.2 instruction when the
// CPU has it (checked once), else slicing-by-8 in software; both give the same value. Pure, thread-safe.
namespace rtm::spool {

// Extends `crc` (0 to start) over `bytes`.
[[nodiscard]] std::uint32_t crc32c(std::string_view bytes, std::uint32_t crc = 0) noexcept;

}  // namespace rtm::spool
