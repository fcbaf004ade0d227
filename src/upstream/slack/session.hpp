#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "pipeline/event.hpp"
#include "upstream/connection.hpp"
#include "upstream/http/client.hpp"
#include "upstream/ws/client.hpp"
#include "util/backoff.hpp"

namespace rtm::metrics {
class registry;
}

// Slack legacy RTM for one token (`kind: slack`): rtm.connect over HTTPS for a single-use wss:// URL, then the event
// stream, with the reconnect discipline Slack's own SDKs lack (research: ../shared/research/rtm-slack.md):
//   - at most one rtm.connect in flight and at most one socket, ever: a new rtm.connect starts only after the old
//     socket has closed for certain (a graceful close, forced after the transport's grace);
//   - every reconnect goes through rtm.connect again (the URL is single-use; reconnect_url is ignored);
//   - back-off with jitter between attempts, at least Retry-After on HTTP 429, a long back-off for errors that mean
//     the token cannot work (invalid_auth, token_revoked, ...), reset only after a stable live period;
//   - dead-connection detection: a JSON ping after a few seconds of silence; no frame at all within ping_timeout
//     means the peer is gone (half-open sockets included), so the socket is dropped and replaced.
// Threading: everything runs on the io_context thread.
namespace rtm::upstream::slack {

class session final : public upstream::connection, public ws::handler, public std::enable_shared_from_this<session> {
 public:
  session(boost::asio::io_context& io, config::connection_config cfg, pipeline::sink& events,
          metrics::registry& metrics);

  // upstream::connection
  void start() override;
  void stop(std::function<void()> done) override;
  void pause_reading() override;
  void resume_reading() override;
  [[nodiscard]] bool live() const noexcept override { return state_ == state::live; }
  [[nodiscard]] const config::connection_config& settings() const noexcept override { return cfg_; }

  // ws::handler
  void on_open() override;
  void on_message(std::string_view payload, bool binary) override;
  void on_close(int code, std::string_view reason, std::string_view error_text) override;
  void on_message_refused(std::size_t limit) override;
  void on_frames_discarded(std::size_t frames) override;

 private:
  enum class state { idle, calling_api, opening, awaiting_hello, live, closing, backing_off, stopped };

  void call_rtm_connect();
  void on_rtm_connect(std::string_view error_text, const http::response& reply);
  void open_socket(const std::string& url);
  void on_hello();
  void on_event_frame(std::string_view raw, std::string_view type_name);
  void on_liveness_tick();
  void schedule_liveness();
  // Ends the current attempt: closes the socket if there is one (reconnecting from on_close), else backs off now.
  // `drop_now`: a dead peer would not answer a close handshake, so the TCP connection goes at once.
  void teardown(std::string_view reason, std::chrono::milliseconds min_delay = std::chrono::milliseconds{0},
                bool drop_now = false);
  void dead_letter(std::string_view reason, std::string_view raw, std::string_view detail = {},
                   std::size_t original_size = 0);
  void schedule_reconnect(std::chrono::milliseconds min_delay);
  void set_live(bool live);
  void finish_stop();
  // The dead-connection bound: cfg_.ping_timeout, raised to the least that keeps pings within Slack's rate limit.
  [[nodiscard]] std::chrono::milliseconds ping_timeout() const noexcept;
  [[nodiscard]] std::chrono::milliseconds next_delay();

  boost::asio::io_context& io_;
  config::connection_config cfg_;
  pipeline::sink& events_;
  metrics::registry& metrics_;

  state state_ = state::idle;
  std::shared_ptr<http::operation> api_call_;
  std::shared_ptr<ws::client> socket_;
  boost::asio::steady_timer retry_timer_;
  boost::asio::steady_timer phase_timer_;  // rtm.connect → socket open → hello: one deadline per phase
  boost::asio::steady_timer liveness_timer_;
  backoff backoff_;
  std::mt19937_64 rng_;

  std::string team_id_;
  std::string enterprise_id_;
  std::string pending_reason_;                  // why the current socket is being closed (for metrics)
  std::chrono::milliseconds pending_delay_{0};  // the least delay before the next attempt (Retry-After, fatal)
  std::chrono::steady_clock::time_point last_inbound_{};
  std::chrono::steady_clock::time_point live_since_{};
  std::int64_t next_ping_id_ = 1;
  bool paused_ = false;
  // When reading last resumed after a Kafka backpressure pause: silence while we were not reading says nothing
  // about the peer, so liveness counts from whichever is later, this or the last inbound frame.
  std::chrono::steady_clock::time_point resumed_at_{};
  // stop()'s `done` callbacks (stop may be called more than once): all run once the socket is gone for certain.
  std::vector<std::function<void()>> stop_callbacks_;

  std::string name_buffer_;
};

}  // namespace rtm::upstream::slack
