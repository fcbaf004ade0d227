#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

// Acknowledgement after durability (Slack Socket Mode: an envelope is acknowledged only once its record is durable,
// so that Slack redelivers whatever the bridge could not keep). A session that needs it registers a listener with
// the sink's registry and puts {listener, token} into each event (pipeline::event::ack); the sink calls
// on_durable(token) once that event's record is confirmed by Kafka, or written to the spool when there is one. Never
// for an event that was not kept (dropped under spool.when_full: drop_newest, refused, lost): the upstream then
// delivers it again. Tokens are the session's own (it maps them back to what it acknowledges).
//
// Threading: the io_context thread only. on_durable() runs from a delivery report or a spool write, never from inside
// the sink's on_event(). A listener removes itself before it goes; notices for a removed listener are dropped.
namespace rtm::pipeline {

class durability_listener {
 public:
  durability_listener() = default;
  durability_listener(const durability_listener&) = delete;
  durability_listener& operator=(const durability_listener&) = delete;
  durability_listener(durability_listener&&) = delete;
  durability_listener& operator=(durability_listener&&) = delete;
  virtual void on_durable(std::uint64_t token) noexcept = 0;
  // The record will never be durable: it failed for good, and so did its dead letter. A listener that waits for
  // durability to move on (the command dispatcher's commit point) must not wait for ever.
  virtual void on_lost(std::uint64_t /*token*/) noexcept {}

 protected:
  ~durability_listener() = default;
};

// In an event and in its record: who to tell (0: nobody) and what.
struct durability_request {
  std::uint32_t listener = 0;
  std::uint64_t token = 0;
  [[nodiscard]] bool wanted() const noexcept { return listener != 0; }
};

class durability_registry {
 public:
  // A number for `l`, never reused, so a notice meant for a listener that is gone cannot reach its successor.
  [[nodiscard]] std::uint32_t add(durability_listener& l) {
    listeners_.emplace_back(next_, &l);
    return next_++;
  }
  void remove(std::uint32_t id) noexcept {
    const auto it = std::find_if(listeners_.begin(), listeners_.end(), [id](const auto& e) { return e.first == id; });
    if (it != listeners_.end()) {
      listeners_.erase(it);
    }
  }
  void notify(durability_request r) const noexcept {
    if (!r.wanted()) {
      return;
    }
    // A handful of listeners (one per Socket Mode connection): a linear search beats a map here.
    for (const auto& [id, l] : listeners_) {
      if (id == r.listener) {
        l->on_durable(r.token);
        return;
      }
    }
  }
  void notify_lost(durability_request r) const noexcept {
    if (!r.wanted()) {
      return;
    }
    for (const auto& [id, l] : listeners_) {
      if (id == r.listener) {
        l->on_lost(r.token);
        return;
      }
    }
  }
  [[nodiscard]] std::size_t size() const noexcept { return listeners_.size(); }

 private:
  std::vector<std::pair<std::uint32_t, durability_listener*>> listeners_;
  std::uint32_t next_ = 1;
};

}  // namespace rtm::pipeline
