#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

// A bare librdkafka producer inside rtm-bench, to tell the daemon's latency from what librdkafka and the mock cluster
// give on their own in the same run: the same records as the kcat run (frame_cycle::kcat_lines: keys, envelope-sized
// values), the daemon's four event headers and its producer settings (idempotent, acks=all, murmur2_random, plus the
// run's --kafka-property settings), paced like the emitter (a 1 ms tick). A dedicated thread blocks in rd_kafka_poll()
// so each delivery report is seen as soon as librdkafka queues it: the figure is librdkafka's own produce() → delivery
// report time, with no event loop in between.
namespace rtm::bench {

struct bare_latency {
  std::vector<double> seconds;  // produce() → delivery report of each measured record, in production order
  double offered_rate = 0;      // records/s actually produced in the measured window
  std::uint64_t failed = 0;     // delivery reports with an error (the run is invalid if non-zero)
};

// Produces `warmup` records, then `total` measured ones, at `rate` records/s; `lines` is `key \t value \n` text.
// Blocks until every record is reported (or a timeout); throws std::runtime_error when librdkafka refuses the setup.
[[nodiscard]] bare_latency run_bare_producer(const std::string& bootstrap_servers, const std::string& topic,
                                             const std::string& connection, const std::string& lines,
                                             const std::vector<std::pair<std::string, std::string>>& properties,
                                             double rate, std::uint64_t warmup, std::uint64_t total);

}  // namespace rtm::bench
