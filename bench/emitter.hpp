#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "frames.hpp"

// A minimal Socket.IO v4 (Engine.IO 4, WebSocket transport) upstream that speaks exactly what rtm-bridge needs: the
// open packet, `40` → `40{"sid"}`, `42["authentication",...]` → `42["authenticated"]`, server pings (`2`) every
// ping interval, and then pre-encoded `42["message:updated",{...}]` frames written straight onto the TCP socket in
// large contiguous chunks (the handshake goes through Beast; the stream bypasses it so the emitter's ceiling stays far
// above the daemon's). Whatever the client sends after authenticating is read and dropped.
//
// Threads: the emitter owns one io_context run by its own thread; every session lives on it. The controller (the
// benchmark's main thread) only calls the thread-safe members below, which post to that thread or read atomics.
namespace rtm::bench {

class emitter_session;

class emitter {
 public:
  struct stats {
    std::uint64_t frames_written = 0;
    std::chrono::steady_clock::time_point first_write{};  // when the current stream's first chunk was handed over
    std::chrono::steady_clock::time_point last_write{};   // when its last chunk was accepted by the kernel
  };

  // Listens on 127.0.0.1, port 0. Throws std::runtime_error when it cannot.
  emitter(const frame_cycle& frames, std::chrono::milliseconds ping_interval);
  emitter(const emitter&) = delete;
  emitter& operator=(const emitter&) = delete;
  ~emitter();

  [[nodiscard]] unsigned short port() const noexcept { return port_; }
  // Sessions that completed the handshake and are still open.
  [[nodiscard]] std::size_t authenticated() const noexcept { return authenticated_.load(); }
  // Every session seen so far that completed the handshake (reconnects show up here).
  [[nodiscard]] std::size_t handshakes() const noexcept { return handshakes_.load(); }
  [[nodiscard]] std::uint64_t frames_written() const noexcept { return frames_written_.load(); }
  // Streams that have written everything they were asked to.
  [[nodiscard]] std::size_t streams_done() const noexcept { return streams_done_.load(); }

  // Every authenticated session writes `frames` frames, as fast as the socket takes them (rate_per_s == 0) or paced
  // at rate_per_s from now on.
  void start_stream(std::uint64_t frames, double rate_per_s);
  // First chunk handed over → last chunk written, for the most recent stream (valid once streams_done() grew).
  [[nodiscard]] stats last_stream() const;

 private:
  friend class emitter_session;
  void do_accept();
  void on_accept(boost::system::error_code ec, boost::asio::ip::tcp::socket socket);

  const frame_cycle& frames_;
  std::chrono::milliseconds ping_interval_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::vector<std::weak_ptr<emitter_session>> live_;  // io thread only
  std::uint64_t next_sid_ = 0;                        // io thread only
  std::atomic<std::size_t> authenticated_{0};
  std::atomic<std::size_t> handshakes_{0};
  std::atomic<std::uint64_t> frames_written_{0};
  std::atomic<std::size_t> streams_done_{0};
  std::atomic<std::int64_t> first_write_ns_{0};
  std::atomic<std::int64_t> last_write_ns_{0};
  std::thread thread_;
};

}  // namespace rtm::bench
