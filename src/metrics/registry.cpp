#include "metrics/registry.hpp"

#include <algorithm>

#include "metrics/exposition.hpp"

namespace rtm::metrics {
namespace {

using exposition::append_header;
using exposition::append_label_value;
using exposition::append_number;

template <typename Map>
void append_pairs(std::string& out, std::string_view name, std::string_view label_a, std::string_view label_b,
                  const Map& map) {
  for (const auto& [labels, value] : map) {
    out += name;
    out += '{';
    out += label_a;
    out += "=\"";
    append_label_value(out, labels.first);
    out += "\",";
    out += label_b;
    out += "=\"";
    append_label_value(out, labels.second);
    out += "\"} ";
    out += std::to_string(value);
    out += '\n';
  }
}

}  // namespace

void registry::bump(counter_map& map, std::string_view a, std::string_view b) {
  const auto it = map.find(key_view(a, b));
  if (it != map.end()) {
    ++it->second;
    return;
  }
  map.emplace(key{std::string(a), std::string(b)}, 1);
}

std::uint64_t& registry::slot(counter_map& map, std::string_view a, std::string_view b) {
  const auto it = map.find(key_view(a, b));
  if (it != map.end()) {
    return it->second;
  }
  return map.emplace(key{std::string(a), std::string(b)}, 0).first->second;
}

std::uint64_t& registry::received_slot(std::string_view connection, std::string_view event, std::uint64_t*& overflow) {
  overflow = nullptr;
  if (const auto it = received_.find(key_view(connection, event)); it != received_.end()) {
    return it->second;
  }
  auto labels = event_labels_.find(connection);
  if (labels == event_labels_.end()) {
    labels = event_labels_.emplace(std::string(connection), 0).first;
  }
  if (event.size() <= max_event_label_size && labels->second < max_event_labels) {
    ++labels->second;
    return received_.emplace(key{std::string(connection), std::string(event)}, 0).first->second;
  }
  auto folded = event_labels_overflow_.find(connection);
  if (folded == event_labels_overflow_.end()) {
    folded = event_labels_overflow_.emplace(std::string(connection), 0).first;
  }
  overflow = &folded->second;
  return slot(received_, connection, overflow_event_label);
}

counter registry::received_counter(std::string_view connection, std::string_view event) {
  std::uint64_t* overflow = nullptr;
  std::uint64_t& value = received_slot(connection, event, overflow);
  return counter(&value, &received_sum_, overflow);
}

counter registry::published_counter(std::string_view connection, std::string_view topic) {
  return counter(&slot(published_, connection, topic), &published_sum_);
}

std::uint64_t registry::lookup(const counter_map& map, std::string_view a, std::string_view b) {
  const auto it = map.find(key_view(a, b));
  return it == map.end() ? 0 : it->second;
}

void registry::event_received(std::string_view connection, std::string_view event) {
  received_counter(connection, event).increment();
}

void registry::event_published(std::string_view connection, std::string_view topic) {
  bump(published_, connection, topic);
  ++published_sum_;
}

void registry::event_failed(std::string_view connection, std::string_view reason) {
  bump(failed_, connection, reason);
  ++failed_sum_;
}

void registry::dead_letter(std::string_view connection, std::string_view reason) {
  bump(dead_letters_, connection, reason);
  ++dead_letter_sum_;
}

void registry::reconnect(std::string_view connection, std::string_view reason) {
  bump(reconnects_, connection, reason);
}

void registry::connection_up(std::string_view connection, bool up) {
  const auto it = up_.find(connection);
  if (it != up_.end()) {
    it->second = up;
  } else {
    up_.emplace(std::string(connection), up);
  }
}

void registry::forget_connection(std::string_view connection) {
  const auto it = up_.find(connection);
  if (it != up_.end()) {
    up_.erase(it);
  }
}

void registry::command_answered(std::string_view connection, std::string_view result, double seconds) {
  bump(commands_, connection, result);
  const auto bucket = std::lower_bound(command_latency_buckets.begin(), command_latency_buckets.end(), seconds);
  if (bucket != command_latency_buckets.end()) {
    ++command_latency_counts_[static_cast<std::size_t>(bucket - command_latency_buckets.begin())];
  }
  ++command_latency_count_;
  command_latency_sum_ += std::max(seconds, 0.0);
}

void registry::command_queue(std::string_view connection, std::size_t queued) {
  const auto it = command_queue_.find(connection);
  if (it != command_queue_.end()) {
    it->second = queued;
  } else {
    command_queue_.emplace(std::string(connection), queued);
  }
}

std::uint64_t registry::commands_answered(std::string_view connection, std::string_view result) const {
  return lookup(commands_, connection, result);
}

void registry::envelope_acknowledged(std::string_view connection, double seconds) {
  auto it = acks_.find(connection);
  if (it == acks_.end()) {
    it = acks_.emplace(std::string(connection), 0).first;  // once per connection
  }
  ++it->second;
  ++acks_sum_;
  const auto bucket = std::lower_bound(latency_buckets.begin(), latency_buckets.end(), seconds);
  if (bucket != latency_buckets.end()) {
    ++ack_latency_counts_[static_cast<std::size_t>(bucket - latency_buckets.begin())];
  }
  ++ack_latency_count_;
  ack_latency_sum_ += seconds;
}

void registry::spool_dropped(std::string_view connection) {
  auto it = spool_dropped_.find(connection);
  if (it == spool_dropped_.end()) {
    it = spool_dropped_.emplace(std::string(connection), 0).first;
  }
  ++it->second;
  ++spool_dropped_sum_;
}

void registry::publish_latency(double seconds) noexcept {
  const auto bound = std::lower_bound(latency_buckets.begin(), latency_buckets.end(), seconds);
  if (bound != latency_buckets.end()) {
    ++latency_counts_[static_cast<std::size_t>(bound - latency_buckets.begin())];
  }
  ++latency_count_;
  latency_sum_ += seconds;
}

std::uint64_t registry::received(std::string_view connection, std::string_view event) const {
  return lookup(received_, connection, event);
}

std::uint64_t registry::event_labels_overflowed(std::string_view connection) const {
  const auto it = event_labels_overflow_.find(connection);
  return it == event_labels_overflow_.end() ? 0 : it->second;
}

std::uint64_t registry::dead_letters(std::string_view connection, std::string_view reason) const {
  return lookup(dead_letters_, connection, reason);
}

std::uint64_t registry::reconnects(std::string_view connection) const {
  std::uint64_t total = 0;
  for (const auto& [labels, value] : reconnects_) {
    if (labels.first == connection) {
      total += value;
    }
  }
  return total;
}

std::size_t registry::connections_up() const noexcept {
  return static_cast<std::size_t>(std::count_if(up_.begin(), up_.end(), [](const auto& e) { return e.second; }));
}

std::string registry::render() const {
  std::string out;
  out.reserve(4096);
  append_header(out, "rtm_bridge_events_received_total", "Events received from upstream connections.", "counter");
  append_pairs(out, "rtm_bridge_events_received_total", "connection", "event", received_);
  append_header(out, "rtm_bridge_event_labels_overflow_total",
                "Events counted under event=\"other\": their name was beyond the per-connection label caps.",
                "counter");
  for (const auto& [name, value] : event_labels_overflow_) {
    out += "rtm_bridge_event_labels_overflow_total{connection=\"";
    append_label_value(out, name);
    out += "\"} ";
    out += std::to_string(value);
    out += '\n';
  }
  append_header(out, "rtm_bridge_events_published_total", "Records acknowledged by Kafka.", "counter");
  append_pairs(out, "rtm_bridge_events_published_total", "connection", "topic", published_);
  append_header(out, "rtm_bridge_events_failed_total", "Records Kafka refused or that failed to produce.", "counter");
  append_pairs(out, "rtm_bridge_events_failed_total", "connection", "reason", failed_);
  append_header(out, "rtm_bridge_dead_letters_total", "Frames routed to the dead-letter topic.", "counter");
  append_pairs(out, "rtm_bridge_dead_letters_total", "connection", "reason", dead_letters_);
  append_header(out, "rtm_bridge_connection_up", "1 while the upstream connection is authenticated and live.", "gauge");
  for (const auto& [name, up] : up_) {
    out += "rtm_bridge_connection_up{connection=\"";
    append_label_value(out, name);
    out += "\"} ";
    out += up ? '1' : '0';
    out += '\n';
  }
  append_header(out, "rtm_bridge_reconnects_total", "Upstream reconnects, by what caused them.", "counter");
  append_pairs(out, "rtm_bridge_reconnects_total", "connection", "reason", reconnects_);
  append_header(out, "rtm_bridge_kafka_queue_messages", "Messages waiting in the producer queue or in flight.",
                "gauge");
  out += "rtm_bridge_kafka_queue_messages " + std::to_string(kafka_queue_) + '\n';
  append_header(out, "rtm_bridge_publish_latency_seconds", "Time from upstream receipt to broker acknowledgement.",
                "histogram");
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < latency_buckets.size(); ++i) {
    cumulative += latency_counts_[i];
    out += "rtm_bridge_publish_latency_seconds_bucket{le=\"";
    append_number(out, latency_buckets[i]);
    out += "\"} " + std::to_string(cumulative) + '\n';
  }
  out += "rtm_bridge_publish_latency_seconds_bucket{le=\"+Inf\"} " + std::to_string(latency_count_) + '\n';
  out += "rtm_bridge_publish_latency_seconds_sum ";
  append_number(out, latency_sum_);
  out += "\nrtm_bridge_publish_latency_seconds_count " + std::to_string(latency_count_) + '\n';
  render_kafka_client(out, kafka_client_, have_kafka_client_);
  if (!acks_.empty()) {
    append_header(out, "rtm_bridge_acks_total", "Socket Mode envelopes acknowledged to Slack.", "counter");
    for (const auto& [name, value] : acks_) {
      out += "rtm_bridge_acks_total{connection=\"";
      append_label_value(out, name);
      out += "\"} " + std::to_string(value) + '\n';
    }
    append_header(out, "rtm_bridge_ack_latency_seconds",
                  "Time from an envelope's receipt to its acknowledgement (events_api: once its record is durable).",
                  "histogram");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < latency_buckets.size(); ++i) {
      cumulative += ack_latency_counts_[i];
      out += "rtm_bridge_ack_latency_seconds_bucket{le=\"";
      append_number(out, latency_buckets[i]);
      out += "\"} " + std::to_string(cumulative) + '\n';
    }
    out += "rtm_bridge_ack_latency_seconds_bucket{le=\"+Inf\"} " + std::to_string(ack_latency_count_) + '\n';
    out += "rtm_bridge_ack_latency_seconds_sum ";
    append_number(out, ack_latency_sum_);
    out += "\nrtm_bridge_ack_latency_seconds_count " + std::to_string(ack_latency_count_) + '\n';
  }
  if (commands_enabled_) {
    append_header(out, "rtm_bridge_commands_total", "Commands answered, by connection and result (ok or the error).",
                  "counter");
    append_pairs(out, "rtm_bridge_commands_total", "connection", "result", commands_);
    append_header(out, "rtm_bridge_command_latency_seconds",
                  "Time from a command's record timestamp to its reply being handed to Kafka.", "histogram");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < command_latency_buckets.size(); ++i) {
      cumulative += command_latency_counts_[i];
      out += "rtm_bridge_command_latency_seconds_bucket{le=\"";
      append_number(out, command_latency_buckets[i]);
      out += "\"} " + std::to_string(cumulative) + '\n';
    }
    out += "rtm_bridge_command_latency_seconds_bucket{le=\"+Inf\"} " + std::to_string(command_latency_count_) + '\n';
    out += "rtm_bridge_command_latency_seconds_sum ";
    append_number(out, command_latency_sum_);
    out += "\nrtm_bridge_command_latency_seconds_count " + std::to_string(command_latency_count_) + '\n';
    append_header(out, "rtm_bridge_command_queue", "Commands waiting to be sent, by connection.", "gauge");
    for (const auto& [name, value] : command_queue_) {
      out += "rtm_bridge_command_queue{connection=\"";
      append_label_value(out, name);
      out += "\"} " + std::to_string(value) + '\n';
    }
  }
  if (spool_source_) {
    const spool_figures f = spool_source_();
    append_header(out, "rtm_bridge_spool_bytes", "Disk the durable spool uses (segments, preallocation included).",
                  "gauge");
    out += "rtm_bridge_spool_bytes " + std::to_string(f.bytes) + '\n';
    append_header(out, "rtm_bridge_spool_records", "Records in the spool not yet confirmed by Kafka.", "gauge");
    out += "rtm_bridge_spool_records " + std::to_string(f.records) + '\n';
    append_header(out, "rtm_bridge_spool_oldest_age_seconds",
                  "Age of the oldest spooled record not yet confirmed by Kafka (0 when none).", "gauge");
    out += "rtm_bridge_spool_oldest_age_seconds ";
    append_number(out, f.oldest_age_seconds);
    out += '\n';
    append_header(out, "rtm_bridge_spool_dropped_total",
                  "Events not kept because the spool was full (spool.when_full: drop_newest).", "counter");
    for (const auto& [name, value] : spool_dropped_) {
      out += "rtm_bridge_spool_dropped_total{connection=\"";
      append_label_value(out, name);
      out += "\"} " + std::to_string(value) + '\n';
    }
    append_header(out, "rtm_bridge_spool_corrupt_records_total",
                  "Corrupt regions of the spool's files found and skipped (checksum, length or magic).", "counter");
    out += "rtm_bridge_spool_corrupt_records_total " + std::to_string(f.corrupt_records) + '\n';
    append_header(out, "rtm_bridge_spool_replayed_total",
                  "Spooled records sent again after a restart (written by an earlier process).", "counter");
    out += "rtm_bridge_spool_replayed_total " + std::to_string(f.replayed) + '\n';
  }
  if (cluster_source_) {
    const cluster_figures f = cluster_source_();
    append_header(out, "rtm_bridge_cluster_buckets_owned",
                  "Buckets (assignment topic partitions) this instance holds the connections of.", "gauge");
    out += "rtm_bridge_cluster_buckets_owned " + std::to_string(f.buckets_owned) + '\n';
    append_header(out, "rtm_bridge_cluster_rebalances_total", "Assignments and revocations from the group.", "counter");
    out += "rtm_bridge_cluster_rebalances_total " + std::to_string(f.rebalances) + '\n';
    append_header(out, "rtm_bridge_cluster_fenced_total",
                  "Times the lease ran out and every owned connection was closed.", "counter");
    out += "rtm_bridge_cluster_fenced_total " + std::to_string(f.fenced) + '\n';
    append_header(out, "rtm_bridge_cluster_held_back_total",
                  "Events not forwarded because the lease did not hold (their connection was being fenced).",
                  "counter");
    out += "rtm_bridge_cluster_held_back_total " + std::to_string(f.held_back) + '\n';
    append_header(out, "rtm_bridge_cluster_map_info",
                  "The connection -> bucket map's fingerprint; every instance must show the same.", "gauge");
    out += "rtm_bridge_cluster_map_info{fingerprint=\"" + f.fingerprint + "\"} 1\n";
  }
  return out;
}

}  // namespace rtm::metrics
