#include "util/json_writer.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace rtm::json {
namespace {

[[nodiscard]] constexpr bool needs_escape(char c) noexcept {
  return static_cast<unsigned char>(c) < 0x20 || c == '"' || c == '\\';
}

// Whether any of the eight bytes in `w` needs escaping: a byte below 0x20, '"' or '\\' (the classic "has a byte
// less than n" / "has a zero byte" bit tricks, exact for "any"; bytes >= 0x80 never match).
[[nodiscard]] constexpr bool word_needs_escape(std::uint64_t w) noexcept {
  constexpr std::uint64_t ones = 0x0101010101010101ULL;
  constexpr std::uint64_t highs = 0x8080808080808080ULL;
  const std::uint64_t control = (w - ones * 0x20) & ~w & highs;
  const std::uint64_t quote = w ^ (ones * 0x22);
  const std::uint64_t backslash = w ^ (ones * 0x5C);
  return ((control | ((quote - ones) & ~quote & highs) | ((backslash - ones) & ~backslash & highs))) != 0;
}

// The index of the first byte at or after `from` that needs escaping, or text.size().
[[nodiscard]] std::size_t next_escape(std::string_view text, std::size_t from) noexcept {
  std::size_t i = from;
  for (; i + 8 <= text.size(); i += 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, text.data() + i, sizeof w);
    if (word_needs_escape(w)) {
      break;
    }
  }
  for (; i < text.size(); ++i) {
    if (needs_escape(text[i])) {
      return i;
    }
  }
  return text.size();
}

}  // namespace

void append_string(std::string& out, std::string_view text) {
  static constexpr std::array<char, 16> hex{'0', '1', '2', '3', '4', '5', '6', '7',
                                            '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  out += '"';
  // Names, ids and team ids almost never need escaping, and this runs several times per event: find the bytes that
  // do eight at a time, copy each plain run in one append, and escape only what must be.
  std::size_t run = 0;
  for (std::size_t i = next_escape(text, 0); i < text.size(); i = next_escape(text, run)) {
    out.append(text.data() + run, i - run);
    run = i + 1;
    const char c = text[i];
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default: {
        const auto byte = static_cast<unsigned char>(c);
        out += "\\u00";
        out += hex[byte >> 4U];
        out += hex[byte & 0x0FU];
      }
    }
  }
  out.append(text.data() + run, text.size() - run);
  out += '"';
}

}  // namespace rtm::json
