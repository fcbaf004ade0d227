#include "kafka/embedded_cluster.hpp"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <array>
#include <stdexcept>

#include "kafka/librdkafka_log.hpp"
#include "util/log.hpp"

namespace rtm::kafka {
namespace {

void check(rd_kafka_resp_err_t err, const std::string& what) {
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error("embedded Kafka cluster: " + what + ": " + rd_kafka_err2str(err));
  }
}

}  // namespace

embedded_cluster::embedded_cluster(int brokers) : brokers_(brokers) {
  if (brokers < 1) {
    throw std::runtime_error("embedded Kafka cluster: needs at least one broker");
  }
  std::array<char, 512> errstr{};
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set_log_cb(conf, &forward_librdkafka_log);
  // The host handle only carries the mock cluster; it never connects anywhere itself, so its client id says so and
  // it is quiet about having no bootstrap servers.
  if (rd_kafka_conf_set(conf, "client.id", "rtm-bridge-embedded-cluster", errstr.data(), errstr.size()) !=
          RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "log_level", "4", errstr.data(), errstr.size()) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("embedded Kafka cluster: ") + errstr.data());
  }
  host_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr.data(), errstr.size());
  if (host_ == nullptr) {
    rd_kafka_conf_destroy(conf);  // rd_kafka_new only takes ownership on success
    throw std::runtime_error(std::string("embedded Kafka cluster: cannot create the host handle: ") + errstr.data());
  }
  cluster_ = rd_kafka_mock_cluster_new(host_, brokers);
  if (cluster_ == nullptr) {
    rd_kafka_destroy(host_);
    throw std::runtime_error(
        "embedded Kafka cluster: librdkafka could not create the mock cluster (no free "
        "loopback ports?)");
  }
  bootstrap_ = rd_kafka_mock_cluster_bootstraps(cluster_);
  log::info("", "kafka: embedded mock cluster with ", brokers, " brokers listening on ", bootstrap_,
            " (demo/test only; read it with: kcat -b ", bootstrap_, " -C -t TOPIC)");
}

embedded_cluster::~embedded_cluster() {
  rd_kafka_mock_cluster_destroy(cluster_);
  rd_kafka_destroy(host_);
}

void embedded_cluster::create_topic(const std::string& topic, int partitions, int replication_factor) {
  check(rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, replication_factor), "create topic " + topic);
}

void embedded_cluster::set_broker_down(std::int32_t broker_id) {
  // -1 is spelled out broker by broker: not every librdkafka version accepts it.
  if (broker_id == -1) {
    for (int id = 1; id <= brokers_; ++id) {
      set_broker_down(id);
    }
    return;
  }
  check(rd_kafka_mock_broker_set_down(cluster_, broker_id), "set broker " + std::to_string(broker_id) + " down");
}

void embedded_cluster::set_broker_up(std::int32_t broker_id) {
  if (broker_id == -1) {
    for (int id = 1; id <= brokers_; ++id) {
      set_broker_up(id);
    }
    return;
  }
  check(rd_kafka_mock_broker_set_up(cluster_, broker_id), "set broker " + std::to_string(broker_id) + " up");
}

void embedded_cluster::set_broker_rtt(std::int32_t broker_id, int rtt_ms) {
  if (broker_id == -1) {
    for (int id = 1; id <= brokers_; ++id) {
      set_broker_rtt(id, rtt_ms);
    }
    return;
  }
  check(rd_kafka_mock_broker_set_rtt(cluster_, broker_id, rtt_ms), "set broker " + std::to_string(broker_id) + " RTT");
}

}  // namespace rtm::kafka
