#pragma once

#include <utility>

// Runs a callable when the scope ends, on return and during stack unwinding alike: the way to keep bookkeeping
// consistent when a step in between may throw (std::bad_alloc), without a try block per allocation. The callable
// must not throw. (std::experimental::scope_exit, which g++ 12 does not ship.)
namespace rtm::util {

template <typename F>
class [[nodiscard]] scope_exit {
 public:
  explicit scope_exit(F f) noexcept : f_(std::move(f)) {}
  scope_exit(const scope_exit&) = delete;
  scope_exit& operator=(const scope_exit&) = delete;
  scope_exit(scope_exit&&) = delete;
  scope_exit& operator=(scope_exit&&) = delete;
  ~scope_exit() {
    if (active_) {
      f_();
    }
  }

  // The scope succeeded: nothing to undo.
  void release() noexcept { active_ = false; }

 private:
  F f_;
  bool active_ = true;
};

}  // namespace rtm::util
