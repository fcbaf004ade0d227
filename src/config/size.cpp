#include "config/size.hpp"

#include <array>
#include <charconv>
#include <limits>
#include <system_error>

namespace rtm::config {
namespace {

struct unit {
  std::string_view suffix;
  std::uint64_t bytes;
};

// Suffixes are compared whole. format_size() uses only the binary ones, largest first.
constexpr std::array<unit, 7> units{{{"GiB", std::uint64_t{1} << 30},
                                     {"MiB", std::uint64_t{1} << 20},
                                     {"KiB", std::uint64_t{1} << 10},
                                     {"GB", 1'000'000'000},
                                     {"MB", 1'000'000},
                                     {"kB", 1'000},
                                     {"B", 1}}};

std::string expected_text(std::string_view text) {
  return "expected a size in bytes, or a whole number with a unit (B, kB, KiB, MB, MiB, GB, GiB), got \"" +
         std::string(text) + "\"";
}

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

}  // namespace

size_result parse_size(std::string_view text) {
  if (!text.empty() && text.front() == '-') {
    return "a size must not be negative, got \"" + std::string(text) + "\"";
  }
  std::size_t digits = 0;
  while (digits < text.size() && is_digit(text[digits])) {
    ++digits;
  }
  if (digits == 0) {
    return expected_text(text);
  }
  std::uint64_t count = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + digits, count);
  if (ec == std::errc::result_out_of_range) {
    return "size \"" + std::string(text) + "\" is too large";
  }
  if (ec != std::errc{} || end != text.data() + digits) {
    return expected_text(text);
  }
  const std::string_view suffix = text.substr(digits);
  if (suffix.empty()) {
    return count;
  }
  if (suffix.front() == '.') {
    return "a size takes a whole number, got \"" + std::string(text) + "\" (write 1536KiB, not 1.5MiB)";
  }
  for (const unit& u : units) {
    if (suffix == u.suffix) {
      if (count > std::numeric_limits<std::uint64_t>::max() / u.bytes) {
        return "size \"" + std::string(text) + "\" is too large";
      }
      return count * u.bytes;
    }
  }
  return "unknown size unit \"" + std::string(suffix) + "\" in \"" + std::string(text) +
         "\": expected B, kB, KiB, MB, MiB, GB or GiB";
}

std::string format_size(std::uint64_t bytes) {
  if (bytes == 0) {
    return "0";
  }
  for (const unit& u : units) {
    if (u.suffix.ends_with("iB") && bytes % u.bytes == 0) {
      return std::to_string(bytes / u.bytes) + std::string(u.suffix);
    }
  }
  return std::to_string(bytes);
}

}  // namespace rtm::config
