#include "upstream/socketio/session.hpp"

#include <algorithm>
#include <utility>

#include "upstream/http/url.hpp"
#include "upstream/socketio/acme_events.hpp"
#include "upstream/socketio/discovery.hpp"
#include "util/glob.hpp"
#include "util/log.hpp"

namespace rtm::upstream::socketio {
namespace {

using std::chrono::milliseconds;

std::string_view tier_name(config::acme_tier tier) noexcept {
  return tier == config::acme_tier::app ? "app" : "user";
}

// For logs: what the server said, cut short (payloads are the server's, never ours, so no secret is in them).
std::string excerpt(std::string_view text) {
  constexpr std::size_t limit = 200;
  return text.size() <= limit ? std::string(text) : std::string(text.substr(0, limit)) + "...";
}

constexpr retry_policy credential_retry{retry_policy::kind::credential, milliseconds{0}};

}  // namespace

std::shared_ptr<session> session::create(boost::asio::io_context& io, const config::connection_config& cfg,
                                         pipeline::sink& events, metrics::registry& metrics, session_tuning tuning) {
  return std::make_shared<session>(passkey{}, io, cfg, events, metrics, tuning);
}

session::session(passkey, boost::asio::io_context& io, const config::connection_config& cfg, pipeline::sink& events,
                 metrics::registry& metrics, session_tuning tuning)
    : reconnecting_session(io, cfg, events, metrics, tuning, pipeline::source::acme),
      subscription_(subscription(cfg.events)) {}

void session::on_start() {
  for (const std::string& glob : globs_matching_nothing_known(cfg().events)) {
    log::warn(name(), "events glob \"", glob,
              "\" matches no event this build knows, so it subscribes nothing: list the wanted events by their "
              "exact names");
  }
}

// Discovery runs again before every attempt: it is one small request, and an endpoint that moved (or a failure that
// was the endpoint's) is picked up without any cache to invalidate.
void session::open_attempt() {
  if (!cfg().url.empty()) {
    connect_to(cfg().url);
    return;
  }
  http::request req;
  req.url = discovery_url(cfg().api_url, tier_name(cfg().tier));
  req.headers.emplace_back("Authorization", http::basic_authorization(cfg().identifier.value, cfg().key.value));
  log::info(name(), "discovering the RTM endpoint: GET ", req.url);
  request(std::move(req),
          [this](std::string_view error_text, const http::response& reply) { on_discovered(error_text, reply); });
}

void session::on_discovered(std::string_view error_text, const http::response& reply) {
  if (!error_text.empty()) {
    log::warn(name(), "endpoint discovery failed: ", error_text);
    return teardown("error");
  }
  if (reply.status == 401 || reply.status == 403) {
    log::error(name(), "endpoint discovery refused the credentials (HTTP ", reply.status,
               "): check the connection's identifier, key and tier");
    return teardown("unauthorized", credential_retry);
  }
  if (reply.status < 200 || reply.status > 299) {
    log::warn(name(), "endpoint discovery answered HTTP ", reply.status, ": ", excerpt(reply.body));
    return teardown("error");
  }
  std::string error;
  const auto endpoint = parse_discovery(reply.body, error);
  if (!endpoint) {
    log::warn(name(), error);
    return teardown("error");
  }
  connect_to(*endpoint);
}

void session::connect_to(const std::string& endpoint) {
  std::string error;
  const auto url = engine_url(endpoint, cfg().protocol, error);
  if (!url) {
    log::error(name(), "cannot use the RTM endpoint ", endpoint, ": ", error);
    return teardown("error");
  }
  endpoint_url_ = *url;
  log::info(name(), "connecting to ", endpoint_url_);
  ws::options opts;
  opts.url = *url;
  open_socket(std::move(opts));
}

void session::on_socket_open() {
  step_ = step::engine_open;
  arm_phase_timer("the Engine.IO open packet");
}

void session::on_frame(const received_frame& f) {
  if (f.binary && skip_binary_ > 0) {
    --skip_binary_;  // an attachment of a binary packet that was already dead-lettered
    return;
  }
  if (reject_oversized(f)) {
    return;
  }
  if (f.binary) {
    return dead_letter("binary_frame", f.payload, f.received_at);
  }
  const packet& p = decoder_.decode(f.payload);
  if (f.draining) {
    return drain_packet(p, f);
  }
  handle_packet(p, f);
}

void session::handle_packet(const packet& p, const received_frame& f) {
  if (step_ == step::engine_open) {
    if (p.type != packet_type::open) {
      log::error(name(), "protocol error: the server did not start with an Engine.IO open packet (got ",
                 p.type == packet_type::invalid ? p.reason : std::string_view("another packet"),
                 "); is this a Socket.IO endpoint?");
      return teardown("error");
    }
    return handle_open_packet(p);
  }
  switch (p.type) {
    case packet_type::invalid:
      return dead_letter(p.reason, f.payload, f.received_at);
    case packet_type::open:
      return protocol_error("a second Engine.IO open packet on the same connection");
    case packet_type::close:
      log::warn(name(), "the server closed the Engine.IO session");
      return teardown("closed");
    case packet_type::ping:
      return on_ping();
    case packet_type::pong:
      return on_pong();
    case packet_type::upgrade:
    case packet_type::noop:
    case packet_type::ack:  // we never ask for acknowledgements
      return;
    case packet_type::connect:
      return handle_connect_packet(p);
    case packet_type::disconnect:
      if (p.name_space == "/") {
        log::warn(name(), "the server disconnected the Socket.IO namespace (41)");
        teardown("closed");
      }
      return;
    case packet_type::connect_error:
      return namespace_refused(p.message.empty() ? std::string_view("no message") : p.message);
    case packet_type::event:
      return handle_event(p, f);
    case packet_type::binary:
      dead_letter(p.reason, f.payload, f.received_at);
      skip_binary_ += p.attachments;
      return;
  }
}

void session::drain_packet(const packet& p, const received_frame& f) {
  switch (p.type) {
    case packet_type::invalid:
      return dead_letter(p.reason, f.payload, f.received_at);
    case packet_type::binary:
      dead_letter(p.reason, f.payload, f.received_at);
      skip_binary_ += p.attachments;
      return;
    case packet_type::event:
      if (p.event_name != "authenticated" && p.event_name != "unauthorized") {
        handle_event(p, f);
      }
      return;
    default:
      return;  // the session is going: pings, connects and disconnects change nothing now
  }
}

void session::handle_open_packet(const packet& p) {
  engine_sid_ = std::string(p.open.sid);
  ping_interval_ = p.open.ping_interval;
  ping_timeout_ = p.open.ping_timeout;
  step_ = step::namespace_connect;
  log::debug(name(), "Engine.IO open: ping interval ", ping_interval_.count(), " ms, ping timeout ",
             ping_timeout_.count(), " ms");
  if (cfg().protocol == 3) {
    // v3: the client pings and the server sends `40` unasked.
    schedule_keepalive(ping_interval_);
  } else {
    send(std::string(connect_frame));
    expect_frame_within(dead_bound(), "ping");
  }
  arm_phase_timer("the Socket.IO connect reply (40)");
}

// v4: the heartbeat. v3: the wrong direction, but answering costs nothing.
void session::on_ping() {
  send(std::string(pong_frame));
  if (cfg().protocol != 3) {
    expect_frame_within(dead_bound(), "ping");
  }
}

void session::on_pong() {
  if (cfg().protocol == 3 && awaiting_pong_) {
    awaiting_pong_ = false;
    stop_expecting();
    schedule_keepalive(ping_interval_);
  }
}

// v3: our ping, every pingInterval after the last pong; its pong is due within the dead bound.
void session::on_keepalive() {
  if (awaiting_pong_) {
    return;
  }
  send(std::string(ping_frame));
  awaiting_pong_ = true;
  expect_frame_within(dead_bound(), "pong");
}

void session::handle_connect_packet(const packet& p) {
  if (step_ != step::namespace_connect || p.name_space != "/") {
    return;
  }
  if (cfg().protocol != 3 && p.sid.empty()) {
    return protocol_error(
        "the server answered the Socket.IO connect without a sid: it speaks Socket.IO v2 (Engine.IO 3); set "
        "`protocol: 3` for this connection");
  }
  authenticate();
}

void session::authenticate() {
  step_ = step::authenticating;
  send(encode_authentication(tier_name(cfg().tier), cfg().identifier.value, cfg().key.value, subscription_));
  arm_phase_timer("the authentication reply");
}

void session::handle_event(const packet& p, const received_frame& f) {
  if (p.name_space != "/") {
    return dead_letter("unknown_namespace", f.payload, f.received_at);
  }
  if (p.event_name == "authenticated") {
    if (step_ != step::authenticating) {
      return;
    }
    if (p.payload_kind == json_kind::false_value) {
      return credential_refused("authenticated: false");
    }
    return authenticated();
  }
  if (p.event_name == "unauthorized") {
    return credential_refused(!p.message.empty()  ? p.message
                              : p.payload.empty() ? std::string_view("no details")
                                                  : p.payload);
  }
  if (event_name_info& info = name_info(p.event_name); info.wanted) {
    publish(p, f, info);
  }
  // The event has been handed over (or deliberately dropped); acknowledging it only tells the server it arrived.
  // Acme does not ask for acks today, so this is harmless either way.
  if (p.ack_id) {
    send(encode_ack(p.name_space, *p.ack_id));
  }
}

void session::publish(const packet& p, const received_frame& f, event_name_info& info) {
  const std::string_view configured_team = cfg().team_id ? std::string_view(*cfg().team_id) : std::string_view();
  if (const std::string_view problem = publish_problem(p, configured_team); !problem.empty()) {
    return dead_letter(problem, f.payload, f.received_at);
  }
  pipeline::event ev;
  ev.connection = name();
  ev.from = pipeline::source::acme;
  ev.name = p.event_name;
  ev.name_space = name_space_of(p.event_name);
  ev.team_id = record_key(p, configured_team);
  ev.payload = p.payload;
  ev.extra_args = p.extra_arguments;
  ev.received_at = f.received_at;
  ev.received_steady = f.received_steady;
  emit(ev, info);
}

void session::authenticated() {
  step_ = step::live;
  go_live();
  log::info(name(), "live: authenticated on ", endpoint_url_, " (sid ", engine_sid_, ", ", subscription_.size(),
            " events subscribed)");
}

// Polite: leave the namespace before the WebSocket goes, so the server sends nothing new while we drain. For a
// reconnect only a live socket is drained; a stop leaves any namespace it joined.
void session::on_closing(bool stopping) {
  const bool joined = step_ == step::namespace_connect || step_ == step::authenticating || step_ == step::live;
  if (stopping ? joined : step_ == step::live) {
    send(std::string(disconnect_frame));
  }
}

void session::on_attempt_over() {
  step_ = step::engine_open;
  awaiting_pong_ = false;
  skip_binary_ = 0;
  engine_sid_.clear();
}

void session::credential_refused(std::string_view what) {
  log::error(name(), "the RTM server refused the credentials: ", excerpt(what),
             " (check the connection's identifier, key and tier); retrying no sooner than reconnect.max_delay ",
             "and 60 s");
  teardown("unauthorized", credential_retry);
}

// A socket.io middleware on the server (`next(new Error(...))`) refused the namespace: typically the account or the
// token, so it is treated like refused credentials (a long back-off), but named for what it is.
void session::namespace_refused(std::string_view server_message) {
  log::error(name(), "the RTM server refused the Socket.IO namespace connect (44) with the message \"",
             excerpt(server_message), "\" (a server-side check refused this connection: check the account, the ",
             "connection's identifier, key and tier); retrying no sooner than reconnect.max_delay and 60 s");
  teardown("namespace_refused", credential_retry);
}

void session::protocol_error(std::string_view what) {
  log::error(name(), "protocol error: ", what);
  teardown("error");
}

milliseconds session::dead_bound() const noexcept {
  if (cfg().protocol == 3) {
    // v3: our ping's pong is due within pingTimeout; the config may only shorten that, down to a second.
    return std::clamp(cfg().ping_timeout, std::min(ping_timeout_, milliseconds{1000}), ping_timeout_);
  }
  // v4: a ping is due every pingInterval, late by at most pingTimeout. The config may shorten the bound, but never
  // below one interval plus a second (or plus pingTimeout when that is shorter).
  return std::clamp(cfg().ping_timeout, ping_interval_ + std::min(ping_timeout_, milliseconds{1000}),
                    ping_interval_ + ping_timeout_);
}

bool session::wants_event(std::string_view event_name) {
  const auto& patterns = cfg().events;
  return patterns.empty() || std::any_of(patterns.begin(), patterns.end(), [event_name](const std::string& glob) {
           return glob_match(glob, event_name);
         });
}

}  // namespace rtm::upstream::socketio
