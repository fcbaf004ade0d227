#include "util/json_scan.hpp"

#include <array>
#include <limits>

namespace rtm::json {
namespace {

[[nodiscard]] constexpr bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

[[nodiscard]] constexpr int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

[[nodiscard]] constexpr unsigned char byte_at(std::string_view text, std::size_t pos) noexcept {
  return static_cast<unsigned char>(text[pos]);
}

// One UTF-8 sequence starting with the byte >= 0x80 at `pos` (RFC 3629: shortest form, no surrogates, at most
// U+10FFFF). Returns the position after it, or npos.
[[nodiscard]] std::size_t utf8_end(std::string_view text, std::size_t pos) noexcept {
  const unsigned char lead = byte_at(text, pos);
  std::size_t length = 0;
  unsigned char low = 0x80;  // the range of the second byte, narrowed for the lead bytes that need it
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) {
      low = 0xA0;  // no overlong forms
    } else if (lead == 0xED) {
      high = 0x9F;  // no UTF-16 surrogates
    }
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) {
      low = 0x90;
    } else if (lead == 0xF4) {
      high = 0x8F;  // nothing above U+10FFFF
    }
  } else {
    return npos;
  }
  if (text.size() - pos < length) {
    return npos;
  }
  const unsigned char second = byte_at(text, pos + 1);
  if (second < low || second > high) {
    return npos;
  }
  for (std::size_t i = 2; i < length; ++i) {
    const unsigned char next = byte_at(text, pos + i);
    if (next < 0x80 || next > 0xBF) {
      return npos;
    }
  }
  return pos + length;
}

// A string token starting at its opening quote. Any \uXXXX escape is grammatical, paired or not (RFC 8259 §8.2).
[[nodiscard]] std::size_t string_end(std::string_view text, std::size_t pos) noexcept {
  const std::size_t n = text.size();
  ++pos;
  while (pos < n) {
    const unsigned char c = byte_at(text, pos);
    if (c == '"') {
      return pos + 1;
    }
    if (c == '\\') {
      if (pos + 1 >= n) {
        return npos;
      }
      const char e = text[pos + 1];
      if (e == 'u') {
        if (n - pos < 6) {
          return npos;
        }
        for (std::size_t i = 2; i < 6; ++i) {
          if (hex_value(text[pos + i]) < 0) {
            return npos;
          }
        }
        pos += 6;
      } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
        pos += 2;
      } else {
        return npos;
      }
    } else if (c < 0x20) {
      return npos;
    } else if (c < 0x80) {
      ++pos;
    } else {
      pos = utf8_end(text, pos);
      if (pos == npos) {
        return npos;
      }
    }
  }
  return npos;
}

[[nodiscard]] std::size_t digits_end(std::string_view text, std::size_t pos) noexcept {
  while (pos < text.size() && is_digit(text[pos])) {
    ++pos;
  }
  return pos;
}

// RFC 8259 number grammar on the raw token: integers and precisions of any size are valid.
[[nodiscard]] std::size_t number_end(std::string_view text, std::size_t pos) noexcept {
  const std::size_t n = text.size();
  if (pos < n && text[pos] == '-') {
    ++pos;
  }
  if (pos >= n || !is_digit(text[pos])) {
    return npos;
  }
  pos = text[pos] == '0' ? pos + 1 : digits_end(text, pos);
  if (pos < n && text[pos] == '.') {
    ++pos;
    if (pos >= n || !is_digit(text[pos])) {
      return npos;
    }
    pos = digits_end(text, pos);
  }
  if (pos < n && (text[pos] == 'e' || text[pos] == 'E')) {
    ++pos;
    if (pos < n && (text[pos] == '+' || text[pos] == '-')) {
      ++pos;
    }
    if (pos >= n || !is_digit(text[pos])) {
      return npos;
    }
    pos = digits_end(text, pos);
  }
  return pos;
}

[[nodiscard]] std::size_t literal_end(std::string_view text, std::size_t pos, std::string_view word) noexcept {
  return text.substr(pos, word.size()) == word ? pos + word.size() : npos;
}

// Scalars (anything but a container) at text[pos].
[[nodiscard]] std::size_t scalar_end(std::string_view text, std::size_t pos) noexcept {
  switch (text[pos]) {
    case '"':
      return string_end(text, pos);
    case 't':
      return literal_end(text, pos, "true");
    case 'f':
      return literal_end(text, pos, "false");
    case 'n':
      return literal_end(text, pos, "null");
    default:
      return number_end(text, pos);
  }
}

// A member's key at text[pos], then ':' (whitespace around it): returns the position of the member's value (npos
// when any of it is missing or invalid, or no value follows). `key`, if given, receives the raw key token.
[[nodiscard]] std::size_t after_key(std::string_view text, std::size_t pos, std::string_view* key) noexcept {
  if (pos >= text.size() || text[pos] != '"') {
    return npos;
  }
  const std::size_t key_end = string_end(text, pos);
  if (key_end == npos) {
    return npos;
  }
  if (key != nullptr) {
    *key = text.substr(pos, key_end - pos);
  }
  const std::size_t colon = skip_space(text, key_end);
  if (colon >= text.size() || text[colon] != ':') {
    return npos;
  }
  const std::size_t value = skip_space(text, colon + 1);
  return value < text.size() ? value : npos;
}

// One bit per open container (set: object), on the stack: depth costs no allocation and no recursion.
class container_stack {
 public:
  [[nodiscard]] std::size_t depth() const noexcept { return depth_; }
  void push(bool object) noexcept {
    const std::size_t word = depth_ / 64;
    const std::uint64_t bit = std::uint64_t{1} << (depth_ % 64);
    words_[word] = object ? (words_[word] | bit) : (words_[word] & ~bit);
    ++depth_;
  }
  void pop() noexcept { --depth_; }
  [[nodiscard]] bool top_is_object() const noexcept {
    const std::size_t i = depth_ - 1;
    return ((words_[i / 64] >> (i % 64)) & 1U) != 0;
  }

 private:
  std::array<std::uint64_t, max_depth / 64> words_{};
  std::size_t depth_ = 0;
};

void append_utf8(std::string& out, std::uint32_t code) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xC0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else if (code < 0x10000) {
    out += static_cast<char>(0xE0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code >> 18));
    out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
}

[[nodiscard]] std::uint32_t hex4(std::string_view text, std::size_t pos) noexcept {
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    value = value * 16 + static_cast<std::uint32_t>(hex_value(text[pos + i]));
  }
  return value;
}

}  // namespace

std::size_t skip_space(std::string_view text, std::size_t pos) noexcept {
  while (pos < text.size() && is_space(text[pos])) {
    ++pos;
  }
  return pos;
}

std::size_t value_end(std::string_view text, std::size_t pos, std::size_t depth_budget) noexcept {
  const std::size_t n = text.size();
  const std::size_t limit = depth_budget < max_depth ? depth_budget : max_depth;
  container_stack stack;
  // Each turn either reads a value (`want_value`), or what may follow one: ',' or the closing bracket.
  bool want_value = true;
  for (;;) {
    if (!want_value && stack.depth() == 0) {
      return pos;
    }
    if (pos >= n) {
      return npos;
    }
    if (want_value) {
      const char c = text[pos];
      if (c == '{' || c == '[') {
        if (stack.depth() >= limit) {
          return npos;
        }
        stack.push(c == '{');
        pos = skip_space(text, pos + 1);
        if (pos < n && text[pos] == (c == '{' ? '}' : ']')) {
          stack.pop();
          ++pos;
          want_value = false;
        } else if (c == '{') {
          pos = after_key(text, pos, nullptr);  // the first member's key; the value follows
          if (pos == npos) {
            return npos;
          }
        }
        continue;
      }
      pos = scalar_end(text, pos);
      if (pos == npos) {
        return npos;
      }
      want_value = false;
      continue;
    }
    pos = skip_space(text, pos);
    if (pos >= n) {
      return npos;
    }
    const char c = text[pos];
    const bool object = stack.top_is_object();
    if (c == ',') {
      pos = skip_space(text, pos + 1);
      if (object) {
        pos = after_key(text, pos, nullptr);
        if (pos == npos) {
          return npos;
        }
      }
      want_value = true;
    } else if (c == (object ? '}' : ']')) {
      stack.pop();
      ++pos;
    } else {
      return npos;
    }
  }
}

bool valid(std::string_view text) noexcept {
  const std::size_t start = skip_space(text, 0);
  if (start >= text.size()) {
    return false;
  }
  const std::size_t end = value_end(text, start);
  return end != npos && skip_space(text, end) == text.size();
}

std::string_view string_value(std::string_view token, std::string& scratch) {
  const std::string_view inside = token.substr(1, token.size() - 2);
  std::size_t escape = inside.find('\\');
  if (escape == std::string_view::npos) {
    return inside;
  }
  scratch.assign(inside.substr(0, escape));
  std::size_t pos = escape;
  while (pos < inside.size()) {
    const char c = inside[pos];
    if (c != '\\') {
      escape = inside.find('\\', pos);
      const std::size_t stop = escape == std::string_view::npos ? inside.size() : escape;
      scratch.append(inside.substr(pos, stop - pos));
      pos = stop;
      continue;
    }
    const char e = inside[pos + 1];
    pos += 2;
    switch (e) {
      case 'b':
        scratch += '\b';
        break;
      case 'f':
        scratch += '\f';
        break;
      case 'n':
        scratch += '\n';
        break;
      case 'r':
        scratch += '\r';
        break;
      case 't':
        scratch += '\t';
        break;
      case 'u': {
        std::uint32_t code = hex4(inside, pos);
        pos += 4;
        if (code >= 0xD800 && code <= 0xDBFF && inside.size() - pos >= 6 && inside[pos] == '\\' &&
            inside[pos + 1] == 'u') {
          const std::uint32_t low = hex4(inside, pos + 2);
          if (low >= 0xDC00 && low <= 0xDFFF) {
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
            pos += 6;
          }
        }
        if (code >= 0xD800 && code <= 0xDFFF) {
          code = 0xFFFD;  // a lone surrogate: valid JSON, but no UTF-8 can carry it
        }
        append_utf8(scratch, code);
        break;
      }
      default:  // '"', '\\', '/'
        scratch += e;
        break;
    }
  }
  return scratch;
}

bool to_uint64(std::string_view token, std::uint64_t& out) noexcept {
  if (token.empty() || digits_end(token, 0) != token.size()) {
    return false;
  }
  std::uint64_t value = 0;
  for (const char c : token) {
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) {
      return false;
    }
    value = value * 10 + digit;
  }
  out = value;
  return true;
}

bool to_int64(std::string_view token, std::int64_t& out) noexcept {
  const bool negative = !token.empty() && token.front() == '-';
  std::uint64_t magnitude = 0;
  if (!to_uint64(negative ? token.substr(1) : token, magnitude)) {
    return false;
  }
  constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (negative) {
    if (magnitude > max + 1) {
      return false;
    }
    out = magnitude == max + 1 ? std::numeric_limits<std::int64_t>::min() : -static_cast<std::int64_t>(magnitude);
  } else {
    if (magnitude > max) {
      return false;
    }
    out = static_cast<std::int64_t>(magnitude);
  }
  return true;
}

reader::reader(std::string_view text, std::size_t open, std::size_t depth_budget) noexcept
    : text_(text), pos_(open + 1), budget_(depth_budget), object_(text[open] == '{') {
  if (depth_budget == 0) {
    state_ = state::failed;
  }
}

bool reader::fail() noexcept {
  state_ = state::failed;
  return false;
}

bool reader::advance(std::string_view* key) noexcept {
  if (state_ == state::done || state_ == state::failed || state_ == state::in_value) {
    return state_ == state::in_value ? fail() : false;
  }
  const std::size_t n = text_.size();
  pos_ = skip_space(text_, pos_);
  if (pos_ >= n) {
    return fail();
  }
  const char close = object_ ? '}' : ']';
  if (state_ == state::first && text_[pos_] == close) {
    ++pos_;
    state_ = state::done;
    return false;
  }
  if (state_ == state::after_value) {
    if (text_[pos_] == close) {
      ++pos_;
      state_ = state::done;
      return false;
    }
    if (text_[pos_] != ',') {
      return fail();
    }
    pos_ = skip_space(text_, pos_ + 1);
    if (pos_ >= n) {
      return fail();
    }
  }
  if (object_) {
    pos_ = after_key(text_, pos_, key);
    if (pos_ == npos) {
      return fail();
    }
  }
  state_ = state::in_value;
  return true;
}

bool reader::finish(std::size_t end) noexcept {
  if (state_ != state::in_value || end == npos || end <= pos_ || end > text_.size()) {
    return fail();
  }
  pos_ = end;
  state_ = state::after_value;
  return true;
}

bool reader::next(std::string_view& value, std::string_view* key) noexcept {
  if (!advance(key)) {
    return false;
  }
  const std::size_t start = pos_;
  if (!finish(value_end(text_, start, child_budget()))) {
    return false;
  }
  value = text_.substr(start, pos_ - start);
  return true;
}

}  // namespace rtm::json
