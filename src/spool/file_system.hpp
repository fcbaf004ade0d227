#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

// The spool's I/O layer: the few file operations the spool makes, behind an interface so that a test can replace
// the disk with a model that remembers which bytes were fdatasync'd and then "loses power" (tests/spool). The
// production implementation is posix_file_system (plain syscalls).
//
// Threading: the spool calls these from the io_context thread (open, write, read, truncate, unlink, list) and from
// its sync thread (fdatasync, the checkpoint's write, sync_directory) at the same time, on different or the same
// files: an implementation must allow that (POSIX does; the test model locks).
namespace rtm::spool {

class file_system;

// An open file. Closed when the last reference goes (the sync thread may hold one a while after the spool dropped
// the segment).
class file {
 public:
  file() = default;
  file(const file&) = delete;
  file& operator=(const file&) = delete;
  file(file&&) = delete;
  file& operator=(file&&) = delete;
  virtual ~file() = default;

  // Writes all of `data` at `offset` (retrying short writes and EINTR) or returns the error.
  [[nodiscard]] virtual std::error_code write_at(std::uint64_t offset, const char* data, std::size_t size) = 0;
  // Reads up to `size` bytes at `offset`; `got` is what was read (less at the end of the file).
  [[nodiscard]] virtual std::error_code read_at(std::uint64_t offset, char* data, std::size_t size,
                                                std::size_t& got) = 0;
  [[nodiscard]] virtual std::error_code sync_data() = 0;  // fdatasync
  // Reserves `size` bytes of disk from offset 0 without changing the file's size (fallocate KEEP_SIZE): a write
  // inside it cannot fail for lack of space. Unsupported by the file system: std::errc::operation_not_supported.
  [[nodiscard]] virtual std::error_code reserve(std::uint64_t size) = 0;
  [[nodiscard]] virtual std::error_code truncate(std::uint64_t size) = 0;
  [[nodiscard]] virtual std::error_code size(std::uint64_t& out) = 0;
};

enum class open_mode {
  read_only,
  read_write,     // must exist
  create_new,     // read-write, must not exist
  create_or_open  // read-write
};

class file_system {
 public:
  file_system() = default;
  file_system(const file_system&) = delete;
  file_system& operator=(const file_system&) = delete;
  file_system(file_system&&) = delete;
  file_system& operator=(file_system&&) = delete;
  virtual ~file_system() = default;

  [[nodiscard]] virtual std::error_code open(const std::string& path, open_mode mode, std::shared_ptr<file>& out) = 0;
  [[nodiscard]] virtual std::error_code remove(const std::string& path) = 0;
  // The names (not paths) of the entries of `dir`.
  [[nodiscard]] virtual std::error_code list(const std::string& dir, std::vector<std::string>& names) = 0;
  // Makes the directory's entries (files created, removed) durable: fsync on the directory.
  [[nodiscard]] virtual std::error_code sync_directory(const std::string& dir) = 0;
  // Bytes available to this (unprivileged) process on the file system holding `dir` (statvfs f_bavail).
  [[nodiscard]] virtual std::error_code free_space(const std::string& dir, std::uint64_t& out) = 0;
  // Creates `dir` and its parents when missing.
  [[nodiscard]] virtual std::error_code create_directories(const std::string& dir) = 0;
};

// The real disk.
class posix_file_system final : public file_system {
 public:
  std::error_code open(const std::string& path, open_mode mode, std::shared_ptr<file>& out) override;
  std::error_code remove(const std::string& path) override;
  std::error_code list(const std::string& dir, std::vector<std::string>& names) override;
  std::error_code sync_directory(const std::string& dir) override;
  std::error_code free_space(const std::string& dir, std::uint64_t& out) override;
  std::error_code create_directories(const std::string& dir) override;
};

// The process-wide real disk.
[[nodiscard]] file_system& real_file_system();

}  // namespace rtm::spool
