#include "config/duration.hpp"

#include <array>
#include <charconv>
#include <cstdint>
#include <limits>
#include <system_error>

namespace rtm::config {
namespace {

struct unit {
  std::string_view suffix;
  std::int64_t millis;
};

// Largest first: format_duration() takes the first unit that divides exactly. Suffixes are compared whole, so "m"
// and "ms" never shadow each other.
constexpr std::array<unit, 4> units{{{"h", 3'600'000}, {"m", 60'000}, {"s", 1'000}, {"ms", 1}}};

std::string expected_text(std::string_view text) {
  return "expected a duration with a unit (250ms, 5s, 2m, 1h), got \"" + std::string(text) + "\"";
}

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

}  // namespace

duration_result parse_duration(std::string_view text, duration_rules rules) {
  if (text.empty()) {
    return expected_text(text);
  }
  if (text.front() == '-') {
    return "a duration must not be negative, got \"" + std::string(text) + "\"";
  }
  std::size_t digits = 0;
  while (digits < text.size() && is_digit(text[digits])) {
    ++digits;
  }
  if (digits == 0) {
    return expected_text(text);
  }
  const std::string_view number = text.substr(0, digits);
  const std::string_view suffix = text.substr(digits);

  std::uint64_t count = 0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), count);
  if (ec == std::errc::result_out_of_range) {
    return "duration \"" + std::string(text) + "\" is too large";
  }
  if (ec != std::errc{} || end != number.data() + number.size()) {
    return expected_text(text);
  }

  if (suffix.empty()) {
    if (count == 0 && rules.allow_bare_zero) {
      return duration{0};
    }
    return expected_text(text);
  }
  if (suffix.front() == '.') {
    return "a duration takes a whole number, got \"" + std::string(text) + "\" (write 1500ms, not 1.5s)";
  }
  for (const unit& u : units) {
    if (suffix == u.suffix) {
      constexpr auto max_ms = static_cast<std::uint64_t>(std::numeric_limits<duration::rep>::max());
      if (count > max_ms / static_cast<std::uint64_t>(u.millis)) {
        return "duration \"" + std::string(text) + "\" is too large";
      }
      return duration{static_cast<duration::rep>(count * static_cast<std::uint64_t>(u.millis))};
    }
  }
  return "unknown duration unit \"" + std::string(suffix) + "\" in \"" + std::string(text) +
         "\": expected ms, s, m or h";
}

std::string format_duration(duration d) {
  const std::int64_t ms = d.count();
  if (ms == 0) {
    return "0";
  }
  for (const unit& u : units) {
    if (ms % u.millis == 0) {
      return std::to_string(ms / u.millis) + std::string(u.suffix);
    }
  }
  return std::to_string(ms) + "ms";
}

}  // namespace rtm::config
