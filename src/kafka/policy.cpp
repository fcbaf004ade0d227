#include "kafka/policy.hpp"

#include <string_view>

namespace rtm::kafka {

delivery_outcome classify_delivery(rd_kafka_resp_err_t err) noexcept {
  switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
      return delivery_outcome::persisted;
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__DESTROY:
    case RD_KAFKA_RESP_ERR__STATE:
      return delivery_outcome::reproduce;
    default:
      return delivery_outcome::failed;
  }
}

std::string failure_reason(rd_kafka_resp_err_t err) {
  if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
    // A missing topic fails the records librdkafka queued for it with the broker's UNKNOWN_TOPIC_OR_PART and
    // refuses later ones at once with the local _UNKNOWN_TOPIC: one situation, so one reason for dashboards.
    return "unknown_topic";
  }
  std::string_view name = rd_kafka_err2name(err);
  while (!name.empty() && name.front() == '_') {
    name.remove_prefix(1);
  }
  std::string out;
  out.reserve(name.size());
  for (const char c : name) {
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  if (out.empty()) {
    out = "unknown_error";
  }
  return out;
}

bool fatal_budget::allow_recreate(clock::time_point now) {
  while (!times_.empty() && now - times_.front() >= window_) {
    times_.pop_front();
  }
  times_.push_back(now);
  return times_.size() < limit_;
}

bool should_pause(bool paused_now, std::size_t waiting, std::size_t outstanding_records, std::size_t outstanding_bytes,
                  const backpressure_limits& limits) noexcept {
  if (waiting > 0 || outstanding_records >= limits.high_records || outstanding_bytes >= limits.high_bytes) {
    return true;
  }
  if (paused_now) {
    return outstanding_records > limits.low_records || outstanding_bytes > limits.low_bytes;
  }
  return false;
}

void broker_health::all_down(clock::time_point now) noexcept {
  if (!down_since_) {
    down_since_ = now;
  }
}

void broker_health::statistics(int up, int known, clock::time_point now) noexcept {
  if (up > 0) {
    down_since_.reset();
  } else if (known > 0) {
    all_down(now);
  }
}

bool broker_health::healthy(clock::time_point now, clock::duration grace) const noexcept {
  return !down_since_ || now - *down_since_ < grace;
}

}  // namespace rtm::kafka
