#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "metrics/kafka_client.hpp"

// The contract's Prometheus metrics (docs/CONTRACT.md "Metrics"). Owned by the daemon, touched only on the
// io_context thread (sessions, producer delivery reports and the HTTP endpoint all run there), so no locks.
namespace rtm::metrics {

class registry;

// A handle to one labelled counter and its family's total, for the per-event path: incrementing it is two additions,
// no label lookup. Valid as long as the registry that made it (counters are never removed). Default-constructed:
// points nowhere, and increment() must not be called.
class counter {
 public:
  counter() = default;
  void increment() noexcept {
    ++*value_;
    ++*total_;
    if (overflow_ != nullptr) {
      ++*overflow_;
    }
  }
  [[nodiscard]] explicit operator bool() const noexcept { return value_ != nullptr; }

 private:
  friend class registry;
  counter(std::uint64_t* value, std::uint64_t* total, std::uint64_t* overflow = nullptr) noexcept
      : value_(value), total_(total), overflow_(overflow) {}
  std::uint64_t* value_ = nullptr;
  std::uint64_t* total_ = nullptr;
  std::uint64_t* overflow_ = nullptr;  // set when the event name was folded into event="other"
};

class registry {
 public:
  // Event names come from upstream, so the `event` label is bounded: per connection, the first
  // max_event_labels distinct names of at most max_event_label_size bytes get their own series; any other name is
  // counted under event="other" and in rtm_bridge_event_labels_overflow_total{connection}, so a server that invents
  // names (or sends a megabyte of one) cannot grow the registry or the scrape without bound.
  static constexpr std::size_t max_event_labels = 100;
  static constexpr std::size_t max_event_label_size = 128;
  static constexpr std::string_view overflow_event_label = "other";

  // Handles for the per-event counters (the label pair is created at 0 if new): event_received(c, e) and
  // received_counter(c, e).increment() count the same thing.
  [[nodiscard]] counter received_counter(std::string_view connection, std::string_view event);
  [[nodiscard]] counter published_counter(std::string_view connection, std::string_view topic);

  void event_received(std::string_view connection, std::string_view event);
  void event_published(std::string_view connection, std::string_view topic);
  void event_failed(std::string_view connection, std::string_view reason);
  void dead_letter(std::string_view connection, std::string_view reason);
  void reconnect(std::string_view connection, std::string_view reason);
  void connection_up(std::string_view connection, bool up);
  // A removed connection disappears from the connection_up gauge (counters keep their history).
  void forget_connection(std::string_view connection);
  void kafka_queue_messages(std::uint64_t messages) noexcept { kafka_queue_ = messages; }
  void publish_latency(double seconds) noexcept;
  // librdkafka's statistics snapshot (replaces the previous one).
  void kafka_client(const kafka_client_figures& figures) {
    kafka_client_ = figures;
    have_kafka_client_ = true;
  }

  // The durable spool's figures (CONTRACT "Durable spool"): read when the metrics are rendered, from the spool's
  // owner on the io_context thread. Without a source (no spool) the spool metrics are not shown.
  struct spool_figures {
    std::uint64_t bytes = 0;
    std::uint64_t records = 0;
    double oldest_age_seconds = 0;
    std::uint64_t corrupt_records = 0;
    std::uint64_t replayed = 0;
  };
  void set_spool_source(std::function<spool_figures()> source) { spool_source_ = std::move(source); }
  // Cluster mode (CONTRACT "Several instances"): read when the metrics are rendered.
  struct cluster_figures {
    std::uint64_t buckets_owned = 0;
    std::uint64_t rebalances = 0;
    std::uint64_t fenced = 0;
    std::uint64_t held_back = 0;  // events and dead letters not forwarded because the lease did not hold
    std::string fingerprint;
  };
  void set_cluster_source(std::function<cluster_figures()> source) { cluster_source_ = std::move(source); }
  // A Socket Mode envelope acknowledged, `seconds` after its receipt.
  void envelope_acknowledged(std::string_view connection, double seconds);
  [[nodiscard]] std::uint64_t acks_total() const noexcept { return acks_sum_; }
  // Commands (CONTRACT "Commands"): shown once the command consumer is on. A command answered with `result` (ok or
  // the reply's error word), `seconds` after its record was produced; the commands queued for a connection.
  void enable_commands() noexcept { commands_enabled_ = true; }
  void command_answered(std::string_view connection, std::string_view result, double seconds);
  void command_queue(std::string_view connection, std::size_t queued);
  [[nodiscard]] std::uint64_t commands_answered(std::string_view connection, std::string_view result) const;
  // Commands wait up to max_age (30 s by default) and a reply up to 10 s: the buckets reach a minute.
  static constexpr std::array<double, 14> command_latency_buckets{0.005, 0.01, 0.025, 0.05, 0.1,  0.25, 0.5,
                                                                  1.0,   2.5,  5.0,   10.0, 20.0, 30.0, 60.0};
  // An event (or dead letter) not kept because the spool was full under when_full: drop_newest.
  void spool_dropped(std::string_view connection);
  [[nodiscard]] std::uint64_t spool_dropped_total() const noexcept { return spool_dropped_sum_; }

  // Read-back for tests, STATUS= lines and the demo summary.
  [[nodiscard]] std::uint64_t received_total() const noexcept { return received_sum_; }
  [[nodiscard]] std::uint64_t published_total() const noexcept { return published_sum_; }
  [[nodiscard]] std::uint64_t dead_letters_total() const noexcept { return dead_letter_sum_; }
  [[nodiscard]] std::uint64_t failed_total() const noexcept { return failed_sum_; }
  [[nodiscard]] std::uint64_t received(std::string_view connection, std::string_view event) const;
  // Events of `connection` counted under event="other" because their name was beyond the caps above.
  [[nodiscard]] std::uint64_t event_labels_overflowed(std::string_view connection) const;
  [[nodiscard]] std::uint64_t reconnects(std::string_view connection) const;
  [[nodiscard]] std::uint64_t dead_letters(std::string_view connection, std::string_view reason) const;
  [[nodiscard]] std::size_t connections_up() const noexcept;
  [[nodiscard]] std::size_t connections_known() const noexcept { return up_.size(); }

  // Prometheus text exposition format 0.0.4.
  [[nodiscard]] std::string render() const;

  // Fine steps between 2.5 and 10 ms, where the default linger.ms (5) puts most deliveries: the target
  // "p99 <= linger + 2 ms" needs a bound at 7 ms to be decidable from the histogram alone.
  static constexpr std::array<double, 22> latency_buckets{0.0005, 0.001, 0.0025, 0.003, 0.004, 0.005, 0.006, 0.007,
                                                          0.0075, 0.008, 0.009,  0.01,  0.015, 0.02,  0.025, 0.05,
                                                          0.1,    0.25,  0.5,    1.0,   2.5,   10.0};

 private:
  using key = std::pair<std::string, std::string>;
  using key_view = std::pair<std::string_view, std::string_view>;
  // Transparent, so the per-event increment looks up by views and allocates only for a new label pair.
  struct key_less {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const noexcept {
      return key_view(a.first, a.second) < key_view(b.first, b.second);
    }
  };
  using counter_map = std::map<key, std::uint64_t, key_less>;

  static void bump(counter_map& map, std::string_view a, std::string_view b);
  // std::map nodes never move, so the address of a value is stable for the registry's life.
  static std::uint64_t& slot(counter_map& map, std::string_view a, std::string_view b);
  static std::uint64_t lookup(const counter_map& map, std::string_view a, std::string_view b);
  // The received_ slot for (connection, event), or the connection's event="other" slot when the name is beyond the
  // caps; `overflow` is then set to the connection's overflow count.
  std::uint64_t& received_slot(std::string_view connection, std::string_view event, std::uint64_t*& overflow);

  counter_map received_;
  counter_map published_;
  counter_map failed_;
  counter_map dead_letters_;
  counter_map reconnects_;
  // Per connection: how many distinct event labels received_ holds for it (event="other" not included), and how
  // many events were folded into event="other". Never shrinks: counters keep their history.
  std::map<std::string, std::size_t, std::less<>> event_labels_;
  std::map<std::string, std::uint64_t, std::less<>> event_labels_overflow_;
  std::map<std::string, bool, std::less<>> up_;
  std::uint64_t kafka_queue_ = 0;
  // Per bucket, not cumulative: a sample increments one count; render() sums them up.
  std::array<std::uint64_t, latency_buckets.size()> latency_counts_{};
  std::uint64_t latency_count_ = 0;
  double latency_sum_ = 0;
  kafka_client_figures kafka_client_;
  bool have_kafka_client_ = false;
  std::uint64_t received_sum_ = 0;
  std::uint64_t published_sum_ = 0;
  std::uint64_t dead_letter_sum_ = 0;
  std::uint64_t failed_sum_ = 0;
  std::function<spool_figures()> spool_source_;
  std::function<cluster_figures()> cluster_source_;
  std::map<std::string, std::uint64_t, std::less<>> spool_dropped_;
  std::uint64_t spool_dropped_sum_ = 0;
  std::map<std::string, std::uint64_t, std::less<>> acks_;
  std::uint64_t acks_sum_ = 0;
  std::array<std::uint64_t, latency_buckets.size()> ack_latency_counts_{};
  std::uint64_t ack_latency_count_ = 0;
  double ack_latency_sum_ = 0;
  bool commands_enabled_ = false;
  counter_map commands_;
  std::map<std::string, std::size_t, std::less<>> command_queue_;
  std::array<std::uint64_t, command_latency_buckets.size()> command_latency_counts_{};
  std::uint64_t command_latency_count_ = 0;
  double command_latency_sum_ = 0;
};

}  // namespace rtm::metrics
