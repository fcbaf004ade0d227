#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

// The emitter's ceiling: a client that does the daemon's Socket.IO handshake and then only reads, counting raw bytes
// until the expected stream has arrived. Runs synchronously on its own thread (no io_context shared with anything).
namespace rtm::bench {

class reading_sink {
 public:
  // Connects to 127.0.0.1:port and expects `bytes` stream bytes after `42["authenticated"]`.
  reading_sink(unsigned short port, std::uint64_t bytes);
  reading_sink(const reading_sink&) = delete;
  reading_sink& operator=(const reading_sink&) = delete;
  ~reading_sink();

  // Authenticated and waiting for the stream.
  [[nodiscard]] bool ready() const noexcept { return ready_.load(); }
  // Every expected byte was read (or the sink failed: see error()).
  [[nodiscard]] bool finished() const noexcept { return finished_.load(); }
  // Valid once finished(): when the last byte arrived, and the error text if the sink failed.
  [[nodiscard]] std::chrono::steady_clock::time_point done_at() const noexcept { return done_at_; }
  [[nodiscard]] const std::string& error() const noexcept { return error_; }

 private:
  void run(unsigned short port, std::uint64_t bytes);

  std::atomic<bool> ready_{false};
  std::atomic<bool> finished_{false};
  std::chrono::steady_clock::time_point done_at_{};  // written by the sink thread before finished_ is set
  std::string error_;                                // likewise
  std::thread thread_;
};

}  // namespace rtm::bench
