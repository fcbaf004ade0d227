#include "cluster/lease.hpp"

#include <algorithm>

namespace rtm::cluster {

void lease::answered(clock::time_point sent_at, bool heartbeat) noexcept {
  until_ = std::max(until_, sent_at + renewal_);
  if (fenced_ && heartbeat) {
    ++heartbeats_since_fence_;
  }
}

void lease::lost() noexcept {
  // Whatever was owned is gone; rule (b) needs a fresh run of heartbeats after this.
  lost_since_fence_ = true;
  heartbeats_since_fence_ = 0;
}

void lease::assigned(clock::time_point now) noexcept {
  // Rule (a): an assignment the group just made, while the lease holds, is ownership proven afresh.
  if (fenced_ && valid(now)) {
    unfence();
  }
  lost_since_fence_ = false;
}

void lease::polled(clock::time_point now) noexcept {
  // Rule (b).
  if (fenced_ && !lost_since_fence_ && heartbeats_since_fence_ >= 2 && valid(now)) {
    unfence();
  }
}

bool lease::expired(clock::time_point now) noexcept {
  if (fenced_ || valid(now)) {
    return false;
  }
  fenced_ = true;
  lost_since_fence_ = false;
  heartbeats_since_fence_ = 0;
  ++fences_;
  return true;
}

void lease::end(clock::time_point now) noexcept {
  until_ = std::min(until_, now);
  (void)expired(now);
}

void lease::unfence() noexcept {
  fenced_ = false;
  heartbeats_since_fence_ = 0;
}

}  // namespace rtm::cluster
