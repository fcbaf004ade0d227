#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

// The rules between cluster mode's timings (docs/CONTRACT.md, "Several instances"; the design study, part A3), pure
// so the loader and the unit tests share them. With S = session_timeout, H = heartbeat_interval, R =
// rebalance_timeout and M = fence_margin: the lease renews at most every H and must outlast a renewal that is late by
// up to two heartbeats, so S - M >= 3 H; M covers an answer counted as a renewal the coordinator did not make (about
// 2 H) plus the event loop's lateness, so M >= 2 H; librdkafka refuses max.poll.interval.ms below session.timeout.ms.
namespace rtm::config {

struct cluster_timing {
  std::chrono::milliseconds session_timeout;
  std::chrono::milliseconds heartbeat_interval;
  std::chrono::milliseconds rebalance_timeout;
  std::chrono::milliseconds fence_margin;
};

struct cluster_timing_problem {
  std::string_view key;  // the key the message is about: fence_margin, heartbeat_interval or rebalance_timeout
  std::string message;
};

// nullopt when the timings fit together; else the first rule they break.
[[nodiscard]] std::optional<cluster_timing_problem> check_cluster_timing(const cluster_timing& t);

// The group consumer's properties the bridge sets itself (cluster.properties refuses them): the key to use
// instead, or nullopt when `name` is free.
[[nodiscard]] std::optional<std::string_view> cluster_owned_property(std::string_view name) noexcept;

}  // namespace rtm::config
