#pragma once

#include <chrono>
#include <cstdint>

// Exponential back-off with jitter: a pure policy (the caller supplies the random number), unit-tested alone.
namespace rtm {

class backoff {
 public:
  using duration = std::chrono::milliseconds;

  // jitter in [0, 1]: the fraction of each delay that is randomised away (0.5 → a delay in [d/2, d]).
  backoff(duration initial, duration max, double jitter) noexcept;

  // The delay before the next attempt; `random01` is uniform in [0, 1). Grows initial·2^n up to max, never overflows.
  [[nodiscard]] duration next(double random01) noexcept;

  // The smallest delay that next() could return now, without advancing (for tests and logs).
  [[nodiscard]] duration ceiling() const noexcept;

  void reset() noexcept { attempts_ = 0; }
  [[nodiscard]] std::uint32_t attempts() const noexcept { return attempts_; }

 private:
  duration initial_;
  duration max_;
  double jitter_;
  std::uint32_t attempts_ = 0;
};

}  // namespace rtm
