#include "kafka/publisher.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>

#include "kafka/envelope.hpp"
#include "metrics/registry.hpp"
#include "util/log.hpp"
#include "util/scope_exit.hpp"

namespace rtm::kafka {
namespace {

using clock = std::chrono::steady_clock;

// The publisher's error boundary (README "Error policy"): the sink entry points, the posted handlers and the drain
// timer run their work through it, so nothing escapes into a session, Asio or librdkafka. An exception is logged
// (`what...` says what failed) and reported as false; the store stays consistent on its own (append() undoes,
// dead_letters::fail() settles).
template <typename Work, typename... What>
bool guarded(std::string_view connection, Work&& work, const What&... what) noexcept {
  try {
    std::forward<Work>(work)();
    return true;
  } catch (const std::exception& e) {
    log::error(connection, "kafka: ", what..., ": ", e.what());
    return false;
  }
}

}  // namespace

publisher::publisher(boost::asio::io_context& io, const config::kafka_config& cfg, metrics::registry& metrics,
                     std::string bootstrap_servers)
    : publisher(io, cfg, metrics, std::move(bootstrap_servers), tuning{}) {}

publisher::publisher(boost::asio::io_context& io, const config::kafka_config& cfg, metrics::registry& metrics,
                     std::string bootstrap_servers, tuning tune)
    : io_(io),
      metrics_(metrics),
      tuning_(tune),
      bootstrap_servers_(bootstrap_servers),
      router_(cfg, tune.topic_cache_limit),
      store_(record_store::spare_limits{.buffers = tune.limits.high_records}),
      dead_letters_(store_, metrics, stats_, cfg.dead_letter_topic, tune.topic_cache_limit),
      recovery_(io, make_producer_settings(cfg, std::move(bootstrap_servers), tune.safety_poll),
                {tune.fatal_limit, tune.fatal_window}, *this, *this, store_, stats_),
      published_(metrics),
      drain_timer_(io) {
  recovery_.start();
}

publisher::~publisher() {
  alive_.reset();  // handlers still queued on the io_context do nothing from here on
  boost::system::error_code ignored;
  drain_timer_.cancel(ignored);
  // recovery_ is destroyed before store_: every librdkafka handle is gone before the record bytes are freed.
}

template <typename Handler>
void publisher::post_guarded(std::string_view what, Handler&& handler) {
  boost::asio::post(io_,
                    [token = std::weak_ptr<int>(alive_), what, h = std::forward<Handler>(handler)]() mutable noexcept {
                      if (token.lock()) {
                        guarded("", h, what);
                      }
                    });
}

// ---- accept -------------------------------------------------------------------------------------------------------

// The sink's entry points: a record is added to the store (`add`), then produced; after the drain it is refused.
template <typename Add>
void publisher::accept(std::string_view connection, std::string_view what, std::string_view name, Add&& add) noexcept {
  if (stopped_) {
    log::error(connection, "kafka: ", what, name, " arrived after the publisher stopped; not published");
  }
  if (stopped_ || !guarded(connection, std::forward<Add>(add), "cannot accept ", what, name)) {
    // Should counting need memory that is not there either, the process ends here (README "Error policy").
    count_failure(connection, stopped_ ? "publisher_stopped" : "internal_error");
    return;
  }
  progress();
}

void publisher::on_event(const pipeline::event& ev) noexcept {
  if (ev.team_id.empty()) {
    // Sessions dead-letter these themselves; reaching here is a bug upstream, but the event still must not become a
    // keyless record.
    log::warn(ev.connection, "kafka: event ", ev.name, " has no team id; dead-lettered as no_team_id");
    on_dead_letter(pipeline::dead_letter{ev.connection, ev.from, "no_team_id", ev.payload, ev.received_at});
    return;
  }
  accept(ev.connection, "event ", ev.name, [this, &ev] {
    const std::string& topic = router_.resolve(ev);
    store_.append([&](record& r) { build_event_record(r, ev, topic, next_event_sequence(), id_scratch_); });
    ++stats_.accepted;
  });
}

void publisher::on_dead_letter(const pipeline::dead_letter& dl) noexcept {
  accept(dl.connection, "dead letter ", dl.reason, [this, &dl] { dead_letters_.accept(dl); });
}

void publisher::count_failure(std::string_view connection, std::string_view reason) {
  ++stats_.failed;
  metrics_.event_failed(connection, reason);
}

// ---- produce ------------------------------------------------------------------------------------------------------

// After anything that may let records move: produce what waits, decide backpressure, see whether a drain is done.
void publisher::progress() noexcept {
  guarded(
      "",
      [this] {
        pump();
        update_state();
        check_drain();
      },
      "cannot produce now (the records wait for the next round)");
}

void publisher::pump() {
  producer* p = recovery_.current();
  if (p == nullptr || recovery_.replacing() || stopped_) {
    return;
  }
  // Our own bound first: past it the rest waits here, in order.
  while (store_.in_flight() < tuning_.limits.high_records && store_.in_flight_bytes() < tuning_.limits.high_bytes) {
    record* r = store_.next_waiting();
    if (r == nullptr) {
      return;
    }
    header_list headers{};
    const rd_kafka_resp_err_t err = p->produce({.topic = r->topic_c_str(),
                                                .key = r->field(record_field::key),
                                                .value = r->field(record_field::value),
                                                .headers = r->headers(headers),
                                                .seq = r->seq});
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      store_.mark_in_flight(*r, recovery_.generation());
      continue;
    }
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      ++stats_.queue_full;
      if (store_.in_flight() == 0 || r->field(record_field::value).size() > p->max_queue_bytes()) {
        // Full with nothing of ours in it, or larger than the whole queue: librdkafka 2.0.2 refuses a record above
        // queue.buffering.max.kbytes even when its queue is empty, so waiting would stall every later record.
        dead_letters_.refuse_too_large(*r, p->max_queue_bytes());
        continue;
      }
      // This record and all later ones wait, in order, until reports drain librdkafka's queue; and upstream stays
      // paused until that queue is half empty, not just one below full (no flapping).
      queue_full_resume_at_ = std::min(queue_full_resume_at_, store_.in_flight() / 2);
      return;
    }
    if (classify_delivery(err) == delivery_outcome::reproduce) {
      recovery_.schedule(std::string("the producer refuses new records: ") + rd_kafka_err2str(err));
      return;
    }
    // Refused for good before it left (e.g. larger than message.max.bytes): a verdict on this record only.
    dead_letters_.fail(*r, err, rd_kafka_err2str(err));
  }
}

void publisher::update_state() {
  metrics_.kafka_queue_messages(store_.unsettled());
  backpressure_limits limits = tuning_.limits;
  limits.low_records = std::min(limits.low_records, queue_full_resume_at_);
  const bool want = recovery_.gave_up() || recovery_.replacing() ||
                    should_pause(paused_, store_.waiting(), store_.in_flight(), store_.in_flight_bytes(), limits);
  if (!want) {
    queue_full_resume_at_ = SIZE_MAX;  // the QUEUE_FULL episode is over
  }
  if (want == paused_) {
    return;
  }
  if (on_backpressure_) {
    // Posted before the state changes: if posting fails, the next round decides again.
    post_guarded("the backpressure handler failed", [this, want] {
      if (on_backpressure_) {
        on_backpressure_(want);
      }
    });
  }
  paused_ = want;
  if (want) {
    log::info("", "kafka: pausing upstream reading (", store_.waiting(), " records waiting locally, ",
              store_.in_flight(), " in flight)");
  } else {
    log::info("", "kafka: resuming upstream reading (", store_.in_flight(), " records in flight)");
  }
}

// ---- delivery -----------------------------------------------------------------------------------------------------

void publisher::on_delivery(std::uint32_t generation, const delivery_report& report) {
  record* r = generation == recovery_.generation() ? store_.find(report.seq) : nullptr;
  if (r == nullptr || r->st != record::state::in_flight || r->generation != generation) {
    return;  // settled already, or from a handle replaced since
  }
  // A fatal handle fails everything it held with the underlying fatal code: no verdict on the records.
  const delivery_outcome outcome = report.handle_fatal ? delivery_outcome::reproduce : classify_delivery(report.err);
  switch (outcome) {
    case delivery_outcome::persisted: {
      const util::scope_exit settle([this, r] { store_.settle(*r); });  // counted or not, it is delivered
      ++stats_.delivered;
      brokers_.up();
      if (r->kind == record_kind::event) {
        published_.count(r->field(record_field::connection), r->field(record_field::topic));
        metrics_.publish_latency(std::chrono::duration<double>(clock::now() - r->received_steady).count());
      }
      break;
    }
    case delivery_outcome::reproduce:
      // Dropped without a verdict (the handle hit a fatal error and purged its queue): keep it for the next
      // producer, which only a fatal error brings.
      store_.mark_waiting(*r, report.status != RD_KAFKA_MSG_STATUS_NOT_PERSISTED);
      recovery_.schedule(std::string("librdkafka dropped records: ") + rd_kafka_err2str(report.err));
      break;
    case delivery_outcome::failed:
      dead_letters_.fail(*r, report.err, rd_kafka_err2str(report.err));
      break;
  }
}

void publisher::on_error(std::uint32_t generation, rd_kafka_resp_err_t err, bool fatal, const std::string& reason) {
  if (generation != recovery_.generation()) {
    return;
  }
  if (fatal) {
    log::error("", "kafka: fatal producer error ", rd_kafka_err2name(err), ": ", reason);
    recovery_.schedule(reason);
    return;
  }
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
    brokers_.all_down(clock::now());
    log::warn("", "kafka: all brokers are down (", reason, "); records wait and librdkafka keeps reconnecting");
    return;
  }
  // Everything else here is informational (librdkafka retries on its own) and its log callback has already said
  // it at the right level: keep it for debugging only.
  log::debug("", "kafka: ", reason, " (", rd_kafka_err2name(err), ")");
}

void publisher::on_statistics(std::uint32_t generation, const metrics::kafka_client_figures& figures) {
  if (generation != recovery_.generation()) {
    return;
  }
  metrics_.kafka_client(figures);
  brokers_.statistics(figures.brokers_up, figures.brokers_known, clock::now());
}

void publisher::on_served(std::uint32_t generation) {
  if (generation == recovery_.generation()) {
    progress();
  }
}

// ---- recovery -----------------------------------------------------------------------------------------------------

void publisher::on_producer_created(const producer& p, bool replacement) noexcept {
  brokers_.up();  // a new handle has its own view of the brokers
  dead_letters_.fit_to(p.max_message_bytes(), p.max_queue_bytes());
  if (replacement) {
    progress();  // every unconfirmed record again, in its original order
  }
}

void publisher::on_gave_up(const std::string& reason) noexcept {
  guarded(
      "",
      [this, &reason] {
        update_state();
        if (on_fatal_) {
          post_guarded("the fatal handler failed", [this, reason] {
            if (on_fatal_) {
              on_fatal_(reason);
            }
          });
        }
        check_drain();
      },
      "after giving up on the producer");
}

void publisher::on_retired_destroyed() noexcept {
  maybe_report_drained();
}

rd_kafka_resp_err_t publisher::inject_fatal_error_for_testing(rd_kafka_resp_err_t err) noexcept {
  return recovery_.inject_fatal_error_for_testing(err);
}

// ---- drain --------------------------------------------------------------------------------------------------------

void publisher::drain(std::chrono::steady_clock::time_point deadline, drain_handler done) {
  drain_deadline_ = deadline;
  drain_done_ = std::move(done);
  if (draining_) {
    // A second call moves the deadline and replaces the handler; if the drain already ended, it is answered now.
    maybe_report_drained();
    return;
  }
  draining_ = true;
  const auto left_ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
  log::info("", "kafka: draining ", store_.unsettled(), " unconfirmed records (", left_ms, " ms allowed)");
  progress();
  if (stopped_) {
    return;
  }
  // The deadline must be noticed even when no report arrives at all (e.g. every broker unreachable).
  struct ticker {
    publisher* self;
    std::weak_ptr<int> token;
    void operator()(const boost::system::error_code& ec) const noexcept {
      if (ec || !token.lock() || self->stopped_) {
        return;
      }
      guarded(
          "", [this] { self->check_drain(); }, "cannot check the drain");
      if (!self->stopped_) {
        self->drain_timer_.expires_after(self->tuning_.drain_tick);
        self->drain_timer_.async_wait(*this);
      }
    }
  };
  drain_timer_.expires_after(tuning_.drain_tick);
  drain_timer_.async_wait(ticker{this, alive_});
}

void publisher::check_drain() {
  if (!draining_ || stopped_) {
    return;
  }
  if (store_.unsettled() == 0 || recovery_.gave_up() || clock::now() >= drain_deadline_) {
    finish_drain();
  }
}

void publisher::finish_drain() {
  // Retiring serves the handle's queue, which must not happen inside its own poll (where check_drain() may run).
  // Posted first: if posting fails, the drain is still on and the next check tries again.
  post_guarded("cannot finish draining", [this] {
    recovery_.retire();
    drain_left_ = store_.unsettled();
    update_state();
    if (drain_left_ == 0) {
      log::info("", "kafka: drained: every record is confirmed");
    } else {
      log::warn("", "kafka: drain ended with ", drain_left_,
                " records not confirmed by Kafka (they may or may not have been written)");
    }
    maybe_report_drained();
  });
  stopped_ = true;
  recovery_.close();  // no producer is replaced any more
  boost::system::error_code ignored;
  drain_timer_.cancel(ignored);
}

void publisher::maybe_report_drained() noexcept {
  if (!stopped_ || !recovery_.idle() || !drain_done_) {
    return;
  }
  const drain_handler done = std::move(drain_done_);
  drain_done_ = nullptr;
  guarded(
      "", [&done, this] { done(drain_left_); }, "the drain handler failed");
}

bool publisher::healthy() const noexcept {
  if (recovery_.current() == nullptr || recovery_.gave_up() || stopped_ || recovery_.replacing()) {
    return false;
  }
  return brokers_.healthy(clock::now(), tuning_.broker_down_grace);
}

}  // namespace rtm::kafka
