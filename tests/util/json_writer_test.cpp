#include "util/json_writer.hpp"

#include <doctest/doctest.h>

TEST_CASE("json strings are escaped per RFC 8259 and UTF-8 passes through") {
  std::string out;
  rtm::json::append_string(out, "a\"b\\c\nd\te\x01 é");
  CHECK(out == "\"a\\\"b\\\\c\\nd\\te\\u0001 é\"");
}

namespace {

// The plain byte-by-byte escaping the fast path must match.
std::string reference_escape(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"') {
      out += "\\\"";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (byte < 0x20) {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\u00";
      out += hex[byte >> 4U];
      out += hex[byte & 0x0FU];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

TEST_CASE("json strings: every byte value at every position of an 8-byte word is escaped like the reference") {
  // The writer checks eight bytes at a time: put each byte value at each offset (and across word boundaries) of
  // strings of several lengths, between plain ASCII and high bytes that must never be taken for an escape.
  int mismatches = 0;
  for (std::size_t length : {1U, 7U, 8U, 9U, 16U, 23U}) {
    for (std::size_t at = 0; at < length; ++at) {
      for (int value = 0; value < 256; ++value) {
        std::string text(length, 'x');
        for (std::size_t i = 0; i < length; i += 3) {
          text[i] = static_cast<char>(0xE9);  // a UTF-8 continuation-looking byte, copied as it is
        }
        text[at] = static_cast<char>(value);
        std::string out = "prefix";
        rtm::json::append_string(out, text);
        if (out != "prefix" + reference_escape(text)) {
          ++mismatches;
        }
      }
    }
  }
  CHECK(mismatches == 0);
  std::string out;
  rtm::json::append_string(out, "");
  CHECK(out == "\"\"");
  out.clear();
  rtm::json::append_string(out, "\"\"\\\\\"\"\\\\\x1f");
  CHECK(out == R"("\"\"\\\\\"\"\\\\\u001f")");
}
