#pragma once

#include <optional>
#include <string_view>

#include "metrics/kafka_client.hpp"

// librdkafka's statistics JSON (STATISTICS.md of librdkafka 2.0.2) read into the figures the bridge exports. Pure: no
// I/O, no librdkafka handle; called on the io_context thread from the producer's statistics callback.
namespace rtm::kafka {

// Returns nothing when the text is not librdkafka's statistics shape (not JSON, no "brokers" object, a broker without
// a state). Figures librdkafka leaves out are 0. Latencies arrive in microseconds and leave in seconds.
[[nodiscard]] std::optional<metrics::kafka_client_figures> parse_statistics(std::string_view stats_json);

}  // namespace rtm::kafka
