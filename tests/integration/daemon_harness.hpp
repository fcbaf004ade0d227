#pragma once

// What the daemon-level tests share: the real rtm-bridge binary as a child process, the upstream fixtures
// (tests/fixtures/*.js) with their stdin command channel, and small readers for what the daemon exposes.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"

namespace rtm::test::daemon {

using namespace std::chrono_literals;

// An upstream fixture (tests/fixtures/*.js) with its stdin command channel.
class fixture {
 public:
  explicit fixture(std::vector<std::string> argv) {
    child_process::options opts;
    opts.argv = {"node"};
    opts.argv.insert(opts.argv.end(), argv.begin(), argv.end());
    opts.keep_stdin = true;
    proc_.emplace(std::move(opts));
    const auto port = proc_->wait_for_line("LISTENING ", 20s);
    REQUIRE_MESSAGE(port.has_value(), "fixture did not start: " << argv[0]);
    port_ = *port;
  }
  const std::string& port() const { return port_; }
  // Sends a command and returns its answer (lines starting with one of the answer prefixes; event lines such as
  // AUTH/CONNECTION are remembered and skipped).
  std::string command(const std::string& json) {
    proc_->write_line(json);
    for (;;) {
      auto line = proc_->read_line(20s);
      REQUIRE_MESSAGE(line.has_value(), "no answer to " << json);
      if (line->rfind("OK", 0) == 0 || line->rfind("STATS", 0) == 0 || line->rfind("ERROR", 0) == 0) {
        return *line;
      }
      events_.push_back(*line);
    }
  }
  // Waits for an event line starting with `prefix` (e.g. "AUTH acme-id ok").
  bool wait_event(const std::string& prefix, std::chrono::milliseconds timeout) {
    for (auto it = events_.begin(); it != events_.end(); ++it) {
      if (it->rfind(prefix, 0) == 0) {
        events_.erase(it);
        return true;
      }
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto line = proc_->read_line(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
      if (!line) {
        break;
      }
      if (line->rfind(prefix, 0) == 0) {
        return true;
      }
      events_.push_back(*line);
    }
    return false;
  }
  std::size_t count_events(const std::string& prefix) {
    // Drain what is already there without blocking long.
    while (auto line = proc_->read_line(50ms)) {
      events_.push_back(*line);
    }
    std::size_t n = 0;
    for (const auto& e : events_) {
      n += e.rfind(prefix, 0) == 0 ? 1 : 0;
    }
    return n;
  }

 private:
  std::optional<child_process> proc_;
  std::string port_;
  std::vector<std::string> events_;
};

inline fixture acme_upstream() {
  return fixture({rtm::test::env_path("RTM_FIXTURES_DIR") + "/acme_server.js", "--token", "acme-id:acme-K3y-5ecret-77",
                  "--token", "acme-id2:acme-K3y-5ecret-88", "--ping-interval", "1000", "--ping-timeout", "1000"});
}

inline std::string acme_connection(const std::string& name, const std::string& port, const std::string& id,
                                   const std::string& key_env) {
  return "  - name: " + name +
         "\n"
         "    kind: acme\n"
         "    url: \"ws://127.0.0.1:" +
         port + "/\"\n    identifier: {value: \"" + id + "\"}\n    key: {env: " + key_env +
         "}\n"
         "    reconnect: {initial_delay: 200ms, max_delay: 1s}\n";
}

class daemon_process {
 public:
  daemon_process(const rtm::test::temp_dir& dir, const std::string& config, std::map<std::string, std::string> env = {})
      : log_(dir.file("daemon.log")) {
    config_path_ = dir.write("rtm-bridge.yaml", config);
    child_process::options opts;
    opts.argv = {rtm::test::env_path("RTM_BRIDGE_BIN"), "--config", config_path_};
    opts.env = std::move(env);
    opts.stdout_file = dir.file("daemon.out");
    opts.stderr_file = log_;
    proc_.emplace(std::move(opts));
  }
  std::string log() const { return rtm::test::read_file(log_); }
  const std::string& config_path() const { return config_path_; }
  void signal(int sig) { proc_->signal(sig); }
  std::optional<int> wait(std::chrono::milliseconds timeout) { return proc_->wait(timeout); }
  bool log_has(const std::string& text, std::chrono::milliseconds timeout) {
    return rtm::test::eventually([&] { return log().find(text) != std::string::npos; }, timeout);
  }
  // The metrics endpoint's port, from the start-up log line.
  std::string metrics_port() {
    std::string port;
    REQUIRE(rtm::test::eventually(
        [&] {
          const std::string text = log();
          const std::string marker = "metrics endpoint on http://127.0.0.1:";
          const auto at = text.find(marker);
          if (at == std::string::npos) {
            return false;
          }
          port = text.substr(at + marker.size(), text.find('/', at + marker.size()) - at - marker.size());
          return true;
        },
        20s));
    return port;
  }

 private:
  std::string log_;
  std::string config_path_;
  std::optional<child_process> proc_;
};

inline std::string http_get(const std::string& url) {
  rtm::test::temp_dir dir;
  child_process::options opts;
  opts.argv = {"curl", "-s", "-m", "5", url};
  opts.stdout_file = dir.file("body");
  child_process curl(std::move(opts));
  REQUIRE(curl.wait(10s).has_value());
  return rtm::test::read_file(dir.file("body"));
}

// Sums a counter over all its label sets in Prometheus text.
inline std::uint64_t metric_sum(const std::string& text, const std::string& name) {
  std::uint64_t total = 0;
  std::size_t at = 0;
  while ((at = text.find("\n" + name, at)) != std::string::npos) {
    const auto eol = text.find('\n', at + 1);
    const auto space = text.rfind(' ', eol);
    total += std::stoull(text.substr(space + 1, eol - space - 1));
    at = eol;
  }
  return total;
}

inline std::string json_field(const std::string& json, const std::string& field) {
  const auto at = json.find("\"" + field + "\":\"");
  REQUIRE_MESSAGE(at != std::string::npos, field << " in " << json);
  const auto start = at + field.size() + 4;
  return json.substr(start, json.find('"', start) - start);
}

// The envelope's `data`: everything after "data": up to the envelope's closing brace.
inline std::string data_of(const std::string& envelope) {
  const auto at = envelope.find(",\"data\":");
  REQUIRE(at != std::string::npos);
  REQUIRE(envelope.back() == '}');
  return envelope.substr(at + 8, envelope.size() - at - 9);
}

}  // namespace rtm::test::daemon
