#pragma once

#include <sys/types.h>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

// Child processes of the benchmark (the daemon, kcat) and what /proc says about them. Linux only.
namespace rtm::bench {

class child {
 public:
  struct options {
    std::vector<std::string> argv;
    std::vector<std::string> env;  // "NAME=value", added to the benchmark's own environment
    std::string stderr_file;       // empty: inherit
    std::string stdout_file;       // empty: inherit
    int stdin_fd = -1;             // -1: /dev/null; otherwise dup'ed onto the child's stdin
  };

  // Throws std::runtime_error if the program cannot be started.
  explicit child(const options& opts);
  child(const child&) = delete;
  child& operator=(const child&) = delete;
  // Kills (SIGKILL) and reaps the child if it is still running.
  ~child();

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  void signal(int sig) const noexcept;
  // The exit status (as from waitpid) once the child ended within `timeout`, else nullopt.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  [[nodiscard]] bool running();

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

// utime + stime of a process, in seconds (/proc/PID/stat).
[[nodiscard]] double cpu_seconds(pid_t pid);
// utime + stime of every thread of a process, in seconds, summed into the main thread ("main"), librdkafka's
// threads (named "rdk:*": "librdkafka") and the rest ("other"). Threads that ended are not counted.
struct thread_cpu {
  double main = 0;
  double librdkafka = 0;
  double other = 0;
};
[[nodiscard]] thread_cpu cpu_seconds_by_thread(pid_t pid);
// A "Vm...:" line of /proc/PID/status in KiB (e.g. "VmHWM", "VmRSS"); 0 if absent.
[[nodiscard]] std::uint64_t status_kib(pid_t pid, const std::string& field);

// The whole file, or "" if it cannot be read.
[[nodiscard]] std::string read_text_file(const std::string& path);
// Writes a file with mode 0600 (configs carry secrets). Throws std::runtime_error.
void write_private_file(const std::string& path, const std::string& text);

}  // namespace rtm::bench
