#include "upstream/socketio/session.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <exception>
#include <utility>

#include "metrics/registry.hpp"
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

}  // namespace

std::shared_ptr<session> session::create(boost::asio::io_context& io, const config::connection_config& cfg,
                                         sink& events, metrics::registry& metrics, session_tuning tuning) {
  return std::make_shared<session>(passkey{}, io, cfg, events, metrics, tuning);
}

session::session(passkey, boost::asio::io_context& io, const config::connection_config& cfg, sink& events,
                 metrics::registry& metrics, session_tuning tuning)
    : io_(io),
      cfg_(cfg),
      sink_(events),
      metrics_(metrics),
      tuning_(tuning),
      subscription_(subscription(cfg.events)),
      phase_timer_(io),
      heartbeat_timer_(io),
      ping_timer_(io),
      retry_timer_(io),
      stable_timer_(io),
      backoff_(cfg.reconnect.initial_delay, cfg.reconnect.max_delay, cfg.reconnect.jitter),
      rng_(std::random_device{}()) {}

// The transport client goes first (it drops its TCP connection and calls no handler); timers cancel themselves.
session::~session() {
  client_.reset();
}

void session::start() {
  if (phase_ != phase::idle || stopping_) {
    return;
  }
  for (const std::string& glob : globs_matching_nothing_known(cfg_.events)) {
    log::warn(name(), "events glob \"", glob,
              "\" matches no event this build knows, so it subscribes nothing: list the wanted events by their "
              "exact names");
  }
  metrics_.connection_up(name(), false);
  begin_attempt();
}

void session::stop(std::function<void()> done) {
  if (done) {
    stop_callbacks_.push_back(std::move(done));
  }
  if (phase_ == phase::stopped) {
    finish_stop();
    return;
  }
  if (stopping_) {
    return;  // already on its way; `done` runs with the others
  }
  // Reconnects are off before anything is closed, so no path can open a successor socket.
  stopping_ = true;
  retry_timer_.cancel();
  cancel_timers();
  if (discovery_) {
    discovery_->cancel();
    discovery_.reset();
  }
  if (!client_) {
    mark_down();
    phase_ = phase::stopped;
    log::info(name(), "stopped");
    finish_stop();
    return;
  }
  if (phase_ == phase::closing) {
    return;  // the socket is already going; after_socket_gone() finishes the stop
  }
  const bool engine_up = phase_ == phase::namespace_connect || phase_ == phase::authenticating || phase_ == phase::live;
  draining_ = phase_ == phase::live;
  mark_down();
  ++generation_;
  phase_ = phase::closing;
  pending_reason_ = "stopping";
  if (engine_up) {
    send(std::string(disconnect_frame));  // polite: leave the namespace before the WebSocket goes
  }
  log::info(name(), "stopping: closing the RTM connection");
  client_->close(ws::close_code::normal, "rtm-bridge stopping");
}

void session::pause_reading() {
  paused_ = true;
  if (client_ && phase_ == phase::live) {
    client_->pause_reading();
  }
}

void session::resume_reading() {
  paused_ = false;
  if (client_) {
    client_->resume_reading();
  }
  if (std::exchange(heartbeat_deferred_, false) && phase_ == phase::live) {
    if (cfg_.protocol != 3 || awaiting_pong_) {
      arm_liveness();
    }
  }
}

void session::begin_attempt() {
  if (stopping_) {
    return;
  }
  if (cfg_.url.empty()) {
    discover();
  } else {
    connect_to(cfg_.url);
  }
}

// Discovery runs again before every attempt: it is one small request, and an endpoint that moved (or a failure that
// was the endpoint's) is picked up without any cache to invalidate.
void session::discover() {
  phase_ = phase::discovering;
  http::request req;
  req.url = discovery_url(cfg_.api_url, tier_name(cfg_.tier));
  req.headers.emplace_back("Authorization", http::basic_authorization(cfg_.identifier.value, cfg_.key.value));
  req.tls.verify = cfg_.tls.verify;
  req.tls.ca_file = cfg_.tls.ca_file.value_or("");
  req.timeout = tuning_.discovery_timeout;
  if (!cfg_.tls.verify && req.url.rfind("https:", 0) == 0) {
    log::warn(name(),
              "tls.verify is false: the REST server's certificate and host name are NOT checked, the token "
              "can be stolen by anyone on the network path");
  }
  log::info(name(), "discovering the RTM endpoint: GET ", req.url);
  const std::uint64_t generation = generation_;
  discovery_ = http::async_request(
      io_, std::move(req),
      [self = shared_from_this(), generation](std::string_view error_text, const http::response& reply) {
        self->on_discovered(generation, error_text, reply);
      });
}

void session::on_discovered(std::uint64_t generation, std::string_view error_text, const http::response& reply) {
  if (generation != generation_ || phase_ != phase::discovering || stopping_) {
    return;
  }
  discovery_.reset();
  if (!error_text.empty()) {
    log::warn(name(), "endpoint discovery failed: ", error_text);
    schedule_retry("error", retry_kind::normal);
    return;
  }
  if (reply.status == 401 || reply.status == 403) {
    log::error(name(), "endpoint discovery refused the credentials (HTTP ", reply.status,
               "): check the connection's identifier, key and tier");
    schedule_retry("unauthorized", retry_kind::credential);
    return;
  }
  if (reply.status < 200 || reply.status > 299) {
    log::warn(name(), "endpoint discovery answered HTTP ", reply.status, ": ", excerpt(reply.body));
    schedule_retry("error", retry_kind::normal);
    return;
  }
  std::string error;
  const auto endpoint = parse_discovery(reply.body, error);
  if (!endpoint) {
    log::warn(name(), error);
    schedule_retry("error", retry_kind::normal);
    return;
  }
  connect_to(*endpoint);
}

void session::connect_to(const std::string& endpoint) {
  std::string error;
  const auto url = engine_url(endpoint, cfg_.protocol, error);
  if (!url) {
    log::error(name(), "cannot use the RTM endpoint ", endpoint, ": ", error);
    schedule_retry("error", retry_kind::normal);
    return;
  }
  endpoint_url_ = *url;
  ws::options opts;
  opts.url = *url;
  opts.tls.verify = cfg_.tls.verify;
  opts.tls.ca_file = cfg_.tls.ca_file.value_or("");
  opts.max_message_size = cfg_.limits.max_frame_size;
  // The session's own phase timer is the authority; the transport's is a backstop.
  opts.open_timeout = tuning_.phase_timeout + tuning_.close_grace;
  opts.close_grace = tuning_.close_grace;
  opts.drain_grace = tuning_.drain_grace;
  if (!cfg_.tls.verify && http::parse_url(*url).value_or(http::url{}).secure()) {
    log::warn(name(),
              "tls.verify is false: the RTM server's certificate and host name are NOT checked, the token "
              "can be stolen and events forged by anyone on the network path");
  }
  log::info(name(), "connecting to ", endpoint_url_);
  skip_binary_ = 0;
  frame_refused_ = false;
  awaiting_pong_ = false;
  draining_ = false;
  engine_sid_.clear();
  phase_ = phase::connecting;
  client_ = std::make_unique<ws::client>(io_, std::move(opts), weak_from_this());
  arm_phase_timer("the WebSocket to open");
  client_->open();
}

void session::on_open() {
  if (phase_ != phase::connecting) {
    return;
  }
  phase_ = phase::engine_open;
  arm_phase_timer("the Engine.IO open packet");
}

void session::on_message(std::string_view payload, bool binary) {
  const auto received_at = std::chrono::system_clock::now();
  const auto received_steady = std::chrono::steady_clock::now();
  last_frame_at_ = received_steady;
  const bool draining = phase_ == phase::closing && draining_;
  if (!draining && phase_ != phase::engine_open && phase_ != phase::namespace_connect &&
      phase_ != phase::authenticating && phase_ != phase::live) {
    return;  // a socket that never went live has no events to deliver
  }
  try {
    if (binary && skip_binary_ > 0) {
      --skip_binary_;  // an attachment of a binary packet that was already dead-lettered
      return;
    }
    if (payload.size() > cfg_.limits.max_event_size) {
      event_too_large(payload, received_at);
      return;
    }
    if (binary) {
      dead_letter("binary_frame", payload, received_at);
      return;
    }
    const packet& p = decoder_.decode(payload);
    if (draining) {
      drain_packet(p, payload, received_at, received_steady);
      return;
    }
    handle_packet(p, payload, received_at, received_steady);
  } catch (const std::exception& e) {
    // Nothing above is expected to throw (allocation aside); if it does, this socket is not trusted any more.
    log::error(name(), "internal error while handling a frame: ", e.what());
    teardown("error", retry_kind::normal, true);
  }
}

void session::handle_packet(const packet& p, std::string_view raw, std::chrono::system_clock::time_point received_at,
                            std::chrono::steady_clock::time_point received_steady) {
  if (phase_ == phase::engine_open) {
    if (p.type != packet_type::open) {
      log::error(name(), "protocol error: the server did not start with an Engine.IO open packet (got ",
                 p.type == packet_type::invalid ? p.reason : std::string_view("another packet"),
                 "); is this a Socket.IO endpoint?");
      teardown("error", retry_kind::normal, false);
      return;
    }
    handle_open_packet(p);
    return;
  }
  switch (p.type) {
    case packet_type::invalid:
      dead_letter(p.reason, raw, received_at);
      return;
    case packet_type::open:
      log::error(name(), "protocol error: a second Engine.IO open packet on the same connection");
      teardown("error", retry_kind::normal, false);
      return;
    case packet_type::close:
      log::warn(name(), "the server closed the Engine.IO session");
      teardown("closed", retry_kind::normal, false);
      return;
    case packet_type::ping:
      // v4: the heartbeat. v3: the wrong direction, but answering costs nothing.
      send(std::string(pong_frame));
      if (cfg_.protocol != 3) {
        arm_liveness();
      }
      return;
    case packet_type::pong:
      if (cfg_.protocol == 3 && awaiting_pong_) {
        awaiting_pong_ = false;
        heartbeat_timer_.cancel();
        schedule_client_ping();
      }
      return;
    case packet_type::upgrade:
    case packet_type::noop:
    case packet_type::ack:  // we never ask for acknowledgements
      return;
    case packet_type::connect:
      handle_connect_packet(p);
      return;
    case packet_type::disconnect:
      if (p.name_space == "/") {
        log::warn(name(), "the server disconnected the Socket.IO namespace (41)");
        teardown("closed", retry_kind::normal, false);
      }
      return;
    case packet_type::connect_error:
      namespace_refused(p.message.empty() ? std::string_view("no message") : p.message);
      return;
    case packet_type::event:
      handle_event(p, raw, received_at, received_steady);
      return;
    case packet_type::binary:
      dead_letter(p.reason, raw, received_at);
      skip_binary_ += p.attachments;
      return;
  }
}

void session::drain_packet(const packet& p, std::string_view raw, std::chrono::system_clock::time_point received_at,
                           std::chrono::steady_clock::time_point received_steady) {
  switch (p.type) {
    case packet_type::invalid:
      dead_letter(p.reason, raw, received_at);
      return;
    case packet_type::binary:
      dead_letter(p.reason, raw, received_at);
      skip_binary_ += p.attachments;
      return;
    case packet_type::event:
      if (p.event_name != "authenticated" && p.event_name != "unauthorized") {
        handle_event(p, raw, received_at, received_steady);
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
  phase_ = phase::namespace_connect;
  log::debug(name(), "Engine.IO open: ping interval ", ping_interval_.count(), " ms, ping timeout ",
             ping_timeout_.count(), " ms");
  if (cfg_.protocol == 3) {
    // v3: the client pings and the server sends `40` unasked.
    schedule_client_ping();
  } else {
    send(std::string(connect_frame));
    arm_liveness();
  }
  arm_phase_timer("the Socket.IO connect reply (40)");
}

void session::handle_connect_packet(const packet& p) {
  if (phase_ != phase::namespace_connect || p.name_space != "/") {
    return;
  }
  if (cfg_.protocol != 3 && p.sid.empty()) {
    log::error(name(),
               "the server answered the Socket.IO connect without a sid: it speaks Socket.IO v2 "
               "(Engine.IO 3); set `protocol: 3` for this connection");
    teardown("error", retry_kind::normal, false);
    return;
  }
  authenticate();
}

void session::authenticate() {
  phase_ = phase::authenticating;
  send(encode_authentication(tier_name(cfg_.tier), cfg_.identifier.value, cfg_.key.value, subscription_));
  arm_phase_timer("the authentication reply");
}

void session::handle_event(const packet& p, std::string_view raw, std::chrono::system_clock::time_point received_at,
                           std::chrono::steady_clock::time_point received_steady) {
  if (p.name_space != "/") {
    dead_letter("unknown_namespace", raw, received_at);
    return;
  }
  if (p.event_name == "authenticated") {
    if (phase_ != phase::authenticating) {
      return;
    }
    if (p.payload_kind == json_kind::false_value) {
      credential_refused("authenticated: false");
      return;
    }
    go_live();
    return;
  }
  if (p.event_name == "unauthorized") {
    credential_refused(!p.message.empty() ? p.message : p.payload.empty() ? std::string_view("no details") : p.payload);
    return;
  }
  event_info& info = info_for(p.event_name);
  if (info.subscribed) {
    const std::string_view configured_team = cfg_.team_id ? std::string_view(*cfg_.team_id) : std::string_view();
    const std::string_view problem = publish_problem(p, configured_team);
    if (!problem.empty()) {
      dead_letter(problem, raw, received_at);
    } else {
      event ev;
      ev.connection = name();
      ev.from = source::acme;
      ev.name = p.event_name;
      ev.name_space = name_space_of(p.event_name);
      ev.team_id = record_key(p, configured_team);
      ev.payload = p.payload;
      ev.extra_args = p.extra_arguments;
      ev.received_at = received_at;
      ev.received_steady = received_steady;
      if (!info.received) {
        info.received = metrics_.received_counter(name(), p.event_name);
      }
      info.received.increment();
      sink_.on_event(ev);
    }
  }
  // The event has been handed over (or deliberately dropped); acknowledging it only tells the server it arrived.
  // Acme does not ask for acks today, so this is harmless either way.
  if (p.ack_id && client_) {
    send(encode_ack(p.name_space, *p.ack_id));
  }
}

void session::go_live() {
  phase_ = phase::live;
  phase_timer_.cancel();
  metrics_.connection_up(name(), true);
  log::info(name(), "live: authenticated on ", endpoint_url_, " (sid ", engine_sid_, ", ", subscription_.size(),
            " events subscribed)");
  if (paused_ && client_) {
    client_->pause_reading();
  }
  stable_timer_.expires_after(tuning_.stable_period);
  stable_timer_.async_wait([self = shared_from_this(), generation = generation_](const boost::system::error_code& ec) {
    if (ec || generation != self->generation_ || self->phase_ != phase::live) {
      return;
    }
    self->backoff_.reset();
  });
}

void session::credential_refused(std::string_view what) {
  log::error(name(), "the RTM server refused the credentials: ", excerpt(what),
             " (check the connection's identifier, key and tier); retrying no sooner than reconnect.max_delay ",
             "and 60 s");
  teardown("unauthorized", retry_kind::credential, false);
}

// A socket.io middleware on the server (`next(new Error(...))`) refused the namespace: typically the account or the
// token, so it is treated like refused credentials (a long back-off), but named for what it is.
void session::namespace_refused(std::string_view server_message) {
  log::error(name(), "the RTM server refused the Socket.IO namespace connect (44) with the message \"",
             excerpt(server_message), "\" (a server-side check refused this connection: check the account, the ",
             "connection's identifier, key and tier); retrying no sooner than reconnect.max_delay and 60 s");
  teardown("namespace_refused", retry_kind::credential, false);
}

// The frame fitted the transport's limit (limits.max_frame_size) but not limits.max_event_size: dead-lettered with
// its start, and the connection carries on.
void session::event_too_large(std::string_view payload, std::chrono::system_clock::time_point received_at) {
  const std::string detail = "a frame of " + std::to_string(payload.size()) + " bytes exceeds limits.max_event_size (" +
                             std::to_string(cfg_.limits.max_event_size) + " bytes); only its first " +
                             std::to_string(oversized_event_prefix) + " bytes are kept";
  log::warn(name(), "dead letter (event_too_large): ", detail);
  dead_letter("event_too_large", payload.substr(0, oversized_event_prefix), received_at, detail, payload.size());
}

void session::arm_phase_timer(std::string_view waiting_for) {
  phase_timer_.expires_after(tuning_.phase_timeout);
  phase_timer_.async_wait([self = shared_from_this(), generation = generation_, expected = phase_,
                           what = std::string(waiting_for)](const boost::system::error_code& ec) {
    // A phase timer only fires into the phase (and socket) it was armed for: progress changes the phase.
    if (ec || generation != self->generation_ || self->phase_ != expected) {
      return;
    }
    log::warn(self->name(), "timed out after ", self->tuning_.phase_timeout.count(), " ms waiting for ", what);
    self->teardown("handshake_timeout", retry_kind::normal, true);
  });
}

milliseconds session::dead_bound() const noexcept {
  if (cfg_.protocol == 3) {
    // v3: our ping's pong is due within pingTimeout; the config may only shorten that, down to a second.
    return std::clamp(cfg_.ping_timeout, std::min(ping_timeout_, milliseconds{1000}), ping_timeout_);
  }
  // v4: a ping is due every pingInterval, late by at most pingTimeout. The config may shorten the bound, but never
  // below one interval plus a second (or plus pingTimeout when that is shorter).
  return std::clamp(cfg_.ping_timeout, ping_interval_ + std::min(ping_timeout_, milliseconds{1000}),
                    ping_interval_ + ping_timeout_);
}

void session::arm_liveness() {
  arm_liveness_until(std::chrono::steady_clock::now() + dead_bound());
}

// v4: a ping from the server is due; v3: the pong to our ping is. Either way any frame counts as life (see
// last_frame_at_), so the deadline only fires after `dead_bound()` of silence.
void session::arm_liveness_until(std::chrono::steady_clock::time_point deadline) {
  heartbeat_deadline_ = deadline;
  heartbeat_timer_.expires_at(heartbeat_deadline_);
  heartbeat_timer_.async_wait([self = shared_from_this(),
                               generation = generation_](const boost::system::error_code& ec) {
    const auto now = std::chrono::steady_clock::now();
    const bool v3 = self->cfg_.protocol == 3;
    // Re-arming cancels the wait, but a completion may already be queued: the deadline check drops it.
    if (ec || generation != self->generation_ || now < self->heartbeat_deadline_ || (v3 && !self->awaiting_pong_)) {
      return;
    }
    const milliseconds bound = self->dead_bound();
    if (now < self->last_frame_at_ + bound) {
      // Frames are still arriving, the ping or pong is behind them: silence, not a late heartbeat, is a dead peer.
      self->arm_liveness_until(self->last_frame_at_ + bound);
      return;
    }
    self->on_dead_peer(
        v3 ? "nothing from the server (no pong, no event) within " + std::to_string(bound.count()) + " ms of our ping"
           : "nothing from the server (no ping, no event) within " + std::to_string(bound.count()) + " ms");
  });
}

void session::schedule_client_ping() {
  ping_timer_.expires_after(ping_interval_);
  ping_timer_.async_wait([self = shared_from_this(), generation = generation_](const boost::system::error_code& ec) {
    if (ec || generation != self->generation_ || self->awaiting_pong_ || !self->client_) {
      return;
    }
    self->send(std::string(ping_frame));
    self->awaiting_pong_ = true;
    self->arm_liveness();
  });
}

void session::on_dead_peer(std::string_view why) {
  if (phase_ != phase::namespace_connect && phase_ != phase::authenticating && phase_ != phase::live) {
    return;
  }
  if (paused_ && phase_ == phase::live) {
    heartbeat_deferred_ = true;
    log::debug(name(), "heartbeat overdue while reading is paused for Kafka backpressure (", why,
               "); judging the peer again once reading resumes");
    return;
  }
  log::warn(name(), "the connection is dead: ", why, "; replacing it");
  // A silent peer will not answer a close handshake either: drop the TCP connection at once.
  teardown("ping_timeout", retry_kind::normal, true);
}

void session::teardown(std::string_view reason, retry_kind kind, bool drop_now) {
  if (phase_ == phase::idle || phase_ == phase::closing || phase_ == phase::backing_off || phase_ == phase::stopped) {
    return;
  }
  cancel_timers();
  mark_down();
  ++generation_;
  heartbeat_deferred_ = false;
  pending_reason_ = std::string(reason);
  pending_kind_ = kind;
  if (discovery_) {
    discovery_->cancel();
    discovery_.reset();
  }
  if (!client_) {
    after_socket_gone();
    return;
  }
  draining_ = !drop_now && phase_ == phase::live;
  phase_ = phase::closing;
  if (drop_now) {
    client_->abort();
    return;
  }
  if (draining_) {
    send(std::string(disconnect_frame));  // leave the namespace: the server sends nothing new while we drain
  }
  client_->close(ws::close_code::normal, "");
}

void session::on_close(int code, std::string_view reason, std::string_view error_text) {
  if (phase_ == phase::closing) {
    log::info(name(), "connection closed (", pending_reason_, ")");
    after_socket_gone();
    return;
  }
  if (phase_ != phase::connecting && phase_ != phase::engine_open && phase_ != phase::namespace_connect &&
      phase_ != phase::authenticating && phase_ != phase::live) {
    return;
  }
  // Not asked for: the server or the network ended it, or the transport refused an oversized frame.
  const bool opened = phase_ != phase::connecting;
  cancel_timers();
  mark_down();
  ++generation_;
  pending_reason_ = frame_refused_ ? "frame_too_large" : opened ? "closed" : "error";
  pending_kind_ = retry_kind::normal;
  if (opened && !frame_refused_) {  // a refusal was logged by on_message_refused()
    log::warn(name(), "connection lost: close code ", code, reason.empty() ? "" : " (", reason,
              reason.empty() ? "" : ")", error_text.empty() ? "" : ": ", error_text);
  } else if (!opened) {
    log::warn(name(), error_text.empty() ? std::string_view("cannot open the RTM connection") : error_text);
  }
  after_socket_gone();
}

// Right before on_close, from the transport. Also while closing: a teardown may have begun between the refusal and the
// transport dropping the connection; the refusal is the real reason then.
void session::on_message_refused(std::size_t limit) {
  // A stop's drain still reads, so a refusal can come then too: it is recorded like any other.
  if ((stopping_ && !draining_) || phase_ == phase::idle || phase_ == phase::connecting ||
      phase_ == phase::backing_off || phase_ == phase::stopped) {
    return;
  }
  frame_refused_ = true;
  if (phase_ == phase::closing) {
    pending_reason_ = "frame_too_large";
  }
  const std::string detail = "a WebSocket message larger than limits.max_frame_size (" + std::to_string(limit) +
                             " bytes) was refused before its payload was read; the connection was closed (1009) " +
                             "and reconnected";
  dead_letter("frame_too_large", {}, std::chrono::system_clock::now(), detail);
  if (stopping_) {
    log::warn(name(), "an incoming frame exceeded limits.max_frame_size (", limit,
              " bytes) while stopping; it was dead-lettered as frame_too_large");
    return;
  }
  log::warn(name(), "reconnecting: an incoming frame exceeded limits.max_frame_size (", limit,
            " bytes) and was refused unread, which costs the connection; it was dead-lettered as frame_too_large. ",
            "Raise limits.max_frame_size if the server legitimately sends such frames");
}

void session::on_frames_discarded(std::size_t frames) {
  log::warn(name(), frames, " frame(s) arrived after our close frame and were discarded by the close handshake ",
            "(counted in rtm_bridge_events_failed_total{reason=\"discarded_on_close\"})");
  for (std::size_t i = 0; i < frames; ++i) {
    metrics_.event_failed(name(), "discarded_on_close");
  }
}

void session::after_socket_gone() {
  // Called from the transport's on_close: the client object may go now, its impl is kept alive by the caller.
  client_.reset();
  if (stopping_) {
    phase_ = phase::stopped;
    log::info(name(), "stopped");
    finish_stop();
    return;
  }
  schedule_retry(pending_reason_, pending_kind_);
}

void session::schedule_retry(std::string_view reason, retry_kind kind) {
  if (stopping_) {
    phase_ = phase::stopped;
    finish_stop();
    return;
  }
  phase_ = phase::backing_off;
  metrics_.reconnect(name(), reason);
  milliseconds delay = backoff_.next(random01());
  if (kind == retry_kind::credential) {
    // Refused credentials will not fix themselves in a second: wait at least the longest back-off and never less
    // than refused_credential_min_delay, with jitter on top so many tokens refused together do not come back in step.
    const milliseconds floor = std::max<milliseconds>(cfg_.reconnect.max_delay, refused_credential_min_delay);
    const auto spread = static_cast<milliseconds::rep>(static_cast<double>(floor.count()) *
                                                       std::clamp(cfg_.reconnect.jitter, 0.0, 1.0) * random01());
    delay = std::max(delay, floor + milliseconds{spread});
  }
  log::info(name(), "reconnecting in ", delay.count(), " ms (", reason, ")");
  retry_timer_.expires_after(delay);
  retry_timer_.async_wait([self = shared_from_this(), generation = generation_](const boost::system::error_code& ec) {
    if (ec || generation != self->generation_ || self->phase_ != phase::backing_off || self->stopping_) {
      return;
    }
    self->begin_attempt();
  });
}

void session::finish_stop() {
  // `done` runs on the io_context, never inside stop() or a transport callback.
  for (auto& done : stop_callbacks_) {
    boost::asio::post(io_, std::move(done));
  }
  stop_callbacks_.clear();
}

void session::cancel_timers() {
  phase_timer_.cancel();
  heartbeat_timer_.cancel();
  ping_timer_.cancel();
  stable_timer_.cancel();
  awaiting_pong_ = false;
}

void session::mark_down() {
  if (phase_ == phase::live) {
    metrics_.connection_up(name(), false);
  }
}

void session::send(std::string frame) {
  if (client_) {
    client_->send_text(std::move(frame));
  }
}

void session::dead_letter(std::string_view reason, std::string_view raw,
                          std::chrono::system_clock::time_point received_at, std::string_view detail,
                          std::size_t original_size) {
  log::debug(name(), "dead letter (", reason, "): ", excerpt(raw));
  pipeline::dead_letter dl;
  dl.connection = name();
  dl.from = source::acme;
  dl.reason = reason;
  dl.raw = raw;
  dl.received_at = received_at;
  dl.detail = detail;
  dl.original_size = original_size;
  sink_.on_dead_letter(dl);
}

bool session::subscribed(std::string_view event_name) const noexcept {
  if (cfg_.events.empty()) {
    return true;
  }
  return std::any_of(cfg_.events.begin(), cfg_.events.end(),
                     [event_name](const std::string& pattern) { return glob_match(pattern, event_name); });
}

session::event_info& session::info_for(std::string_view event_name) {
  constexpr std::size_t limit = 256;
  if (const auto it = event_info_.find(event_name); it != event_info_.end()) {
    return it->second;
  }
  if (event_info_.size() >= limit) {
    overflow_info_.subscribed = subscribed(event_name);
    overflow_info_.received = metrics::counter{};  // made afresh for this name if it gets published
    return overflow_info_;
  }
  event_info info;
  info.subscribed = subscribed(event_name);
  return event_info_.emplace(std::string(event_name), info).first->second;
}

double session::random01() noexcept {
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
}

}  // namespace rtm::upstream::socketio
