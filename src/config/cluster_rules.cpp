#include "config/cluster_rules.hpp"

#include <array>
#include <utility>

#include "config/duration.hpp"

namespace rtm::config {

std::optional<cluster_timing_problem> check_cluster_timing(const cluster_timing& t) {
  const auto s = t.session_timeout;
  const auto h = t.heartbeat_interval;
  const auto m = t.fence_margin;
  if (m >= s || s - m < 3 * h) {
    return cluster_timing_problem{"fence_margin",
                                  "session_timeout - fence_margin (" + format_duration(s) + " - " + format_duration(m) +
                                      ") must be at least 3 x heartbeat_interval (" + format_duration(3 * h) +
                                      "): the lease would run out between two heartbeats; lower fence_margin or "
                                      "heartbeat_interval, or raise session_timeout"};
  }
  if (m < 2 * h) {
    return cluster_timing_problem{
        "fence_margin", "must be at least 2 x heartbeat_interval (" + format_duration(2 * h) + "), got " +
                            format_duration(m) +
                            ": it covers a heartbeat answered while the coordinator moves; raise fence_margin or "
                            "lower heartbeat_interval"};
  }
  if (t.rebalance_timeout < s) {
    return cluster_timing_problem{"rebalance_timeout", "must be at least session_timeout (" + format_duration(s) +
                                                           "), got " + format_duration(t.rebalance_timeout) +
                                                           " (librdkafka refuses a smaller max.poll.interval.ms)"};
  }
  return std::nullopt;
}

std::optional<std::string_view> cluster_owned_property(std::string_view name) noexcept {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 10> owned{{
      {"group.id", "cluster.group_id"},
      {"group.instance.id", "cluster.instance_id"},
      {"session.timeout.ms", "cluster.session_timeout"},
      {"heartbeat.interval.ms", "cluster.heartbeat_interval"},
      {"max.poll.interval.ms", "cluster.rebalance_timeout"},
      {"partition.assignment.strategy", "nothing: cluster mode needs cooperative-sticky"},
      {"enable.auto.commit", "nothing: the assignment group never commits"},
      {"enable.auto.offset.store", "nothing: the assignment group never commits"},
      {"group.protocol.type", "nothing: the bridge's consumer group protocol"},
      {"client.id", "kafka.client_id"},
  }};
  for (const auto& [property, key] : owned) {
    if (property == name) {
      return key;
    }
  }
  return std::nullopt;
}

}  // namespace rtm::config
