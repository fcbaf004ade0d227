#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>

#include "commands/command.hpp"

// One connection's commands on their way to its socket, the pure half (no I/O, no clock: every time is an argument):
// the queue in offset order, what was sent and waits for Slack's reply_to, and the deadlines of both (max_age for
// the queued, reply_timeout for the sent). The dispatcher (app/command_dispatcher) owns one per connection name, so
// a connection replaced by a reload keeps its queue. Owned and used on the io_context thread.
namespace rtm::commands {

using system_time = std::chrono::system_clock::time_point;
using steady_time = std::chrono::steady_clock::time_point;

struct queued_command {
  std::uint64_t ticket = 0;    // the dispatcher's handle for the command's record (its offset)
  std::int32_t partition = 0;  // where the record came from (a revocation takes its commands away)
  std::string command_id;
  command_type type = command_type::message;
  std::string object;       // the JSON object to send, without id
  system_time produced_at;  // the record's timestamp: max_age counts from here
};

struct sent_command {
  queued_command cmd;
  std::uint64_t socket = 0;  // the socket it went out on (the session's generation)
  std::uint64_t id = 0;      // the id it carried
  steady_time sent_at;
};

class outbox {
 public:
  outbox(std::size_t max_queue, std::chrono::milliseconds max_age) noexcept
      : max_queue_(max_queue), max_age_(max_age) {}

  void push(queued_command c) { queue_.push_back(std::move(c)); }
  [[nodiscard]] bool empty() const noexcept { return queue_.empty(); }
  [[nodiscard]] const queued_command& front() const noexcept { return queue_.front(); }
  queued_command pop_front();

  // Every queued command produced max_age or longer before `now`, removed in queue order and handed to `each`:
  // never sent afterwards.
  template <typename Each>
  void take_expired(system_time now, Each&& each) {
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (expired(*it, now)) {
        queued_command c = std::move(*it);
        it = queue_.erase(it);
        each(std::move(c));
      } else {
        ++it;
      }
    }
  }
  // Removes the queued commands `drop` picks, unanswered (a revoked partition's: its next owner reads them again);
  // how many.
  template <typename Pick>
  std::size_t drop_if(Pick&& drop) {
    const auto before = queue_.size();
    std::erase_if(queue_, std::forward<Pick>(drop));
    return before - queue_.size();
  }
  [[nodiscard]] bool expired(const queued_command& c, system_time now) const noexcept {
    return now - c.produced_at >= max_age_;
  }

  // A message went out and waits for its reply_to.
  void sent(queued_command c, std::uint64_t socket, std::uint64_t id, steady_time at);
  // The sent command `reply_to` answers on `socket`, removed; nullopt when none waits for it (a ping's, a late one).
  [[nodiscard]] std::optional<sent_command> take_reply(std::uint64_t socket, std::uint64_t reply_to);
  // `socket` is gone: every command sent on it that still waits, removed and handed to `each` (no_reply).
  template <typename Each>
  void take_unanswered(std::uint64_t socket, Each&& each) {
    for (auto it = awaiting_.begin(); it != awaiting_.end();) {
      if (it->socket == socket) {
        sent_command s = std::move(*it);
        it = awaiting_.erase(it);
        each(std::move(s));
      } else {
        ++it;
      }
    }
  }
  // Every sent command waiting reply_timeout or longer at `now`, removed and handed to `each` (no_reply).
  template <typename Each>
  void take_timed_out(steady_time now, Each&& each) {
    // Sent in order, so the oldest is first.
    while (!awaiting_.empty() && now - awaiting_.front().sent_at >= reply_timeout) {
      sent_command s = std::move(awaiting_.front());
      awaiting_.pop_front();
      each(std::move(s));
    }
  }

  [[nodiscard]] std::size_t queued() const noexcept { return queue_.size(); }
  [[nodiscard]] std::size_t awaiting() const noexcept { return awaiting_.size(); }
  // At the bound: the consumer pauses the partitions feeding it (never a drop) ...
  [[nodiscard]] bool full() const noexcept { return queue_.size() >= max_queue_; }
  // ... and resumes them at half of it.
  [[nodiscard]] bool has_room_again() const noexcept { return queue_.size() <= max_queue_ / 2; }
  void set_max_age(std::chrono::milliseconds max_age) noexcept { max_age_ = max_age; }

 private:
  std::size_t max_queue_;
  std::chrono::milliseconds max_age_;
  std::deque<queued_command> queue_;
  std::deque<sent_command> awaiting_;
};

}  // namespace rtm::commands
