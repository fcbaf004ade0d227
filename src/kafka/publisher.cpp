#include "kafka/publisher.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/post.hpp>
#include <charconv>
#include <cstdint>

#include "kafka/envelope.hpp"
#include "metrics/registry.hpp"
#include "util/log.hpp"

namespace rtm::kafka {
namespace {

using clock = std::chrono::steady_clock;

constexpr std::string_view json_content = "application/json";
constexpr std::string_view raw_content = "application/octet-stream";
constexpr std::chrono::seconds missing_topic_report_interval{60};

// Settled records' buffers are kept for the next records, up to as many as may be in flight (the backpressure bound:
// at full speed the number of outstanding records swings between the low and high water marks, and each new record
// should find a buffer) and up to this much memory in all. A buffer larger than the per-buffer cap (a rare huge
// event or dead letter) is freed instead. The kept memory is what those records used at their peak anyway.
constexpr std::size_t spare_bytes_max_capacity = std::size_t{16} * 1024;
constexpr std::size_t spare_bytes_max_total = std::size_t{64} << 20U;
constexpr std::size_t published_counters_limit = 4096;

// A dead letter's value is cut so that, with its key, headers and the protocol overhead, it still fits within the
// producer's message.max.bytes: a dead letter that is too large to send would only be lost as well.
std::size_t dead_letter_cap(std::size_t max_message_bytes) noexcept {
  return max_message_bytes > 32768 ? max_message_bytes - 16384 : max_message_bytes / 2;
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
      dead_letter_topic_(cfg.dead_letter_topic),
      router_(cfg, tune.topic_cache_limit),
      fatal_budget_(tune.fatal_limit, tune.fatal_window),
      drain_timer_(io) {
  settings_.bootstrap_servers = std::move(bootstrap_servers);
  settings_.client_id = cfg.client_id;
  settings_.delivery_timeout = cfg.delivery_timeout;
  settings_.properties = cfg.properties;
  settings_.safety_poll_interval = tune.safety_poll;
  spare_bytes_.reserve(tune.limits.high_records);
  create_producer();
}

publisher::~publisher() {
  alive_.reset();  // handlers still queued on the io_context do nothing from here on
  boost::system::error_code ignored;
  drain_timer_.cancel(ignored);
  if (producer_) {
    std::thread t = producer_->close({});
    producer_.reset();
    if (t.joinable()) {
      t.join();
    }
  }
  for (auto& [generation, thread] : reapers_) {
    if (thread.joinable()) {
      thread.join();
    }
  }
  // Only now, with every librdkafka handle gone, may the record bytes be freed (by the members' destructors).
}

template <typename Handler>
void publisher::post_guarded(Handler&& handler) {
  boost::asio::post(io_, [token = std::weak_ptr<int>(alive_), h = std::forward<Handler>(handler)]() mutable {
    if (token.lock()) {
      h();
    }
  });
}

void publisher::create_producer() {
  const std::uint32_t generation = generation_ + 1;
  producer_ = producer::create(io_, settings_, *this, generation);
  generation_ = generation;
  brokers_down_since_.reset();  // a new handle has its own view of the brokers
  ++stats_.producers_created;
  // A dead letter must fit both message.max.bytes and librdkafka's queue, or it would be lost as well.
  max_dead_letter_value_ = std::min(dead_letter_cap(producer_->max_message_bytes()), producer_->max_queue_bytes());
}

// ---- the record store -------------------------------------------------------------------------------------------

record& publisher::append_record() {
  // Always the largest key: the insertion hint makes it constant time.
  record& r = records_.emplace_hint(records_.end(), next_seq_, record{})->second;
  r.seq = next_seq_++;
  return r;
}

void publisher::drop_last_record() noexcept {
  records_.erase(--next_seq_);
}

std::uint64_t publisher::first_seq() const noexcept {
  return records_.empty() ? next_seq_ : records_.begin()->first;
}

record* publisher::find(std::uint64_t seq) noexcept {
  const auto it = records_.find(seq);
  return it == records_.end() ? nullptr : &it->second;
}

// ---- pipeline::sink ---------------------------------------------------------------------------------------------

void publisher::on_event(const pipeline::event& ev) noexcept {
  if (ev.team_id.empty()) {
    // Sessions dead-letter these themselves; reaching here is a bug upstream, but the event still must not become a
    // keyless record.
    log::warn(ev.connection, "kafka: event ", ev.name, " has no team id; dead-lettered as no_team_id");
    on_dead_letter(pipeline::dead_letter{ev.connection, ev.from, "no_team_id", ev.payload, ev.received_at});
    return;
  }
  try {
    if (stopped_) {
      ++stats_.failed;
      log::error(ev.connection, "kafka: event ", ev.name, " arrived after the publisher stopped; not published");
      metrics_.event_failed(ev.connection, "publisher_stopped");
      return;
    }
    const std::string& topic = router_.resolve(ev);
    record& r = append_record();
    give_spare_bytes(r);
    try {
      build_event_record(r, ev, topic, next_event_sequence(), id_scratch_);
    } catch (const std::exception&) {
      drop_last_record();
      throw;
    }
    ++waiting_;
    ++stats_.accepted;
    pump();
    update_state();
  } catch (const std::exception& e) {
    log::error(ev.connection, "kafka: cannot accept event ", ev.name, ": ", e.what());
    count_failure(ev.connection, "internal_error");
  }
}

void publisher::on_dead_letter(const pipeline::dead_letter& dl) noexcept {
  try {
    if (stopped_) {
      ++stats_.failed;
      log::error(dl.connection, "kafka: dead letter (", dl.reason, ") arrived after the publisher stopped; dropped");
      metrics_.event_failed(dl.connection, "publisher_stopped");
      return;
    }
    accept_dead_letter(dl);
    pump();
    update_state();
  } catch (const std::exception& e) {
    log::error(dl.connection, "kafka: cannot accept a dead letter (", dl.reason, "): ", e.what());
    count_failure(dl.connection, "internal_error");
  }
}

void publisher::count_failure(std::string_view connection, std::string_view reason) noexcept {
  ++stats_.failed;
  try {
    metrics_.event_failed(connection, reason);
  } catch (const std::exception& e) {
    log::error(connection, "kafka: cannot count a failure (", reason, "): ", e.what());
  }
}

void publisher::give_spare_bytes(record& r) noexcept {
  if (!spare_bytes_.empty()) {
    spare_bytes_total_ -= spare_bytes_.back().capacity();
    r.recycle_bytes(std::move(spare_bytes_.back()));
    spare_bytes_.pop_back();
  }
}

void publisher::keep_spare_bytes(std::string bytes) noexcept {
  if (spare_bytes_.size() < spare_bytes_.capacity() && bytes.capacity() <= spare_bytes_max_capacity &&
      spare_bytes_total_ + bytes.capacity() <= spare_bytes_max_total) {
    spare_bytes_total_ += bytes.capacity();
    spare_bytes_.push_back(std::move(bytes));  // within the reserved capacity: no allocation
  }
}

void publisher::count_published(const record& r) {
  const std::string_view connection = r.field(record_field::connection);
  const std::string_view topic = r.field(record_field::topic);
  counter_key_.assign(connection);
  counter_key_ += ' ';
  counter_key_ += topic;
  if (const auto it = published_counters_.find(std::string_view(counter_key_)); it != published_counters_.end()) {
    it->second.increment();
    return;
  }
  if (published_counters_.size() >= published_counters_limit) {
    metrics_.event_published(connection, topic);
    return;
  }
  metrics::counter c = metrics_.published_counter(connection, topic);
  published_counters_.emplace(counter_key_, c);
  c.increment();
}

void publisher::accept_dead_letter(const pipeline::dead_letter& dl) {
  record& r = append_record();
  give_spare_bytes(r);
  try {
    build_dead_letter_record(r, dl, dead_letter_topic_, max_dead_letter_value_);
  } catch (const std::exception&) {
    drop_last_record();
    throw;
  }
  ++waiting_;
  ++stats_.accepted;
  metrics_.dead_letter(dl.connection, dl.reason);
}

// ---- producing --------------------------------------------------------------------------------------------------

void publisher::pump() noexcept {
  if (!producer_ || recreate_pending_ || failed_ || stopped_) {
    return;
  }
  while (true) {
    if (in_flight_ >= tuning_.limits.high_records || in_flight_bytes_ >= tuning_.limits.high_bytes) {
      return;  // our own bound: the rest waits here, in order
    }
    // The next record at or after the cursor that waits (the store holds only unsettled records).
    auto it = records_.lower_bound(cursor_);
    while (it != records_.end() && it->second.st != record::state::waiting) {
      ++it;
    }
    if (it == records_.end()) {
      cursor_ = next_seq_;
      return;
    }
    record* r = &it->second;
    cursor_ = r->seq;
    const rd_kafka_resp_err_t err = produce(*r);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      r->st = record::state::in_flight;
      r->generation = generation_;
      --waiting_;
      ++in_flight_;
      in_flight_bytes_ += r->field(record_field::value).size();
      ++cursor_;
      continue;
    }
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL &&
        (in_flight_ == 0 || r->field(record_field::value).size() > producer_->max_queue_bytes())) {
      // Full with nothing of ours in it, or larger than the whole queue: librdkafka 2.0.2 refuses a record above
      // queue.buffering.max.kbytes even when its queue is empty, so waiting would stall every later record forever.
      ++stats_.queue_full;
      ++cursor_;
      refuse_too_large(*r);
      continue;
    }
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      // librdkafka's queue is full: this record and all later ones wait, in order, until reports drain it; and
      // upstream stays paused until librdkafka's queue is half empty, not just one below full (no flapping).
      ++stats_.queue_full;
      queue_full_resume_at_ = std::min(queue_full_resume_at_, in_flight_ / 2);
      return;
    }
    if (classify_delivery(err) == delivery_outcome::reproduce) {
      schedule_recreate(std::string("the producer refuses new records: ") + rd_kafka_err2str(err));
      return;
    }
    // Refused for good before it left (e.g. larger than message.max.bytes): a verdict on this record only.
    ++cursor_;
    fail(*r, err, rd_kafka_err2str(err));
  }
}

rd_kafka_resp_err_t publisher::produce(record& r) noexcept {
  std::array<header_view, 10> headers{};
  std::size_t n = 0;
  std::array<char, 24> truncated{};
  const std::string_view event = r.field(record_field::event);
  const std::string_view enterprise = r.field(record_field::enterprise);
  if (r.kind == record_kind::event) {
    headers[n++] = {"rtm-event", event};
    headers[n++] = {"rtm-connection", r.field(record_field::connection)};
    headers[n++] = {"rtm-source", pipeline::to_string(r.from)};
    headers[n++] = {"content-type", json_content};
    if (!enterprise.empty()) {
      headers[n++] = {"rtm-enterprise", enterprise};
    }
  } else {
    const std::string_view original_topic = r.field(record_field::original_topic);
    const std::string_view detail = r.field(record_field::error_detail);
    headers[n++] = {"rtm-error", r.field(record_field::error)};
    headers[n++] = {"rtm-connection", r.field(record_field::connection)};
    headers[n++] = {"rtm-source", pipeline::to_string(r.from)};
    // A failed event's dead letter carries its envelope (JSON unless it had to be cut); others the raw frame.
    headers[n++] = {"content-type", !original_topic.empty() && r.truncated_from == 0 ? json_content : raw_content};
    if (!event.empty()) {
      headers[n++] = {"rtm-event", event};
    }
    if (!enterprise.empty()) {
      headers[n++] = {"rtm-enterprise", enterprise};
    }
    if (!original_topic.empty()) {
      headers[n++] = {"rtm-original-topic", original_topic};
    }
    if (!detail.empty()) {
      headers[n++] = {"rtm-error-detail", detail};
    }
    if (r.truncated_from != 0) {
      const auto res = std::to_chars(truncated.data(), truncated.data() + truncated.size(), r.truncated_from);
      headers[n++] = {"rtm-truncated", std::string_view(truncated.data(), res.ptr)};
    }
  }
  outgoing_record out;
  out.topic = r.topic_c_str();
  out.key = r.field(record_field::key);
  out.value = r.field(record_field::value);
  out.headers = std::span<const header_view>(headers.data(), n);
  out.seq = r.seq;
  return producer_->produce(out);
}

void publisher::complete(record& r) noexcept {
  if (r.st == record::state::in_flight) {
    --in_flight_;
    in_flight_bytes_ -= std::min(in_flight_bytes_, r.field(record_field::value).size());
  } else if (r.st == record::state::waiting) {
    --waiting_;
  }
  r.st = record::state::done;
  std::string bytes = r.release_bytes();
  if (r.produced_by_retired && !reapers_.empty()) {
    // A retired handle still being destroyed may read these bytes; retire_producer() reserved the room, so this
    // push_back does not allocate.
    graveyard_.push_back(std::move(bytes));
  } else {
    // librdkafka is done with them (delivery reported, or never handed over): reuse them for the next record.
    keep_spare_bytes(std::move(bytes));
  }
  // Settled records leave at once, wherever they are: one record stuck in flight must not hold back the memory of
  // everything settled after it.
  records_.erase(r.seq);
}

void publisher::refuse_too_large(record& r) noexcept {
  const std::size_t size = r.field(record_field::value).size();
  const std::size_t keep = std::min(pipeline::oversized_event_prefix, max_dead_letter_value_);
  std::string detail;
  try {
    detail = "a record of " + std::to_string(size) + " bytes exceeds librdkafka's queue (queue.buffering.max.kbytes: " +
             std::to_string(producer_->max_queue_bytes()) +
             " bytes), which refuses it even when empty; only its first " + std::to_string(std::min(keep, size)) +
             " bytes are kept";
  } catch (const std::exception&) {
    detail.clear();  // out of memory: the dead letter goes without its detail
  }
  fail(r, RD_KAFKA_RESP_ERR__QUEUE_FULL, detail, "record_too_large", keep);
}

void publisher::fail(record& r, rd_kafka_resp_err_t err, std::string_view detail, std::string_view given_reason,
                     std::size_t max_value) noexcept {
  const std::string_view connection = r.field(record_field::connection);
  ++stats_.failed;
  try {
    const std::string reason = given_reason.empty() ? failure_reason(err) : std::string(given_reason);
    if (r.kind == record_kind::event) {
      metrics_.event_failed(connection, reason);
      if (err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC || err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        report_missing_topic(connection, r.topic_c_str(), reason);
      }
      log::warn(connection, "kafka: event ", r.field(record_field::event), " for topic ", r.topic_c_str(),
                " failed permanently (", detail, "); dead-lettered to ", dead_letter_topic_);
      record& dl = append_record();  // `r` stays valid: std::map keeps references on insertion
      try {
        build_failed_delivery_record(dl, r, dead_letter_topic_, reason, detail,
                                     std::min(max_value, max_dead_letter_value_));
      } catch (const std::exception&) {
        drop_last_record();
        throw;
      }
      ++waiting_;
      ++stats_.accepted;
      metrics_.dead_letter(connection, reason);
    } else {
      // Never dead-letter a dead letter: that could loop. Log it for the operator and count it.
      ++stats_.dead_letters_lost;
      log::error(connection, "kafka: dead letter (", r.field(record_field::error), ") lost: topic ", r.topic_c_str(),
                 " refused it permanently (", detail, ")");
      metrics_.event_failed(connection, "dead_letter_" + reason);
    }
  } catch (const std::exception& e) {
    log::error(connection, "kafka: cannot dead-letter a failed record: ", e.what());
  }
  complete(r);
}

void publisher::report_missing_topic(std::string_view connection, std::string_view topic, std::string_view reason) {
  // Once per topic and minute at error level: the per-event warnings say what happened to each event, this says
  // what the operator has to do. Bounded: topic names come from templates that upstream data fills in.
  const auto now = clock::now();
  const auto it = missing_topics_.find(topic);
  if (it != missing_topics_.end() && now - it->second < missing_topic_report_interval) {
    return;
  }
  if (it != missing_topics_.end()) {
    it->second = now;
  } else {
    if (missing_topics_.size() >= tuning_.topic_cache_limit) {
      missing_topics_.clear();
    }
    missing_topics_.emplace(std::string(topic), now);
  }
  log::error(connection, "kafka: topic ", topic,
             " does not exist and is not created automatically (the broker's auto.create.topics.enable or "
             "kafka.properties allow.auto.create.topics is off); its events are dead-lettered to ",
             dead_letter_topic_, " with rtm-error ", reason, ": create the topic or change kafka.topic/kafka.routes");
}

void publisher::update_state() noexcept {
  try {
    metrics_.kafka_queue_messages(waiting_ + in_flight_);
    backpressure_limits limits = tuning_.limits;
    limits.low_records = std::min(limits.low_records, queue_full_resume_at_);
    const bool want =
        failed_ || recreate_pending_ || should_pause(paused_, waiting_, in_flight_, in_flight_bytes_, limits);
    if (!want) {
      queue_full_resume_at_ = SIZE_MAX;  // the QUEUE_FULL episode is over
    }
    if (want == paused_) {
      return;
    }
    paused_ = want;
    if (want) {
      log::info("", "kafka: pausing upstream reading (", waiting_, " records waiting locally, ", in_flight_,
                " in flight)");
    } else {
      log::info("", "kafka: resuming upstream reading (", in_flight_, " records in flight)");
    }
    if (on_backpressure_) {
      post_guarded([this, want] {
        try {
          if (on_backpressure_) {
            on_backpressure_(want);
          }
        } catch (const std::exception& e) {
          log::error("", "kafka: backpressure handler failed: ", e.what());
        }
      });
    }
  } catch (const std::exception& e) {
    log::error("", "kafka: cannot update the backpressure state: ", e.what());
  }
}

// ---- producer_listener ------------------------------------------------------------------------------------------

void publisher::on_delivery(std::uint32_t generation, const delivery_report& report) noexcept {
  if (generation != generation_) {
    return;
  }
  record* r = find(report.seq);
  if (r == nullptr || r->st != record::state::in_flight || r->generation != generation) {
    return;  // settled already
  }
  // A fatal handle fails everything it held with the underlying fatal code: no verdict on the records.
  const delivery_outcome outcome = report.handle_fatal ? delivery_outcome::reproduce : classify_delivery(report.err);
  switch (outcome) {
    case delivery_outcome::persisted: {
      ++stats_.delivered;
      brokers_down_since_.reset();
      if (r->kind == record_kind::event) {
        try {
          count_published(*r);
          metrics_.publish_latency(std::chrono::duration<double>(clock::now() - r->received_steady).count());
        } catch (const std::exception& e) {
          log::error(r->field(record_field::connection), "kafka: cannot count a delivery: ", e.what());
        }
      }
      complete(*r);
      break;
    }
    case delivery_outcome::reproduce:
      // Dropped without a verdict (the handle hit a fatal error and purged its queue): keep it for the next
      // producer, which only a fatal error brings.
      r->st = record::state::waiting;
      r->maybe_persisted = r->maybe_persisted || report.status != RD_KAFKA_MSG_STATUS_NOT_PERSISTED;
      --in_flight_;
      in_flight_bytes_ -= std::min(in_flight_bytes_, r->field(record_field::value).size());
      ++waiting_;
      schedule_recreate(std::string("librdkafka dropped records: ") + rd_kafka_err2str(report.err));
      break;
    case delivery_outcome::failed:
      fail(*r, report.err, rd_kafka_err2str(report.err));
      break;
  }
}

void publisher::on_error(std::uint32_t generation, rd_kafka_resp_err_t err, bool fatal,
                         const std::string& reason) noexcept {
  if (generation != generation_) {
    return;
  }
  if (fatal) {
    log::error("", "kafka: fatal producer error ", rd_kafka_err2name(err), ": ", reason);
    schedule_recreate(reason);
    return;
  }
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
    if (!brokers_down_since_) {
      brokers_down_since_ = clock::now();
    }
    log::warn("", "kafka: all brokers are down (", reason, "); records wait and librdkafka keeps reconnecting");
    return;
  }
  // Everything else here is informational (librdkafka retries on its own) and its log callback has already said
  // it at the right level: keep it for debugging only.
  log::debug("", "kafka: ", reason, " (", rd_kafka_err2name(err), ")");
}

void publisher::on_statistics(std::uint32_t generation, const metrics::kafka_client_figures& figures) noexcept {
  if (generation != generation_) {
    return;
  }
  metrics_.kafka_client(figures);
  if (figures.brokers_up > 0) {
    brokers_down_since_.reset();
  } else if (figures.brokers_known > 0 && !brokers_down_since_) {
    brokers_down_since_ = clock::now();
  }
}

void publisher::on_served(std::uint32_t generation) noexcept {
  if (generation != generation_) {
    return;
  }
  pump();
  update_state();
  check_drain();
}

// ---- fatal errors -----------------------------------------------------------------------------------------------

void publisher::schedule_recreate(const std::string& reason) noexcept {
  if (recreate_pending_ || failed_ || stopped_) {
    return;
  }
  recreate_pending_ = true;
  update_state();
  try {
    // Not from here: this runs inside the handle's own poll, which must return before the handle is closed.
    post_guarded([this, reason] { recreate(reason); });
  } catch (const std::exception& e) {
    // Out of memory, inside the handle's poll: retiring it here is not possible, so stop producing for good and
    // let readiness report it.
    failed_ = true;
    log::error("", "kafka: cannot schedule the producer re-creation (", e.what(), "); publishing stopped");
    update_state();
  }
}

void publisher::recreate(const std::string& reason) noexcept {
  if (stopped_) {
    recreate_pending_ = false;  // the drain finished meanwhile: nothing is produced any more
    return;
  }
  ++stats_.fatal_errors;
  if (!fatal_budget_.allow_recreate(clock::now())) {
    recreate_pending_ = false;
    give_up(reason);
    return;
  }
  retire_producer();
  std::size_t again = 0;
  std::size_t maybe = 0;
  for (const auto& [seq, r] : records_) {
    if (r.st == record::state::waiting && r.generation != 0) {
      ++again;
      maybe += r.maybe_persisted ? 1 : 0;
    }
  }
  try {
    create_producer();
  } catch (const std::exception& e) {
    recreate_pending_ = false;
    give_up(std::string("cannot recreate the Kafka producer: ") + e.what());
    return;
  }
  stats_.reproduced += again;
  stats_.possibly_duplicated += maybe;
  log::warn("", "kafka: producer recreated after a fatal error (", reason, "; ", fatal_budget_.recent(), " of at most ",
            tuning_.fatal_limit - 1, " tolerated within ", tuning_.fatal_window.count(), " s): producing ", again,
            " unconfirmed records again in their original order, ", maybe,
            " of which may already be in Kafka (possible duplicates, same envelope id)");
  recreate_pending_ = false;
  pump();
  update_state();
  check_drain();
}

void publisher::give_up(const std::string& reason) noexcept {
  failed_ = true;
  retire_producer();
  log::error("", "kafka: giving up on the producer (", fatal_budget_.recent(), " fatal errors within the last ",
             tuning_.fatal_window.count(), " s; last: ", reason, "); ", waiting_ + in_flight_,
             " records are not confirmed");
  update_state();
  if (on_fatal_) {
    try {
      post_guarded([this, reason] {
        try {
          if (on_fatal_) {
            on_fatal_(reason);
          }
        } catch (const std::exception& e) {
          log::error("", "kafka: fatal handler failed: ", e.what());
        }
      });
    } catch (const std::exception& e) {
      log::error("", "kafka: cannot report the fatal error: ", e.what());
    }
  }
  check_drain();
}

void publisher::retire_producer() noexcept {
  if (!producer_) {
    return;
  }
  // From here pump() sees no producer; the reports served below still count (generation_ is unchanged).
  const std::shared_ptr<producer> p = std::move(producer_);
  const std::uint32_t generation = p->generation();
  p->serve();
  std::size_t keep = 0;
  for (auto& [seq, r] : records_) {
    if (r.generation == generation) {
      r.produced_by_retired = true;
    }
    keep += r.produced_by_retired ? 1 : 0;
    if (r.st == record::state::in_flight) {
      // No verdict: it may or may not have been written.
      r.st = record::state::waiting;
      r.maybe_persisted = true;
      --in_flight_;
      ++waiting_;
    }
  }
  in_flight_bytes_ = 0;
  cursor_ = first_seq();
  try {
    graveyard_.reserve(graveyard_.size() + keep);
  } catch (const std::exception& e) {
    log::error("", "kafka: cannot reserve room for records of a retired producer: ", e.what());
  }
  std::thread reaper = p->close([&io = io_, token = std::weak_ptr<int>(alive_), this, generation] {
    // On the reaper thread: only post back.
    boost::asio::post(io, [token, this, generation] {
      if (token.lock()) {
        on_producer_destroyed(generation);
      }
    });
  });
  if (reaper.joinable()) {
    try {
      reapers_.emplace(generation, std::move(reaper));
    } catch (const std::exception& e) {
      log::error("", "kafka: cannot track the thread destroying a producer (", e.what(), "); waiting for it");
      reaper.join();
    }
  }
}

void publisher::on_producer_destroyed(std::uint32_t generation) noexcept {
  const auto it = reapers_.find(generation);
  if (it != reapers_.end()) {
    if (it->second.joinable()) {
      it->second.join();  // it has nothing left to do but return
    }
    reapers_.erase(it);
  }
  if (reapers_.empty()) {
    graveyard_.clear();
    graveyard_.shrink_to_fit();
  }
  maybe_report_drained();
}

rd_kafka_resp_err_t publisher::inject_fatal_error_for_testing(rd_kafka_resp_err_t err) noexcept {
  return producer_ ? producer_->inject_fatal_error_for_testing(err) : RD_KAFKA_RESP_ERR__STATE;
}

// ---- draining ---------------------------------------------------------------------------------------------------

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
  log::info("", "kafka: draining ", waiting_ + in_flight_, " unconfirmed records (", left_ms, " ms allowed)");
  pump();
  check_drain();
  if (stopped_) {
    return;
  }
  // The deadline must be noticed even when no report arrives at all (e.g. every broker unreachable).
  struct ticker {
    publisher* self;
    std::weak_ptr<int> token;
    void operator()(const boost::system::error_code& ec) const {
      if (ec || !token.lock() || self->stopped_) {
        return;
      }
      self->check_drain();
      if (!self->stopped_) {
        self->drain_timer_.expires_after(self->tuning_.drain_tick);
        self->drain_timer_.async_wait(*this);
      }
    }
  };
  drain_timer_.expires_after(tuning_.drain_tick);
  drain_timer_.async_wait(ticker{this, alive_});
}

void publisher::check_drain() noexcept {
  if (!draining_ || stopped_) {
    return;
  }
  if (waiting_ + in_flight_ == 0 || failed_ || clock::now() >= drain_deadline_) {
    finish_drain();
  }
}

void publisher::finish_drain() noexcept {
  stopped_ = true;
  boost::system::error_code ignored;
  drain_timer_.cancel(ignored);
  try {
    // Retiring serves the handle's queue, which must not happen inside its own poll (where check_drain() may run).
    post_guarded([this] {
      retire_producer();
      drain_left_ = waiting_ + in_flight_;
      update_state();
      if (drain_left_ == 0) {
        log::info("", "kafka: drained: every record is confirmed");
      } else {
        log::warn("", "kafka: drain ended with ", drain_left_,
                  " records not confirmed by Kafka (they may or may not have been written)");
      }
      maybe_report_drained();
    });
  } catch (const std::exception& e) {
    log::error("", "kafka: cannot finish draining: ", e.what());
  }
}

void publisher::maybe_report_drained() noexcept {
  if (!stopped_ || producer_ || !reapers_.empty() || !drain_done_) {
    return;
  }
  const drain_handler done = std::move(drain_done_);
  drain_done_ = nullptr;
  try {
    done(drain_left_);
  } catch (const std::exception& e) {
    log::error("", "kafka: drain handler failed: ", e.what());
  }
}

bool publisher::healthy() const noexcept {
  if (!producer_ || failed_ || stopped_ || recreate_pending_) {
    return false;
  }
  return !brokers_down_since_ || clock::now() - *brokers_down_since_ < tuning_.broker_down_grace;
}

}  // namespace rtm::kafka
