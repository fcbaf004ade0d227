#pragma once

#include <cstdint>
#include <string>
#include <vector>

// librdkafka's own view of the producer, taken from its statistics JSON (statistics.interval.ms, 5 s unless
// kafka.properties says otherwise) and exported beside the contract's metrics. The whole snapshot is replaced at each
// report, so a broker that left the cluster (or a producer that was re-created) leaves no stale series behind.
namespace rtm::metrics {

struct kafka_broker_figures {
  std::string name;  // librdkafka's broker name, "host:port/nodeid"
  std::int32_t node_id = -1;
  bool up = false;
  // Seconds; librdkafka's rolling windows (one statistics interval) of:
  double rtt_p50 = 0;  // request round trip to the broker
  double rtt_p99 = 0;
  double queue_latency_p99 = 0;         // int_latency: a record handed to librdkafka until it is in a produce request
  double outbuf_latency_p99 = 0;        // a request queued until it is written to the socket
  std::int64_t requests_queued = 0;     // outbuf_cnt
  std::int64_t requests_in_flight = 0;  // waitresp_cnt
};

struct kafka_client_figures {
  std::int64_t queue_messages = 0;            // msg_cnt: records librdkafka holds (queued or in flight)
  std::int64_t queue_bytes = 0;               // msg_size
  std::int64_t queue_max_messages = 0;        // msg_max: queue.buffering.max.messages
  std::int64_t queue_max_bytes = 0;           // msg_size_max: queue.buffering.max.kbytes in bytes
  int brokers_known = 0;                      // every broker entry, bootstrap ones included
  int brokers_up = 0;                         // of those, in state UP
  std::vector<kafka_broker_figures> brokers;  // brokers learned from metadata (node id >= 0), by name
};

// Appends the figures in the Prometheus text format (one family per figure; nothing when no statistics arrived yet).
void render_kafka_client(std::string& out, const kafka_client_figures& figures, bool have_figures);

}  // namespace rtm::metrics
