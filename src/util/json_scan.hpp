#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

// The one JSON validator both upstream dialects share: RFC 8259 complete (any valid JSON text passes, including
// escaped lone UTF-16 surrogates such as "\ud83d" and numbers of any size or precision; anything else is refused),
// plus the few readers the codecs need to pick fields out of the text while validating it, in a single pass.
// Pure, never throws, allocates nothing (string_value() writes into a caller-owned, reused buffer). The only limit
// is the nesting depth (RFC 8259 §9 lets a parser set one): deeper texts are refused.
namespace rtm::json {

inline constexpr std::size_t npos = std::string_view::npos;

// Containers nested deeper than this are refused (the validator keeps one bit per level on the stack).
inline constexpr std::size_t max_depth = 1024;

[[nodiscard]] constexpr bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// The first position at or after `pos` that is not JSON whitespace (text.size() when none).
[[nodiscard]] std::size_t skip_space(std::string_view text, std::size_t pos) noexcept;

// Validates exactly one JSON value starting at text[pos] (its first byte, not whitespace) with at most
// `depth_budget` levels of containers. Returns the position just past the value, or npos when it is not valid JSON.
[[nodiscard]] std::size_t value_end(std::string_view text, std::size_t pos,
                                    std::size_t depth_budget = max_depth) noexcept;

// Whether `text` is one JSON text: whitespace, one value, whitespace, nothing else. Strings must be valid UTF-8.
[[nodiscard]] bool valid(std::string_view text) noexcept;

// The contents of a valid string token (quotes included). Without escapes it is the token's own inside (no copy);
// otherwise it is unescaped into `scratch` and the view points there (valid until `scratch` changes). An escaped lone
// surrogate, which no UTF-8 can carry, becomes U+FFFD, so the result is always valid UTF-8.
[[nodiscard]] std::string_view string_value(std::string_view token, std::string& scratch);

// A valid number token read as an integer: false when it has a fraction or exponent, or does not fit.
[[nodiscard]] bool to_uint64(std::string_view token, std::uint64_t& out) noexcept;
[[nodiscard]] bool to_int64(std::string_view token, std::int64_t& out) noexcept;

// Walks the elements of an array or the members of an object, validating each one as it goes, so that reading the
// fields one wants and validating the whole text is one pass. A value can be validated by the reader (next()) or by
// the caller (advance(), then finish() with where the caller found it ends: e.g. a nested reader's end()).
class reader {
 public:
  // text[open] must be '[' or '{'; the container itself counts one level of `depth_budget`.
  reader(std::string_view text, std::size_t open, std::size_t depth_budget = max_depth) noexcept;

  // Moves to the next element, or member (then `key`, if given, receives the raw key token, quotes included). True
  // with at() on the value's first byte; false at the closing bracket (done()) or on invalid JSON (failed()).
  bool advance(std::string_view* key = nullptr) noexcept;
  // The value at at() ends at `end` (npos: it was invalid). False if it was.
  bool finish(std::size_t end) noexcept;
  // advance() and validate the value; `value` is its raw text.
  bool next(std::string_view& value, std::string_view* key = nullptr) noexcept;

  [[nodiscard]] std::size_t at() const noexcept { return pos_; }
  [[nodiscard]] bool failed() const noexcept { return state_ == state::failed; }
  [[nodiscard]] bool done() const noexcept { return state_ == state::done; }
  // Once done(): the position just past the closing bracket.
  [[nodiscard]] std::size_t end() const noexcept { return pos_; }
  // What a nested value may use.
  [[nodiscard]] std::size_t child_budget() const noexcept { return budget_ - 1; }
  [[nodiscard]] std::string_view text() const noexcept { return text_; }

 private:
  enum class state : std::uint8_t { first, in_value, after_value, done, failed };
  bool fail() noexcept;

  std::string_view text_;
  std::size_t pos_;
  std::size_t budget_;
  bool object_;
  state state_ = state::first;
};

}  // namespace rtm::json
