#include "kafka_probe.hpp"

#include <stdexcept>

#include <librdkafka/rdkafka.h>

namespace rtm::bench {

watermark_probe::watermark_probe(const std::string& bootstrap_servers) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap_servers.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "client.id", "rtm-bench-probe", err, sizeof err) != RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("watermark probe: ") + err);
  }
  rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk_ == nullptr) {
    throw std::runtime_error(std::string("watermark probe: ") + err);
  }
}

watermark_probe::~watermark_probe() {
  rd_kafka_destroy(rk_);
}

std::int64_t watermark_probe::sum(const std::string& topic, int partitions) {
  std::int64_t total = 0;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = 0;
    int64_t high = 0;
    if (rd_kafka_query_watermark_offsets(rk_, topic.c_str(), p, &low, &high, 2000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return -1;
    }
    total += high;
  }
  return total;
}

}  // namespace rtm::bench
