#include "kafka/publisher.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>

#include "kafka/envelope.hpp"
#include "kafka/spooled_record.hpp"
#include "metrics/registry.hpp"
#include "util/log.hpp"
#include "util/scope_exit.hpp"

namespace rtm::kafka {
namespace {

using clock = std::chrono::steady_clock;

std::int64_t to_ns(std::chrono::system_clock::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

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
  dead_letters_.set_durability(durability_);
  // The spool first: a directory held by another process is refused before anything connects to Kafka.
  if (tune.spool) {
    store_.set_settle_listener(this);
    spool_ = std::make_unique<spool::spool>(io, *tune.spool, static_cast<spool::listener&>(*this));
    const spool::recovery_report& r = spool_->recovery();
    log::info("", "spool: ", tune.spool->path, ": ", r.segments, " segment(s), ", r.bytes, " bytes; sending from seq ",
              r.first_unconfirmed, ", appending from seq ", r.next_seq,
              r.truncated_bytes > 0 ? "; a torn tail of " + std::to_string(r.truncated_bytes) + " bytes was cut" : "");
  }
  recovery_.start();
  if (spool_) {
    metrics_.set_spool_source([this] {
      const spool::spool::figures f = spool_->current();
      return metrics::registry::spool_figures{.bytes = f.bytes,
                                              .records = f.records,
                                              .oldest_age_seconds = f.oldest_age_seconds,
                                              .corrupt_records = f.corrupt,
                                              .replayed = f.replayed};
    });
    progress();  // what an earlier process left in the spool
  }
}

publisher::~publisher() {
  alive_.reset();  // handlers still queued on the io_context do nothing from here on
  if (spool_) {
    metrics_.set_spool_source(nullptr);
    spool_->close();
  }
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
    const auto build = [&](record& r) { build_event_record(r, ev, topic, next_event_sequence(), id_scratch_); };
    if (spool_) {
      const std::uint64_t seq = spool_accept(ev.connection, ev.received_at, build);
      if (seq != 0 && ev.ack.wanted()) {
        spool_acks_.emplace_back(seq, ev.ack);  // told once durable: on_spool_written()
      }
    } else {
      store_.append(build).ack = ev.ack;
    }
    ++stats_.accepted;
  });
}

void publisher::on_dead_letter(const pipeline::dead_letter& dl) noexcept {
  accept(dl.connection, "dead letter ", dl.reason, [this, &dl] {
    if (spool_) {
      spool_accept(dl.connection, dl.received_at, [&](record& r) { dead_letters_.build(r, dl); });
      dead_letters_.counted(dl);
    } else {
      dead_letters_.accept(dl);
    }
  });
}

void publisher::publish_reply(std::string_view topic, std::string_view connection, std::string_view command_id,
                              std::string_view value, pipeline::durability_request ack) noexcept {
  accept(connection, "command reply ", command_id, [&] {
    store_.append([&](record& r) { build_reply_record(r, topic, connection, command_id, value); }).ack = ack;
  });
}

// ---- the spool ----------------------------------------------------------------------------------------------------

template <typename Build>
std::uint64_t publisher::spool_accept(std::string_view connection, std::chrono::system_clock::time_point received_at,
                                      Build&& build) {
  const std::int64_t at = to_ns(received_at);
  std::uint64_t seq = 0;
  spool::spool::append_result result = spool::spool::append_result::failed;
  if (held_.empty() && spool_->at_end() && spool_->window() < spool_->max_in_flight()) {
    // The producer keeps up: the record goes to the spool and, from memory, straight into the window.
    record& r = store_.append(std::forward<Build>(build));
    util::scope_exit undo([this, &r] { store_.settle(r); });  // not in the spool: not kept either
    spool_payload_.clear();
    encode_spooled(r, spool_payload_);
    result = spool_->append(at, spool_payload_, seq);
    if (result == spool::spool::append_result::ok) {
      undo.release();
      r.spool_seq = seq;
      spool_->take_live(seq, at);
      return seq;
    }
  } else {
    // Behind (an outage, a restart's backlog): to the spool only; the record is read back in order later.
    std::forward<Build>(build)(spool_scratch_);
    spool_payload_.clear();
    encode_spooled(spool_scratch_, spool_payload_);
    if (!held_.empty()) {
      result = spool::spool::append_result::full;  // behind what is held: keeps receipt order
    } else {
      result = spool_->append(at, spool_payload_, seq);
      if (result == spool::spool::append_result::ok) {
        return seq;
      }
    }
  }
  if (result == spool::spool::append_result::full && tuning_.spool->block_when_full) {
    // Held records are never acknowledged early: should the process die first, the upstream redelivers them.
    held_.push_back({at, std::string(connection), spool_payload_});
    return 0;  // update_state() pauses upstream
  }
  count_not_spooled(connection, result);
  return 0;
}

void publisher::count_not_spooled(std::string_view connection, spool::spool::append_result result) {
  if (result == spool::spool::append_result::full) {
    ++stats_.spool_dropped;
    metrics_.spool_dropped(connection);
  } else {
    count_failure(connection, "spool_failed");
  }
}

void publisher::refill_from_spool() {
  while (spool_->window() < spool_->max_in_flight() && !spool_->at_end()) {
    spool::frame_view f;
    if (spool_->read_next(f) != spool::spool::read_result::record) {
      return;
    }
    bool ok = false;
    record& r = store_.append([&](record& rec) { ok = decode_spooled(rec, f.payload); });
    if (!ok) {
      // A frame whose checksum holds but which is no record this version writes: nothing can publish it.
      log::error("", "spool: record ", f.seq, " is not a record this version of rtm-bridge can read; skipped");
      store_.settle(r);
      spool_->settle(f.seq);
      count_failure("", "spool_unreadable");
      continue;
    }
    r.spool_seq = f.seq;
    const auto age = std::chrono::system_clock::now().time_since_epoch() - std::chrono::nanoseconds(f.received_at_ns);
    r.received_steady = clock::now() - std::chrono::duration_cast<clock::duration>(age);
    ++stats_.spool_read_back;
  }
}

void publisher::on_spool_written(std::uint64_t through_seq) noexcept {
  // Acknowledgements may lead a session to send; none of that re-enters here.
  while (!spool_acks_.empty() && spool_acks_.front().first <= through_seq) {
    durability_->notify(spool_acks_.front().second);
    spool_acks_.pop_front();
  }
}

void publisher::on_settled(std::uint64_t spool_seq) noexcept {
  spool_->settle(spool_seq);
}

void publisher::on_spool_room() noexcept {
  guarded(
      "",
      [this] {
        while (!held_.empty() && !spool_->failed()) {
          std::uint64_t seq = 0;
          const spool::spool::append_result result =
              spool_->append(held_.front().received_at_ns, held_.front().payload, seq);
          // A failed append has already told on_spool_failed(), which counted and cleared what was held: nothing
          // held may be touched after it.
          if (result != spool::spool::append_result::ok) {
            break;
          }
          held_.pop_front();
        }
      },
      "cannot append the held records to the spool");
  progress();
}

void publisher::on_spool_failed(const std::string& reason) noexcept {
  guarded(
      "",
      [this, &reason] {
        for (const held_record& h : held_) {
          count_not_spooled(h.connection, spool::spool::append_result::failed);
        }
        held_.clear();
        if (on_spool_failed_) {
          post_guarded("the spool failure handler failed", [this, reason] {
            if (on_spool_failed_) {
              on_spool_failed_(reason);
            }
          });
        }
        update_state();
      },
      "after the spool failed");
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
  if (spool_ && !stopped_) {
    refill_from_spool();
  }
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
  // With a spool, upstream waits only for the spool (held records under when_full: block), never for Kafka.
  const bool want =
      spool_ ? recovery_.gave_up() || !held_.empty()
             : recovery_.gave_up() || recovery_.replacing() ||
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
      durability_->notify(r->ack);
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
  const bool all_read = !spool_ || spool_->failed() || (spool_->at_end() && held_.empty());
  if ((store_.unsettled() == 0 && all_read) || recovery_.gave_up() || clock::now() >= drain_deadline_) {
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
    if (spool_) {
      on_spool_room();  // a last chance for what is held (when_full: block) to get into the spool
      for (const held_record& h : held_) {
        // Only in memory: gone with the process. A Socket Mode upstream redelivers these (never acknowledged).
        count_failure(h.connection, "spool_full_at_stop");
      }
      if (!held_.empty()) {
        log::error("", "kafka: ", held_.size(), " records held while the spool was full (when_full: block) could not ",
                   "be written before the stop and are lost");
        held_.clear();
      }
      drain_left_ = spool_->current().records;
      spool_->close();
    }
    if (drain_left_ == 0) {
      log::info("", "kafka: drained: every record is confirmed");
    } else if (spool_) {
      log::warn("", "kafka: drain ended with ", drain_left_,
                " records not confirmed by Kafka; they stay in the spool (", tuning_.spool->path,
                ") and are sent after the next start");
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
