#pragma once

// Test support for the upstream integration tests: node fixtures and an io_context on its own thread.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "support/process.hpp"

namespace rtm::test {

// A reconnect policy for a test connection (the config structs take their defaults from the schema, so they are not
// aggregates).
inline config::reconnect_policy reconnect(std::chrono::milliseconds initial, std::chrono::milliseconds max,
                                          double jitter) {
  config::reconnect_policy policy;
  policy.initial_delay = initial;
  policy.max_delay = max;
  policy.jitter = jitter;
  return policy;
}

using namespace std::chrono_literals;

// A node fixture from tests/fixtures: its stdout lines are collected as the test reads them, commands go to its
// stdin. The process is killed by the destructor if the test did not end it.
class node_fixture {
 public:
  node_fixture(const std::string& script, const std::vector<std::string>& extra) {
    std::vector<std::string> argv{"node", rtm::test::env_path("RTM_FIXTURES_DIR") + "/" + script};
    argv.insert(argv.end(), extra.begin(), extra.end());
    rtm::test::child_process::options opts;
    opts.argv = argv;
    opts.keep_stdin = true;
    proc_.emplace(std::move(opts));
    const auto line = wait_line("LISTENING ", 15s);
    REQUIRE_MESSAGE(line, script << " did not start (did scripts/setup install tests/fixtures/node_modules?)");
    port = std::stoi(*line);
  }

  // Reads lines until one starts with `prefix` (lines before it are kept for count()).
  std::optional<std::string> wait_line(const std::string& prefix, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + rtm::test::patience(timeout);
    for (std::size_t i = consumed_;; ++i) {
      while (i >= lines_.size()) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left <= 0ms) {
          return std::nullopt;
        }
        auto line = proc_->read_line(left);
        if (!line) {
          return std::nullopt;
        }
        lines_.push_back(*line);
      }
      if (lines_[i].rfind(prefix, 0) == 0) {
        consumed_ = i + 1;
        return lines_[i].substr(prefix.size());
      }
    }
  }

  // Reads whatever arrives within `timeout`, then counts the lines seen so far that start with `prefix`.
  // The window is not stretched for slow runs: it is measured against the product's own timers (back-offs).
  std::size_t count(const std::string& prefix, std::chrono::milliseconds timeout = 0ms) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      auto line = proc_->read_line(std::max(left, 1ms));
      if (line) {
        lines_.push_back(*line);
        continue;
      }
      if (left <= 0ms) {
        break;
      }
    }
    std::size_t n = 0;
    for (const auto& l : lines_) {
      n += l.rfind(prefix, 0) == 0 ? 1 : 0;
    }
    return n;
  }

  // Waits until at least `n` lines start with `prefix`.
  bool wait_count(const std::string& prefix, std::size_t n, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + rtm::test::patience(timeout);
    while (count(prefix) < n) {
      if (std::chrono::steady_clock::now() >= deadline) {
        return false;
      }
      auto line = proc_->read_line(50ms);
      if (line) {
        lines_.push_back(*line);
      }
    }
    return true;
  }

  // Sends a command and returns the rest of its answer line.
  std::string command(const std::string& json, const std::string& answer_prefix) {
    proc_->write_line(json);
    const auto line = wait_line(answer_prefix, 10s);
    REQUIRE_MESSAGE(line, "no answer to " << json);
    return *line;
  }

  void stop() { proc_.reset(); }

  int port = 0;

 private:
  std::optional<rtm::test::child_process> proc_;
  std::vector<std::string> lines_;
  std::size_t consumed_ = 0;
};

// Captures what the process writes to stderr (rtm::log's lines, from any thread) into a file while it lives, then
// restores stderr and copies the captured text to it, so the test log still shows it.
class stderr_capture {
 public:
  stderr_capture() : path_(dir_.file("stderr.log")) {
    saved_ = ::dup(STDERR_FILENO);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE_MESSAGE((saved_ >= 0 && fd >= 0), "cannot redirect stderr to " << path_);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  stderr_capture(const stderr_capture&) = delete;
  stderr_capture& operator=(const stderr_capture&) = delete;
  stderr_capture(stderr_capture&&) = delete;
  stderr_capture& operator=(stderr_capture&&) = delete;
  ~stderr_capture() {
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    const std::string captured = text();
    std::size_t done = 0;
    while (done < captured.size()) {
      const ssize_t n = ::write(STDERR_FILENO, captured.data() + done, captured.size() - done);
      if (n <= 0) {
        break;
      }
      done += static_cast<std::size_t>(n);
    }
  }

  [[nodiscard]] std::string text() const { return read_file(path_); }

  // The captured lines that contain every one of `parts`.
  [[nodiscard]] std::vector<std::string> lines_with(const std::vector<std::string>& parts) const {
    std::vector<std::string> found;
    const std::string all = text();
    std::size_t start = 0;
    while (start < all.size()) {
      std::size_t end = all.find('\n', start);
      end = end == std::string::npos ? all.size() : end;
      const std::string line = all.substr(start, end - start);
      bool match = true;
      for (const auto& part : parts) {
        match = match && line.find(part) != std::string::npos;
      }
      if (match) {
        found.push_back(line);
      }
      start = end + 1;
    }
    return found;
  }

 private:
  temp_dir dir_;
  std::string path_;
  int saved_ = -1;
};

// The daemon's threading in miniature: one thread runs the io_context; the test posts calls to it and waits.
class io_thread {
 public:
  io_thread() : work_(boost::asio::make_work_guard(io)), thread_([this] { io.run(); }) {}
  io_thread(const io_thread&) = delete;
  io_thread& operator=(const io_thread&) = delete;
  io_thread(io_thread&&) = delete;
  io_thread& operator=(io_thread&&) = delete;
  ~io_thread() {
    work_.reset();
    io.stop();
    thread_.join();
  }

  // Runs `fn` on the io thread and returns its result (exceptions included).
  template <typename Fn>
  auto call(Fn fn) -> decltype(fn()) {
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto result = task.get_future();
    boost::asio::post(io, [&task] { task(); });
    return result.get();
  }

  boost::asio::io_context io;

 private:
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
};

}  // namespace rtm::test
