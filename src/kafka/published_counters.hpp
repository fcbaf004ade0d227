#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "metrics/registry.hpp"
#include "util/string_hash.hpp"

// rtm_bridge_events_published_total, counted once per delivery report: the counter handles are kept by
// "connection topic" (neither contains a space), so a report costs one hash lookup instead of the registry's lookup
// by two labels. Bounded (topics come from templates that upstream data fills in): past the bound the registry is
// asked each time. io_context thread only.
namespace rtm::kafka {

class published_counters {
 public:
  static constexpr std::size_t default_limit = 4096;

  explicit published_counters(metrics::registry& metrics, std::size_t limit = default_limit)
      : metrics_(metrics), limit_(limit) {}

  void count(std::string_view connection, std::string_view topic);

 private:
  metrics::registry& metrics_;
  std::size_t limit_;
  string_map<metrics::counter> counters_;
  std::string key_;  // reused: a lookup allocates nothing
};

}  // namespace rtm::kafka
