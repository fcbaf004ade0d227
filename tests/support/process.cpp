#include "support/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace rtm::test {
namespace {

std::vector<std::string> merged_environment(const child_process::options& opts) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const auto eq = entry.find('=');
    if (eq != std::string::npos) {
      env[entry.substr(0, eq)] = entry.substr(eq + 1);
    }
  }
  for (const auto& name : opts.unset_env) {
    env.erase(name);
  }
  for (const auto& [k, v] : opts.env) {
    env[k] = v;
  }
  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [k, v] : env) {
    out.push_back(k + "=" + v);
  }
  return out;
}

int exit_code(int status) {
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  if (WIFSIGNALED(status)) {
    return 128 + WTERMSIG(status);
  }
  return -1;
}

}  // namespace

child_process::child_process(options opts) {
  if (opts.argv.empty()) {
    throw std::invalid_argument("child_process: empty argv");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  int out_pipe[2] = {-1, -1};
  int in_pipe[2] = {-1, -1};
  if (opts.stdout_file.empty()) {
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
      throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    }
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, opts.stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
  }
  if (!opts.stderr_file.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, opts.stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
  }
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], STDIN_FILENO);

  // The child gets its own process group, so a test can signal a node fixture and everything it forked.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);

  std::vector<char*> argv;
  for (auto& a : opts.argv) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  auto env_strings = merged_environment(opts);
  std::vector<char*> envp;
  for (auto& e : env_strings) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);

  const int rc = ::posix_spawnp(&pid_, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(in_pipe[0]);
  if (out_pipe[1] >= 0) {
    ::close(out_pipe[1]);
  }
  if (rc != 0) {
    ::close(in_pipe[1]);
    if (out_pipe[0] >= 0) {
      ::close(out_pipe[0]);
    }
    throw std::runtime_error("cannot start " + opts.argv[0] + ": " + std::strerror(rc));
  }
  stdout_fd_ = out_pipe[0];
  if (!opts.stdin_data.empty()) {
    const ssize_t n = ::write(in_pipe[1], opts.stdin_data.data(), opts.stdin_data.size());
    (void)n;
  }
  if (opts.keep_stdin) {
    stdin_fd_ = in_pipe[1];
  } else {
    ::close(in_pipe[1]);
  }
}

void child_process::write_line(const std::string& line) {
  if (stdin_fd_ < 0) {
    throw std::logic_error("child_process::write_line needs options::keep_stdin");
  }
  const std::string data = line + "\n";
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(stdin_fd_, data.data() + done, data.size() - done);
    if (n <= 0) {
      throw std::runtime_error(std::string("write to child stdin: ") + std::strerror(errno));
    }
    done += static_cast<std::size_t>(n);
  }
}

void child_process::close_stdin() noexcept {
  if (stdin_fd_ >= 0) {
    ::close(stdin_fd_);
    stdin_fd_ = -1;
  }
}

child_process::child_process(child_process&& other) noexcept
    : pid_(other.pid_),
      stdout_fd_(other.stdout_fd_),
      stdin_fd_(other.stdin_fd_),
      buffer_(std::move(other.buffer_)),
      status_(other.status_) {
  other.pid_ = -1;
  other.stdout_fd_ = -1;
  other.stdin_fd_ = -1;
}

child_process::~child_process() {
  if (pid_ > 0 && !status_) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  close_stdin();
  if (stdout_fd_ >= 0) {
    ::close(stdout_fd_);
  }
}

std::optional<std::string> child_process::read_line(std::chrono::milliseconds timeout) {
  // Not stretched: callers waiting for something pass patience(...) themselves; count-within-a-window callers must not.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    if (stdout_fd_ < 0) {
      return std::nullopt;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return std::nullopt;
    }
    pollfd pfd{stdout_fd_, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (ready <= 0) {
      continue;
    }
    char chunk[4096];
    const ssize_t n = ::read(stdout_fd_, chunk, sizeof chunk);
    if (n <= 0) {
      ::close(stdout_fd_);
      stdout_fd_ = -1;
      continue;
    }
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }
}

std::optional<std::string> child_process::wait_for_line(const std::string& prefix, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + patience(timeout);
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return std::nullopt;
    }
    auto line = read_line(left);
    if (!line) {
      return std::nullopt;
    }
    if (line->rfind(prefix, 0) == 0) {
      return line->substr(prefix.size());
    }
  }
}

void child_process::signal(int sig) const noexcept {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, sig);
  }
}

std::optional<int> child_process::wait(std::chrono::milliseconds timeout) {
  if (status_) {
    return status_;
  }
  const auto deadline = std::chrono::steady_clock::now() + patience(timeout);
  while (true) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      status_ = exit_code(status);
      return status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

bool child_process::running() {
  return !wait(std::chrono::milliseconds(0)).has_value();
}

namespace {

// A whole number >= 1 from the environment, 1 when unset or nonsense: the slow-run factors below.
unsigned long long env_factor(const char* name) {
  const char* text = std::getenv(name);
  const unsigned long long value = text == nullptr ? 1 : std::strtoull(text, nullptr, 10);
  return value >= 1 ? value : 1;
}

}  // namespace

std::chrono::milliseconds patience(std::chrono::milliseconds timeout) {
  static const auto scale = static_cast<long>(env_factor("RTM_TEST_TIME_SCALE"));
  return timeout * scale;
}

std::uint64_t volume(std::uint64_t count) {
  static const unsigned long long divisor = env_factor("RTM_TEST_VOLUME_DIVISOR");
  return std::max<std::uint64_t>(count / divisor, 1);
}

std::string env_path(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    throw std::runtime_error(std::string("test environment variable ") + name + " is not set (run through meson test)");
  }
  return value;
}

temp_dir::temp_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "rtm-test-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  }
  path_ = tmpl;
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string temp_dir::write(const std::string& name, const std::string& content, unsigned mode) const {
  const std::string p = file(name);
  {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << content;
  }
  std::filesystem::permissions(p, static_cast<std::filesystem::perms>(mode));
  return p;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace rtm::test
