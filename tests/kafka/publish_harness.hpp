#pragma once

// The publisher against the in-process librdkafka mock cluster, read back with kcat over TCP: what the publish_*
// tests share. The test thread drives the io_context (it is "the io_context thread"); the mock cluster runs on its
// own threads.
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "kafka/embedded_cluster.hpp"
#include "kafka/publisher.hpp"
#include "metrics/registry.hpp"
#include "pipeline/event.hpp"
#include "support/kcat.hpp"
#include "support/process.hpp"

namespace rtm::test {

// Owns the bytes a pipeline::event points into (the sink contract: views valid for the call only).
struct event_source {
  std::string connection = "acme-main";
  std::string name = "message:updated";
  std::string name_space = "message";

  [[nodiscard]] pipeline::event make(const std::string& team, const std::string& payload) const;
};

// Acme presence:change events: another topic (rtm.presence) than the default source's rtm.message.
[[nodiscard]] event_source presence_events();

[[nodiscard]] std::string team_name(int i);
[[nodiscard]] std::string payload_for(const std::string& team, int n);
// The `n` of a payload written by payload_for (inside the envelope's data).
[[nodiscard]] int n_of(const std::string& envelope);
[[nodiscard]] std::string id_of(const std::string& envelope);
// The `n` of each record, in the order given.
[[nodiscard]] std::vector<int> n_sequence(const std::vector<consumed>& records);

struct harness {
  std::unique_ptr<kafka::embedded_cluster> cluster = std::make_unique<kafka::embedded_cluster>(3);
  boost::asio::io_context io;
  metrics::registry metrics;
  config::kafka_config cfg;
  std::unique_ptr<kafka::publisher> pub;
  std::vector<bool> backpressure;
  std::optional<std::string> fatal;
  event_source source;

  void start(kafka::publisher::tuning tune = {}, std::optional<std::string> bootstrap = std::nullopt);
  // kafka.dead_letter_topic rtm.dead-letter (2 partitions) beside rtm.message (4); start() comes after.
  void create_dead_letter_topics();

  [[nodiscard]] bool paused() const { return !backpressure.empty() && backpressure.back(); }

  template <typename Predicate>
  bool run_until(Predicate predicate, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + patience(timeout);
    while (!predicate()) {
      if (std::chrono::steady_clock::now() >= deadline) {
        return predicate();
      }
      run_turn(std::chrono::milliseconds{10});
    }
    return true;
  }
  void run_for(std::chrono::milliseconds d);
  bool settled(std::chrono::milliseconds timeout);

  // Behaves like the daemon: while the publisher asks for a pause, no new event is read.
  void feed(const std::string& team, int n);
  // One event as an upstream would offer it: refused (false) while the publisher asks for a pause. Frames already
  // read are still delivered in the daemon, so one event may slip in right after the decision, as here.
  bool offer(const std::string& team, int n);
  void drain_and_stop();
  // A line of the Prometheus text, e.g. `rtm_bridge_events_failed_total{connection="acme-main",reason="x"} 1`.
  [[nodiscard]] bool renders(std::string_view line);

 private:
  void run_turn(std::chrono::milliseconds d);
};

// Per team: the sequence of `n` in offset order, after removing repeated envelope ids (re-productions). Counts the
// removed duplicates.
struct team_check {
  std::map<std::string, std::vector<int>> sequences;
  std::size_t duplicates = 0;
  std::size_t total = 0;
};

// Events over 16 teams in turn, each team's `n` counting up from 0: what was sent, to check what arrived.
struct team_stream {
  explicit team_stream(harness& on) : h(on) {}

  harness& h;
  std::map<std::string, int> sent;
  int next = 0;

  void feed(int count);  // through harness::feed (waits while paused)
  bool offer();          // through harness::offer: false while paused
  [[nodiscard]] int total() const { return next; }
  // CHECKs that rtm.message holds every event sent, once, in per-team order; returns what arrived.
  team_check arrived_once_in_order() const;
};

[[nodiscard]] team_check collect(const std::vector<consumed>& records);
// CHECKs that the backpressure switches alternate (true, false, true, ...); returns how many were pauses.
int check_alternating(const std::vector<bool>& switches);
void check_complete_in_order(const team_check& got, const std::map<std::string, int>& sent);

// The one record in rtm.dead-letter: the dead letter of an acme-main event meant for rtm.message, with
// rtm-error `reason` (those headers CHECKed here).
[[nodiscard]] consumed failed_event_dead_letter(harness& h, const std::string& reason);

// A loopback port nothing listens on: connections are refused.
[[nodiscard]] int closed_loopback_port();

}  // namespace rtm::test
