#include "upstream/slack/socket_session.hpp"

#include <algorithm>
#include <utility>

#include "metrics/registry.hpp"
#include "upstream/slack/codec.hpp"
#include "upstream/slack/web_api.hpp"
#include "util/log.hpp"

namespace rtm::upstream::slack {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

constexpr auto max_idle_before_ping = 5s;

}  // namespace

socket_session::socket_session(boost::asio::io_context& io, config::connection_config cfg, pipeline::sink& events,
                               metrics::registry& metrics, session_tuning tuning)
    : reconnecting_session(io, with_default_web_api(std::move(cfg)), events, metrics, tuning, pipeline::source::slack) {
  ack_buffer_.reserve(128);
}

socket_session::~socket_session() {
  // Not through the sink: it may be gone already (a session can be destroyed with the io_context's last handlers).
  if (const auto registry = registry_.lock()) {
    registry->remove(listener_id_);
  }
}

void socket_session::on_start() {
  if (const auto registry = durability()) {
    listener_id_ = registry->add(*this);
    registry_ = registry;
  } else {
    log::warn(name(), "the event sink cannot report durability: events_api envelopes are acknowledged at receipt");
  }
}

void socket_session::open_attempt() {
  http::request req;
  req.method = "POST";
  req.url = web_api_url(cfg().url, "apps.connections.open");
  // The app-level token goes in the header only: Slack refuses it as a POST parameter, and it must never be in a URL.
  req.headers = {{"Authorization", "Bearer " + cfg().key.value}};
  req.content_type = "application/x-www-form-urlencoded";
  log::debug(name(), "calling apps.connections.open at ", cfg().url);
  request(std::move(req),
          [this](std::string_view error_text, const http::response& reply) { on_open_reply(error_text, reply); });
}

void socket_session::on_open_reply(std::string_view error_text, const http::response& reply) {
  if (!error_text.empty()) {
    log::warn(name(), "apps.connections.open failed: ", error_text);
    return teardown("connections_open_error");
  }
  if (reply.status == 429) {
    bool capped = false;
    const milliseconds wait = rate_limit_wait(reply.retry_after, capped);
    if (capped) {
      log::warn(name(), "apps.connections.open asked to wait ", reply.retry_after, " s (Retry-After); waiting the cap",
                " of ", std::chrono::duration_cast<std::chrono::seconds>(retry_after_cap).count(), " s instead");
    }
    log::warn(name(), "apps.connections.open is rate limited (HTTP 429); retrying in no less than ", wait.count(),
              " ms");
    return teardown("rate_limited", {retry_policy::kind::normal, wait});
  }
  if (reply.status < 200 || reply.status >= 300) {
    log::warn(name(), "apps.connections.open answered HTTP ", reply.status, "; retrying with back-off");
    return teardown("connections_open_http_error");
  }
  const connect_response answer = parse_connect_response(reply.body, "apps.connections.open");
  if (!answer.ok) {
    if (is_socket_token_error(answer.error)) {
      log::error(name(), "apps.connections.open refused the token: ", answer.error,
                 " (Socket Mode needs an app-level token, xapp-..., with connections:write: check it, its type and "
                 "its scopes); retrying no sooner than reconnect.max_delay and 60 s");
      return teardown("token_refused", {retry_policy::kind::credential});
    }
    log::warn(name(), "apps.connections.open failed: ", answer.error, "; retrying with back-off");
    return teardown("connections_open_error");
  }
  ws::options opts;
  opts.url = answer.url;
  opts.url_path_is_secret = true;  // a single-use ticket: whoever reads it first owns the session
  open_socket(std::move(opts));
}

void socket_session::on_socket_open() {
  awaiting_hello_ = true;
  arm_phase_timer("hello", "hello_timeout");
}

void socket_session::on_hello(const socket_frame& frame) {
  if (!awaiting_hello_) {
    return;
  }
  awaiting_hello_ = false;
  go_live();
  if (frame.num_connections > 1) {
    // Our own old socket is always closed before a new one opens, so another process holds this app token.
    log::warn(name(), "live, but Slack counts ", frame.num_connections,
              " Socket Mode connections for this app: another process is using the same app-level token, and each "
              "envelope goes to only one of them");
  } else {
    log::info(name(), "live (Socket Mode)");
  }
  expect_frame_within(cfg().ping_timeout, "pong");
  schedule_keepalive(ping_tick());
}

void socket_session::on_disconnect(const socket_frame& frame) {
  if (frame.reason == "link_disabled") {
    log::error(name(),
               "Slack disabled Socket Mode for this app (disconnect: link_disabled): enable Socket Mode in "
               "the app's settings; retrying no sooner than ",
               std::chrono::duration_cast<std::chrono::minutes>(link_disabled_delay).count(), " minutes");
    return teardown("link_disabled", {retry_policy::kind::normal, link_disabled_delay});
  }
  if (frame.reason == "too_many_websockets") {
    log::warn(name(),
              "Slack refused another socket for this app (too_many_websockets: more than 10 connections; "
              "other processes are using the same app-level token); reconnecting with back-off");
    return teardown("too_many_websockets");
  }
  log::info(name(), "Slack asked for a new connection (disconnect: ",
            frame.reason.empty() ? std::string_view("no reason") : frame.reason, "); reconnecting");
  teardown(frame.reason == "warning" ? "disconnect_warning" : "refresh_requested");
}

void socket_session::on_frame(const received_frame& f) {
  if (reject_oversized(f)) {
    return;  // unacknowledged: Slack redelivers it a few times, each dead-lettered the same way
  }
  if (f.binary) {
    return dead_letter("binary_frame", f.payload, f.received_at);
  }
  const socket_frame decoded = decode_socket_frame(f.payload.data(), f.payload.size());
  switch (decoded.kind) {
    case socket_frame_kind::hello:
      if (!f.draining) {
        on_hello(decoded);
      }
      return;
    case socket_frame_kind::disconnect:
      if (!f.draining) {
        on_disconnect(decoded);
      }
      return;
    case socket_frame_kind::envelope:
      return on_envelope(f, decoded);
    case socket_frame_kind::invalid:
      return dead_letter(decoded.reason, f.payload, f.received_at);
  }
}

void socket_session::on_envelope(const received_frame& f, const socket_frame& frame) {
  if (frame.envelope_id.empty()) {
    return dead_letter("no_envelope_id", f.payload, f.received_at);  // nothing to acknowledge it by
  }
  if (frame.type == envelope_type::unknown || frame.payload.empty() || frame.payload.front() != '{') {
    // A redelivery would bring the same again: dead-lettered whole, and acknowledged.
    dead_letter(frame.type == envelope_type::unknown ? "unknown_envelope" : "bad_envelope", f.payload, f.received_at);
    return acknowledge(frame.envelope_id, f.received_steady);
  }
  // An org-wide Enterprise Grid event has no workspace: its enterprise is the key.
  const std::string_view team = frame.team_id.empty() ? frame.enterprise_id : frame.team_id;
  if (team.empty()) {
    dead_letter("no_team_id", f.payload, f.received_at);
    return acknowledge(frame.envelope_id, f.received_steady);
  }
  envelope_event_name(frame, name_buffer_);
  pipeline::event ev;
  ev.connection = name();
  ev.from = pipeline::source::slack;
  ev.name = name_buffer_;
  ev.name_space = "slack";
  ev.team_id = team;
  ev.enterprise_id = frame.enterprise_id;
  ev.payload = frame.payload;  // the envelope's payload, byte for byte
  ev.received_at = f.received_at;
  ev.received_steady = f.received_steady;
  ev.retry_attempt = frame.retry_attempt;
  const bool events_api = frame.type == envelope_type::events_api;
  // Slack's retries of one event carry the same event_id (and a new envelope_id): one envelope id in Kafka.
  ev.stable_id = events_api && !frame.event_id.empty() ? frame.event_id : frame.envelope_id;
  const bool after_durability = events_api && listener_id_ != 0;
  if (after_durability && frame.envelope_id.size() <= pending_ack{}.id.size()) {
    if (pending_.size() >= max_pending) {
      // The oldest waits for a record that was never kept (dropped, or held at a stop): never acknowledged, so Slack
      // redelivers it; dropping it here keeps the memory bounded.
      pending_.pop_front();
    }
    pending_ack& p = pending_.emplace_back();
    p.token = next_token_++;
    p.socket = socket_generation();
    p.received = f.received_steady;
    std::copy(frame.envelope_id.begin(), frame.envelope_id.end(), p.id.begin());
    p.id_size = static_cast<std::uint8_t>(frame.envelope_id.size());
    ev.ack = {listener_id_, p.token};
  }
  emit(ev);
  if (!after_durability) {
    // interactive and slash_commands: at receipt (the user sees an error after 3 s); an events_api envelope only
    // when the sink cannot tell durability at all. An events_api envelope whose id is too long to keep is never
    // acknowledged: Slack redelivers it, under the same record id (its event_id).
    acknowledge(frame.envelope_id, f.received_steady);
  }
}

void socket_session::on_durable(std::uint64_t token) noexcept {
  if (pending_.empty() || token < pending_.front().token || token - pending_.front().token >= pending_.size()) {
    return;  // from a socket that is gone (its pending acknowledgements were dropped)
  }
  pending_ack& p = pending_[static_cast<std::size_t>(token - pending_.front().token)];
  if (p.done) {
    return;
  }
  p.done = true;
  if (p.socket == socket_generation()) {
    acknowledge(std::string_view(p.id.data(), p.id_size), p.received);
  }
  while (!pending_.empty() && pending_.front().done) {
    pending_.pop_front();
  }
}

void socket_session::acknowledge(std::string_view envelope_id, std::chrono::steady_clock::time_point received) {
  ack_buffer_.clear();
  append_ack_frame(ack_buffer_, envelope_id);
  send(std::string_view(ack_buffer_));
  metrics().envelope_acknowledged(name(),
                                  std::chrono::duration<double>(std::chrono::steady_clock::now() - received).count());
}

void socket_session::on_attempt_over() {
  awaiting_hello_ = false;
  // Acknowledgements name envelopes of that socket: Slack redelivers what was not acknowledged on it.
  pending_.clear();
}

// Half a tick of silence is enough to ask (see the legacy session's note); any inbound frame or pong is life.
void socket_session::on_keepalive() {
  if (!reading_paused() && silence() >= ping_tick() / 2) {
    send_ping();
  }
  // A record never kept is never reported durable: its entry would hold every later one in the deque. Slack stops
  // redelivering after about 5 minutes, so an acknowledgement older than this is of no use any more.
  const auto now = std::chrono::steady_clock::now();
  while (!pending_.empty() && (pending_.front().done || now - pending_.front().received > pending_max_age)) {
    pending_.pop_front();
  }
  schedule_keepalive(ping_tick());
}

milliseconds socket_session::ping_tick() const noexcept {
  return std::min<milliseconds>(max_idle_before_ping, std::max<milliseconds>(cfg().ping_timeout / 3, 100ms));
}

}  // namespace rtm::upstream::slack
