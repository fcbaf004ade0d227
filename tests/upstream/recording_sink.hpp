#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

#include "pipeline/event.hpp"

// What a session under test handed over, for both dialects' tests. Sink calls arrive on the io_context thread and
// copy everything (the views die with the call); the test thread reads under the mutex.
namespace rtm::test {

struct recorded_event {
  std::string connection;
  pipeline::source from = pipeline::source::acme;
  std::string name;
  std::string name_space;
  std::string team_id;
  std::string enterprise_id;
  std::string payload;
  std::string extra_args;
};

struct recorded_dead_letter {
  std::string reason;
  std::string raw;
  std::string detail;
  std::size_t original_size = 0;
};

class recording_sink final : public pipeline::sink {
 public:
  void on_event(const pipeline::event& ev) noexcept override {
    const std::lock_guard<std::mutex> lock(mutex_);
    events_.push_back({std::string(ev.connection), ev.from, std::string(ev.name), std::string(ev.name_space),
                       std::string(ev.team_id), std::string(ev.enterprise_id), std::string(ev.payload),
                       std::string(ev.extra_args)});
  }
  void on_dead_letter(const pipeline::dead_letter& dl) noexcept override {
    const std::lock_guard<std::mutex> lock(mutex_);
    dead_letters_.push_back({std::string(dl.reason), std::string(dl.raw), std::string(dl.detail), dl.original_size});
  }
  [[nodiscard]] std::vector<recorded_event> events() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return events_;
  }
  [[nodiscard]] std::vector<recorded_dead_letter> dead_letters() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return dead_letters_;
  }
  [[nodiscard]] std::size_t event_count() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return events_.size();
  }
  [[nodiscard]] std::size_t dead_letter_count() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return dead_letters_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::vector<recorded_event> events_;
  std::vector<recorded_dead_letter> dead_letters_;
};

}  // namespace rtm::test
