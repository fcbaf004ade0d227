#include "upstream/slack/session.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>

#include "metrics/registry.hpp"
#include "upstream/slack/codec.hpp"
#include "util/log.hpp"

namespace rtm::upstream::slack {
namespace {

using namespace std::chrono_literals;

constexpr auto api_timeout = 10s;          // the whole rtm.connect exchange
constexpr auto open_timeout = 10s;         // DNS + TCP + TLS + upgrade (the URL is valid for 30 s)
constexpr auto hello_timeout = 10s;        // Slack sends hello first; without it the socket is not live
constexpr auto max_idle_before_ping = 5s;  // the docs: "send a ping every few seconds" when there is no activity
constexpr auto stable_period = 30s;        // live this long before the back-off resets (no reconnect storms)
constexpr auto fatal_min_delay = std::chrono::duration_cast<std::chrono::milliseconds>(refused_credential_min_delay);
// Slack's Retry-After is obeyed, up to this: a server (or a proxy) asking for hours would silently stop the stream.
constexpr auto retry_after_cap = 15min;
// Slack allows one message a second on an RTM socket, pings included. The ping goes out on a tick of half the
// dead-connection bound, so the bound is raised to two ticks of a second at least.
constexpr auto min_ping_timeout = 2s;
constexpr auto retry_after_default = 30s;  // HTTP 429 without a usable Retry-After (the SDKs' default)
// A close we start first reads on this long, so frames Slack already sent are delivered, not discarded by the close
// handshake; Slack closing the socket itself (after goodbye) ends it sooner.
constexpr auto drain_grace = 1s;

std::string with_method(const std::string& base, std::string_view method) {
  std::string url = base;
  if (url.empty() || url.back() != '/') {
    url += '/';
  }
  url += method;
  return url;
}

}  // namespace

session::session(boost::asio::io_context& io, config::connection_config cfg, pipeline::sink& events,
                 metrics::registry& metrics)
    : io_(io),
      cfg_(std::move(cfg)),
      events_(events),
      metrics_(metrics),
      retry_timer_(io),
      phase_timer_(io),
      liveness_timer_(io),
      backoff_(cfg_.reconnect.initial_delay, cfg_.reconnect.max_delay, cfg_.reconnect.jitter),
      rng_(std::random_device{}()) {
  if (cfg_.url.empty()) {
    cfg_.url = config::default_slack_url;
  }
}

void session::start() {
  if (cfg_.ping_timeout < min_ping_timeout) {
    log::warn(cfg_.name, "ping_timeout ", cfg_.ping_timeout.count(), " ms is below ",
              std::chrono::milliseconds(min_ping_timeout).count(),
              " ms: raised to that, so pings stay within Slack's one message per second");
  }
  metrics_.connection_up(cfg_.name, false);
  call_rtm_connect();
}

void session::call_rtm_connect() {
  if (state_ == state::stopped || api_call_ || socket_) {
    return;  // at most one rtm.connect and one socket per token
  }
  state_ = state::calling_api;
  if (!cfg_.tls.verify) {
    log::warn(cfg_.name,
              "TLS verification is OFF (tls.verify: false): the token and every event can be read and "
              "altered by anyone on the path");
  }
  http::request req;
  req.method = "POST";
  req.url = with_method(cfg_.url, "rtm.connect");
  req.headers = {{"Authorization", "Bearer " + cfg_.key.value}};
  req.content_type = "application/x-www-form-urlencoded";
  req.body = "batch_presence_aware=false&presence_sub=false";
  req.tls = tls::options{cfg_.tls.verify, cfg_.tls.ca_file.value_or("")};
  req.timeout = api_timeout;
  log::debug(cfg_.name, "calling rtm.connect at ", cfg_.url);
  api_call_ = http::async_request(io_, std::move(req),
                                  [weak = weak_from_this()](std::string_view error_text, const http::response& reply) {
                                    if (auto self = weak.lock()) {
                                      self->on_rtm_connect(error_text, reply);
                                    }
                                  });
}

void session::on_rtm_connect(std::string_view error_text, const http::response& reply) {
  api_call_.reset();
  if (state_ == state::stopped) {
    return;
  }
  if (!error_text.empty()) {
    log::warn(cfg_.name, "rtm.connect failed: ", error_text);
    metrics_.reconnect(cfg_.name, "rtm_connect_error");
    return schedule_reconnect(0ms);
  }
  if (reply.status == 429) {
    const auto seconds = parse_retry_after(reply.retry_after);
    std::chrono::milliseconds wait = seconds ? std::chrono::seconds(*seconds) : retry_after_default;
    if (wait > retry_after_cap) {
      log::warn(cfg_.name, "rtm.connect asked to wait ", *seconds, " s (Retry-After); waiting the cap of ",
                std::chrono::duration_cast<std::chrono::seconds>(retry_after_cap).count(), " s instead");
      wait = retry_after_cap;
    }
    log::warn(cfg_.name, "rtm.connect is rate limited (HTTP 429); retrying in no less than ", wait.count(), " ms");
    metrics_.reconnect(cfg_.name, "rate_limited");
    return schedule_reconnect(wait);
  }
  if (reply.status >= 500 || reply.status < 200 || reply.status >= 300) {
    log::warn(cfg_.name, "rtm.connect answered HTTP ", reply.status, "; retrying with back-off");
    metrics_.reconnect(cfg_.name, "rtm_connect_http_error");
    return schedule_reconnect(0ms);
  }
  const connect_response answer = parse_connect_response(reply.body);
  if (!answer.ok) {
    if (classify_error(answer.error) == error_class::fatal) {
      const auto wait = std::max<std::chrono::milliseconds>(cfg_.reconnect.max_delay, fatal_min_delay);
      log::error(cfg_.name, "rtm.connect refused the token: ", answer.error,
                 " (the token cannot work as it is: check it, its type and its scopes); retrying in ", wait.count(),
                 " ms");
      metrics_.reconnect(cfg_.name, "token_refused");
      return schedule_reconnect(wait);
    }
    log::warn(cfg_.name, "rtm.connect failed: ", answer.error, "; retrying with back-off");
    metrics_.reconnect(cfg_.name, "rtm_connect_error");
    return schedule_reconnect(0ms);
  }
  team_id_ = cfg_.team_id.value_or(answer.team_id);
  enterprise_id_ = answer.enterprise_id;
  if (team_id_.empty()) {
    log::error(cfg_.name, "rtm.connect answered without team.id and no team_id is configured: set team_id");
    metrics_.reconnect(cfg_.name, "no_team_id");
    return schedule_reconnect(std::max<std::chrono::milliseconds>(cfg_.reconnect.max_delay, fatal_min_delay));
  }
  open_socket(answer.url);
}

void session::open_socket(const std::string& url) {
  state_ = state::opening;
  ws::options opts;
  opts.url = url;
  opts.url_path_is_secret = true;  // a single-use ticket: whoever reads it first owns the session
  opts.tls = tls::options{cfg_.tls.verify, cfg_.tls.ca_file.value_or("")};
  opts.open_timeout = open_timeout;
  opts.drain_grace = drain_grace;
  opts.max_message_size = cfg_.limits.max_frame_size;
  socket_ = std::make_shared<ws::client>(io_, std::move(opts), weak_from_this());
  if (paused_) {
    socket_->pause_reading();
  }
  socket_->open();
}

void session::on_open() {
  if (state_ == state::stopped || state_ == state::closing) {
    return;
  }
  state_ = state::awaiting_hello;
  last_inbound_ = std::chrono::steady_clock::now();
  phase_timer_.expires_after(hello_timeout);
  phase_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->state_ != state::awaiting_hello) {
      return;
    }
    log::warn(self->cfg_.name, "no hello within ", std::chrono::milliseconds(hello_timeout).count(),
              " ms of connecting; reconnecting");
    self->teardown("hello_timeout");
  });
}

void session::on_hello() {
  phase_timer_.cancel();
  state_ = state::live;
  live_since_ = std::chrono::steady_clock::now();
  set_live(true);
  log::info(cfg_.name, "live (team ", team_id_, enterprise_id_.empty() ? "" : ", enterprise ", enterprise_id_, ")");
  schedule_liveness();
}

void session::on_message(std::string_view payload, bool binary) {
  if (!socket_) {
    return;
  }
  // Closing (a reconnect, or a stop): the socket drains before its close handshake, and what it delivers is still
  // published; control frames no longer change anything.
  const bool closing = state_ == state::closing || state_ == state::stopped;
  last_inbound_ = std::chrono::steady_clock::now();
  if (payload.size() > cfg_.limits.max_event_size) {
    // Checked before the copy below: the receive buffer never grows beyond the event limit. Slack frames are events
    // (or small control frames), so the connection carries on.
    const std::string detail = "a frame of " + std::to_string(payload.size()) +
                               " bytes exceeds limits.max_event_size (" + std::to_string(cfg_.limits.max_event_size) +
                               " bytes); only its first " + std::to_string(oversized_event_prefix) + " bytes are kept";
    log::warn(cfg_.name, "dead letter (event_too_large): ", detail);
    return dead_letter("event_too_large", payload.substr(0, oversized_event_prefix), detail, payload.size());
  }
  if (binary) {
    return dead_letter("binary_frame", payload);
  }
  // Decoded in place: the validator reads nothing past the frame, so no padded copy per frame.
  const frame f = decode_frame(payload.data(), payload.size());
  if (closing && f.kind != frame_kind::event && f.kind != frame_kind::invalid) {
    return;
  }
  switch (f.kind) {
    case frame_kind::hello:
      return on_hello();
    case frame_kind::pong:
    case frame_kind::reply:
    case frame_kind::reconnect_url:
      return;  // liveness is any inbound frame; reconnect_url is experimental and ignored (always rtm.connect)
    case frame_kind::goodbye:
      log::info(cfg_.name, "server said goodbye; reconnecting through rtm.connect");
      return teardown("goodbye");
    case frame_kind::team_migration_started:
      log::info(cfg_.name, "team migration started; reconnecting through rtm.connect");
      return teardown("team_migration");
    case frame_kind::error:
      if (f.error_code == 1) {
        log::warn(cfg_.name, "the socket URL expired before use; calling rtm.connect again");
        return teardown("url_expired");
      }
      log::warn(cfg_.name, "server sent error code ", f.error_code, "; reconnecting");
      return teardown("server_error");
    case frame_kind::event:
      event_name(f, name_buffer_);
      return on_event_frame(payload, name_buffer_);
    case frame_kind::invalid:
      return dead_letter(f.reason, payload);
  }
}

void session::dead_letter(std::string_view reason, std::string_view raw, std::string_view detail,
                          std::size_t original_size) {
  pipeline::dead_letter dl;
  dl.connection = cfg_.name;
  dl.from = source::slack;
  dl.reason = reason;
  dl.raw = raw;
  dl.received_at = std::chrono::system_clock::now();
  dl.detail = detail;
  dl.original_size = original_size;
  events_.on_dead_letter(dl);
}

// Right before on_close, from the transport. Also while closing: a teardown may have begun between the refusal and the
// transport dropping the connection; the refusal is the real reason then.
void session::on_message_refused(std::size_t limit) {
  if (!socket_ || (state_ != state::awaiting_hello && state_ != state::live && state_ != state::closing &&
                   state_ != state::stopped)) {
    return;  // a stop's drain still reads: a refusal then is recorded like any other
  }
  const std::string detail = "a WebSocket message larger than limits.max_frame_size (" + std::to_string(limit) +
                             " bytes) was refused before its payload was read; the connection was closed (1009) " +
                             "and reconnected through rtm.connect";
  dead_letter("frame_too_large", {}, detail);
  log::warn(cfg_.name, "reconnecting: an incoming frame exceeded limits.max_frame_size (", limit,
            " bytes) and was refused unread, which costs the connection; it was dead-lettered as frame_too_large. ",
            "Raise limits.max_frame_size if Slack legitimately sends such frames");
  pending_reason_ = "frame_too_large";
}

void session::on_event_frame(std::string_view raw, std::string_view type_name) {
  pipeline::event ev;
  ev.connection = cfg_.name;
  ev.from = source::slack;
  ev.name = type_name;
  ev.name_space = "slack";
  ev.team_id = team_id_;
  ev.enterprise_id = enterprise_id_;
  ev.payload = raw;  // the whole frame, byte for byte
  ev.received_at = std::chrono::system_clock::now();
  ev.received_steady = last_inbound_;
  metrics_.event_received(cfg_.name, type_name);
  events_.on_event(ev);
}

void session::schedule_liveness() {
  const auto tick = std::min<std::chrono::milliseconds>(max_idle_before_ping, ping_timeout() / 2);
  liveness_timer_.expires_after(tick);
  liveness_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    if (auto self = weak.lock(); self && !ec) {
      self->on_liveness_tick();
    }
  });
}

void session::on_liveness_tick() {
  if (state_ != state::live) {
    return;
  }
  if (paused_) {
    // Not reading on purpose (Kafka backpressure): a pong may be sitting unread in our socket.
    schedule_liveness();
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  const auto silent = std::chrono::duration_cast<std::chrono::milliseconds>(now - std::max(last_inbound_, resumed_at_));
  if (silent >= ping_timeout()) {
    log::warn(cfg_.name, "no frame (not even a pong) for ", silent.count(), " ms (ping_timeout ",
              ping_timeout().count(), " ms): the connection is dead; reconnecting");
    return teardown("ping_timeout", 0ms, true);
  }
  if (now - live_since_ >= stable_period) {
    backoff_.reset();
  }
  const auto tick = std::min<std::chrono::milliseconds>(max_idle_before_ping, ping_timeout() / 2);
  // Half a tick of silence is enough to ask: with "a full tick" a frame that came just after the previous tick left
  // this tick a hair short of it, no ping went out, and the next tick found ping_timeout (two ticks) of silence on a
  // healthy connection (seen under load). Any reply (pong or otherwise) counts: liveness is judged on inbound
  // frames, not on matching ids.
  if (silent >= tick / 2 && socket_) {
    socket_->send_text(ping_frame(next_ping_id_++));
  }
  schedule_liveness();
}

void session::teardown(std::string_view reason, std::chrono::milliseconds min_delay, bool drop_now) {
  phase_timer_.cancel();
  liveness_timer_.cancel();
  set_live(false);
  pending_reason_ = reason;
  pending_delay_ = std::max(pending_delay_, min_delay);
  if (socket_) {
    state_ = state::closing;
    if (drop_now) {
      socket_->abort();
    } else {
      socket_->close(ws::close_code::normal, "rtm-bridge reconnecting");
    }
    return;  // on_close reconnects once the socket is gone for certain
  }
  metrics_.reconnect(cfg_.name, pending_reason_);
  schedule_reconnect(pending_delay_);
}

void session::on_close(int code, std::string_view reason, std::string_view error_text) {
  socket_.reset();
  phase_timer_.cancel();
  liveness_timer_.cancel();
  set_live(false);
  if (state_ == state::stopped) {
    finish_stop();
    return;
  }
  if (pending_reason_.empty()) {
    // The server (or the network) ended it.
    pending_reason_ = error_text.empty() ? "closed" : "error";
    log::warn(cfg_.name, "connection closed (code ", code, reason.empty() ? "" : ", ", reason,
              error_text.empty() ? "" : ": ", error_text, "); reconnecting through rtm.connect");
  }
  metrics_.reconnect(cfg_.name, pending_reason_);
  schedule_reconnect(pending_delay_);
}

std::chrono::milliseconds session::next_delay() {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  return backoff_.next(unit(rng_));
}

void session::schedule_reconnect(std::chrono::milliseconds min_delay) {
  if (state_ == state::stopped) {
    return;
  }
  state_ = state::backing_off;
  const auto delay = std::max(next_delay(), min_delay);
  pending_reason_.clear();
  pending_delay_ = 0ms;
  log::info(cfg_.name, "next rtm.connect in ", delay.count(), " ms");
  retry_timer_.expires_after(delay);
  retry_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    if (auto self = weak.lock(); self && !ec) {
      self->call_rtm_connect();
    }
  });
}

std::chrono::milliseconds session::ping_timeout() const noexcept {
  return std::max<std::chrono::milliseconds>(cfg_.ping_timeout, min_ping_timeout);
}

void session::set_live(bool live) {
  metrics_.connection_up(cfg_.name, live);
}

void session::stop(std::function<void()> done) {
  if (done) {
    stop_callbacks_.push_back(std::move(done));
  }
  if (state_ == state::stopped) {
    if (!socket_) {
      finish_stop();
    }
    return;  // already on its way: on_close runs `done` with the others once the socket is gone
  }
  state_ = state::stopped;
  retry_timer_.cancel();
  phase_timer_.cancel();
  liveness_timer_.cancel();
  metrics_.connection_up(cfg_.name, false);
  if (api_call_) {
    api_call_->cancel();
    api_call_.reset();
  }
  if (socket_) {
    socket_->close(ws::close_code::going_away, "rtm-bridge stopping");
    return;  // on_close runs the callbacks once the socket is gone
  }
  finish_stop();
}

void session::finish_stop() {
  // `done` runs on the io_context, never inside stop() or a transport callback.
  for (auto& done : stop_callbacks_) {
    boost::asio::post(io_, std::move(done));
  }
  stop_callbacks_.clear();
}

void session::on_frames_discarded(std::size_t frames) {
  log::warn(cfg_.name, frames, " frame(s) arrived after our close frame and were discarded by the close handshake ",
            "(counted in rtm_bridge_events_failed_total{reason=\"discarded_on_close\"})");
  for (std::size_t i = 0; i < frames; ++i) {
    metrics_.event_failed(cfg_.name, "discarded_on_close");
  }
}

void session::pause_reading() {
  paused_ = true;
  if (socket_) {
    socket_->pause_reading();
  }
}

void session::resume_reading() {
  paused_ = false;
  resumed_at_ = std::chrono::steady_clock::now();
  if (socket_) {
    socket_->resume_reading();
  }
}

}  // namespace rtm::upstream::slack
