#include "process.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace rtm::bench {

child::child(const options& opts) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    env_strings.emplace_back(*e);
  }
  for (const auto& extra : opts.env) {
    const std::string name = extra.substr(0, extra.find('=') + 1);
    std::erase_if(env_strings, [&name](const std::string& s) { return s.starts_with(name); });
    env_strings.push_back(extra);
  }
  // Everything the child needs is built before fork: the child only calls async-signal-safe functions.
  std::vector<char*> argv;
  for (const auto& a : opts.argv) {
    argv.push_back(const_cast<char*>(a.c_str()));
  }
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : env_strings) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);

  pid_ = ::fork();
  if (pid_ < 0) {
    throw std::runtime_error(std::string("cannot fork: ") + std::strerror(errno));
  }
  if (pid_ == 0) {
    const int in = opts.stdin_fd >= 0 ? opts.stdin_fd : ::open("/dev/null", O_RDONLY);
    ::dup2(in, STDIN_FILENO);
    if (!opts.stdout_file.empty()) {
      const int fd = ::open(opts.stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      ::dup2(fd, STDOUT_FILENO);
    }
    if (!opts.stderr_file.empty()) {
      const int fd = ::open(opts.stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      ::dup2(fd, STDERR_FILENO);
    }
    // The benchmark ignores SIGPIPE (it writes into kcat's stdin); the children get the default back.
    ::signal(SIGPIPE, SIG_DFL);
    if (std::strchr(argv[0], '/') != nullptr) {
      ::execve(argv[0], argv.data(), envp.data());
    } else {
      ::execvpe(argv[0], argv.data(), envp.data());
    }
    ::_exit(127);
  }
}

child::~child() {
  if (!reaped_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

void child::signal(int sig) const noexcept {
  if (!reaped_ && pid_ > 0) {
    ::kill(pid_, sig);
  }
}

std::optional<int> child::wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!reaped_) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      return status;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return std::nullopt;
}

bool child::running() {
  if (reaped_) {
    return false;
  }
  return !wait(std::chrono::milliseconds(0)).has_value();
}

namespace {

double cpu_of_stat_file(const std::string& path, std::string* name) {
  const std::string stat = read_text_file(path);
  if (name != nullptr) {
    const auto open = stat.find('(');
    const auto close_paren = stat.rfind(')');
    if (open != std::string::npos && close_paren != std::string::npos && close_paren > open) {
      *name = stat.substr(open + 1, close_paren - open - 1);
    }
  }
  // The command name (field 2) may contain spaces: fields are counted after its closing parenthesis.
  const auto close = stat.rfind(')');
  if (close == std::string::npos) {
    return 0;
  }
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  unsigned long long utime = 0;
  unsigned long long stime = 0;
  for (int i = 3; fields >> field; ++i) {
    if (i == 14) {
      utime = std::stoull(field);
    } else if (i == 15) {
      stime = std::stoull(field);
      break;
    }
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace

double cpu_seconds(pid_t pid) {
  return cpu_of_stat_file("/proc/" + std::to_string(pid) + "/stat", nullptr);
}

thread_cpu cpu_seconds_by_thread(pid_t pid) {
  thread_cpu out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::string name;
    const double secs = cpu_of_stat_file(entry.path().string() + "/stat", &name);
    if (entry.path().filename() == std::to_string(pid)) {
      out.main += secs;
    } else if (name.starts_with("rdk:")) {
      out.librdkafka += secs;
    } else {
      out.other += secs;
    }
  }
  return out;
}

std::uint64_t status_kib(pid_t pid, const std::string& field) {
  std::istringstream status(read_text_file("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with(field + ":")) {
      return std::stoull(line.substr(field.size() + 1));
    }
  }
  return 0;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_private_file(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  }
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0) {
      ::close(fd);
      throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
}

}  // namespace rtm::bench
