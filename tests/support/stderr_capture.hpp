#pragma once

#include <unistd.h>

#include <cstdlib>
#include <string>

// Sends this process's stderr (fd 2, where util/log writes) to an unlinked temporary file for the object's lifetime,
// so a unit test can read exactly what was logged. Threads that log meanwhile (an io_context thread) land there too.
namespace rtm::test {

class stderr_capture {
 public:
  stderr_capture() {
    char path[] = "/tmp/rtm-stderr-XXXXXX";
    fd_ = ::mkstemp(path);
    if (fd_ >= 0) {
      ::unlink(path);
      saved_ = ::dup(STDERR_FILENO);
      ::dup2(fd_, STDERR_FILENO);
    }
  }
  stderr_capture(const stderr_capture&) = delete;
  stderr_capture& operator=(const stderr_capture&) = delete;
  stderr_capture(stderr_capture&&) = delete;
  stderr_capture& operator=(stderr_capture&&) = delete;
  ~stderr_capture() {
    restore();
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }

  [[nodiscard]] bool ok() const noexcept { return fd_ >= 0 && saved_ >= 0; }

  // Puts the original stderr back (also done by the destructor); text() still reads what was captured.
  void restore() noexcept {
    if (saved_ >= 0) {
      ::dup2(saved_, STDERR_FILENO);
      ::close(saved_);
      saved_ = -1;
    }
  }

  // Everything written so far.
  [[nodiscard]] std::string text() const {
    std::string out;
    char buf[4096];
    for (off_t at = 0;;) {
      const ssize_t n = ::pread(fd_, buf, sizeof buf, at);
      if (n <= 0) {
        break;
      }
      out.append(buf, static_cast<std::size_t>(n));
      at += n;
    }
    return out;
  }

 private:
  int fd_ = -1;
  int saved_ = -1;
};

}  // namespace rtm::test
