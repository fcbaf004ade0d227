#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "pipeline/event.hpp"

namespace rtm::metrics {
class registry;
}

// One configured upstream token: the thing that holds at most one live socket and reconnects it. Both dialects
// (upstream/socketio, upstream/slack) implement this; the daemon owns them all and only talks through it.
// Every member is called on the io_context thread.
namespace rtm::upstream {

// A token the upstream refused (bad credentials, a revoked or wrong-type token) will not fix itself in seconds: every
// dialect waits at least this long before trying it again, whatever reconnect.max_delay says, so a fleet of refused
// tokens never becomes a login storm that gets the account or the IP blocked.
inline constexpr std::chrono::seconds refused_credential_min_delay{60};

// The command dispatcher's side of a connection that sends (app/command_dispatcher): told when the connection can
// send, of Slack's answers and of sockets that went away. Sockets are numbered process-wide (socket_serial), so an
// answer or a close can never be taken for another socket's, across reconnects and across connection objects of the
// same name (a reload). Called on the io_context thread; an implementation must not throw.
class outbound_listener {
 public:
  outbound_listener() = default;
  outbound_listener(const outbound_listener&) = delete;
  outbound_listener& operator=(const outbound_listener&) = delete;
  outbound_listener(outbound_listener&&) = delete;
  outbound_listener& operator=(outbound_listener&&) = delete;

  // A socket went live: queued commands may go out now.
  virtual void on_outbound_ready(const std::string& connection) noexcept = 0;
  // A frame with "reply_to" arrived on socket `socket`, byte for byte (Slack's answer to the frame of that id).
  virtual void on_outbound_reply(const std::string& connection, std::uint64_t socket, std::uint64_t reply_to,
                                 std::string_view frame) noexcept = 0;
  // Socket `socket` is gone: nothing sent on it will be answered any more.
  virtual void on_outbound_closed(const std::string& connection, std::uint64_t socket) noexcept = 0;

 protected:
  ~outbound_listener() = default;
};

// What send_command() did.
struct send_result {
  bool sent = false;
  std::uint64_t socket = 0;  // sent: the socket it went out on
  std::uint64_t id = 0;      // sent: the id the bridge gave it (unique per socket, never reused by the connection)
  // Not sent: when it may be tried again (the one-frame-a-second budget), or time_point::max() while there is no
  // live socket (on_outbound_ready() tells when there is).
  std::chrono::steady_clock::time_point retry_at = std::chrono::steady_clock::time_point::max();
};

class connection {
 public:
  connection() = default;
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  connection(connection&&) = delete;
  connection& operator=(connection&&) = delete;
  virtual ~connection() = default;

  // Begins connecting; reconnects on its own until stop().
  virtual void start() = 0;

  // Tears the upstream down for good (no reconnect after this). `done` runs on the io_context once the socket is
  // closed for certain (a graceful close, forced after a short grace), so a successor may open a new one.
  virtual void stop(std::function<void()> done) = 0;
  // The same, but the TCP connection is closed before this returns: no drain, no close handshake (cluster mode: a
  // fence or a revocation must leave no socket open for a token another instance may open next). `done` as stop's.
  virtual void drop(std::function<void()> done) = 0;

  // Backpressure from the publishing side: stop/resume reading from the socket. Frames already read are delivered.
  virtual void pause_reading() = 0;
  virtual void resume_reading() = 0;

  // True while authenticated and receiving events.
  [[nodiscard]] virtual bool live() const noexcept = 0;
  [[nodiscard]] virtual const config::connection_config& settings() const noexcept = 0;

  // Outbound commands: only Slack legacy RTM sends on its socket (Acme's API and Socket Mode are receive-only).
  [[nodiscard]] virtual bool sends_commands() const noexcept { return false; }
  // Sends `object` (a validated command: a JSON object without "id") with an id of the connection's own, if a socket
  // is live and the rate budget allows it now.
  virtual send_result send_command(std::string_view /*object*/) { return {}; }
  // Who hears about sends (nullptr: nobody). Must outlive the connection or be reset first.
  virtual void set_outbound_listener(outbound_listener* /*listener*/) noexcept {}
};

// Builds the session for `cfg.kind`. `events` and `metrics` must outlive the connection.
[[nodiscard]] std::shared_ptr<connection> make_connection(boost::asio::io_context& io,
                                                          const config::connection_config& cfg, pipeline::sink& events,
                                                          metrics::registry& metrics);

}  // namespace rtm::upstream
