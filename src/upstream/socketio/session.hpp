#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "metrics/registry.hpp"
#include "pipeline/event.hpp"
#include "upstream/connection.hpp"
#include "upstream/http/client.hpp"
#include "upstream/socketio/codec.hpp"
#include "upstream/ws/client.hpp"
#include "util/backoff.hpp"

// The Acme RTM upstream: one configured token held over Socket.IO (Engine.IO v4, or v3 with `protocol: 3`), per the
// contract's "Acme RTM handshake". It reconnects on its own with back-off, and keeps at most one socket per token:
// the old socket is gone for certain (closed, or dropped after a short grace) before the next one opens.
//
// Phases, each bounded by a timer:
//   discovering (url omitted: GET {api_url}/{tier}/connect/endpoints) → connecting (WebSocket open) →
//   engine_open (waiting for `0{...}`) → namespace_connect (v4: we sent `40`, waiting for `40{"sid"}`; v3: the
//   server's bare `40`) → authenticating (sent `42["authentication",...]`) → live → closing → backing_off → ...
//   stop() ends in stopped.
//
// Threading: everything runs on the io_context's single thread; timer and transport handlers hold
// `self = shared_from_this()` (or a weak_ptr, for the transport) and check an attempt generation, so a late handler
// of an earlier socket cannot touch the current one.
namespace rtm::upstream::socketio {

// Behaviour that is not in the config, with production defaults; the tests shorten them.
struct session_tuning {
  // Bound on each handshake phase: WebSocket open, the open packet, the `40` reply, `authenticated`.
  std::chrono::milliseconds phase_timeout{10000};
  // A close we start on a live socket first reads on this long (after `41`, the server sends nothing new), so the
  // events the server already sent are delivered rather than discarded by the close handshake.
  std::chrono::milliseconds drain_grace{1000};
  // A graceful close is given this long before the TCP connection is dropped.
  std::chrono::milliseconds close_grace{2000};
  // The back-off resets only after `authenticated` and this long live, so a server that accepts and then drops the
  // connection at once is retried with growing delays instead of a storm at the smallest step.
  std::chrono::milliseconds stable_period{30000};
  // The endpoint discovery request (DNS, connect, TLS, response) as a whole.
  std::chrono::milliseconds discovery_timeout{10000};
};

class session final : public connection, public ws::handler, public std::enable_shared_from_this<session> {
  struct passkey {};

 public:
  // `events` and `metrics` must outlive the session.
  [[nodiscard]] static std::shared_ptr<session> create(boost::asio::io_context& io,
                                                       const config::connection_config& cfg, sink& events,
                                                       metrics::registry& metrics, session_tuning tuning = {});

  session(passkey, boost::asio::io_context& io, const config::connection_config& cfg, sink& events,
          metrics::registry& metrics, session_tuning tuning);
  ~session() override;

  void start() override;
  void stop(std::function<void()> done) override;
  void pause_reading() override;
  void resume_reading() override;
  [[nodiscard]] bool live() const noexcept override { return phase_ == phase::live; }
  [[nodiscard]] const config::connection_config& settings() const noexcept override { return cfg_; }

  // ws::handler: the transport's events, on the io_context thread.
  void on_open() override;
  void on_message(std::string_view payload, bool binary) override;
  void on_close(int code, std::string_view reason, std::string_view error_text) override;
  void on_message_refused(std::size_t limit) override;
  void on_frames_discarded(std::size_t frames) override;

 private:
  enum class phase {
    idle,
    discovering,
    connecting,
    engine_open,
    namespace_connect,
    authenticating,
    live,
    closing,
    backing_off,
    stopped,
  };
  // How long to wait before the next attempt.
  enum class retry_kind {
    normal,      // back-off from reconnect.initial_delay, doubling up to max_delay
    credential,  // refused credentials: at least reconnect.max_delay, never a hot loop
  };

  void begin_attempt();
  void discover();
  void on_discovered(std::uint64_t generation, std::string_view error_text, const http::response& reply);
  void connect_to(const std::string& endpoint);

  void handle_packet(const packet& p, std::string_view raw, std::chrono::system_clock::time_point received_at,
                     std::chrono::steady_clock::time_point received_steady);
  // While a live socket drains before its close: events and dead letters only, no state changes.
  void drain_packet(const packet& p, std::string_view raw, std::chrono::system_clock::time_point received_at,
                    std::chrono::steady_clock::time_point received_steady);
  void handle_open_packet(const packet& p);
  void handle_connect_packet(const packet& p);
  void handle_event(const packet& p, std::string_view raw, std::chrono::system_clock::time_point received_at,
                    std::chrono::steady_clock::time_point received_steady);
  void authenticate();
  void go_live();
  void credential_refused(std::string_view what);
  void namespace_refused(std::string_view server_message);
  void event_too_large(std::string_view payload, std::chrono::system_clock::time_point received_at);

  void arm_phase_timer(std::string_view waiting_for);
  // The dead-peer deadline: the server's ping (v4) or the pong to our ping (v3).
  void arm_liveness();
  void arm_liveness_until(std::chrono::steady_clock::time_point deadline);
  void schedule_client_ping();
  void on_dead_peer(std::string_view why);

  // Ends the current socket (graceful close, or a drop for a dead peer) and, once it is gone, backs off and retries
  // (or finishes a stop). Idempotent while a teardown is under way.
  void teardown(std::string_view reason, retry_kind kind, bool drop_now);
  void after_socket_gone();
  void schedule_retry(std::string_view reason, retry_kind kind);
  void finish_stop();
  void cancel_timers();
  void mark_down();

  void send(std::string frame);
  void dead_letter(std::string_view reason, std::string_view raw, std::chrono::system_clock::time_point received_at,
                   std::string_view detail = {}, std::size_t original_size = 0);
  [[nodiscard]] bool subscribed(std::string_view event_name) const noexcept;
  // What the per-event path needs to know about an event name, looked up once per name instead of once per event.
  struct event_info {
    bool subscribed = false;
    metrics::counter received;  // made at the first event published under this name
  };
  [[nodiscard]] event_info& info_for(std::string_view event_name);
  [[nodiscard]] std::chrono::milliseconds dead_bound() const noexcept;
  [[nodiscard]] double random01() noexcept;
  [[nodiscard]] const std::string& name() const noexcept { return cfg_.name; }

  boost::asio::io_context& io_;
  const config::connection_config cfg_;
  sink& sink_;
  metrics::registry& metrics_;
  const session_tuning tuning_;
  const std::vector<std::string> subscription_;  // the authentication's `events`

  decoder decoder_;
  std::unique_ptr<ws::client> client_;
  std::shared_ptr<http::operation> discovery_;
  boost::asio::steady_timer phase_timer_;
  boost::asio::steady_timer heartbeat_timer_;  // dead-peer detection (v4: server pings; v3: our ping's pong)
  boost::asio::steady_timer ping_timer_;       // v3 only: when we ping next
  boost::asio::steady_timer retry_timer_;
  boost::asio::steady_timer stable_timer_;
  std::chrono::steady_clock::time_point heartbeat_deadline_{};
  // When the last frame of any kind arrived: a ping (v4) or pong (v3) queued behind a backlog of events arrives late
  // because we are still reading what the server sent before it, so the heartbeat deadlines count any frame as life.
  std::chrono::steady_clock::time_point last_frame_at_{};
  backoff backoff_;
  std::mt19937_64 rng_;

  phase phase_ = phase::idle;
  std::uint64_t generation_ = 0;  // bumped whenever a socket is torn down; handlers of older ones bail out
  bool stopping_ = false;
  bool paused_ = false;
  bool draining_ = false;       // closing a socket that was live: frames still arriving are delivered (drain_packet)
  bool awaiting_pong_ = false;  // v3
  // A heartbeat ran out while reading was paused for Kafka backpressure: the ping (or pong) may be sitting unread in
  // our own socket, so the peer is judged again, one full bound after reading resumes, instead of being dropped
  // with the events behind it.
  bool heartbeat_deferred_ = false;
  std::size_t skip_binary_ = 0;  // attachment frames of a refused binary packet still to come
  bool frame_refused_ = false;   // the transport refused an oversized frame: the coming on_close is that
  std::chrono::milliseconds ping_interval_{0};
  std::chrono::milliseconds ping_timeout_{0};
  std::string engine_sid_;
  std::string endpoint_url_;  // the WebSocket URL of the current attempt, for logs
  std::string pending_reason_;
  retry_kind pending_kind_ = retry_kind::normal;
  std::vector<std::function<void()>> stop_callbacks_;

  // Bounded (a server can invent any number of event names): past the bound, names are looked up each time in
  // overflow_info_.
  struct name_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, event_info, name_hash, std::equal_to<>> event_info_;
  event_info overflow_info_;
};

}  // namespace rtm::upstream::socketio
