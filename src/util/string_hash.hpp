#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace rtm {

// A transparent hash for maps keyed by std::string, so hot paths look up by std::string_view without building a
// key (and allocating) for every lookup.
struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// std::unordered_map<std::string, T> that finds by std::string_view.
template <typename T>
using string_map = std::unordered_map<std::string, T, string_hash, std::equal_to<>>;

}  // namespace rtm
