#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "pipeline/event.hpp"
#include "upstream/reconnecting_session.hpp"

namespace rtm::metrics {
class registry;
}

// The Slack legacy RTM dialect (`kind: slack`), on the shared reconnecting-session core (which owns the socket, the
// retries, the timers and the one-socket-per-token rule). What is Slack's own:
//   the attempt: rtm.connect over HTTPS for a single-use wss:// URL (every reconnect calls it again: the URL is
//   single-use, reconnect_url is ignored); HTTP 429 waits at least Retry-After (capped); errors that mean the token
//   cannot work (invalid_auth, token_revoked, ...) get the long back-off for refused credentials;
//   the handshake: `hello` within the phase timeout;
//   liveness: a JSON ping after a few seconds of silence, at most one a second (Slack's rate limit); no frame at all
//   within ping_timeout means the peer is gone (half-open sockets included);
//   the frames: events (the whole frame, byte for byte), goodbye / migration / error frames that end the socket;
//   commands (app/command_dispatcher): frames sent with an id of the session's own (one counter for pings and
//   commands, never reset, so an id is unique per socket and never reused across reconnects), at most one frame per
//   send_interval whatever it carries (Slack allows one message a second; a burst beyond it gets the connection
//   disconnected), a due ping first; Slack's reply_to frames are handed to the outbound listener.
// Threading: the io_context's single thread, as the core.
namespace rtm::upstream::slack {

// The least time between two frames the bridge sends on a Slack RTM socket: Slack's limit is one message a second;
// the margin absorbs a write that leaves late, so that frames never arrive closer together than a second.
inline constexpr std::chrono::milliseconds send_interval{1100};

class session final : public reconnecting_session {
 public:
  session(boost::asio::io_context& io, config::connection_config cfg, pipeline::sink& events,
          metrics::registry& metrics, session_tuning tuning = {});

  [[nodiscard]] bool sends_commands() const noexcept override { return true; }
  send_result send_command(std::string_view object) override;
  void set_outbound_listener(outbound_listener* listener) noexcept override { outbound_ = listener; }

 private:
  void on_start() override;
  void open_attempt() override;
  void on_socket_open() override;
  void on_frame(const received_frame& f) override;
  void on_keepalive() override;
  void on_attempt_over() override;

  void on_rtm_connect(std::string_view error_text, const http::response& reply);
  void on_rate_limited(const http::response& reply);
  void on_hello();
  void publish(const received_frame& f, std::string_view type_name);
  // The dead-connection bound: cfg.ping_timeout, raised to the least that keeps pings within Slack's rate limit.
  [[nodiscard]] std::chrono::milliseconds ping_timeout() const noexcept;
  [[nodiscard]] std::chrono::milliseconds ping_tick() const noexcept;

  std::string team_id_;
  std::string enterprise_id_;
  bool awaiting_hello_ = false;
  std::string name_buffer_;
  // Outbound frames (commands and pings): the id counter, the live socket's process-wide serial (0: none), when the
  // next frame may go, and whether a ping waits for that moment (commands then wait behind it).
  std::uint64_t next_id_ = 1;
  std::uint64_t socket_serial_ = 0;
  std::chrono::steady_clock::time_point next_send_at_{};
  bool ping_due_ = false;
  outbound_listener* outbound_ = nullptr;
};

}  // namespace rtm::upstream::slack
