#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"

// Resolving `{env: NAME}`, `{file: PATH}`, `{credential: NAME}` and `{value: "..."}` secrets. Reads the process
// environment and small files, nothing else; never logs.
namespace rtm::config {

inline constexpr std::size_t max_secret_bytes = std::size_t{64} * 1024;

// The key of the secret map for a source ("env", "file", "credential", "value").
[[nodiscard]] const char* secret_key(secret::source from) noexcept;

// Checks the reference itself (an env var name, a credential name): nullopt when well-formed, else why not.
[[nodiscard]] std::optional<std::string> check_secret_reference(secret::source from, std::string_view reference);

// Fills s.value from s.from/s.reference (for `value`, s.value is already set). Returns an error text naming the
// variable, path or credential and why it failed (unset, ENOENT, EACCES, empty), never the secret itself.
[[nodiscard]] std::optional<std::string> resolve_secret(secret& s);

// Trailing '\n' and "\r\n" removed: files written by `echo` or editors end with one.
[[nodiscard]] std::string_view strip_trailing_newlines(std::string_view text) noexcept;

}  // namespace rtm::config
