#pragma once

#include <cstdint>
#include <string>

// How many records the broker has acknowledged on a topic: the sum of the partitions' high watermarks, asked with
// ListOffsets from a client handle of the benchmark's own. Only the controller thread uses it; each call blocks for
// a broker round trip per partition.
struct rd_kafka_s;

namespace rtm::bench {

class watermark_probe {
 public:
  // Throws std::runtime_error if librdkafka refuses the handle.
  explicit watermark_probe(const std::string& bootstrap_servers);
  watermark_probe(const watermark_probe&) = delete;
  watermark_probe& operator=(const watermark_probe&) = delete;
  ~watermark_probe();

  // Sum of high watermarks of partitions [0, partitions), or -1 if a partition did not answer.
  [[nodiscard]] std::int64_t sum(const std::string& topic, int partitions);

 private:
  rd_kafka_s* rk_ = nullptr;
};

}  // namespace rtm::bench
