#pragma once

#include <librdkafka/rdkafka.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "kafka/dead_letters.hpp"
#include "kafka/policy.hpp"
#include "kafka/producer.hpp"
#include "kafka/published_counters.hpp"
#include "kafka/publisher_statistics.hpp"
#include "kafka/record.hpp"
#include "kafka/record_store.hpp"
#include "kafka/recovery.hpp"
#include "kafka/router.hpp"
#include "metrics/registry.hpp"
#include "pipeline/event.hpp"
#include "spool/spool.hpp"

// The publishing side of the bridge: upstream events in, Kafka records out, nothing lost on the way. One event's
// path here: on_event() builds its record (record.cpp: value, key, topic and headers) into the ordered store
// (record_store.hpp), pump() hands waiting records to the current producer in order, on_delivery() settles them,
// drain() waits for the rest at a stop. Producer recovery (recovery.hpp) replaces a producer that broke.
//
// Threading: everything here runs on the single io_context thread (sink calls, delivery reports, timers, handlers).
// librdkafka's own threads never call into the publisher; the only other threads are the short-lived ones that
// destroy retired producer handles, and they only post back to the io_context.
//
// Backpressure: a record stays in the store from acceptance until the cluster confirms it (or it fails for good).
//   - On QUEUE_FULL (or past our own bound of outstanding records/bytes) the record and every later one wait there,
//     in order, and the daemon is asked to pause reading upstream (backpressure handler `true`); as delivery reports
//     drain librdkafka's queue they are produced in order and, below the low-water mark, `false` is reported.
//   - Except a record that librdkafka refuses with QUEUE_FULL while nothing is in flight (or whose value is larger
//     than queue.buffering.max.kbytes): it could never fit, so instead of holding back everything behind it, an
//     event is dead-lettered as `record_too_large` with a prefix of its envelope, and the rest carries on.
//   - While a producer is being replaced, and after recovery gave up, upstream stays paused.
//
// With the durable spool (tuning::spool set; spool/spool.hpp): every event and dead letter is appended to the spool
// at receipt (its envelope id assigned then, stored with it), and the store holds only the spool's window: records
// taken live when the producer keeps up, or read back from the spool's files in order when it is behind (an
// outage, a restart), at most spool.max_in_flight unconfirmed. Settling a record moves the spool's commit point.
// Upstream reading then never waits for Kafka: backpressure pauses it only under when_full: block while the spool
// is full; under drop_newest what does not fit is counted (rtm_bridge_spool_dropped_total) and dropped.
//
// Dead letters, and records that failed for good: dead_letters.hpp. Errors: src/kafka/README.md "Error policy".
namespace rtm::kafka {

class publisher final : public pipeline::sink,
                        private producer_listener,
                        private recovery_listener,
                        private spool::listener,
                        private settle_listener {
 public:
  struct tuning {
    backpressure_limits limits;
    // Fatal producer errors tolerated (by recreating the producer) before giving up: the limit-th within the window
    // gives up (3 within 5 minutes by default).
    std::size_t fatal_limit = fatal_budget::default_limit;
    std::chrono::seconds fatal_window = fatal_budget::default_window;
    // healthy() turns false once librdkafka has seen no broker up for this long.
    std::chrono::milliseconds broker_down_grace{std::chrono::seconds{30}};
    // How often the drain checks its deadline, and the producer's safety poll.
    std::chrono::milliseconds drain_tick{std::chrono::milliseconds{50}};
    std::chrono::milliseconds safety_poll{std::chrono::seconds{1}};
    std::size_t topic_cache_limit = router::default_cache_limit;
    // The durable spool (spool.path set), opened by the constructor.
    std::optional<spool::options> spool;
  };

  using backpressure_handler = std::function<void(bool pause)>;
  using fatal_handler = std::function<void(const std::string& reason)>;
  using drain_handler = std::function<void(std::size_t undelivered)>;
  using spool_failed_handler = std::function<void(const std::string& reason)>;

  using statistics = publisher_statistics;

  // Creates the producer for `bootstrap_servers` (the daemon decides: kafka.brokers, or an embedded cluster's
  // address), and opens the spool if tune.spool is set. Throws std::runtime_error when librdkafka refuses the
  // configuration (naming the key, never a value that may be secret) or a topic template is invalid, and
  // spool::directory_in_use or std::runtime_error when the spool cannot be opened. `metrics` must outlive the
  // publisher.
  publisher(boost::asio::io_context& io, const config::kafka_config& cfg, metrics::registry& metrics,
            std::string bootstrap_servers, tuning tune);
  publisher(boost::asio::io_context& io, const config::kafka_config& cfg, metrics::registry& metrics,
            std::string bootstrap_servers);
  publisher(const publisher&) = delete;
  publisher& operator=(const publisher&) = delete;
  publisher(publisher&&) = delete;
  publisher& operator=(publisher&&) = delete;
  // Joins the threads destroying retired producers (and destroys a live one, blocking): call drain() first for a
  // graceful stop.
  ~publisher() override;

  // Called (posted on the io_context) with `true` when upstream reading should pause and `false` when it may resume.
  void set_backpressure_handler(backpressure_handler handler) { on_backpressure_ = std::move(handler); }
  // Called (posted) once when the publisher gives up after repeated fatal producer errors.
  void set_fatal_handler(fatal_handler handler) { on_fatal_ = std::move(handler); }
  // Called (posted) once when the spool failed (a write or fdatasync error): the daemon stops, and the next start
  // recovers from the spool's files.
  void set_spool_failed_handler(spool_failed_handler handler) { on_spool_failed_ = std::move(handler); }

  // pipeline::sink. An event without a team id never becomes a record: it is dead-lettered (`no_team_id`).
  void on_event(const pipeline::event& ev) noexcept override;
  void on_dead_letter(const pipeline::dead_letter& dl) noexcept override;
  // The reply to a command (app/command_dispatcher): a record for `topic`, keyed by the connection, that never goes
  // to the spool (a command whose reply is not confirmed is read again after a crash, and answered again); `ack`
  // is told once Kafka confirms it (or its dead letter, should its delivery fail for good).
  void publish_reply(std::string_view topic, std::string_view connection, std::string_view command_id,
                     std::string_view value, pipeline::durability_request ack) noexcept;
  // Acknowledgement after durability: told when a record is confirmed by Kafka, or written to the spool.
  std::shared_ptr<pipeline::durability_registry> durability() noexcept override { return durability_; }

  // Graceful stop: keeps producing and serving delivery reports on the io_context (never a blocking rd_kafka_flush)
  // until nothing is outstanding or `deadline` passes, then destroys the producer and calls `done` with the number
  // of records not confirmed (waiting locally or in flight; with a spool: left in the spool, sent after the next
  // start). Anything arriving after the drain finished is counted as failed (`publisher_stopped`); the daemon tears
  // upstreams down before draining. With a spool, the drain also waits for the records still unread in it, and
  // ends by closing it (final write, fdatasync and checkpoint).
  void drain(std::chrono::steady_clock::time_point deadline, drain_handler done);

  // Readiness: a producer exists, it is not being replaced after a fatal error, the publisher has not given up or
  // stopped, and librdkafka has not been without any broker connection for longer than tuning::broker_down_grace.
  [[nodiscard]] bool healthy() const noexcept;

  [[nodiscard]] std::size_t outstanding() const noexcept { return store_.in_flight(); }  // handed to librdkafka
  [[nodiscard]] std::size_t waiting() const noexcept { return store_.waiting(); }        // held here, not handed over
  [[nodiscard]] bool paused() const noexcept { return paused_; }
  [[nodiscard]] bool gave_up() const noexcept { return recovery_.gave_up(); }
  [[nodiscard]] const statistics& stats() const noexcept { return stats_; }
  [[nodiscard]] const std::string& bootstrap_servers() const noexcept { return bootstrap_servers_; }
  // The spool, when there is one (figures, tests).
  [[nodiscard]] const spool::spool* spool() const noexcept { return spool_.get(); }

  // Test hook: makes the current producer raise a fatal error, as librdkafka does by itself when the idempotent
  // producer wedges (the default code is the one 2.0.2 loops on). Returns librdkafka's answer.
  rd_kafka_resp_err_t inject_fatal_error_for_testing(
      rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER) noexcept;

 private:
  // producer_listener: inside the producer's poll; the producer catches what they throw (README "Error policy").
  void on_delivery(std::uint32_t generation, const delivery_report& report) override;
  void on_error(std::uint32_t generation, rd_kafka_resp_err_t err, bool fatal, const std::string& reason) override;
  void on_statistics(std::uint32_t generation, const metrics::kafka_client_figures& figures) override;
  void on_served(std::uint32_t generation) override;
  // recovery_listener
  void on_producer_created(const producer& p, bool replacement) noexcept override;
  void on_gave_up(const std::string& reason) noexcept override;
  void on_retired_destroyed() noexcept override;
  // spool::listener
  void on_spool_room() noexcept override;
  void on_spool_written(std::uint64_t through_seq) noexcept override;
  void on_spool_failed(const std::string& reason) noexcept override;
  // settle_listener: a record from the spool is done
  void on_settled(std::uint64_t spool_seq) noexcept override;

  // The spool's share of accepting: append the record `build` makes, taking it live into the store when nothing
  // waits in the spool; full and failed as the policy says. Its spool seq when it is in the spool, else 0. Throws
  // std::bad_alloc only, before changing anything.
  template <typename Build>
  std::uint64_t spool_accept(std::string_view connection, std::chrono::system_clock::time_point received_at,
                             Build&& build);
  void count_not_spooled(std::string_view connection, spool::spool::append_result result);
  // Reads records back from the spool into the store while the window has room.
  void refill_from_spool();

  template <typename Add>
  void accept(std::string_view connection, std::string_view what, std::string_view name, Add&& add) noexcept;
  void progress() noexcept;
  void pump();
  void count_failure(std::string_view connection, std::string_view reason);
  void update_state();
  void check_drain();
  void finish_drain();
  void maybe_report_drained() noexcept;

  template <typename Handler>
  void post_guarded(std::string_view what, Handler&& handler);

  boost::asio::io_context& io_;
  metrics::registry& metrics_;
  tuning tuning_;
  std::string bootstrap_servers_;
  router router_;
  statistics stats_;
  // Every unsettled record. Declared before the recovery, which holds the producers that read the records' bytes.
  record_store store_;
  dead_letters dead_letters_;
  producer_recovery recovery_;
  published_counters published_;
  std::string id_scratch_;  // the envelope id, built once per event

  bool paused_ = false;
  // Set when librdkafka answers QUEUE_FULL: upstream resumes only once at most this many records are in flight
  // (half of what librdkafka held when full) instead of flapping at the brim. SIZE_MAX outside such an episode.
  std::size_t queue_full_resume_at_ = SIZE_MAX;
  bool draining_ = false;
  bool stopped_ = false;
  broker_health brokers_;

  std::chrono::steady_clock::time_point drain_deadline_{};
  drain_handler drain_done_;
  std::size_t drain_left_ = 0;
  boost::asio::steady_timer drain_timer_;

  backpressure_handler on_backpressure_;
  fatal_handler on_fatal_;
  spool_failed_handler on_spool_failed_;
  std::shared_ptr<pipeline::durability_registry> durability_ = std::make_shared<pipeline::durability_registry>();

  // The spool's state. Records held because the spool was full under when_full: block, in receipt order, appended
  // before anything newer once there is room (upstream is paused meanwhile, so only what one read delivered waits).
  struct held_record {
    std::int64_t received_at_ns;
    std::string connection;
    std::string payload;
  };
  std::deque<held_record> held_;
  // Acknowledgements of records appended to the spool and not yet durable, with their spool seq, in seq order
  // (told by on_spool_written()).
  std::deque<std::pair<std::uint64_t, pipeline::durability_request>> spool_acks_;
  record spool_scratch_;       // an event's record while it goes to the spool only (the window is full)
  std::string spool_payload_;  // the frame payload being appended
  // Declared last: closed (final write, fdatasync, checkpoint) before the producers and the store go.
  std::unique_ptr<spool::spool> spool_;
  // Posted handlers hold a weak reference: once the publisher is gone they do nothing.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace rtm::kafka
