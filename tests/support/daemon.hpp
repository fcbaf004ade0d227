#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "support/process.hpp"

// The daemon end to end, for integration tests: the real rtm-bridge binary as a child process with a generated
// config, the node upstream fixtures (tests/fixtures/*.js) with their stdin command channel, and the daemon's HTTP
// endpoints read with curl. Everything runs on the test's thread; every child is reaped by child_process.
namespace rtm::test {

// An upstream fixture (tests/fixtures/*.js) with its stdin command channel.
class fixture {
 public:
  explicit fixture(std::vector<std::string> argv);
  [[nodiscard]] const std::string& port() const { return port_; }
  // Sends a command and returns its answer (lines starting with OK, STATS or ERROR; event lines such as
  // AUTH/CONNECTION are remembered and skipped).
  std::string command(const std::string& json);
  // Waits for an event line starting with `prefix` (e.g. "AUTH acme-id ok").
  bool wait_event(const std::string& prefix, std::chrono::milliseconds timeout);
  // Event lines seen so far that start with `prefix` (waits briefly for lines already on their way).
  std::size_t count_events(const std::string& prefix);
  // Event lines seen so far that start with `prefix`, whole, in arrival order (waits briefly as count_events does).
  std::vector<std::string> events(const std::string& prefix);

 private:
  std::optional<child_process> proc_;
  std::string port_;
  std::vector<std::string> events_;
};

// tests/fixtures/acme_server.js with two tokens (acme-id, acme-id2) and the given server ping timing.
fixture acme_upstream(int ping_interval_ms = 1000, int ping_timeout_ms = 1000);

// One `connections:` entry of kind acme for the fixture at `port`; the key comes from the environment variable
// `key_env`.
std::string acme_connection(const std::string& name, const std::string& port, const std::string& id,
                            const std::string& key_env);

// One `connections:` entry of kind slack for tests/fixtures/slack_server.js at `port`; the token comes from the
// environment variable `token_env`.
std::string slack_connection(const std::string& name, const std::string& port, const std::string& token_env);

class daemon_process {
 public:
  daemon_process(const temp_dir& dir, const std::string& config, std::map<std::string, std::string> env = {});
  [[nodiscard]] std::string log() const;
  [[nodiscard]] const std::string& config_path() const { return config_path_; }
  [[nodiscard]] pid_t pid() const { return proc_->pid(); }
  void signal(int sig) { proc_->signal(sig); }
  std::optional<int> wait(std::chrono::milliseconds timeout) { return proc_->wait(timeout); }
  bool log_has(const std::string& text, std::chrono::milliseconds timeout);
  // The metrics endpoint's port, from the start-up log line.
  std::string metrics_port();

 private:
  std::string log_;
  std::string config_path_;
  std::optional<child_process> proc_;
};

struct http_response {
  int status = 0;  // 0: no answer
  std::string body;
};

// GET with curl (5 s limit).
http_response http_fetch(const std::string& url);
// The body only.
std::string http_get(const std::string& url);

// Sums a counter over all its label sets in Prometheus text.
std::uint64_t metric_sum(const std::string& text, const std::string& name);

// The daemon's metrics and health endpoints (metrics.listen on loopback).
class endpoint {
 public:
  explicit endpoint(std::string port) : base_("http://127.0.0.1:" + std::move(port)) {}
  [[nodiscard]] std::string metrics() const { return http_get(base_ + "/metrics"); }
  [[nodiscard]] std::uint64_t sum(const std::string& name) const { return metric_sum(metrics(), name); }
  [[nodiscard]] int ready_status() const { return http_fetch(base_ + "/readyz").status; }
  [[nodiscard]] int health_status() const { return http_fetch(base_ + "/healthz").status; }

 private:
  std::string base_;
};

}  // namespace rtm::test
