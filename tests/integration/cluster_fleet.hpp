// The fleet the cluster tests drive (tests/integration/cluster_test.cpp, cluster_cut_test.cpp): real rtm-bridge
// processes in one consumer group on a mock cluster of its own process (rtm-mock-cluster), tokens on the Acme fixture,
// which counts the live (authenticated) sockets of every token. The fleet samples those counts every 100 ms and keeps
// the fixture's own maximum: "never two at once" is that maximum, exact, not a sample.
// Timings: S = 6 s, H = 400 ms, M = 800 ms, R = 6 s (the mock waits S - 1 s in every join whose member count
// changed; S - M = 5.2 s outlasts it, so a rebalance does not fence).
#pragma once

#include <doctest/doctest.h>
#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/daemon.hpp"
#include "support/process.hpp"

namespace rtm::test::cluster {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

inline constexpr int buckets = 16;
inline const std::string group = "bridges";

inline std::string token(int i) {
  char name[16];
  std::snprintf(name, sizeof name, "t%02d", i);
  return name;
}

struct bridge {
  std::unique_ptr<temp_dir> dir;
  std::unique_ptr<daemon_process> proc;
  bool running = false;
  bool stopped = false;  // SIGSTOP
  bool ever_stopped = false;
};

// The per-token view of the fixture over time: unserved gaps (a token with no live socket), overlaps seen in samples.
struct observation {
  std::map<std::string, int> live;
  std::map<std::string, int> max_live;
};

class fleet {
 public:
  // `spare` more tokens are known to the fixture but not configured (until reload_all()).
  explicit fleet(int tokens, int ping_interval_ms = 1000, int spare = 0) : tokens_(tokens) {
    child_process::options opts;
    opts.argv = {env_path("RTM_MOCK_CLUSTER_BIN"), "--brokers", "3", "--topic",
                 "rtm-bridge.assignment:" + std::to_string(buckets)};
    opts.keep_stdin = true;
    opts.stderr_file = logs_.file("mock-cluster.log");
    cluster_.emplace(std::move(opts));
    const auto bootstrap = cluster_->wait_for_line("BOOTSTRAP ", 30s);
    REQUIRE(bootstrap.has_value());
    bootstrap_ = *bootstrap;
    mock("coordinator " + group + " 1");
    std::vector<std::string> argv{env_path("RTM_FIXTURES_DIR") + "/acme_server.js", "--ping-interval",
                                  std::to_string(ping_interval_ms), "--ping-timeout",
                                  std::to_string(patience(1000ms).count())};
    for (int i = 0; i < tokens + spare; ++i) {
      argv.push_back("--token");
      argv.push_back(token(i) + ":k" + token(i));
    }
    acme_.emplace(argv);
  }

  ~fleet() {
    for (auto& b : bridges_) {
      if (b.running) {
        if (b.stopped) {
          b.proc->signal(SIGCONT);
        }
        b.proc->signal(SIGKILL);
        (void)b.proc->wait(10s);
      }
    }
  }
  fleet(const fleet&) = delete;
  fleet& operator=(const fleet&) = delete;
  fleet(fleet&&) = delete;
  fleet& operator=(fleet&&) = delete;

  void mock(const std::string& command) {
    cluster_->write_line(command);
    REQUIRE(cluster_->wait_for_line("OK " + command, 10s).has_value());
  }

  [[nodiscard]] const std::string& bootstrap() const { return bootstrap_; }
  fixture& acme() { return *acme_; }

  // Instance i writes its events to topic inst<i>: which instance forwarded a record is visible in Kafka.
  std::string config(std::size_t i) const {
    std::string yaml = "kafka:\n  brokers: \"" + bootstrap_ + "\"\n  topic: inst" + std::to_string(i) +
                       "\ncluster:\n  group_id: " + group + "\n  buckets: " + std::to_string(buckets) +
                       "\n  session_timeout: 6s\n  heartbeat_interval: 400ms\n  rebalance_timeout: 6s\n"
                       "  fence_margin: 800ms\nmetrics:\n  listen: 127.0.0.1:0\nconnections:\n";
    for (int t = 0; t < tokens_; ++t) {
      yaml += "  - name: c" + token(t) + "\n    kind: acme\n    url: \"ws://127.0.0.1:" + acme_->port() +
              "/\"\n    identifier: {value: " + token(t) + "}\n    key: {value: k" + token(t) +
              "}\n    reconnect: {initial_delay: 100ms, max_delay: 1s, jitter: 0}\n";
    }
    return yaml;
  }

  std::size_t start() {
    bridge b;
    b.dir = std::make_unique<temp_dir>();
    b.proc = std::make_unique<daemon_process>(*b.dir, config(bridges_.size()));
    b.running = true;
    bridges_.push_back(std::move(b));
    return bridges_.size() - 1;
  }
  void signal(std::size_t i, int sig) {
    bridge& b = bridges_.at(i);
    REQUIRE(b.running);
    b.proc->signal(sig);
    if (sig == SIGSTOP) {
      b.stopped = true;
      b.ever_stopped = true;
    } else if (sig == SIGCONT) {
      b.stopped = false;
    } else if (sig == SIGKILL || sig == SIGTERM) {
      const auto code = b.proc->wait(patience(30s));
      REQUIRE_MESSAGE(code.has_value(), "instance " << i << " did not exit after signal " << sig);
      if (sig == SIGTERM) {
        CHECK_MESSAGE(*code == 0, "instance " << i << " exited " << *code << ":\n" << b.proc->log());
      }
      b.running = false;
    }
  }
  daemon_process& instance(std::size_t i) { return *bridges_.at(i).proc; }
  [[nodiscard]] std::size_t size() const { return bridges_.size(); }
  [[nodiscard]] bool running(std::size_t i) const { return bridges_.at(i).running; }
  [[nodiscard]] bool stopped(std::size_t i) const { return bridges_.at(i).stopped; }
  [[nodiscard]] bool ever_stopped(std::size_t i) const { return bridges_.at(i).ever_stopped; }

  // Every running instance gets the config with `tokens` connections, then SIGHUP.
  void reload_all(int tokens) {
    tokens_ = tokens;
    for (std::size_t i = 0; i < bridges_.size(); ++i) {
      if (bridges_[i].running) {
        std::ofstream(bridges_[i].proc->config_path(), std::ios::trunc) << config(i);
        bridges_[i].proc->signal(SIGHUP);
      }
    }
  }

  observation observe() {
    const std::string line = acme_->command(R"({"cmd":"stats"})");
    REQUIRE(line.rfind("STATS ", 0) == 0);
    simdjson::dom::parser parser;
    const simdjson::dom::element doc = parser.parse(line.substr(6));
    observation o;
    for (auto [key, value] : doc["live"].get_object()) {
      o.live[std::string(key)] = static_cast<int>(value.get_int64().value());
    }
    for (auto [key, value] : doc["max_live"].get_object()) {
      o.max_live[std::string(key)] = static_cast<int>(value.get_int64().value());
    }
    return o;
  }

  // Samples every 100 ms until every token has exactly one live socket (true) or `timeout`; unserved stretches
  // (live == 0) of each token are added to gaps_ as they end.
  bool converge(std::chrono::milliseconds timeout) {
    const auto deadline = clock_type::now() + patience(timeout);
    while (clock_type::now() < deadline) {
      const observation o = sample();
      bool all = true;
      for (int t = 0; t < tokens_; ++t) {
        const auto it = o.live.find(token(t));
        all = all && it != o.live.end() && it->second == 1;
      }
      if (all) {
        return true;
      }
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  // Samples every 100 ms until `predicate` holds (true) or `timeout`.
  template <class Predicate>
  bool wait_for(Predicate predicate, std::chrono::milliseconds timeout) {
    const auto deadline = clock_type::now() + patience(timeout);
    while (clock_type::now() < deadline) {
      (void)sample();
      if (predicate()) {
        return true;
      }
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  // Samples for `d` (every 100 ms).
  void watch(std::chrono::milliseconds d) {
    const auto until = clock_type::now() + d;
    while (clock_type::now() < until) {
      (void)sample();
      std::this_thread::sleep_for(100ms);
    }
  }

  // The fixture's own maximum of live sockets per token over the whole run.
  int max_live() {
    int m = 0;
    for (const auto& [name, n] : observe().max_live) {
      m = std::max(m, n);
    }
    return m;
  }

  std::vector<double> take_gaps() { return std::exchange(gaps_, {}); }

  std::uint64_t metric(std::size_t i, const std::string& name) {
    return endpoint(instance(i).metrics_port()).sum(name);
  }

  static std::string gap_figures(std::vector<double> gaps) {
    if (gaps.empty()) {
      return "no gaps";
    }
    std::sort(gaps.begin(), gaps.end());
    const auto at = [&gaps](double q) {
      return gaps[std::min(gaps.size() - 1, static_cast<std::size_t>(q * static_cast<double>(gaps.size())))];
    };
    char text[160];
    std::snprintf(text, sizeof text, "%zu gaps, p50 %.1f s, p99 %.1f s, max %.1f s", gaps.size(), at(0.5), at(0.99),
                  gaps.back());
    return text;
  }

 private:
  observation sample() {
    observation o = observe();
    const auto now = clock_type::now();
    for (int t = 0; t < tokens_; ++t) {
      const std::string name = token(t);
      const int live = o.live.count(name) != 0 ? o.live[name] : 0;
      const bool seen_before = down_since_.count(name) != 0 || ever_live_.count(name) != 0;
      if (live == 0 && seen_before && down_since_.count(name) == 0) {
        down_since_[name] = now;
      } else if (live > 0) {
        if (const auto it = down_since_.find(name); it != down_since_.end()) {
          gaps_.push_back(std::chrono::duration<double>(now - it->second).count());
          down_since_.erase(it);
        }
        ever_live_[name] = true;
      }
    }
    return o;
  }

  int tokens_;
  temp_dir logs_;
  std::optional<child_process> cluster_;
  std::string bootstrap_;
  std::optional<fixture> acme_;
  std::vector<bridge> bridges_;
  std::map<std::string, clock_type::time_point> down_since_;
  std::map<std::string, bool> ever_live_;
  std::vector<double> gaps_;
};

inline std::size_t count_lines(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

}  // namespace rtm::test::cluster
