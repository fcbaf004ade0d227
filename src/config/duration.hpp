#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "config/config.hpp"

// Durations in the config file: an integer and a unit (`250ms`, `5s`, `2m`, `1h`). Pure, no I/O.
namespace rtm::config {

// Either the parsed duration or a message saying what was expected and what was found.
using duration_result = std::variant<duration, std::string>;

struct duration_rules {
  bool allow_bare_zero = false;  // `0` without a unit (only where the contract shows it, e.g. delivery_timeout)
};

// Rejects negative values, unitless non-zero numbers, fractions, unknown units, overflow and garbage.
[[nodiscard]] duration_result parse_duration(std::string_view text, duration_rules rules = {});

// The shortest exact spelling in the largest unit that divides it: 90000ms → "90s", 3600000ms → "1h", 0 → "0".
[[nodiscard]] std::string format_duration(duration d);

}  // namespace rtm::config
