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
//   the frames: events (the whole frame, byte for byte), goodbye / migration / error frames that end the socket.
// Threading: the io_context's single thread, as the core.
namespace rtm::upstream::slack {

class session final : public reconnecting_session {
 public:
  session(boost::asio::io_context& io, config::connection_config cfg, pipeline::sink& events,
          metrics::registry& metrics, session_tuning tuning = {});

 private:
  void on_start() override;
  void open_attempt() override;
  void on_socket_open() override;
  void on_frame(const received_frame& f) override;
  void on_keepalive() override;

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
  std::int64_t next_ping_id_ = 1;
  std::string name_buffer_;
};

}  // namespace rtm::upstream::slack
