#include "config/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rtm::config {
namespace {

// Closes the descriptor on every return path.
class fd_guard {
 public:
  explicit fd_guard(int fd) noexcept : fd_(fd) {}
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  ~fd_guard() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  [[nodiscard]] int get() const noexcept { return fd_; }

 private:
  int fd_;
};

}  // namespace

std::string errno_text(int err) {
  std::string text = std::strerror(err);
  if (const char* name = ::strerrorname_np(err); name != nullptr) {
    text += " (";
    text += name;
    text += ")";
  }
  return text;
}

file_result read_small_file(const std::string& path, std::size_t max_bytes) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is then rejected as not a regular file.
  const fd_guard fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (fd.get() < 0) {
    return errno_text(errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return errno_text(errno);
  }
  if (S_ISDIR(st.st_mode)) {
    return std::string("is a directory, not a file");
  }
  if (!S_ISREG(st.st_mode)) {
    return std::string("is not a regular file");
  }
  if (static_cast<std::size_t>(st.st_size) > max_bytes) {
    return "is larger than " + std::to_string(max_bytes) + " bytes (" + std::to_string(st.st_size) +
           "): is this the right file?";
  }
  file_content out;
  out.mode = st.st_mode;
  out.data.resize(static_cast<std::size_t>(st.st_size));
  std::size_t done = 0;
  // The size may change under us (a file being rewritten): read until EOF, bounded by max_bytes.
  for (;;) {
    if (done == out.data.size()) {
      if (out.data.size() > max_bytes) {
        return "is larger than " + std::to_string(max_bytes) + " bytes: is this the right file?";
      }
      out.data.resize(out.data.size() + 4096);
    }
    const ssize_t n = ::read(fd.get(), out.data.data() + done, out.data.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return errno_text(errno);
    }
    if (n == 0) {
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  out.data.resize(done);
  if (out.data.size() > max_bytes) {
    return "is larger than " + std::to_string(max_bytes) + " bytes: is this the right file?";
  }
  return out;
}

}  // namespace rtm::config
