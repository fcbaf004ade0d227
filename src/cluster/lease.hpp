#pragma once

#include <chrono>
#include <cstdint>

// Several instances, the pure half of fencing (the design study, part A3): an instance may hold its connections only
// while its group membership is certainly alive. The broker evicts a member no earlier than S (session timeout)
// after it *received* the member's last Heartbeat, JoinGroup or SyncGroup; each answered one was sent at
// t_send <= that receipt, so lease_until = max over answers of (t_send + S - M) lies at least M (the fence margin)
// before any eviction. At lease_until every owned connection is closed (the fence), the consumer kept. Reopening
// needs proof the group never evicted this member: (a) the next assignment callback while the lease holds, or (b)
// two heartbeats answered after the fence and then a completed poll of the consumer, with no lost revocation in
// between (librdkafka sends the next heartbeat only after handling the previous answer, so an error answer would
// have queued the lost revocation before the poll).
// Pure: every time is an argument (the steady clock); single-threaded (the runtime hands it what librdkafka's
// threads observed, on the loop thread).
namespace rtm::cluster {

class lease {
 public:
  using clock = std::chrono::steady_clock;

  // `session_timeout` > `margin` > 0 (the config loader checks S - M >= 3 H and M >= 2 H).
  lease(std::chrono::milliseconds session_timeout, std::chrono::milliseconds margin) noexcept
      : renewal_(session_timeout - margin) {}

  // A Heartbeat, JoinGroup or SyncGroup sent at `sent_at` was answered without a transport error.
  void answered(clock::time_point sent_at) noexcept;
  // A revocation with the assignment lost: the group may have given the buckets away already.
  void lost() noexcept;
  // The rebalance callback assigned (it fires after every completed rebalance, even with nothing to assign).
  void assigned(clock::time_point now) noexcept;
  // A poll of the consumer served everything librdkafka had queued, and before it began `heartbeats` heartbeats
  // sent after the fence had been answered (the caller counts them: only it knows each one's send time).
  void polled(clock::time_point now, std::uint64_t heartbeats) noexcept;
  // True exactly once per expiry: the lease ran out at `now`, and the caller closes every owned connection now.
  [[nodiscard]] bool expired(clock::time_point now) noexcept;
  // Fences now whatever the lease says (the caller cannot vouch for what was observed: its loop stalled). Reopening
  // needs the same proof as after an expiry.
  void end(clock::time_point now) noexcept;

  // Owned connections must stay closed: fenced, not yet proven alive (again). True for a new lease.
  [[nodiscard]] bool fenced() const noexcept { return fenced_; }
  // Whether the lease holds at `now` (false before the first answer).
  [[nodiscard]] bool valid(clock::time_point now) const noexcept { return now < until_; }
  [[nodiscard]] clock::time_point until() const noexcept { return until_; }
  // Fences since the start (rtm_bridge_cluster_fenced_total).
  [[nodiscard]] std::uint64_t fences() const noexcept { return fences_; }

 private:
  void unfence() noexcept;

  std::chrono::milliseconds renewal_;
  clock::time_point until_{};
  bool fenced_ = true;  // a new member holds nothing until the group proves it alive (rule a or b); not counted
  bool lost_since_fence_ = false;
  std::uint64_t fences_ = 0;
};

}  // namespace rtm::cluster
