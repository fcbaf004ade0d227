#pragma once

#include <stdexcept>
#include <string>

// One process per spool directory: an exclusive flock on DIR/lock, held as long as this object lives (and released
// by the kernel when the process dies, however it dies: no stale lock after a kill -9). The holder's PID is written
// into the file so that the second process can name it.
namespace rtm::spool {

// The directory is locked by another process (the daemon exits 78 with this text).
class directory_in_use : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class directory_lock {
 public:
  // Throws directory_in_use (naming the holder's PID) or std::runtime_error (cannot open the lock file).
  explicit directory_lock(const std::string& dir);
  directory_lock(const directory_lock&) = delete;
  directory_lock& operator=(const directory_lock&) = delete;
  directory_lock(directory_lock&&) = delete;
  directory_lock& operator=(directory_lock&&) = delete;
  ~directory_lock();

 private:
  int fd_ = -1;
};

}  // namespace rtm::spool
