#pragma once

#include <cstdint>
#include <string>

// `kafka.brokers: embedded`: an in-process librdkafka mock cluster, for demos and tests only (plaintext, loopback,
// no SASL/SSL, each partition keeps at most 5 MiB / 100,000 message sets). It lives in its own librdkafka handle
// with its own threads, so it outlives any number of producer re-creations; other processes (kcat) reach it over TCP
// at bootstrap_servers(). The mock API calls below are thread-safe (librdkafka serializes them onto the cluster's
// thread); they block briefly for the cluster's answer, so they belong in tests and start-up, not on a hot path.
struct rd_kafka_s;
struct rd_kafka_mock_cluster_s;

namespace rtm::kafka {

class embedded_cluster {
 public:
  static constexpr int default_brokers = 3;

  // Throws std::runtime_error if librdkafka cannot create the host handle or the cluster.
  explicit embedded_cluster(int brokers = default_brokers);
  embedded_cluster(const embedded_cluster&) = delete;
  embedded_cluster& operator=(const embedded_cluster&) = delete;
  embedded_cluster(embedded_cluster&&) = delete;
  embedded_cluster& operator=(embedded_cluster&&) = delete;
  ~embedded_cluster();

  // "127.0.0.1:PORT1,127.0.0.1:PORT2,...", for producers and for `kcat -b`.
  [[nodiscard]] const std::string& bootstrap_servers() const noexcept { return bootstrap_; }
  [[nodiscard]] int broker_count() const noexcept { return brokers_; }

  // The raw mock cluster, for tests that need more than the helpers below.
  [[nodiscard]] rd_kafka_mock_cluster_s* mock() const noexcept { return cluster_; }

  // Each throws std::runtime_error with librdkafka's reason when the mock refuses. Broker ids are 1..broker_count();
  // -1 means every broker.
  void create_topic(const std::string& topic, int partitions, int replication_factor = 1);
  void set_broker_down(std::int32_t broker_id);
  void set_broker_up(std::int32_t broker_id);
  void set_broker_rtt(std::int32_t broker_id, int rtt_ms);

 private:
  int brokers_;
  rd_kafka_s* host_ = nullptr;
  rd_kafka_mock_cluster_s* cluster_ = nullptr;
  std::string bootstrap_;
};

}  // namespace rtm::kafka
