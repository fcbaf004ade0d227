#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "metrics/registry.hpp"
#include "pipeline/event.hpp"
#include "upstream/reconnecting_session.hpp"
#include "upstream/socketio/codec.hpp"

// The Acme RTM dialect: one configured token over Socket.IO (Engine.IO v4, or v3 with `protocol: 3`), per the
// contract's "Acme RTM handshake", on the shared reconnecting-session core (which owns the socket, the retries and
// the timers). What is Acme's own:
//   the attempt: discovery (url omitted: GET {api_url}/{tier}/connect/endpoints), then the WebSocket;
//   the handshake: open packet `0{...}` → namespace connect (v4: we send `40`, the server answers `40{"sid"}`; v3:
//   the server's bare `40`) → `42["authentication",...]` → `authenticated` → live;
//   the heartbeat: v4 the server pings within pingInterval + pingTimeout; v3 we ping and the pong is due;
//   the frames: events (filtered by `events`), dead letters, acknowledgements.
// Threading: the io_context's single thread, as the core.
namespace rtm::upstream::socketio {

class session final : public reconnecting_session {
  struct passkey {};

 public:
  // `events` and `metrics` must outlive the session.
  [[nodiscard]] static std::shared_ptr<session> create(boost::asio::io_context& io,
                                                       const config::connection_config& cfg, pipeline::sink& events,
                                                       metrics::registry& metrics, session_tuning tuning = {});

  session(passkey, boost::asio::io_context& io, const config::connection_config& cfg, pipeline::sink& events,
          metrics::registry& metrics, session_tuning tuning);

 private:
  // The handshake's steps on an open socket.
  enum class step { engine_open, namespace_connect, authenticating, live };

  void on_start() override;
  void open_attempt() override;
  void on_socket_open() override;
  void on_frame(const received_frame& f) override;
  void on_closing(bool stopping) override;
  void on_attempt_over() override;
  void on_keepalive() override;

  void on_discovered(std::string_view error_text, const http::response& reply);
  void connect_to(const std::string& endpoint);
  void handle_packet(const packet& p, const received_frame& f);
  // While a live socket drains before its close: events and dead letters only, no state changes.
  void drain_packet(const packet& p, const received_frame& f);
  void handle_open_packet(const packet& p);
  void handle_connect_packet(const packet& p);
  void handle_event(const packet& p, const received_frame& f);
  void on_ping();
  void on_pong();
  void authenticate();
  void authenticated();
  void credential_refused(std::string_view what);
  void namespace_refused(std::string_view server_message);
  void protocol_error(std::string_view what);
  void publish(const packet& p, const received_frame& f, event_name_info& info);

  // The dead-peer bound: the server's ping (v4) or the pong to our ping (v3), from the open packet's figures.
  [[nodiscard]] std::chrono::milliseconds dead_bound() const noexcept;
  // The configured globs (cfg.events): empty subscribes everything.
  [[nodiscard]] bool wants_event(std::string_view event_name) override;

  const std::vector<std::string> subscription_;  // the authentication's `events`
  decoder decoder_;

  // Per socket (reset in on_attempt_over).
  step step_ = step::engine_open;
  bool awaiting_pong_ = false;   // v3
  std::size_t skip_binary_ = 0;  // attachment frames of a refused binary packet still to come
  std::chrono::milliseconds ping_interval_{0};
  std::chrono::milliseconds ping_timeout_{0};
  std::string engine_sid_;
  std::string endpoint_url_;  // the WebSocket URL of the current attempt, for logs
};

}  // namespace rtm::upstream::socketio
