#include "commands/offset_tracker.hpp"

#include <algorithm>

namespace rtm::commands {

std::uint64_t offset_tracker::add(std::int32_t partition, std::int64_t offset) {
  partition_state& p = partitions_[partition];
  p.open.insert(offset);
  p.next = std::max(p.next, offset + 1);
  const std::uint64_t ticket = next_ticket_++;
  tickets_.emplace(ticket, std::make_pair(partition, offset));
  return ticket;
}

void offset_tracker::done(std::uint64_t ticket) {
  const auto it = tickets_.find(ticket);
  if (it == tickets_.end()) {
    return;
  }
  const auto [partition, offset] = it->second;
  tickets_.erase(it);
  if (const auto p = partitions_.find(partition); p != partitions_.end()) {
    p->second.open.erase(offset);
  }
}

void offset_tracker::forget(std::int32_t partition) {
  partitions_.erase(partition);
  std::erase_if(tickets_, [partition](const auto& t) { return t.second.first == partition; });
}

std::vector<std::pair<std::int32_t, std::int64_t>> offset_tracker::take_commits() {
  std::vector<std::pair<std::int32_t, std::int64_t>> out;
  for (auto& [partition, p] : partitions_) {
    const std::int64_t point = p.open.empty() ? p.next : *p.open.begin();
    if (point > p.committed) {
      p.committed = point;
      out.emplace_back(partition, point);
    }
  }
  return out;
}

void offset_tracker::uncommit(std::int32_t partition) {
  if (const auto p = partitions_.find(partition); p != partitions_.end()) {
    p->second.committed = -1;
  }
}

std::vector<std::pair<std::int32_t, std::int64_t>> offset_tracker::commit_points() const {
  std::vector<std::pair<std::int32_t, std::int64_t>> out;
  for (const auto& [partition, p] : partitions_) {
    out.emplace_back(partition, p.open.empty() ? p.next : *p.open.begin());
  }
  return out;
}

}  // namespace rtm::commands
