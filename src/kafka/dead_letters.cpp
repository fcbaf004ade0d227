#include "kafka/dead_letters.hpp"

#include <algorithm>
#include <utility>

#include "kafka/policy.hpp"
#include "util/log.hpp"
#include "util/scope_exit.hpp"

namespace rtm::kafka {
namespace {

constexpr std::chrono::seconds missing_topic_report_interval{60};

// A dead letter's value is cut so that, with its key, headers and the protocol overhead, it still fits within the
// producer's message.max.bytes: a dead letter that is too large to send would only be lost as well.
std::size_t dead_letter_cap(std::size_t max_message_bytes) noexcept {
  return max_message_bytes > 32768 ? max_message_bytes - 16384 : max_message_bytes / 2;
}

}  // namespace

dead_letters::dead_letters(record_store& store, metrics::registry& metrics, publisher_statistics& stats,
                           std::string topic, std::size_t topic_limit)
    : store_(store), metrics_(metrics), stats_(stats), topic_(std::move(topic)), topic_limit_(topic_limit) {}

void dead_letters::fit_to(std::size_t max_message_bytes, std::size_t max_queue_bytes) noexcept {
  max_value_ = std::min(dead_letter_cap(max_message_bytes), max_queue_bytes);
}

void dead_letters::accept(const pipeline::dead_letter& dl) {
  store_.append([&](record& r) { build(r, dl); });
  counted(dl);
}

void dead_letters::build(record& r, const pipeline::dead_letter& dl) const {
  build_dead_letter_record(r, dl, topic_, max_value_);
}

void dead_letters::counted(const pipeline::dead_letter& dl) {
  ++stats_.accepted;
  metrics_.dead_letter(dl.connection, dl.reason);
}

void dead_letters::refuse_too_large(record& r, std::size_t queue_bytes) {
  const std::size_t size = r.field(record_field::value).size();
  const std::size_t keep = std::min(pipeline::oversized_event_prefix, max_value_);
  const std::string detail =
      "a record of " + std::to_string(size) +
      " bytes exceeds librdkafka's queue (queue.buffering.max.kbytes: " + std::to_string(queue_bytes) +
      " bytes), which refuses it even when empty; only its first " + std::to_string(std::min(keep, size)) +
      " bytes are kept";
  fail(r, RD_KAFKA_RESP_ERR__QUEUE_FULL, detail, "record_too_large", keep);
}

void dead_letters::fail(record& r, rd_kafka_resp_err_t err, std::string_view detail, std::string_view given_reason,
                        std::size_t max_value) {
  const util::scope_exit settle([this, &r] { store_.settle(r); });  // whatever happens below, `r` is dealt with
  ++stats_.failed;
  const std::string_view connection = r.field(record_field::connection);
  const std::string reason = given_reason.empty() ? failure_reason(err) : std::string(given_reason);
  if (r.kind == record_kind::dead_letter) {
    // Never dead-letter a dead letter: that could loop. Log it for the operator and count it.
    ++stats_.dead_letters_lost;
    log::error(connection, "kafka: dead letter (", r.field(record_field::error), ") lost: topic ", r.topic_c_str(),
               " refused it permanently (", detail, ")");
    metrics_.event_failed(connection, "dead_letter_" + reason);
    if (durability_) {
      durability_->notify_lost(std::exchange(r.ack, {}));
    }
    return;
  }
  log::warn(connection, "kafka: ", r.kind == record_kind::reply ? "reply to command " : "event ",
            r.field(record_field::event), " for topic ", r.topic_c_str(), " failed permanently (", detail,
            "); dead-lettered to ", topic_);
  // `r` stays valid: the store's records do not move on insertion.
  store_.append([&](record& dl) {
    build_failed_delivery_record(dl, r, topic_, reason, detail, std::min(max_value, max_value_));
    // The spool's commit point passes `r` once its dead letter is delivered, not when `r` is settled below.
    dl.spool_seq = std::exchange(r.spool_seq, 0);
    dl.ack = std::exchange(r.ack, {});  // acknowledged once the dead letter is in Kafka
  });
  ++stats_.accepted;
  metrics_.event_failed(connection, reason);
  metrics_.dead_letter(connection, reason);
  if (err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC || err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
    report_missing_topic(connection, r.topic_c_str(), reason);
  }
}

void dead_letters::report_missing_topic(std::string_view connection, std::string_view topic, std::string_view reason) {
  // Once per topic and minute at error level: the per-event warnings say what happened to each event, this says
  // what the operator has to do. Bounded: topic names come from templates that upstream data fills in.
  const auto now = std::chrono::steady_clock::now();
  const auto it = missing_topics_.find(topic);
  if (it != missing_topics_.end() && now - it->second < missing_topic_report_interval) {
    return;
  }
  if (it != missing_topics_.end()) {
    it->second = now;
  } else {
    if (missing_topics_.size() >= topic_limit_) {
      missing_topics_.clear();
    }
    missing_topics_.emplace(std::string(topic), now);
  }
  log::error(connection, "kafka: topic ", topic,
             " does not exist and is not created automatically (the broker's auto.create.topics.enable or "
             "kafka.properties allow.auto.create.topics is off); its events are dead-lettered to ",
             topic_, " with rtm-error ", reason, ": create the topic or change kafka.topic/kafka.routes");
}

}  // namespace rtm::kafka
