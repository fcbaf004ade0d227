#include "upstream/slack/session.hpp"

#include <algorithm>
#include <atomic>
#include <utility>

#include "commands/command.hpp"
#include "upstream/slack/codec.hpp"
#include "upstream/slack/web_api.hpp"
#include "util/log.hpp"

namespace rtm::upstream::slack {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

constexpr auto max_idle_before_ping = 5s;  // the docs: "send a ping every few seconds" when there is no activity
// Slack allows one message a second on an RTM socket, pings included. The ping goes out on a tick of half the
// dead-connection bound, so the bound is raised to two ticks of a second at least.
constexpr auto min_ping_timeout = 2s;

// Process-wide, so that a socket's number is never another's: across reconnects and across sessions of one name.
std::uint64_t next_socket_serial() noexcept {
  static std::atomic<std::uint64_t> serial{0};
  return ++serial;
}

}  // namespace

session::session(boost::asio::io_context& io, config::connection_config cfg, pipeline::sink& events,
                 metrics::registry& metrics, session_tuning tuning)
    : reconnecting_session(io, with_default_web_api(std::move(cfg)), events, metrics, tuning, pipeline::source::slack) {
}

void session::on_start() {
  if (cfg().ping_timeout < min_ping_timeout) {
    log::warn(name(), "ping_timeout ", cfg().ping_timeout.count(), " ms is below ",
              milliseconds(min_ping_timeout).count(),
              " ms: raised to that, so pings stay within Slack's one message per second");
  }
}

void session::open_attempt() {
  http::request req;
  req.method = "POST";
  req.url = web_api_url(cfg().url, "rtm.connect");
  req.headers = {{"Authorization", "Bearer " + cfg().key.value}};
  req.content_type = "application/x-www-form-urlencoded";
  // With presence_sub, Slack sends presence_change only for the subscribed users (sent after every hello), batched.
  req.body = cfg().presence_sub.empty() ? "batch_presence_aware=false&presence_sub=false"
                                        : "batch_presence_aware=1&presence_sub=true";
  log::debug(name(), "calling rtm.connect at ", cfg().url);
  request(std::move(req),
          [this](std::string_view error_text, const http::response& reply) { on_rtm_connect(error_text, reply); });
}

void session::on_rtm_connect(std::string_view error_text, const http::response& reply) {
  if (!error_text.empty()) {
    log::warn(name(), "rtm.connect failed: ", error_text);
    return teardown("rtm_connect_error");
  }
  if (reply.status == 429) {
    return on_rate_limited(reply);
  }
  if (reply.status < 200 || reply.status >= 300) {
    log::warn(name(), "rtm.connect answered HTTP ", reply.status, "; retrying with back-off");
    return teardown("rtm_connect_http_error");
  }
  const connect_response answer = parse_connect_response(reply.body);
  if (!answer.ok) {
    if (classify_error(answer.error) == error_class::fatal) {
      log::error(name(), "rtm.connect refused the token: ", answer.error,
                 " (the token cannot work as it is: check it, its type and its scopes); retrying no sooner than ",
                 "reconnect.max_delay and 60 s");
      return teardown("token_refused", {retry_policy::kind::credential});
    }
    log::warn(name(), "rtm.connect failed: ", answer.error, "; retrying with back-off");
    return teardown("rtm_connect_error");
  }
  team_id_ = cfg().team_id.value_or(answer.team_id);
  enterprise_id_ = answer.enterprise_id;
  if (team_id_.empty()) {
    log::error(name(), "rtm.connect answered without team.id and no team_id is configured: set team_id");
    return teardown("no_team_id", {retry_policy::kind::credential});
  }
  ws::options opts;
  opts.url = answer.url;
  opts.url_path_is_secret = true;  // a single-use ticket: whoever reads it first owns the session
  open_socket(std::move(opts));
}

void session::on_rate_limited(const http::response& reply) {
  bool capped = false;
  const milliseconds wait = rate_limit_wait(reply.retry_after, capped);
  if (capped) {
    log::warn(name(), "rtm.connect asked to wait ", reply.retry_after, " s (Retry-After); waiting the cap of ",
              std::chrono::duration_cast<std::chrono::seconds>(retry_after_cap).count(), " s instead");
  }
  log::warn(name(), "rtm.connect is rate limited (HTTP 429); retrying in no less than ", wait.count(), " ms");
  teardown("rate_limited", {retry_policy::kind::normal, wait});
}

void session::on_socket_open() {
  awaiting_hello_ = true;
  arm_phase_timer("hello", "hello_timeout");  // Slack sends hello first; without it the socket is not live
}

void session::on_hello() {
  if (!awaiting_hello_) {
    return;
  }
  awaiting_hello_ = false;
  go_live();
  log::info(name(), "live (team ", team_id_, enterprise_id_.empty() ? "" : ", enterprise ", enterprise_id_, ")");
  expect_frame_within(ping_timeout(), "pong");
  schedule_keepalive(ping_tick());
  socket_serial_ = next_socket_serial();
  next_send_at_ = {};
  ping_due_ = false;
  if (!cfg().presence_sub.empty()) {
    // After every hello: a new socket has no subscriptions. Slack's rate limit counts it as one message.
    send(presence_sub_frame(cfg().presence_sub));
    next_send_at_ = std::chrono::steady_clock::now() + send_interval;
  }
  if (outbound_ != nullptr) {
    outbound_->on_outbound_ready(name());
  }
}

send_result session::send_command(std::string_view object) {
  // Paused for backpressure, Slack's reply_to would sit unread in our socket until the 10 s bound ran out.
  if (!live() || socket_serial_ == 0 || reading_paused()) {
    return {};
  }
  const auto now = std::chrono::steady_clock::now();
  if (ping_due_) {
    return {.retry_at = std::max(now, next_send_at_) + send_interval};  // the ping goes first
  }
  if (now < next_send_at_) {
    return {.retry_at = next_send_at_};
  }
  const std::uint64_t id = next_id_++;
  send(commands::frame_with_id(object, id));
  next_send_at_ = now + send_interval;
  return {.sent = true, .socket = socket_serial_, .id = id};
}

void session::on_attempt_over() {
  awaiting_hello_ = false;
  if (socket_serial_ == 0) {
    return;
  }
  const std::uint64_t gone = std::exchange(socket_serial_, 0);
  if (outbound_ != nullptr) {
    outbound_->on_outbound_closed(name(), gone);
  }
}

void session::on_frame(const received_frame& f) {
  if (reject_oversized(f)) {
    return;  // Slack frames are events (or small control frames), so the connection carries on
  }
  if (f.binary) {
    return dead_letter("binary_frame", f.payload, f.received_at);
  }
  // Decoded in place: the validator reads nothing past the frame, so no padded copy per frame.
  const slack::frame decoded = decode_frame(f.payload.data(), f.payload.size());
  if (f.draining && decoded.kind != frame_kind::event && decoded.kind != frame_kind::invalid &&
      decoded.kind != frame_kind::reply) {
    return;  // the socket is going: control frames change nothing now (a command's answer still counts)
  }
  switch (decoded.kind) {
    case frame_kind::hello:
      return on_hello();
    case frame_kind::reply:
      // Answers to our pings come as pongs; a reply is the answer to a command (or to nothing the listener knows).
      if (outbound_ != nullptr && socket_serial_ != 0 && decoded.reply_to && *decoded.reply_to > 0) {
        outbound_->on_outbound_reply(name(), socket_serial_, static_cast<std::uint64_t>(*decoded.reply_to), f.payload);
      }
      return;
    case frame_kind::pong:
    case frame_kind::reconnect_url:
      return;  // liveness is any inbound frame; reconnect_url is experimental and ignored (always rtm.connect)
    case frame_kind::goodbye:
      log::info(name(), "server said goodbye; reconnecting through rtm.connect");
      return teardown("goodbye");
    case frame_kind::team_migration_started:
      log::info(name(), "team migration started; reconnecting through rtm.connect");
      return teardown("team_migration");
    case frame_kind::error:
      if (decoded.error_code == 1) {
        log::warn(name(), "the socket URL expired before use; calling rtm.connect again");
        return teardown("url_expired");
      }
      log::warn(name(), "server sent error code ", decoded.error_code, "; reconnecting");
      return teardown("server_error");
    case frame_kind::event:
      event_name(decoded, name_buffer_);
      return publish(f, name_buffer_);
    case frame_kind::invalid:
      return dead_letter(decoded.reason, f.payload, f.received_at);
  }
}

void session::publish(const received_frame& f, std::string_view type_name) {
  pipeline::event ev;
  ev.connection = name();
  ev.from = pipeline::source::slack;
  ev.name = type_name;
  ev.name_space = "slack";
  ev.team_id = team_id_;
  ev.enterprise_id = enterprise_id_;
  ev.payload = f.payload;  // the whole frame, byte for byte
  ev.received_at = f.received_at;
  ev.received_steady = f.received_steady;
  emit(ev);
}

// Half a tick of silence is enough to ask: with "a full tick" a frame that came just after the previous tick left
// this tick a hair short of it, no ping went out, and the next tick found ping_timeout (two ticks) of silence on a
// healthy connection (seen under load). Any reply (pong or otherwise) counts: the core's watchdog judges liveness on
// inbound frames, not on matching ids. Not while paused: a pong would sit unread in our own socket.
// The ping shares the one-frame-a-second budget with commands: when a command went out less than send_interval ago,
// the ping is due at the end of that interval and commands wait behind it.
void session::on_keepalive() {
  ping_due_ = false;
  if (!reading_paused() && silence() >= ping_tick() / 2) {
    const auto now = std::chrono::steady_clock::now();
    if (now < next_send_at_) {
      ping_due_ = true;
      schedule_keepalive(std::chrono::ceil<milliseconds>(next_send_at_ - now));
      return;
    }
    send(ping_frame(static_cast<std::int64_t>(next_id_++)));
    next_send_at_ = now + send_interval;
  }
  schedule_keepalive(ping_tick());
}

milliseconds session::ping_timeout() const noexcept {
  return std::max<milliseconds>(cfg().ping_timeout, min_ping_timeout);
}

milliseconds session::ping_tick() const noexcept {
  return std::min<milliseconds>(max_idle_before_ping, ping_timeout() / 2);
}

}  // namespace rtm::upstream::slack
