#include "kafka/statistics.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

namespace rtm::kafka {
namespace {

std::int64_t integer_or_zero(simdjson::dom::element parent, std::string_view key) {
  std::int64_t value = 0;
  if (parent[key].get_int64().get(value) != simdjson::SUCCESS) {
    return 0;
  }
  return value;
}

// A rolling-window percentile ("rtt": {"p50": 1234, ...}, microseconds) in seconds.
double window_seconds(simdjson::dom::element broker, std::string_view window, std::string_view percentile) {
  std::int64_t micros = 0;
  if (broker[window][percentile].get_int64().get(micros) != simdjson::SUCCESS) {
    return 0;
  }
  return static_cast<double>(micros) / 1e6;
}

}  // namespace

std::optional<metrics::kafka_client_figures> parse_statistics(std::string_view stats_json) {
  // The DOM parser, not on-demand: the fields are read in whatever order librdkafka writes them, once per statistics
  // interval, so the simpler API costs nothing that matters.
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(stats_json.data(), stats_json.size()).get(doc) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  simdjson::dom::object brokers;
  if (doc["brokers"].get_object().get(brokers) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  metrics::kafka_client_figures figures;
  figures.queue_messages = integer_or_zero(doc, "msg_cnt");
  figures.queue_bytes = integer_or_zero(doc, "msg_size");
  figures.queue_max_messages = integer_or_zero(doc, "msg_max");
  figures.queue_max_bytes = integer_or_zero(doc, "msg_size_max");
  for (const auto field : brokers) {
    simdjson::dom::element broker = field.value;
    std::string_view state;
    if (broker["state"].get_string().get(state) != simdjson::SUCCESS) {
      return std::nullopt;
    }
    ++figures.brokers_known;
    const bool up = state == "UP";
    if (up) {
      ++figures.brokers_up;
    }
    std::int64_t node_id = -1;
    if (broker["nodeid"].get_int64().get(node_id) != simdjson::SUCCESS || node_id < 0) {
      continue;  // a bootstrap entry: the same broker appears again under its node id once metadata arrived
    }
    metrics::kafka_broker_figures b;
    b.name = std::string(field.key);
    b.node_id = static_cast<std::int32_t>(node_id);
    b.up = up;
    b.rtt_p50 = window_seconds(broker, "rtt", "p50");
    b.rtt_p99 = window_seconds(broker, "rtt", "p99");
    b.queue_latency_p99 = window_seconds(broker, "int_latency", "p99");
    b.outbuf_latency_p99 = window_seconds(broker, "outbuf_latency", "p99");
    b.requests_queued = integer_or_zero(broker, "outbuf_cnt");
    b.requests_in_flight = integer_or_zero(broker, "waitresp_cnt");
    figures.brokers.push_back(std::move(b));
  }
  std::sort(figures.brokers.begin(), figures.brokers.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  return figures;
}

}  // namespace rtm::kafka
