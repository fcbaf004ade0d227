#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "kafka/publisher_statistics.hpp"
#include "kafka/record.hpp"
#include "kafka/record_store.hpp"
#include "metrics/registry.hpp"
#include "pipeline/event.hpp"

// Dead letters, and what happens to a record that failed for good (CONTRACT "Additions"):
//   - an upstream dead letter (bad_json, frame_too_large, ...) becomes a record for kafka.dead_letter_topic, keyed
//     by the connection name (a connection's dead letters stay in order on one partition; most have no team id),
//     its raw frame cut to what the producer can take;
//   - an event whose delivery failed permanently is dead-lettered with its envelope (rtm-original-topic,
//     rtm-error-detail, rtm-truncated when cut: record.hpp) and counted under its reason;
//   - a dead letter that fails is logged and counted (`dead_letter_REASON`), never dead-lettered again (that could
//     loop);
//   - a topic found missing (auto-creation off) is reported to the operator, once per topic and minute.
// Owned by the publisher, on the io_context thread; the records live in the publisher's store.
namespace rtm::kafka {

class dead_letters {
 public:
  // `stats`: failed, dead_letters_lost and accepted (the dead letters added). `topic_limit` bounds the missing
  // topics remembered (their names come from templates that upstream data fills in).
  dead_letters(record_store& store, metrics::registry& metrics, publisher_statistics& stats, std::string topic,
               std::size_t topic_limit);

  // Told when a record that carries an acknowledgement is lost for good (a dead letter that failed too).
  void set_durability(std::shared_ptr<pipeline::durability_registry> registry) noexcept {
    durability_ = std::move(registry);
  }
  // The current producer's limits: a dead letter must fit both message.max.bytes and librdkafka's queue, or it
  // would be lost as well.
  void fit_to(std::size_t max_message_bytes, std::size_t max_queue_bytes) noexcept;
  [[nodiscard]] std::size_t max_value() const noexcept { return max_value_; }

  // An upstream dead letter, appended to the store.
  void accept(const pipeline::dead_letter& dl);
  // The same in two steps, for the spool (which keeps the record before the store sees it): build its record,
  // then count it once it is accepted.
  void build(record& r, const pipeline::dead_letter& dl) const;
  void counted(const pipeline::dead_letter& dl);
  // `r` failed for good (`reason` overrides failure_reason(err); the dead letter's value is cut to `max_value` and
  // always to max_value()). `r` is settled whatever happens, also when building its dead letter throws.
  void fail(record& r, rd_kafka_resp_err_t err, std::string_view detail, std::string_view reason = {},
            std::size_t max_value = SIZE_MAX);
  // An event larger than librdkafka's whole queue (`queue_bytes`), which refuses it even when empty: dead-lettered
  // as record_too_large with the prefix an oversized event keeps.
  void refuse_too_large(record& r, std::size_t queue_bytes);

 private:
  void report_missing_topic(std::string_view connection, std::string_view topic, std::string_view reason);

  record_store& store_;
  metrics::registry& metrics_;
  publisher_statistics& stats_;
  std::string topic_;
  std::size_t topic_limit_;
  std::size_t max_value_ = 0;
  std::shared_ptr<pipeline::durability_registry> durability_;
  // Topics found missing, with when the operator was last told.
  std::map<std::string, std::chrono::steady_clock::time_point, std::less<>> missing_topics_;
};

}  // namespace rtm::kafka
