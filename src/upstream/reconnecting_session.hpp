#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "metrics/registry.hpp"
#include "pipeline/event.hpp"
#include "upstream/connection.hpp"
#include "upstream/http/client.hpp"
#include "upstream/ws/client.hpp"
#include "util/backoff.hpp"
#include "util/string_hash.hpp"

// What every upstream dialect shares, written once: one token held over at most one socket at a time, reconnected
// with back-off forever until stop(). A dialect (upstream/socketio, upstream/slack) supplies only how to open an
// attempt (its HTTP calls and the socket's URL) and what to do with each frame; see src/upstream/README.md.
//
// The core owns, for every dialect alike:
//   - the attempt cycle: preparing (the dialect's HTTP calls) → connecting (WebSocket open) → handshaking (the
//     dialect's own steps) → live → closing → backing_off → ..., and stop() → stopped;
//   - at most one request and one socket: the next attempt starts only once the old socket is gone for certain (a
//     graceful close after draining what the server already sent, dropped after the close grace);
//   - a generation guard: every timer, request and transport callback of an earlier socket is ignored;
//   - the retry timer: back-off with jitter, a floor for refused credentials, a dialect's "not before" (Retry-After),
//     reset only after a stable live period;
//   - one deadline per handshake phase, and the dead-peer watchdog (silence while reading is paused for Kafka
//     backpressure says nothing about the peer);
//   - stop callbacks queued until the socket is gone; pause/resume; the size-limit dead letters; the metrics.
//
// Threading: everything runs on the io_context's single thread. Handlers hold `shared_from_this()` (the transport a
// weak_ptr) and check the generation they were armed for.
namespace rtm::upstream {

// Behaviour that is not in the config, with production defaults; the tests shorten them.
struct session_tuning {
  // Bound on each handshake phase (the WebSocket open, and each of the dialect's own steps).
  std::chrono::milliseconds phase_timeout{10000};
  // A close we start on a live socket first reads on this long, so the events the server already sent are delivered
  // rather than discarded by the close handshake.
  std::chrono::milliseconds drain_grace{1000};
  // A graceful close is given this long before the TCP connection is dropped.
  std::chrono::milliseconds close_grace{2000};
  // The back-off resets only after this long live, so a server that accepts and then drops the connection at once
  // is retried with growing delays instead of a storm at the smallest step.
  std::chrono::milliseconds stable_period{30000};
  // Each HTTP request of an attempt (DNS, connect, TLS, response) as a whole.
  std::chrono::milliseconds request_timeout{10000};
};

// How long to wait before the next attempt, beyond the back-off.
struct retry_policy {
  enum class kind {
    normal,      // back-off from reconnect.initial_delay, doubling up to max_delay
    credential,  // the token was refused: at least max(reconnect.max_delay, refused_credential_min_delay) + jitter
  };
  kind what = kind::normal;
  std::chrono::milliseconds at_least{0};  // e.g. the server's Retry-After
};

// One frame as the transport delivered it. `payload` is valid only during the call.
struct received_frame {
  std::string_view payload;
  bool binary = false;
  // The socket is closing after it was live: deliver events and dead letters, change no state.
  bool draining = false;
  std::chrono::system_clock::time_point received_at;
  std::chrono::steady_clock::time_point received_steady;
};

class reconnecting_session : public connection,
                             public ws::handler,
                             public std::enable_shared_from_this<reconnecting_session> {
 public:
  // `events` and `metrics` must outlive the session.
  reconnecting_session(boost::asio::io_context& io, config::connection_config cfg, pipeline::sink& events,
                       metrics::registry& metrics, session_tuning tuning, pipeline::source from);
  ~reconnecting_session() override;

  // connection
  void start() final;
  void stop(std::function<void()> done) final;
  void drop(std::function<void()> done) final;
  void pause_reading() final;
  void resume_reading() final;
  [[nodiscard]] bool live() const noexcept final { return phase_ == phase::live; }
  [[nodiscard]] const config::connection_config& settings() const noexcept final { return cfg_; }

  // ws::handler: the transport's events, on the io_context thread.
  void on_open() final;
  void on_message(std::string_view payload, bool binary) final;
  void on_close(int code, std::string_view reason, std::string_view error_text) final;
  void on_message_refused(std::size_t limit) final;
  void on_frames_discarded(std::size_t frames) final;
  // A pong is life, like any frame: it moves the watchdog (a quiet Socket Mode link has nothing else).
  void on_ws_pong() final;

 protected:
  using milliseconds = std::chrono::milliseconds;
  using reply_handler = std::function<void(std::string_view error_text, const http::response& reply)>;

  // --- What a dialect implements -----------------------------------------------------------------------------------
  // Begins an attempt: request() and/or open_socket(), or teardown() when the attempt cannot start.
  virtual void open_attempt() = 0;
  // The WebSocket is open: the dialect's handshake starts (arm_phase_timer for what it waits for).
  virtual void on_socket_open() = 0;
  // Every frame while handshaking or live, and while a live socket drains before its close (f.draining).
  virtual void on_frame(const received_frame& f) = 0;
  // A graceful close of an open socket is about to start: the dialect's last words (e.g. leaving a namespace).
  // `stopping`: for good, not a reconnect.
  virtual void on_closing(bool /*stopping*/) {}
  // The socket is gone (or the attempt ended without one): forget per-socket state.
  virtual void on_attempt_over() {}
  // start() was called: one-time warnings about the configuration.
  virtual void on_start() {}
  // The timer of schedule_keepalive() fired on the current socket.
  virtual void on_keepalive() {}
  // Whether events of this name are published at all (Acme: the configured globs). Asked once per name.
  [[nodiscard]] virtual bool wants_event(std::string_view /*event_name*/) { return true; }

  // --- What the core offers a dialect ------------------------------------------------------------------------------
  // One HTTP request for the current attempt (bounded by tuning.request_timeout, with the connection's TLS settings).
  // `then` runs only if the attempt is still current; teardown() and stop() cancel the request.
  void request(http::request req, reply_handler then);
  // Opens the attempt's socket. The core fills the frame limit, the graces, the TLS settings and the open deadline.
  void open_socket(ws::options opts);
  // Bounds the step the dialect now waits for; progress (the next arm, go_live, a teardown) cancels it. Expiry drops
  // the socket and retries, counted under `reason`.
  void arm_phase_timer(std::string_view waiting_for, std::string_view reason = "handshake_timeout");
  void go_live();
  // Ends the current attempt (idempotent while one is ending): a graceful close (draining a live socket first), or
  // a drop when `drop_now` (a dead or hostile peer). Once the socket is gone: the retry, or the end of a stop.
  void teardown(std::string_view reason, retry_policy retry = {}, bool drop_now = false);
  // The dead-peer watchdog: the socket is dropped (reason ping_timeout) when no frame at all arrives for `bound`.
  // Re-arming moves the deadline; any frame moves it too. `what` names what is overdue, for the log.
  void expect_frame_within(milliseconds bound, std::string_view what);
  void stop_expecting() noexcept;
  // How long nothing was read from the socket, not counting time spent paused.
  [[nodiscard]] milliseconds silence() const noexcept;
  void schedule_keepalive(milliseconds delay);
  void send(std::string text);
  void send(std::string_view text);
  // A WebSocket ping frame; the peer's pong counts as a frame for the watchdog and silence().
  void send_ping();
  // What the per-event path needs to know about an event name, looked up once per name instead of once per event:
  // wants_event()'s answer, and its received counter (made at the first event published under the name, so names
  // that are never published make no metric series). Bounded: past 256 names the answer is computed each time.
  struct event_name_info {
    bool wanted = true;
    metrics::counter received;
  };
  [[nodiscard]] event_name_info& name_info(std::string_view event_name);
  // Publishes an event (counted under its name); the sink copies what it keeps. `info` is name_info(ev.name).
  void emit(const pipeline::event& ev, event_name_info& info);
  void emit(const pipeline::event& ev) { emit(ev, name_info(ev.name)); }
  void dead_letter(std::string_view reason, std::string_view raw, std::chrono::system_clock::time_point received_at,
                   std::string_view detail = {}, std::size_t original_size = 0);
  // A frame above limits.max_event_size is dead-lettered (event_too_large, with its start) and the connection
  // carries on; true when it was.
  [[nodiscard]] bool reject_oversized(const received_frame& f);

  [[nodiscard]] const config::connection_config& cfg() const noexcept { return cfg_; }
  [[nodiscard]] const std::string& name() const noexcept { return cfg_.name; }
  // The sink's acknowledgement-after-durability registry (nullptr when the sink has none).
  [[nodiscard]] std::shared_ptr<pipeline::durability_registry> durability() noexcept { return sink_.durability(); }
  [[nodiscard]] metrics::registry& metrics() noexcept { return metrics_; }
  // Counts socket attempts: a value taken while one socket is current differs from every later socket's.
  [[nodiscard]] std::uint64_t socket_generation() const noexcept { return generation_; }
  [[nodiscard]] bool reading_paused() const noexcept { return paused_; }

 private:
  enum class phase { idle, preparing, connecting, handshaking, live, closing, backing_off, stopped };

  template <typename Step>
  void guarded(Step&& step) noexcept;
  void begin_attempt();
  void on_reply(std::uint64_t generation, const reply_handler& then, std::string_view error_text,
                const http::response& reply);
  void arm_watchdog(std::chrono::steady_clock::time_point deadline);
  void on_watchdog();
  void socket_gone();
  void schedule_retry();
  [[nodiscard]] milliseconds retry_delay();
  void finish_stop();
  void cancel_socket_timers() noexcept;
  void mark_down();
  [[nodiscard]] double random01() noexcept;

  boost::asio::io_context& io_;
  const config::connection_config cfg_;
  pipeline::sink& sink_;
  metrics::registry& metrics_;
  const session_tuning tuning_;
  const pipeline::source from_;

  std::shared_ptr<http::operation> request_;
  std::unique_ptr<ws::client> client_;
  boost::asio::steady_timer phase_timer_;
  boost::asio::steady_timer watchdog_timer_;
  boost::asio::steady_timer keepalive_timer_;
  boost::asio::steady_timer retry_timer_;
  boost::asio::steady_timer stable_timer_;
  backoff backoff_;
  std::mt19937_64 rng_;

  phase phase_ = phase::idle;
  std::uint64_t generation_ = 0;    // bumped whenever an attempt ends; handlers of older ones bail out
  std::uint64_t phase_serial_ = 0;  // bumped at every arm_phase_timer and go_live: a queued expiry of an older step
  bool stopping_ = false;
  bool paused_ = false;
  bool draining_ = false;       // closing a socket that was live: its frames are still delivered
  bool frame_refused_ = false;  // the transport refused an oversized frame: the coming on_close is that

  // The watchdog. Frames queued behind a backlog arrive late because we are still reading what came before them, so
  // any frame counts as life; and time spent paused is not silence (a ping may be sitting unread in our socket).
  bool expecting_ = false;
  bool watchdog_deferred_ = false;  // ran out while paused: judged again a full bound after reading resumes
  milliseconds watchdog_bound_{0};
  std::string watchdog_what_;
  std::chrono::steady_clock::time_point watchdog_deadline_{};
  std::chrono::steady_clock::time_point last_frame_at_{};
  std::chrono::steady_clock::time_point resumed_at_{};

  std::string pending_reason_;  // why the current attempt is ending (the reconnects_total reason)
  retry_policy pending_retry_;
  std::vector<std::function<void()>> stop_callbacks_;

  // name_info()'s cache. Bounded (a server can invent any number of names): past the bound, overflow_info_ is
  // filled afresh for each event.
  string_map<event_name_info> names_;
  event_name_info overflow_info_;
};

}  // namespace rtm::upstream
