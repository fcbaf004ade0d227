#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

// Child processes for integration tests: the daemon under test, node fixtures, kcat. Every child is tracked by PID and
// killed (SIGKILL) and reaped by the destructor if the test did not stop it, so a failing test leaves nothing behind.
namespace rtm::test {

class child_process {
 public:
  struct options {
    std::vector<std::string> argv;
    std::map<std::string, std::string> env;  // added to (or replacing in) the test's own environment
    std::vector<std::string> unset_env;
    std::string stdout_file;  // empty: a pipe the test reads with read_line()
    std::string stderr_file;  // empty: inherit the test's stderr
    std::string stdin_data;   // written to the child's stdin at start
    bool keep_stdin = false;  // keep stdin open for write_line() (fixtures that read commands); else closed
  };

  explicit child_process(options opts);
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  child_process(child_process&& other) noexcept;
  child_process& operator=(child_process&&) = delete;
  ~child_process();

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

  // Next line of stdout (pipe mode), or nullopt on timeout or EOF.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  // Reads lines until one starts with `prefix`; returns the rest of that line.
  std::optional<std::string> wait_for_line(const std::string& prefix, std::chrono::milliseconds timeout);

  // Writes one line (a '\n' is appended) to the child's stdin; needs options::keep_stdin.
  void write_line(const std::string& line);
  // Closes the child's stdin (EOF), e.g. to let a fixture exit on its own.
  void close_stdin() noexcept;

  void signal(int sig) const noexcept;
  // Waits for exit; returns the exit code (128+signal if killed by a signal), or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  [[nodiscard]] bool running();

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int stdin_fd_ = -1;
  std::string buffer_;
  std::optional<int> status_;
};

// The path of a file in the test's environment variable `name` (set by meson), or a failed CHECK.
std::string env_path(const char* name);

// A fresh temporary directory under $TMPDIR, removed by the destructor.
class temp_dir {
 public:
  temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  temp_dir(temp_dir&&) = delete;
  temp_dir& operator=(temp_dir&&) = delete;
  ~temp_dir();
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }
  std::string write(const std::string& name, const std::string& content, unsigned mode = 0600) const;

 private:
  std::string path_;
};

std::string read_file(const std::string& path);

// Every wait in the tests is sized for the ASan build. A slower run (scripts/valgrind sets RTM_TEST_TIME_SCALE=10)
// stretches each one by that factor instead of failing on time: the helpers that wait for something to happen pass
// their timeout through here. Windows that count what happens within them (harness count(), read_line()) are not
// stretched: they are measured against the product's own timers, which run at the usual speed.
std::chrono::milliseconds patience(std::chrono::milliseconds timeout);
// Likewise for the bulk of a test (events in a burst): divided by RTM_TEST_VOLUME_DIVISOR (scripts/valgrind: 10),
// where a run that slow could not carry the full count through a broker that is itself under memcheck.
std::uint64_t volume(std::uint64_t count);

// Polls `predicate` every 20 ms until it holds or `timeout` (times the scale above) passes; returns its last value.
template <typename Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds timeout);

}  // namespace rtm::test

#include "support/process_impl.hpp"
