#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

// Byte sizes in the config file: plain bytes (`1000000`) or a whole number with a unit (`512KiB`, `16MiB`, `1MB`).
// Pure, no I/O.
namespace rtm::config {

// Either the size in bytes or a message saying what was expected and what was found.
using size_result = std::variant<std::uint64_t, std::string>;

// Units: B, kB/KiB, MB/MiB, GB/GiB (decimal and binary), case as written. Rejects negatives, fractions, unknown
// units, overflow and garbage.
[[nodiscard]] size_result parse_size(std::string_view text);

// The shortest exact spelling in the largest binary unit that divides it: 1048576 → "1MiB", 1000000 → "1000000".
[[nodiscard]] std::string format_size(std::uint64_t bytes);

}  // namespace rtm::config
