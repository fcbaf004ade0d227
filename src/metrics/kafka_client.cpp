#include "metrics/kafka_client.hpp"

#include <string_view>

#include "metrics/exposition.hpp"

namespace rtm::metrics {
namespace {

using exposition::append_label_value;
using exposition::append_number;

void append_family(std::string& out, std::string_view name, std::string_view help) {
  exposition::append_header(out, name, help, "gauge");
}

void append_plain(std::string& out, std::string_view name, std::string_view help, double value) {
  append_family(out, name, help);
  out += name;
  out += ' ';
  append_number(out, value);
  out += '\n';
}

void append_broker_label(std::string& out, const kafka_broker_figures& broker) {
  out += "{broker=\"";
  append_label_value(out, broker.name);
  out += "\"} ";
}

template <typename Get>
void append_per_broker(std::string& out, const kafka_client_figures& figures, std::string_view name,
                       std::string_view help, Get get) {
  if (figures.brokers.empty()) {
    return;
  }
  append_family(out, name, help);
  for (const auto& broker : figures.brokers) {
    out += name;
    append_broker_label(out, broker);
    append_number(out, get(broker));
    out += '\n';
  }
}

}  // namespace

void render_kafka_client(std::string& out, const kafka_client_figures& figures, bool have_figures) {
  if (!have_figures) {
    return;
  }
  append_plain(out, "rtm_bridge_kafka_librdkafka_queue_messages",
               "Records librdkafka holds, queued or in flight (its statistics msg_cnt).",
               static_cast<double>(figures.queue_messages));
  append_plain(out, "rtm_bridge_kafka_librdkafka_queue_bytes", "Bytes of the records librdkafka holds (msg_size).",
               static_cast<double>(figures.queue_bytes));
  append_plain(out, "rtm_bridge_kafka_librdkafka_queue_max_messages",
               "librdkafka's queue limit in records (queue.buffering.max.messages).",
               static_cast<double>(figures.queue_max_messages));
  append_plain(out, "rtm_bridge_kafka_librdkafka_queue_max_bytes",
               "librdkafka's queue limit in bytes (queue.buffering.max.kbytes).",
               static_cast<double>(figures.queue_max_bytes));
  append_plain(out, "rtm_bridge_kafka_brokers_known", "Brokers librdkafka knows, bootstrap entries included.",
               figures.brokers_known);
  append_plain(out, "rtm_bridge_kafka_brokers_up", "Brokers librdkafka has a connection to (state UP).",
               figures.brokers_up);
  append_per_broker(out, figures, "rtm_bridge_kafka_broker_up", "1 while librdkafka's connection to the broker is UP.",
                    [](const kafka_broker_figures& b) { return b.up ? 1.0 : 0.0; });
  append_per_broker(out, figures, "rtm_bridge_kafka_broker_rtt_p50_seconds",
                    "Median request round trip to the broker over the last statistics interval.",
                    [](const kafka_broker_figures& b) { return b.rtt_p50; });
  append_per_broker(out, figures, "rtm_bridge_kafka_broker_rtt_p99_seconds",
                    "99th percentile request round trip to the broker over the last statistics interval.",
                    [](const kafka_broker_figures& b) { return b.rtt_p99; });
  append_per_broker(out, figures, "rtm_bridge_kafka_broker_queue_latency_p99_seconds",
                    "99th percentile time a record waits in librdkafka before its produce request is built.",
                    [](const kafka_broker_figures& b) { return b.queue_latency_p99; });
  append_per_broker(out, figures, "rtm_bridge_kafka_broker_outbuf_latency_p99_seconds",
                    "99th percentile time a request waits before it is written to the broker's socket.",
                    [](const kafka_broker_figures& b) { return b.outbuf_latency_p99; });
  append_per_broker(out, figures, "rtm_bridge_kafka_broker_requests_queued",
                    "Requests waiting to be sent to the broker (outbuf_cnt).",
                    [](const kafka_broker_figures& b) { return static_cast<double>(b.requests_queued); });
  append_per_broker(out, figures, "rtm_bridge_kafka_broker_requests_in_flight",
                    "Requests sent to the broker and awaiting a response (waitresp_cnt).",
                    [](const kafka_broker_figures& b) { return static_cast<double>(b.requests_in_flight); });
}

}  // namespace rtm::metrics
