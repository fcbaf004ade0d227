#include "spool/crc32c.hpp"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace rtm::spool {
namespace {

constexpr std::uint32_t reflected_polynomial = 0x82F63B78U;

using table_t = std::array<std::array<std::uint32_t, 256>, 8>;

constexpr table_t make_tables() noexcept {
  table_t t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) {
      c = (c & 1U) != 0 ? (c >> 1U) ^ reflected_polynomial : c >> 1U;
    }
    t[0][i] = c;
  }
  for (std::uint32_t i = 0; i < 256; ++i) {
    for (std::size_t s = 1; s < 8; ++s) {
      t[s][i] = (t[s - 1][i] >> 8U) ^ t[0][t[s - 1][i] & 0xFFU];
    }
  }
  return t;
}

constexpr table_t tables = make_tables();

std::uint32_t crc_software(const unsigned char* p, std::size_t n, std::uint32_t crc) noexcept {
  while (n >= 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, p, 8);  // little-endian host (x86-64, aarch64 as Debian builds them)
    word ^= crc;
    crc = tables[7][word & 0xFFU] ^ tables[6][(word >> 8U) & 0xFFU] ^ tables[5][(word >> 16U) & 0xFFU] ^
          tables[4][(word >> 24U) & 0xFFU] ^ tables[3][(word >> 32U) & 0xFFU] ^ tables[2][(word >> 40U) & 0xFFU] ^
          tables[1][(word >> 48U) & 0xFFU] ^ tables[0][word >> 56U];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) {
    crc = (crc >> 8U) ^ tables[0][(crc ^ *p++) & 0xFFU];
  }
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t crc_hardware(const unsigned char* p, std::size_t n,
                                                             std::uint32_t crc) noexcept {
  std::uint64_t c = crc;
  while (n >= 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, p, 8);
    c = _mm_crc32_u64(c, word);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<std::uint32_t>(c);
  while (n-- > 0) {
    c32 = _mm_crc32_u8(c32, *p++);
  }
  return c32;
}

bool have_sse42() noexcept {
  static const bool have = __builtin_cpu_supports("sse4.2") != 0;
  return have;
}
#endif

}  // namespace

std::uint32_t crc32c(std::string_view bytes, std::uint32_t crc) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  crc = ~crc;
#if defined(__x86_64__)
  if (have_sse42()) {
    return ~crc_hardware(p, bytes.size(), crc);
  }
#endif
  return ~crc_software(p, bytes.size(), crc);
}

}  // namespace rtm::spool
