#pragma once

#include <optional>
#include <string>
#include <string_view>

// Glob patterns on event names (`message:*`, `session:update_?`, `[a-z]*`), used by the config's `events` and
// `routes[].match`. Pure and allocation-free when matching.
namespace rtm {

// Returns an error text when `pattern` is not a valid glob (empty, unterminated `[`, empty class, trailing `\`).
[[nodiscard]] std::optional<std::string> validate_glob(std::string_view pattern);

// `*` any run of characters (':' included), `?` one character, `[abc]`, `[a-z]`, `[!x]`, `\` escapes the next one.
[[nodiscard]] bool glob_match(std::string_view pattern, std::string_view text) noexcept;

}  // namespace rtm
