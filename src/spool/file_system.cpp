#include "spool/file_system.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

namespace rtm::spool {
namespace {

std::error_code last_error() noexcept {
  return {errno, std::generic_category()};
}

class posix_file final : public file {
 public:
  explicit posix_file(int fd) noexcept : fd_(fd) {}
  posix_file(const posix_file&) = delete;
  posix_file& operator=(const posix_file&) = delete;
  posix_file(posix_file&&) = delete;
  posix_file& operator=(posix_file&&) = delete;
  ~posix_file() override { ::close(fd_); }

  std::error_code write_at(std::uint64_t offset, const char* data, std::size_t size) override {
    while (size > 0) {
      const ssize_t n = ::pwrite(fd_, data, size, static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        return last_error();
      }
      data += n;
      size -= static_cast<std::size_t>(n);
      offset += static_cast<std::uint64_t>(n);
    }
    return {};
  }

  std::error_code read_at(std::uint64_t offset, char* data, std::size_t size, std::size_t& got) override {
    got = 0;
    while (got < size) {
      const ssize_t n = ::pread(fd_, data + got, size - got, static_cast<off_t>(offset + got));
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        return last_error();
      }
      if (n == 0) {
        break;
      }
      got += static_cast<std::size_t>(n);
    }
    return {};
  }

  std::error_code sync_data() override { return ::fdatasync(fd_) == 0 ? std::error_code{} : last_error(); }

  std::error_code reserve(std::uint64_t size) override {
    if (::fallocate(fd_, FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(size)) == 0) {
      return {};
    }
    if (errno == EOPNOTSUPP) {
      return std::make_error_code(std::errc::operation_not_supported);
    }
    return last_error();
  }

  std::error_code truncate(std::uint64_t size) override {
    return ::ftruncate(fd_, static_cast<off_t>(size)) == 0 ? std::error_code{} : last_error();
  }

  std::error_code size(std::uint64_t& out) override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      return last_error();
    }
    out = static_cast<std::uint64_t>(st.st_size);
    return {};
  }

 private:
  int fd_;
};

}  // namespace

std::error_code posix_file_system::open(const std::string& path, open_mode mode, std::shared_ptr<file>& out) {
  int flags = O_CLOEXEC;
  switch (mode) {
    case open_mode::read_only:
      flags |= O_RDONLY;
      break;
    case open_mode::read_write:
      flags |= O_RDWR;
      break;
    case open_mode::create_new:
      flags |= O_RDWR | O_CREAT | O_EXCL;
      break;
    case open_mode::create_or_open:
      flags |= O_RDWR | O_CREAT;
      break;
  }
  const int fd = ::open(path.c_str(), flags, 0640);
  if (fd < 0) {
    return last_error();
  }
  out = std::make_shared<posix_file>(fd);
  return {};
}

std::error_code posix_file_system::remove(const std::string& path) {
  return ::unlink(path.c_str()) == 0 ? std::error_code{} : last_error();
}

std::error_code posix_file_system::list(const std::string& dir, std::vector<std::string>& names) {
  names.clear();
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return last_error();
  }
  errno = 0;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (name != "." && name != "..") {
      names.emplace_back(name);
    }
  }
  const std::error_code ec = errno != 0 ? last_error() : std::error_code{};
  ::closedir(d);
  return ec;
}

std::error_code posix_file_system::sync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return last_error();
  }
  const std::error_code ec = ::fsync(fd) == 0 ? std::error_code{} : last_error();
  ::close(fd);
  return ec;
}

std::error_code posix_file_system::free_space(const std::string& dir, std::uint64_t& out) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) {
    return last_error();
  }
  out = static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
  return {};
}

std::error_code posix_file_system::create_directories(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  return ec;
}

file_system& real_file_system() {
  static posix_file_system fs;
  return fs;
}

}  // namespace rtm::spool
