#include "upstream/reconnecting_session.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <exception>
#include <utility>

#include "util/log.hpp"

namespace rtm::upstream {

using std::chrono::milliseconds;

reconnecting_session::reconnecting_session(boost::asio::io_context& io, config::connection_config cfg,
                                           pipeline::sink& events, metrics::registry& metrics, session_tuning tuning,
                                           pipeline::source from)
    : io_(io),
      cfg_(std::move(cfg)),
      sink_(events),
      metrics_(metrics),
      tuning_(tuning),
      from_(from),
      phase_timer_(io),
      watchdog_timer_(io),
      keepalive_timer_(io),
      retry_timer_(io),
      stable_timer_(io),
      backoff_(cfg_.reconnect.initial_delay, cfg_.reconnect.max_delay, cfg_.reconnect.jitter),
      rng_(std::random_device{}()) {}

// The transport client goes first (it drops its TCP connection and calls no handler); timers cancel themselves.
reconnecting_session::~reconnecting_session() {
  client_.reset();
}

// The boundary between the transport's and the timers' handlers and a dialect's code: an exception (allocation
// failure aside, none is expected) ends this socket, never the io_context.
template <typename Step>
void reconnecting_session::guarded(Step&& step) noexcept {
  try {
    step();
  } catch (const std::exception& e) {
    log::error(name(), "internal error: ", e.what(), "; dropping the connection and reconnecting");
    teardown("error", {}, true);
  }
}

void reconnecting_session::start() {
  if (phase_ != phase::idle || stopping_) {
    return;
  }
  on_start();
  metrics_.connection_up(name(), false);
  begin_attempt();
}

void reconnecting_session::begin_attempt() {
  if (stopping_) {
    return;
  }
  phase_ = phase::preparing;
  frame_refused_ = false;
  draining_ = false;
  if (!cfg_.tls.verify) {
    log::warn(name(),
              "tls.verify is false: the server's certificate and host name are NOT checked, the token can be stolen "
              "and events forged by anyone on the network path");
  }
  open_attempt();
}

void reconnecting_session::request(http::request req, reply_handler then) {
  if (stopping_ || phase_ != phase::preparing || request_ || client_) {
    return;  // one request at a time, and none once the socket is being opened
  }
  req.timeout = tuning_.request_timeout;
  req.tls = tls::options{cfg_.tls.verify, cfg_.tls.ca_file.value_or("")};
  request_ = http::async_request(io_, std::move(req),
                                 [self = shared_from_this(), generation = generation_, then = std::move(then)](
                                     std::string_view error_text, const http::response& reply) {
                                   self->on_reply(generation, then, error_text, reply);
                                 });
}

void reconnecting_session::on_reply(std::uint64_t generation, const reply_handler& then, std::string_view error_text,
                                    const http::response& reply) {
  if (generation != generation_ || phase_ != phase::preparing || stopping_) {
    return;
  }
  request_.reset();
  guarded([&] { then(error_text, reply); });
}

void reconnecting_session::open_socket(ws::options opts) {
  if (stopping_ || phase_ != phase::preparing || client_) {
    return;
  }
  opts.tls = tls::options{cfg_.tls.verify, cfg_.tls.ca_file.value_or("")};
  opts.max_message_size = cfg_.limits.max_frame_size;
  // The session's own phase timer is the authority; the transport's is a backstop.
  opts.open_timeout = tuning_.phase_timeout + tuning_.close_grace;
  opts.close_grace = tuning_.close_grace;
  opts.drain_grace = tuning_.drain_grace;
  phase_ = phase::connecting;
  client_ = std::make_unique<ws::client>(io_, std::move(opts), weak_from_this());
  arm_phase_timer("the WebSocket to open");
  client_->open();
}

void reconnecting_session::on_open() {
  if (phase_ != phase::connecting) {
    return;
  }
  phase_ = phase::handshaking;
  last_frame_at_ = std::chrono::steady_clock::now();
  guarded([this] { on_socket_open(); });
}

void reconnecting_session::arm_phase_timer(std::string_view waiting_for, std::string_view reason) {
  phase_timer_.expires_after(tuning_.phase_timeout);
  phase_timer_.async_wait([self = shared_from_this(), generation = generation_, serial = ++phase_serial_,
                           what = std::string(waiting_for),
                           why = std::string(reason)](const boost::system::error_code& ec) {
    // A phase timer only fires into the step (and socket) it was armed for: progress re-arms or cancels it.
    if (ec || generation != self->generation_ || serial != self->phase_serial_ || self->stopping_) {
      return;
    }
    log::warn(self->name(), "timed out after ", self->tuning_.phase_timeout.count(), " ms waiting for ", what);
    self->teardown(why, {}, true);
  });
}

void reconnecting_session::go_live() {
  if (phase_ != phase::handshaking) {
    return;
  }
  phase_ = phase::live;
  ++phase_serial_;
  phase_timer_.cancel();
  metrics_.connection_up(name(), true);
  if (paused_ && client_) {
    client_->pause_reading();  // paused during the handshake: only now, or the handshake could not finish
  }
  stable_timer_.expires_after(tuning_.stable_period);
  stable_timer_.async_wait([self = shared_from_this(), generation = generation_](const boost::system::error_code& ec) {
    if (ec || generation != self->generation_ || self->phase_ != phase::live) {
      return;
    }
    self->backoff_.reset();
  });
}

void reconnecting_session::on_message(std::string_view payload, bool binary) {
  received_frame f;
  f.payload = payload;
  f.binary = binary;
  f.received_at = std::chrono::system_clock::now();
  f.received_steady = std::chrono::steady_clock::now();
  last_frame_at_ = f.received_steady;
  f.draining = phase_ == phase::closing && draining_;
  if (!f.draining && phase_ != phase::handshaking && phase_ != phase::live) {
    return;  // a socket that never went live has no events to deliver
  }
  guarded([this, &f] { on_frame(f); });
}

void reconnecting_session::on_ws_pong() {
  last_frame_at_ = std::chrono::steady_clock::now();
}

bool reconnecting_session::reject_oversized(const received_frame& f) {
  if (f.payload.size() <= cfg_.limits.max_event_size) {
    return false;
  }
  // The frame fitted the transport's limit (limits.max_frame_size) but not limits.max_event_size.
  const std::string detail = "a frame of " + std::to_string(f.payload.size()) +
                             " bytes exceeds limits.max_event_size (" + std::to_string(cfg_.limits.max_event_size) +
                             " bytes); only its first " + std::to_string(pipeline::oversized_event_prefix) +
                             " bytes are kept";
  log::warn(name(), "dead letter (event_too_large): ", detail);
  dead_letter("event_too_large", f.payload.substr(0, pipeline::oversized_event_prefix), f.received_at, detail,
              f.payload.size());
  return true;
}

void reconnecting_session::expect_frame_within(milliseconds bound, std::string_view what) {
  expecting_ = true;
  watchdog_deferred_ = false;
  watchdog_bound_ = bound;
  watchdog_what_ = what;
  arm_watchdog(std::chrono::steady_clock::now() + bound);
}

void reconnecting_session::stop_expecting() noexcept {
  expecting_ = false;
  watchdog_deferred_ = false;
  watchdog_timer_.cancel();
}

milliseconds reconnecting_session::silence() const noexcept {
  return std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() -
                                                  std::max(last_frame_at_, resumed_at_));
}

void reconnecting_session::arm_watchdog(std::chrono::steady_clock::time_point deadline) {
  watchdog_deadline_ = deadline;
  watchdog_timer_.expires_at(deadline);
  watchdog_timer_.async_wait(
      [self = shared_from_this(), generation = generation_](const boost::system::error_code& ec) {
        // Re-arming cancels the wait, but a completion may already be queued: the deadline check drops it.
        if (ec || generation != self->generation_ || !self->expecting_ ||
            std::chrono::steady_clock::now() < self->watchdog_deadline_) {
          return;
        }
        self->on_watchdog();
      });
}

void reconnecting_session::on_watchdog() {
  if (phase_ != phase::handshaking && phase_ != phase::live) {
    return;
  }
  const auto heard = std::max(last_frame_at_, resumed_at_) + watchdog_bound_;
  if (std::chrono::steady_clock::now() < heard) {
    // Frames are still arriving, the awaited one is behind them: silence, not a late heartbeat, is a dead peer.
    arm_watchdog(heard);
    return;
  }
  if (paused_ && phase_ == phase::live) {
    watchdog_deferred_ = true;
    log::debug(name(), "heartbeat overdue while reading is paused for Kafka backpressure; judging the peer again ",
               "once reading resumes");
    return;
  }
  log::warn(name(), "the connection is dead: nothing from the server (no ", watchdog_what_, ", no event) within ",
            watchdog_bound_.count(), " ms; replacing it");
  // A silent peer will not answer a close handshake either: drop the TCP connection at once.
  teardown("ping_timeout", {}, true);
}

void reconnecting_session::schedule_keepalive(milliseconds delay) {
  keepalive_timer_.expires_after(delay);
  keepalive_timer_.async_wait(
      [self = shared_from_this(), generation = generation_](const boost::system::error_code& ec) {
        if (ec || generation != self->generation_ || !self->client_ ||
            (self->phase_ != phase::handshaking && self->phase_ != phase::live)) {
          return;
        }
        self->guarded([&self] { self->on_keepalive(); });
      });
}

void reconnecting_session::teardown(std::string_view reason, retry_policy retry, bool drop_now) {
  if (phase_ == phase::idle || phase_ == phase::closing || phase_ == phase::backing_off || phase_ == phase::stopped) {
    return;
  }
  const bool was_live = phase_ == phase::live;
  cancel_socket_timers();
  mark_down();
  ++generation_;
  pending_reason_ = std::string(reason);
  pending_retry_ = retry;
  if (request_) {
    request_->cancel();
    request_.reset();
  }
  if (!client_) {
    socket_gone();
    return;
  }
  phase_ = phase::closing;
  draining_ = was_live && !drop_now;
  if (drop_now) {
    client_->abort();
    return;
  }
  if (client_->is_open()) {
    on_closing(false);
  }
  client_->close(ws::close_code::normal, "rtm-bridge reconnecting");
}

void reconnecting_session::stop(std::function<void()> done) {
  if (done) {
    stop_callbacks_.push_back(std::move(done));
  }
  if (phase_ == phase::stopped) {
    finish_stop();
    return;
  }
  if (stopping_) {
    return;  // already on its way; `done` runs with the others once the socket is gone
  }
  // Reconnects are off before anything is closed, so no path can open a successor socket.
  stopping_ = true;
  retry_timer_.cancel();
  if (request_) {
    request_->cancel();
    request_.reset();
  }
  if (phase_ == phase::closing) {
    return;  // the socket is already going; socket_gone() finishes the stop
  }
  const bool was_live = phase_ == phase::live;
  cancel_socket_timers();
  mark_down();
  ++generation_;
  if (!client_) {
    phase_ = phase::stopped;
    on_attempt_over();
    log::info(name(), "stopped");
    finish_stop();
    return;
  }
  phase_ = phase::closing;
  draining_ = was_live;
  pending_reason_ = "stopping";
  if (client_->is_open()) {
    on_closing(true);
  }
  log::info(name(), "stopping: closing the RTM connection");
  client_->close(ws::close_code::going_away, "rtm-bridge stopping");
}

void reconnecting_session::drop(std::function<void()> done) {
  stop(std::move(done));
  if (client_) {
    log::info(name(), "dropping the RTM connection now (cluster: this instance may no longer hold it)");
    client_->abort();  // the socket's descriptor is closed here; on_close follows and finishes the stop
  }
}

void reconnecting_session::on_close(int code, std::string_view reason, std::string_view error_text) {
  if (phase_ == phase::closing) {
    log::info(name(), "connection closed (", pending_reason_, ")");
    socket_gone();
    return;
  }
  if (phase_ != phase::connecting && phase_ != phase::handshaking && phase_ != phase::live) {
    return;
  }
  // Not asked for: the server or the network ended it, or the transport refused an oversized frame.
  const bool opened = phase_ != phase::connecting;
  cancel_socket_timers();
  mark_down();
  ++generation_;
  pending_reason_ = frame_refused_ ? "frame_too_large" : opened ? "closed" : "error";
  pending_retry_ = {};
  if (opened && !frame_refused_) {  // a refusal was logged by on_message_refused()
    log::warn(name(), "connection lost: close code ", code, reason.empty() ? "" : " (", reason,
              reason.empty() ? "" : ")", error_text.empty() ? "" : ": ", error_text, "; reconnecting");
  } else if (!opened) {
    log::warn(name(), error_text.empty() ? std::string_view("cannot open the RTM connection") : error_text);
  }
  socket_gone();
}

// Right before on_close, from the transport. Also while closing: a teardown may have begun between the refusal and the
// transport dropping the connection; the refusal is the real reason then.
void reconnecting_session::on_message_refused(std::size_t limit) {
  // A stop's drain still reads, so a refusal can come then too: it is recorded like any other.
  if ((stopping_ && !draining_) || phase_ == phase::idle || phase_ == phase::preparing || phase_ == phase::connecting ||
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

void reconnecting_session::on_frames_discarded(std::size_t frames) {
  log::warn(name(), frames, " frame(s) arrived after our close frame and were discarded by the close handshake ",
            "(counted in rtm_bridge_events_failed_total{reason=\"discarded_on_close\"})");
  for (std::size_t i = 0; i < frames; ++i) {
    metrics_.event_failed(name(), "discarded_on_close");
  }
}

void reconnecting_session::socket_gone() {
  // Called from the transport's on_close: the client object may go now, its impl is kept alive by the caller.
  client_.reset();
  draining_ = false;
  on_attempt_over();
  if (stopping_) {
    phase_ = phase::stopped;
    log::info(name(), "stopped");
    finish_stop();
    return;
  }
  schedule_retry();
}

void reconnecting_session::schedule_retry() {
  phase_ = phase::backing_off;
  metrics_.reconnect(name(), pending_reason_);
  const milliseconds delay = retry_delay();
  log::info(name(), "reconnecting in ", delay.count(), " ms (", pending_reason_, ")");
  retry_timer_.expires_after(delay);
  retry_timer_.async_wait([self = shared_from_this(), generation = generation_](const boost::system::error_code& ec) {
    if (ec || generation != self->generation_ || self->phase_ != phase::backing_off || self->stopping_) {
      return;
    }
    self->begin_attempt();
  });
}

milliseconds reconnecting_session::retry_delay() {
  milliseconds delay = std::max(backoff_.next(random01()), pending_retry_.at_least);
  if (pending_retry_.what == retry_policy::kind::credential) {
    // Refused credentials will not fix themselves in a second: wait at least the longest back-off and never less
    // than refused_credential_min_delay, with jitter on top so many tokens refused together do not come back in step.
    const milliseconds floor = std::max<milliseconds>(cfg_.reconnect.max_delay, refused_credential_min_delay);
    const auto spread = static_cast<milliseconds::rep>(static_cast<double>(floor.count()) *
                                                       std::clamp(cfg_.reconnect.jitter, 0.0, 1.0) * random01());
    delay = std::max(delay, floor + milliseconds{spread});
  }
  return delay;
}

void reconnecting_session::finish_stop() {
  // `done` runs on the io_context, never inside stop() or a transport callback.
  for (auto& done : stop_callbacks_) {
    boost::asio::post(io_, std::move(done));
  }
  stop_callbacks_.clear();
}

void reconnecting_session::cancel_socket_timers() noexcept {
  ++phase_serial_;
  phase_timer_.cancel();
  keepalive_timer_.cancel();
  stable_timer_.cancel();
  stop_expecting();
}

void reconnecting_session::mark_down() {
  if (phase_ == phase::live) {
    metrics_.connection_up(name(), false);
  }
}

void reconnecting_session::pause_reading() {
  paused_ = true;
  if (client_ && phase_ == phase::live) {
    client_->pause_reading();
  }
}

void reconnecting_session::resume_reading() {
  paused_ = false;
  resumed_at_ = std::chrono::steady_clock::now();
  if (client_) {
    client_->resume_reading();
  }
  if (std::exchange(watchdog_deferred_, false) && expecting_ && phase_ == phase::live) {
    arm_watchdog(resumed_at_ + watchdog_bound_);
  }
}

void reconnecting_session::send(std::string text) {
  if (client_) {
    client_->send_text(text);
  }
}

void reconnecting_session::send(std::string_view text) {
  if (client_) {
    client_->send_text(text);
  }
}

void reconnecting_session::send_ping() {
  if (client_) {
    client_->send_ping("rtm-bridge");
  }
}

void reconnecting_session::emit(const pipeline::event& ev, event_name_info& info) {
  if (!info.received) {
    info.received = metrics_.received_counter(name(), ev.name);
  }
  info.received.increment();
  sink_.on_event(ev);
}

reconnecting_session::event_name_info& reconnecting_session::name_info(std::string_view event_name) {
  constexpr std::size_t limit = 256;
  if (const auto it = names_.find(event_name); it != names_.end()) {
    return it->second;
  }
  if (names_.size() >= limit) {
    overflow_info_.wanted = wants_event(event_name);
    overflow_info_.received = metrics::counter{};  // made afresh for this name if it gets published
    return overflow_info_;
  }
  event_name_info info;
  info.wanted = wants_event(event_name);
  return names_.emplace(std::string(event_name), info).first->second;
}

void reconnecting_session::dead_letter(std::string_view reason, std::string_view raw,
                                       std::chrono::system_clock::time_point received_at, std::string_view detail,
                                       std::size_t original_size) {
  pipeline::dead_letter dl;
  dl.connection = name();
  dl.from = from_;
  dl.reason = reason;
  dl.raw = raw;
  dl.received_at = received_at;
  dl.detail = detail;
  dl.original_size = original_size;
  sink_.on_dead_letter(dl);
}

double reconnecting_session::random01() noexcept {
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
}

}  // namespace rtm::upstream
