#include "support/daemon.hpp"

#include <doctest/doctest.h>

#include <string>
#include <utility>

namespace rtm::test {

using namespace std::chrono_literals;

fixture::fixture(std::vector<std::string> argv) {
  child_process::options opts;
  opts.argv = {"node"};
  opts.argv.insert(opts.argv.end(), argv.begin(), argv.end());
  opts.keep_stdin = true;
  proc_.emplace(std::move(opts));
  const auto port = proc_->wait_for_line("LISTENING ", 20s);
  REQUIRE_MESSAGE(port.has_value(), "fixture did not start: " << argv[0]);
  port_ = *port;
}

std::string fixture::command(const std::string& json) {
  proc_->write_line(json);
  for (;;) {
    auto line = proc_->read_line(patience(20s));
    REQUIRE_MESSAGE(line.has_value(), "no answer to " << json);
    if (line->rfind("OK", 0) == 0 || line->rfind("STATS", 0) == 0 || line->rfind("STREAM", 0) == 0 ||
        line->rfind("ERROR", 0) == 0) {
      return *line;
    }
    events_.push_back(*line);
  }
}

bool fixture::wait_event(const std::string& prefix, std::chrono::milliseconds timeout) {
  for (auto it = events_.begin(); it != events_.end(); ++it) {
    if (it->rfind(prefix, 0) == 0) {
      events_.erase(it);
      return true;
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + rtm::test::patience(timeout);
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

std::size_t fixture::count_events(const std::string& prefix) {
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

std::vector<std::string> fixture::events(const std::string& prefix) {
  while (auto line = proc_->read_line(50ms)) {
    events_.push_back(*line);
  }
  std::vector<std::string> out;
  for (const auto& e : events_) {
    if (e.rfind(prefix, 0) == 0) {
      out.push_back(e);
    }
  }
  return out;
}

fixture acme_upstream(int ping_interval_ms, int ping_timeout_ms) {
  return fixture({env_path("RTM_FIXTURES_DIR") + "/acme_server.js", "--token", "acme-id:acme-K3y-5ecret-77", "--token",
                  "acme-id2:acme-K3y-5ecret-88", "--ping-interval", std::to_string(ping_interval_ms), "--ping-timeout",
                  // A daemon under valgrind answers pings late, not never.
                  std::to_string(patience(std::chrono::milliseconds(ping_timeout_ms)).count())});
}

std::string acme_connection(const std::string& name, const std::string& port, const std::string& id,
                            const std::string& key_env) {
  return "  - name: " + name +
         "\n"
         "    kind: acme\n"
         "    url: \"ws://127.0.0.1:" +
         port + "/\"\n    identifier: {value: \"" + id + "\"}\n    key: {env: " + key_env +
         "}\n"
         "    reconnect: {initial_delay: 200ms, max_delay: 1s}\n";
}

std::string slack_connection(const std::string& name, const std::string& port, const std::string& token_env) {
  return "  - name: " + name + "\n    kind: slack\n    url: \"http://127.0.0.1:" + port +
         "/api/\"\n    key: {env: " + token_env + "}\n    reconnect: {initial_delay: 200ms, max_delay: 1s}\n";
}

daemon_process::daemon_process(const temp_dir& dir, const std::string& config, std::map<std::string, std::string> env)
    : log_(dir.file("daemon.log")) {
  config_path_ = dir.write("rtm-bridge.yaml", config);
  child_process::options opts;
  opts.argv = {env_path("RTM_BRIDGE_BIN"), "--config", config_path_};
  opts.env = std::move(env);
  opts.stdout_file = dir.file("daemon.out");
  opts.stderr_file = log_;
  proc_.emplace(std::move(opts));
}

std::string daemon_process::log() const {
  return read_file(log_);
}

bool daemon_process::log_has(const std::string& text, std::chrono::milliseconds timeout) {
  return eventually([&] { return log().find(text) != std::string::npos; }, timeout);
}

std::string daemon_process::metrics_port() {
  std::string port;
  REQUIRE(eventually(
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

http_response http_fetch(const std::string& url) {
  temp_dir dir;
  child_process::options opts;
  opts.argv = {"curl", "-s", "-m", "5", "-o", dir.file("body"), "-w", "%{http_code}", url};
  opts.stdout_file = dir.file("status");
  child_process curl(std::move(opts));
  REQUIRE(curl.wait(10s).has_value());
  http_response out;
  const std::string status = read_file(dir.file("status"));
  out.status = status.empty() ? 0 : std::stoi(status);
  out.body = read_file(dir.file("body"));
  return out;
}

std::string http_get(const std::string& url) {
  return http_fetch(url).body;
}

std::uint64_t metric_sum(const std::string& text, const std::string& name) {
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

}  // namespace rtm::test
