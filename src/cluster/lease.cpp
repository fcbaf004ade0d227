#include "cluster/lease.hpp"

#include <algorithm>

namespace rtm::cluster {

void lease::answered(clock::time_point sent_at) noexcept {
  until_ = std::max(until_, sent_at + renewal_);
}

void lease::lost() noexcept {
  // Whatever was owned is gone: only a new assignment (rule a) proves the membership again.
  lost_since_fence_ = true;
}

void lease::assigned(clock::time_point now) noexcept {
  // Rule (a): an assignment the group just made, while the lease holds, is ownership proven afresh.
  if (fenced_ && valid(now)) {
    unfence();
  }
  lost_since_fence_ = false;
}

void lease::polled(clock::time_point now, std::uint64_t heartbeats) noexcept {
  // Rule (b).
  if (fenced_ && !lost_since_fence_ && heartbeats >= 2 && valid(now)) {
    unfence();
  }
}

bool lease::expired(clock::time_point now) noexcept {
  if (fenced_ || valid(now)) {
    return false;
  }
  fenced_ = true;
  lost_since_fence_ = false;
  ++fences_;
  return true;
}

void lease::end(clock::time_point now) noexcept {
  until_ = std::min(until_, now);
  (void)expired(now);
}

void lease::unfence() noexcept {
  fenced_ = false;
}

}  // namespace rtm::cluster
