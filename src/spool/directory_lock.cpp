#include "spool/directory_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <system_error>

namespace rtm::spool {

directory_lock::directory_lock(const std::string& dir) {
  const std::string path = dir + "/lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd_ < 0) {
    throw std::runtime_error("spool: cannot open the lock file " + path + ": " +
                             std::error_code(errno, std::generic_category()).message());
  }
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::array<char, 32> pid{};
    const ssize_t n = ::pread(fd_, pid.data(), pid.size() - 1, 0);
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK) {
      std::string_view holder = n > 0 ? std::string_view(pid.data(), static_cast<std::size_t>(n)) : "unknown";
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) {
        holder.remove_suffix(1);
      }
      throw directory_in_use("spool.path " + dir + " is in use by another rtm-bridge process (PID " +
                             std::string(holder) +
                             "); a spool belongs to one process: give each instance its own spool.path");
    }
    throw std::runtime_error("spool: cannot lock " + path + ": " +
                             std::error_code(err, std::generic_category()).message());
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    // The lock holds either way; only the PID in the message of a second process would be missing.
    return;
  }
}

directory_lock::~directory_lock() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

}  // namespace rtm::spool
