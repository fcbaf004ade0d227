#pragma once

#include <cstddef>
#include <optional>
#include <string>

// `tls.ca_file` is checked at load, not at the first connect: a typo should fail `--check-config`, not page someone
// at 3 a.m. when a reconnect happens.
namespace rtm::config {

inline constexpr std::size_t max_ca_file_bytes = std::size_t{16} * 1024 * 1024;

// nullopt when `path` is a readable file holding at least one PEM certificate; else why not.
[[nodiscard]] std::optional<std::string> check_ca_file(const std::string& path);

}  // namespace rtm::config
