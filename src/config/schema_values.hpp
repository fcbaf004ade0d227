#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "config/schema.hpp"
#include "config/size.hpp"

// Judging one scalar of the file against its row: the value, or the problem's message (no key path, no position).
// The loader reads every key's text through these, and the table's defaults are read through them too, so a default
// means exactly what the same text written in the file would mean.
namespace rtm::config::schema {

// The members a size or a count is read into: std::size_t, and std::uint64_t where a value may pass 4 GiB on any
// platform (the spool's sizes). The same type on 64-bit Linux.
template <class T>
concept size_member = std::same_as<T, std::size_t> || std::same_as<T, std::uint64_t>;

// Why a text was refused (a type of its own: a judged string is a variant of two strings otherwise).
struct refusal {
  std::string message;
};
template <class T>
using judged = std::variant<T, refusal>;

// The row's check, then its normalization.
[[nodiscard]] judged<std::string> judge_text(const key_spec& spec, std::string_view text);
// A duration with a unit (a bare 0 where the range starts at 0), within the row's range.
[[nodiscard]] judged<duration> judge_duration(const key_spec& spec, std::string_view text);
// A size (bytes, or with a unit), or for a `count` row a plain whole number, within the row's range.
[[nodiscard]] judged<std::uint64_t> judge_size(const key_spec& spec, std::string_view text);
// The same, into a member of type T (refused beyond what T holds).
template <size_member T>
[[nodiscard]] judged<T> judge_size_as(const key_spec& spec, std::string_view text) {
  judged<std::uint64_t> result = judge_size(spec, text);
  if (auto* refused = std::get_if<refusal>(&result)) {
    return std::move(*refused);
  }
  const std::uint64_t value = std::get<0>(result);
  if constexpr (std::numeric_limits<T>::max() < std::numeric_limits<std::uint64_t>::max()) {
    if (value > std::numeric_limits<T>::max()) {
      return refusal{"at most " + format_size(std::numeric_limits<T>::max()) + " on this platform, got " +
                     quoted(text)};
    }
  }
  return static_cast<T>(value);
}
// A number within the row's range.
[[nodiscard]] judged<double> judge_fraction(const key_spec& spec, std::string_view text);
// true or false (YAML 1.2 core schema spellings only).
[[nodiscard]] judged<bool> judge_bool(std::string_view text);
// One of the row's choices: its value.
[[nodiscard]] judged<int> judge_choice(const key_spec& spec, std::string_view text);

// The same, as a yes/no into `out`: for the table's defaults and the example file's scalars.
bool parse_value(std::string_view text, const key_spec& spec, std::string& out);
bool parse_value(std::string_view text, const key_spec& spec, std::optional<std::string>& out);
bool parse_value(std::string_view text, const key_spec& spec, duration& out);
template <size_member T>
bool parse_value(std::string_view text, const key_spec& spec, T& out) {
  judged<T> result = judge_size_as<T>(spec, text);
  if (auto* value = std::get_if<0>(&result)) {
    out = *value;
    return true;
  }
  return false;
}
bool parse_value(std::string_view text, const key_spec& spec, double& out);
bool parse_value(std::string_view text, const key_spec& spec, bool& out);
bool parse_value(std::string_view text, const key_spec& spec, int& out);
template <class E>
requires std::is_enum_v<E>
bool parse_value(std::string_view text, const key_spec& spec, E& out) {
  int value = 0;
  if (!parse_value(text, spec, value)) {
    return false;
  }
  out = static_cast<E>(value);
  return true;
}
// Lists and maps: their only default is empty, "[]" or "{}".
template <class T>
bool parse_value(std::string_view text, const key_spec& /*spec*/, std::vector<T>& out) {
  out.clear();
  return text == "[]" || text == "{}";
}

}  // namespace rtm::config::schema
