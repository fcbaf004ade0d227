#include "kafka/published_counters.hpp"

namespace rtm::kafka {

void published_counters::count(std::string_view connection, std::string_view topic) {
  key_.assign(connection);
  key_ += ' ';
  key_ += topic;
  if (const auto it = counters_.find(std::string_view(key_)); it != counters_.end()) {
    it->second.increment();
    return;
  }
  if (counters_.size() >= limit_) {
    metrics_.event_published(connection, topic);
    return;
  }
  metrics::counter c = metrics_.published_counter(connection, topic);
  counters_.emplace(key_, c);
  c.increment();
}

}  // namespace rtm::kafka
