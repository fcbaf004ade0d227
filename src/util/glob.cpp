#include "util/glob.hpp"

namespace rtm {
namespace {

// Matches one bracket class at pattern[pi] (pattern[pi] == '['). Returns the index just past ']' or npos if the
// class is malformed; `matched` tells whether `c` is in it.
std::size_t match_class(std::string_view pattern, std::size_t pi, char c, bool& matched) noexcept {
  std::size_t i = pi + 1;
  bool negate = false;
  if (i < pattern.size() && (pattern[i] == '!' || pattern[i] == '^')) {
    negate = true;
    ++i;
  }
  bool found = false;
  bool first = true;
  while (i < pattern.size() && (pattern[i] != ']' || first)) {
    first = false;
    char lo = pattern[i];
    if (lo == '\\' && i + 1 < pattern.size()) {
      lo = pattern[++i];
    }
    char hi = lo;
    if (i + 2 < pattern.size() && pattern[i + 1] == '-' && pattern[i + 2] != ']') {
      hi = pattern[i + 2];
      i += 2;
    }
    if (c >= lo && c <= hi) {
      found = true;
    }
    ++i;
  }
  if (i >= pattern.size()) {
    return std::string_view::npos;
  }
  matched = found != negate;
  return i + 1;
}

}  // namespace

std::optional<std::string> validate_glob(std::string_view pattern) {
  if (pattern.empty()) {
    return "empty pattern";
  }
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\') {
      if (i + 1 == pattern.size()) {
        return "pattern ends with an escape character '\\'";
      }
      ++i;
    } else if (pattern[i] == '[') {
      bool ignored = false;
      const std::size_t end = match_class(pattern, i, '\0', ignored);
      if (end == std::string_view::npos) {
        return "unterminated character class '[' at offset " + std::to_string(i);
      }
      std::size_t body = i + 1;
      if (body < pattern.size() && (pattern[body] == '!' || pattern[body] == '^')) {
        ++body;
      }
      if (body + 1 == end) {
        return "empty character class at offset " + std::to_string(i);
      }
      i = end - 1;
    }
  }
  return std::nullopt;
}

bool glob_match(std::string_view pattern, std::string_view text) noexcept {
  // Iterative matcher with single-star backtracking: linear in practice, no recursion on hostile patterns.
  std::size_t p = 0;
  std::size_t t = 0;
  std::size_t star_p = std::string_view::npos;
  std::size_t star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size()) {
      const char pc = pattern[p];
      if (pc == '*') {
        star_p = p++;
        star_t = t;
        continue;
      }
      if (pc == '?') {
        ++p;
        ++t;
        continue;
      }
      if (pc == '[') {
        bool matched = false;
        const std::size_t end = match_class(pattern, p, text[t], matched);
        if (end != std::string_view::npos && matched) {
          p = end;
          ++t;
          continue;
        }
      } else if (pc == '\\' && p + 1 < pattern.size()) {
        if (pattern[p + 1] == text[t]) {
          p += 2;
          ++t;
          continue;
        }
      } else if (pc == text[t]) {
        ++p;
        ++t;
        continue;
      }
    }
    if (star_p == std::string_view::npos) {
      return false;
    }
    p = star_p + 1;
    t = ++star_t;
  }
  while (p < pattern.size() && pattern[p] == '*') {
    ++p;
  }
  return p == pattern.size();
}

}  // namespace rtm
