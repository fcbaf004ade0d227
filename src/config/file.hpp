#pragma once

#include <sys/types.h>
#include <cstddef>
#include <string>
#include <variant>

// Reading the small files the config names (the config itself, secret files, credentials): bounded, regular files
// only, so a path pointing at /dev/zero or a FIFO fails with a clear message instead of hanging the loader.
namespace rtm::config {

struct file_content {
  std::string data;
  mode_t mode = 0;  // st_mode of the opened file, for the permission warning
};

// Either the content or a message like "No such file or directory (ENOENT)" / "is not a regular file".
using file_result = std::variant<file_content, std::string>;

[[nodiscard]] file_result read_small_file(const std::string& path, std::size_t max_bytes);

// "Permission denied (EACCES)": the system's text and the errno name, which is what a sysadmin searches for.
[[nodiscard]] std::string errno_text(int err);

}  // namespace rtm::config
