#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <string>

// The publisher's pure decisions, kept apart from librdkafka I/O so they are unit-tested alone.
namespace rtm::kafka {

// What a delivery report's error means for the record.
enum class delivery_outcome {
  persisted,  // acknowledged by the cluster: done
  reproduce,  // not a verdict on the record (purged or the producer hit a fatal error): keep it, produce it again
              // with the next producer instance
  failed,     // a permanent failure (librdkafka already retried whatever was retriable): dead-letter it
};

[[nodiscard]] delivery_outcome classify_delivery(rd_kafka_resp_err_t err) noexcept;

// A short snake_case reason for a failed delivery, for the `rtm-error` header and the `reason` metrics label:
// librdkafka's error name in lower case without its leading '_' (e.g. "msg_size_too_large", "msg_timed_out",
// "topic_authorization_failed", "unknown_topic"). A finite set, since it comes from the error enum. The broker's
// UNKNOWN_TOPIC_OR_PART is "unknown_topic" too.
[[nodiscard]] std::string failure_reason(rd_kafka_resp_err_t err);

// Rate limit for producer re-creation after fatal errors: a producer that keeps dying (e.g. librdkafka 2.0.2's
// idempotent producer stuck in an out-of-order-sequence loop after an outage, fixed upstream only in 2.3.0) is
// recreated, but more than `limit` fatal errors within `window` mean recreating does not help: give up so the daemon
// can drain and exit 69, and its supervisor decides.
class fatal_budget {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr std::size_t default_limit = 3;
  static constexpr std::chrono::seconds default_window{300};

  explicit fatal_budget(std::size_t limit = default_limit, clock::duration window = default_window) noexcept
      : limit_(limit), window_(window) {}

  // Records a fatal error at `now`; true while recreating is still allowed, false once `limit` errors fell within
  // the last `window` (the one recorded now included).
  [[nodiscard]] bool allow_recreate(clock::time_point now);

  [[nodiscard]] std::size_t recent() const noexcept { return times_.size(); }

 private:
  std::size_t limit_;
  clock::duration window_;
  std::deque<clock::time_point> times_;
};

// Backpressure with hysteresis: paused while anything waits locally (librdkafka said QUEUE_FULL, the producer is
// being replaced) or more than `high` records / bytes are outstanding; resumed once nothing waits locally and at most
// `low` records and bytes are outstanding.
struct backpressure_limits {
  std::size_t high_records = 100000;
  std::size_t low_records = 50000;
  std::size_t high_bytes = std::size_t{256} << 20U;
  std::size_t low_bytes = std::size_t{128} << 20U;
};

[[nodiscard]] bool should_pause(bool paused_now, std::size_t waiting, std::size_t outstanding_records,
                                std::size_t outstanding_bytes, const backpressure_limits& limits) noexcept;

// Readiness as librdkafka sees the brokers: no broker up for longer than a grace period means not ready (an outage
// is not noticed by a delivery failing: with delivery_timeout 0 nothing ever fails). Fed by the all-brokers-down
// error, the statistics' broker states, and every sign of life.
class broker_health {
 public:
  using clock = std::chrono::steady_clock;

  void all_down(clock::time_point now) noexcept;
  // librdkafka's statistics: `up` of the `known` broker entries are connected.
  void statistics(int up, int known, clock::time_point now) noexcept;
  // A delivery confirmed, or a new producer handle (its own view of the brokers).
  void up() noexcept { down_since_.reset(); }
  [[nodiscard]] bool healthy(clock::time_point now, clock::duration grace) const noexcept;

 private:
  std::optional<clock::time_point> down_since_;
};

}  // namespace rtm::kafka
