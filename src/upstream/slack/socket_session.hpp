#pragma once

#include <array>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "pipeline/durability.hpp"
#include "pipeline/event.hpp"
#include "upstream/reconnecting_session.hpp"
#include "upstream/slack/socket_codec.hpp"

namespace rtm::metrics {
class registry;
}

// The Slack Socket Mode dialect (`kind: slack_socket`), on the shared reconnecting-session core (the socket, the
// retries, the timers and the one-socket-per-token rule are the core's). What is Socket Mode's own:
//   the attempt: apps.connections.open over HTTPS (POST, the app-level token in the Authorization header only) for a
//   single-use wss:// URL, every attempt anew; 429 waits at least Retry-After; token errors get the long back-off of
//   refused credentials;
//   the handshake: `hello` within the phase timeout;
//   liveness: WebSocket pings after a few seconds of silence; no frame and no pong within ping_timeout means the
//   peer is gone (a frozen or half-open socket is replaced);
//   `disconnect`: refresh_requested, warning, too_many_websockets → a fresh connection (the core closes the old
//   socket before the next apps.connections.open); link_disabled → no reconnect sooner than 10 minutes;
//   envelopes: records keyed by the workspace's team id (contract), and the acknowledgement: an events_api envelope
//   only once its record is durable (the sink's durability registry tells: confirmed by Kafka, or written to the
//   spool), interactive and slash_commands at receipt; malformed or unknown envelopes are dead-lettered and
//   acknowledged (a redelivery would bring the same again).
// Acknowledgements belong to the socket the envelope came on: those still pending when it goes are dropped (Slack
// redelivers the envelopes; the records keep their id, built from event_id).
// Threading: the io_context's single thread, as the core.
namespace rtm::upstream::slack {

class socket_session final : public reconnecting_session, private pipeline::durability_listener {
 public:
  socket_session(boost::asio::io_context& io, config::connection_config cfg, pipeline::sink& events,
                 metrics::registry& metrics, session_tuning tuning = {});
  socket_session(const socket_session&) = delete;
  socket_session& operator=(const socket_session&) = delete;
  socket_session(socket_session&&) = delete;
  socket_session& operator=(socket_session&&) = delete;
  ~socket_session() override;

  // No frame for this long after the `link_disabled` disconnect: Socket Mode was switched off in the app's settings,
  // and reconnecting sooner only burns apps.connections.open calls (Tier 1).
  static constexpr std::chrono::minutes link_disabled_delay{10};
  // Bounds on the acknowledgements waiting for durability (see on_keepalive()).
  static constexpr std::size_t max_pending = 100000;
  static constexpr std::chrono::minutes pending_max_age{10};

 private:
  // An events_api envelope waiting for its record to be durable. The id is kept inline (Slack's are UUIDs): no
  // allocation per envelope.
  struct pending_ack {
    std::uint64_t token = 0;
    std::uint64_t socket = 0;  // socket_generation() when it arrived
    std::chrono::steady_clock::time_point received{};
    std::array<char, 95> id{};
    std::uint8_t id_size = 0;
    bool done = false;
  };

  void on_start() override;
  void open_attempt() override;
  void on_socket_open() override;
  void on_frame(const received_frame& f) override;
  void on_keepalive() override;
  void on_attempt_over() override;
  void on_durable(std::uint64_t token) noexcept override;

  void on_open_reply(std::string_view error_text, const http::response& reply);
  void on_hello(const socket_frame& frame);
  void on_disconnect(const socket_frame& frame);
  void on_envelope(const received_frame& f, const socket_frame& frame);
  void acknowledge(std::string_view envelope_id, std::chrono::steady_clock::time_point received);
  [[nodiscard]] std::chrono::milliseconds ping_tick() const noexcept;

  std::uint32_t listener_id_ = 0;  // in the sink's durability registry (0: the sink has none)
  std::weak_ptr<pipeline::durability_registry> registry_;
  bool awaiting_hello_ = false;
  std::deque<pending_ack> pending_;  // by token, oldest first; the front is never done
  std::uint64_t next_token_ = 1;
  std::string name_buffer_;
  std::string ack_buffer_;
};

}  // namespace rtm::upstream::slack
