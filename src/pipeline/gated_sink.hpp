#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

#include "pipeline/event.hpp"

// A sink in front of another that forwards only while `open()` says so (cluster mode: while this instance's lease
// holds; docs/CONTRACT.md, "Several instances"). Every event and dead letter a connection hands over passes the gate
// first, so a process that resumes after a stop (SIGSTOP, a VM pause) forwards nothing from a connection whose token
// may already be held elsewhere: the gate answers false and the fence closes that connection right after. What the
// gate holds back is counted, not forwarded. Called on the io_context thread.
namespace rtm::pipeline {

class gated_sink final : public sink {
 public:
  gated_sink(sink& inner, std::function<bool()> open) : inner_(inner), open_(std::move(open)) {}

  void on_event(const event& ev) noexcept override {
    if (pass()) {
      inner_.on_event(ev);
    }
  }
  void on_dead_letter(const dead_letter& dl) noexcept override {
    if (pass()) {
      inner_.on_dead_letter(dl);
    }
  }
  std::shared_ptr<durability_registry> durability() noexcept override { return inner_.durability(); }

  // Events and dead letters held back so far.
  [[nodiscard]] std::uint64_t held_back() const noexcept { return held_back_; }

 private:
  bool pass() noexcept {
    bool open = false;
    try {
      open = open_();
    } catch (const std::exception&) {
      open = false;  // cannot tell: forwarding could break the one-holder guarantee
    }
    if (!open) {
      ++held_back_;
    }
    return open;
  }

  sink& inner_;
  std::function<bool()> open_;
  std::uint64_t held_back_ = 0;
};

}  // namespace rtm::pipeline
