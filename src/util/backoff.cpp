#include "util/backoff.hpp"

#include <algorithm>

namespace rtm {

backoff::backoff(duration initial, duration max, double jitter) noexcept
    : initial_(std::max(initial, duration{1})), max_(std::max(max, initial_)), jitter_(std::clamp(jitter, 0.0, 1.0)) {}

backoff::duration backoff::ceiling() const noexcept {
  // Doubling stops as soon as the cap is reached, so the shift never overflows however many attempts there were.
  duration delay = initial_;
  for (std::uint32_t i = 0; i < attempts_ && delay < max_; ++i) {
    delay *= 2;
  }
  return std::min(delay, max_);
}

backoff::duration backoff::next(double random01) noexcept {
  const duration delay = ceiling();
  if (attempts_ < 64) {
    ++attempts_;
  }
  const double u = std::clamp(random01, 0.0, 1.0);
  const auto reduced = static_cast<duration::rep>(static_cast<double>(delay.count()) * (1.0 - jitter_ * u));
  return duration{std::max<duration::rep>(reduced, 1)};
}

}  // namespace rtm
