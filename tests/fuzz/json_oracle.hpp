#pragma once

#include <simdjson.h>

#include <cstddef>
#include <string_view>

// "Is this text one valid JSON document?", asked of simdjson's DOM parser: a different parser from the scanner under
// test (util/json_scan.hpp), and one that validates everything in one go. The DOM parser refuses integers beyond
// 64 bits, floats beyond double range and escaped lone surrogates, all of which RFC 8259 allows (and the bridge
// passes through untouched), so when it refuses, a small grammar checker below, written apart from the scanner, gets
// the last word.
namespace rtm::fuzz {

namespace detail {

class grammar {
 public:
  explicit grammar(std::string_view text) noexcept : text_(text) {}

  [[nodiscard]] bool document() noexcept {
    skip_space();
    if (!value(0)) {
      return false;
    }
    skip_space();
    return pos_ == text_.size();
  }

 private:
  static constexpr int max_depth = 1024;

  [[nodiscard]] bool at(char c) const noexcept { return pos_ < text_.size() && text_[pos_] == c; }
  [[nodiscard]] bool digit() const noexcept { return pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9'; }

  void skip_space() noexcept {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool literal(std::string_view word) noexcept {
    if (text_.substr(pos_, word.size()) != word) {
      return false;
    }
    pos_ += word.size();
    return true;
  }

  bool hex4(unsigned& out) noexcept {
    out = 0;
    for (int i = 0; i < 4; ++i, ++pos_) {
      if (pos_ >= text_.size()) {
        return false;
      }
      const char c = text_[pos_];
      unsigned v = 0;
      if (c >= '0' && c <= '9') {
        v = static_cast<unsigned>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v = static_cast<unsigned>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v = static_cast<unsigned>(c - 'A' + 10);
      } else {
        return false;
      }
      out = out * 16 + v;
    }
    return true;
  }

  // Strings as RFC 8259 §7 has them: no raw control characters, known escapes only, any \uXXXX (a lone surrogate
  // escape is grammatical; UTF-8 is checked on the whole text apart).
  bool string() noexcept {
    ++pos_;  // the opening quote
    while (pos_ < text_.size()) {
      const auto c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) {
        return false;
      }
      if (c != '\\') {
        ++pos_;
        continue;
      }
      ++pos_;
      if (pos_ >= text_.size()) {
        return false;
      }
      const char e = text_[pos_++];
      if (e == 'u') {
        unsigned code = 0;
        if (!hex4(code)) {
          return false;
        }
      } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
        return false;
      }
    }
    return false;
  }

  bool number() noexcept {
    if (at('-')) {
      ++pos_;
    }
    if (at('0')) {
      ++pos_;
    } else if (digit()) {
      while (digit()) {
        ++pos_;
      }
    } else {
      return false;
    }
    if (at('.')) {
      ++pos_;
      if (!digit()) {
        return false;
      }
      while (digit()) {
        ++pos_;
      }
    }
    if (at('e') || at('E')) {
      ++pos_;
      if (at('+') || at('-')) {
        ++pos_;
      }
      if (!digit()) {
        return false;
      }
      while (digit()) {
        ++pos_;
      }
    }
    return true;
  }

  bool value(int depth) noexcept {  // NOLINT(misc-no-recursion): bounded by max_depth
    if (depth > max_depth || pos_ >= text_.size()) {
      return false;
    }
    switch (text_[pos_]) {
      case '{': {
        ++pos_;
        skip_space();
        if (at('}')) {
          ++pos_;
          return true;
        }
        for (;;) {
          skip_space();
          if (!at('"') || !string()) {
            return false;
          }
          skip_space();
          if (!at(':')) {
            return false;
          }
          ++pos_;
          skip_space();
          if (!value(depth + 1)) {
            return false;
          }
          skip_space();
          if (at('}')) {
            ++pos_;
            return true;
          }
          if (!at(',')) {
            return false;
          }
          ++pos_;
        }
      }
      case '[': {
        ++pos_;
        skip_space();
        if (at(']')) {
          ++pos_;
          return true;
        }
        for (;;) {
          skip_space();
          if (!value(depth + 1)) {
            return false;
          }
          skip_space();
          if (at(']')) {
            ++pos_;
            return true;
          }
          if (!at(',')) {
            return false;
          }
          ++pos_;
        }
      }
      case '"':
        return string();
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        return number();
    }
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

}  // namespace detail

// One DOM parser per thread, reused: the oracle runs once or more per fuzz input.
[[nodiscard]] inline simdjson::dom::parser& oracle_parser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

[[nodiscard]] inline bool valid_json(std::string_view text) {
  const simdjson::padded_string copy(text);
  simdjson::dom::element root;
  const auto error = oracle_parser().parse(copy).get(root);
  if (error == simdjson::SUCCESS) {
    return true;
  }
  return simdjson::validate_utf8(text.data(), text.size()) && detail::grammar(text).document();
}

// Same, for text that is not a JSON document but the inside of a JSON string (names, ids): valid UTF-8.
[[nodiscard]] inline bool valid_utf8(std::string_view text) noexcept {
  return simdjson::validate_utf8(text.data(), text.size());
}

}  // namespace rtm::fuzz
