#include "commands/outbox.hpp"

namespace rtm::commands {

queued_command outbox::pop_front() {
  queued_command c = std::move(queue_.front());
  queue_.pop_front();
  return c;
}

void outbox::sent(queued_command c, std::uint64_t socket, std::uint64_t id, steady_time at) {
  awaiting_.push_back(sent_command{std::move(c), socket, id, at});
}

std::optional<sent_command> outbox::take_reply(std::uint64_t socket, std::uint64_t reply_to) {
  for (auto it = awaiting_.begin(); it != awaiting_.end(); ++it) {
    if (it->socket == socket && it->id == reply_to) {
      sent_command s = std::move(*it);
      awaiting_.erase(it);
      return s;
    }
  }
  return std::nullopt;
}

}  // namespace rtm::commands
