#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

// Which command offsets may be committed, the pure half: a command's offset counts as done only once its reply record
// is confirmed by Kafka, and a partition's commit point is its oldest command not done yet (or one past the newest
// seen), so a restart re-reads exactly the commands whose replies were not confirmed, whatever order replies finish
// in (connections reply at their own pace, and one partition feeds several). Owned by the dispatcher, io_context
// thread.
namespace rtm::commands {

class offset_tracker {
 public:
  // A command record was read: its ticket (never 0, never reused).
  [[nodiscard]] std::uint64_t add(std::int32_t partition, std::int64_t offset);
  // Its reply is confirmed. Unknown tickets (a revoked partition's) are ignored.
  void done(std::uint64_t ticket);
  // The partition is no longer ours (revoked): its commands may still finish, but commit nothing any more.
  void forget(std::int32_t partition);
  // Each partition whose commit point moved since the last call: (partition, the offset to commit, i.e. the next
  // one to read).
  [[nodiscard]] std::vector<std::pair<std::int32_t, std::int64_t>> take_commits();
  // Every partition's commit point now (the last commit at a stop).
  [[nodiscard]] std::vector<std::pair<std::int32_t, std::int64_t>> commit_points() const;
  // A commit of `partition` failed: take_commits() offers its point again.
  void uncommit(std::int32_t partition);
  // Commands read and not done yet.
  [[nodiscard]] std::size_t outstanding() const noexcept { return tickets_.size(); }

 private:
  struct partition_state {
    std::set<std::int64_t> open;  // offsets whose replies are not confirmed yet
    std::int64_t next = -1;       // one past the newest offset read
    std::int64_t committed = -1;  // what take_commits() last returned
  };
  std::map<std::int32_t, partition_state> partitions_;
  std::map<std::uint64_t, std::pair<std::int32_t, std::int64_t>> tickets_;
  std::uint64_t next_ticket_ = 1;
};

}  // namespace rtm::commands
