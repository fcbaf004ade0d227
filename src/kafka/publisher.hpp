#pragma once

#include <librdkafka/rdkafka.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <memory_resource>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "kafka/policy.hpp"
#include "kafka/producer.hpp"
#include "kafka/record.hpp"
#include "kafka/router.hpp"
#include "metrics/registry.hpp"
#include "pipeline/event.hpp"
#include "util/string_hash.hpp"

// The publishing side of the bridge: upstream events in, Kafka records out, nothing lost on the way.
//
// Threading: everything here runs on the single io_context thread (sink calls, delivery reports, timers, handlers).
// librdkafka's own threads never call into the publisher; the only other threads are the short-lived ones that
// destroy retired producer handles, and they only post back to the io_context.
//
// Records (record.hpp) stay in an ordered store, by sequence number, from the moment they are accepted until the
// cluster confirms them (or they fail for good), so that:
//   - librdkafka can take the value bytes without copying them (RD_KAFKA_MSG_F_COPY is not used);
//   - on QUEUE_FULL (or past our own bound of outstanding records/bytes) the record and every later one wait here,
//     in order, and the daemon is asked to pause reading upstream (backpressure handler `true`); as delivery reports
//     drain librdkafka's queue they are produced in order and, below the low-water mark, `false` is reported;
//   - except a record that librdkafka refuses with QUEUE_FULL while nothing is in flight (or whose value is larger
//     than queue.buffering.max.kbytes): it could never fit, so instead of holding back everything behind it, an
//     event is dead-lettered as `record_too_large` with a prefix of its envelope, and the rest carries on;
//   - after a fatal producer error (librdkafka 2.0.2's idempotent producer can wedge after an outage), the producer
//     is replaced and every record not confirmed is produced again in its original order. Records that the old
//     producer may have written already can then appear twice in Kafka (same envelope id); none is lost. More than
//     tuning::fatal_limit fatal errors within tuning::fatal_window and the publisher gives up: the fatal handler
//     runs and the daemon drains and exits 69.
//
// Records: key = team id; headers rtm-event, rtm-connection, rtm-source, content-type: application/json and
// rtm-enterprise when the event has one; value = the envelope. Dead letters go to kafka.dead_letter_topic keyed by
// the connection name (a connection's dead letters stay in order on one partition; most have no team id), with
// headers rtm-error (the reason), rtm-connection, rtm-source and content-type: application/octet-stream (the raw
// frame) — or application/json plus rtm-event, rtm-original-topic and rtm-error-detail when an event's delivery
// failed permanently (the value is then its envelope). A value cut to fit the producer's message.max.bytes carries
// rtm-truncated: ORIGINAL_SIZE.
namespace rtm::kafka {

class publisher final : public pipeline::sink, private producer_listener {
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
  };

  using backpressure_handler = std::function<void(bool pause)>;
  using fatal_handler = std::function<void(const std::string& reason)>;
  using drain_handler = std::function<void(std::size_t undelivered)>;

  struct statistics {
    std::uint64_t accepted = 0;           // records accepted (events and dead letters)
    std::uint64_t delivered = 0;          // records confirmed by the cluster
    std::uint64_t failed = 0;             // records that failed permanently (events dead-lettered, lost dead letters)
    std::uint64_t dead_letters_lost = 0;  // dead letters that themselves failed
    std::uint64_t producers_created = 0;
    std::uint64_t fatal_errors = 0;
    std::uint64_t reproduced = 0;           // records produced again by a new producer
    std::uint64_t possibly_duplicated = 0;  // of those, how many an earlier producer may have written already
    std::uint64_t queue_full = 0;           // QUEUE_FULL answers from librdkafka
  };

  // Creates the producer for `bootstrap_servers` (the daemon decides: kafka.brokers, or an embedded cluster's
  // address). Throws std::runtime_error when librdkafka refuses the configuration (naming the key, never a value
  // that may be secret) or a topic template is invalid. `metrics` must outlive the publisher.
  publisher(boost::asio::io_context& io, const config::kafka_config& cfg, metrics::registry& metrics,
            std::string bootstrap_servers, tuning tune);
  publisher(boost::asio::io_context& io, const config::kafka_config& cfg, metrics::registry& metrics,
            std::string bootstrap_servers);
  publisher(const publisher&) = delete;
  publisher& operator=(const publisher&) = delete;
  publisher(publisher&&) = delete;
  publisher& operator=(publisher&&) = delete;
  // Joins the threads destroying retired producers (and destroys a live one the same way, blocking): call drain()
  // first for a graceful stop.
  ~publisher() override;

  // Called (posted on the io_context) with `true` when upstream reading should pause and `false` when it may resume.
  void set_backpressure_handler(backpressure_handler handler) { on_backpressure_ = std::move(handler); }
  // Called (posted) once when the publisher gives up after repeated fatal producer errors.
  void set_fatal_handler(fatal_handler handler) { on_fatal_ = std::move(handler); }

  // pipeline::sink. An event without a team id never becomes a record: it is dead-lettered (`no_team_id`).
  void on_event(const pipeline::event& ev) noexcept override;
  void on_dead_letter(const pipeline::dead_letter& dl) noexcept override;

  // Graceful stop: keeps producing and serving delivery reports on the io_context (never a blocking rd_kafka_flush)
  // until nothing is outstanding or `deadline` passes, then destroys the producer and calls `done` with the number
  // of records not confirmed (waiting locally or in flight). Anything arriving after the drain finished is counted
  // as failed (`publisher_stopped`); the daemon tears upstreams down before draining.
  void drain(std::chrono::steady_clock::time_point deadline, drain_handler done);

  // Readiness: a producer exists, it is not being replaced after a fatal error, the publisher has not given up or
  // stopped, and librdkafka has not been without any broker connection for longer than tuning::broker_down_grace.
  [[nodiscard]] bool healthy() const noexcept;

  [[nodiscard]] std::size_t outstanding() const noexcept { return in_flight_; }  // handed to librdkafka
  [[nodiscard]] std::size_t waiting() const noexcept { return waiting_; }        // held here, not handed over
  [[nodiscard]] bool paused() const noexcept { return paused_; }
  [[nodiscard]] bool gave_up() const noexcept { return failed_; }
  [[nodiscard]] const statistics& stats() const noexcept { return stats_; }
  [[nodiscard]] const std::string& bootstrap_servers() const noexcept { return settings_.bootstrap_servers; }

  // Test hook: makes the current producer raise a fatal error, as librdkafka does by itself when the idempotent
  // producer wedges (the default code is the one 2.0.2 loops on). Returns librdkafka's answer.
  rd_kafka_resp_err_t inject_fatal_error_for_testing(
      rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER) noexcept;

 private:
  // producer_listener
  void on_delivery(std::uint32_t generation, const delivery_report& report) noexcept override;
  void on_error(std::uint32_t generation, rd_kafka_resp_err_t err, bool fatal,
                const std::string& reason) noexcept override;
  void on_statistics(std::uint32_t generation, const metrics::kafka_client_figures& figures) noexcept override;
  void on_served(std::uint32_t generation) noexcept override;

  record& append_record();
  void drop_last_record() noexcept;
  [[nodiscard]] std::uint64_t first_seq() const noexcept;
  [[nodiscard]] record* find(std::uint64_t seq) noexcept;
  void accept_dead_letter(const pipeline::dead_letter& dl);
  void give_spare_bytes(record& r) noexcept;
  void keep_spare_bytes(std::string bytes) noexcept;
  void count_published(const record& r);
  void count_failure(std::string_view connection, std::string_view reason) noexcept;

  void create_producer();
  void pump() noexcept;
  [[nodiscard]] rd_kafka_resp_err_t produce(record& r) noexcept;
  void complete(record& r) noexcept;
  // `reason` overrides failure_reason(err); the dead letter's value is cut to `max_value` (and always to what the
  // producer can take).
  void fail(record& r, rd_kafka_resp_err_t err, std::string_view detail, std::string_view reason = {},
            std::size_t max_value = SIZE_MAX) noexcept;
  void refuse_too_large(record& r) noexcept;
  void report_missing_topic(std::string_view connection, std::string_view topic, std::string_view reason);
  void update_state() noexcept;
  void schedule_recreate(const std::string& reason) noexcept;
  void recreate(const std::string& reason) noexcept;
  void give_up(const std::string& reason) noexcept;
  void retire_producer() noexcept;
  void on_producer_destroyed(std::uint32_t generation) noexcept;
  void check_drain() noexcept;
  void finish_drain() noexcept;
  void maybe_report_drained() noexcept;

  template <typename Handler>
  void post_guarded(Handler&& handler);

  boost::asio::io_context& io_;
  metrics::registry& metrics_;
  tuning tuning_;
  producer_settings settings_;
  std::string dead_letter_topic_;
  router router_;
  fatal_budget fatal_budget_;

  std::shared_ptr<producer> producer_;
  std::uint32_t generation_ = 0;
  std::size_t max_dead_letter_value_ = 0;

  // Every unsettled record (waiting or in flight), by sequence number: the order of production and re-production.
  // The map's nodes come from a pool that keeps the nodes of settled records for the next ones (declared first: it
  // outlives the map), and settled records' byte buffers wait in spare_bytes_ for the next record: once both have
  // grown to the peak number of outstanding records, accepting and settling records allocates nothing.
  std::pmr::unsynchronized_pool_resource record_pool_;
  std::pmr::map<std::uint64_t, record> records_{&record_pool_};
  std::vector<std::string> spare_bytes_;  // capacity reserved up front (tuning::limits.high_records), never grown
  std::size_t spare_bytes_total_ = 0;     // their capacities, summed
  // rtm_bridge_events_published_total handles by "connection topic" (neither contains a space), so a delivery
  // report costs a hash lookup instead of a lookup by two labels. Bounded; past the bound the registry is asked.
  string_map<metrics::counter> published_counters_;
  std::string counter_key_;
  std::uint64_t next_seq_ = 1;
  std::uint64_t cursor_ = 1;  // the first record that may still need producing
  std::size_t waiting_ = 0;
  std::size_t in_flight_ = 0;
  std::size_t in_flight_bytes_ = 0;
  std::string id_scratch_;
  // Topics found missing (auto-creation off), with when the operator was last told.
  std::map<std::string, std::chrono::steady_clock::time_point, std::less<>> missing_topics_;

  bool paused_ = false;
  // Set when librdkafka answers QUEUE_FULL: upstream resumes only once at most this many records are in flight
  // (half of what librdkafka held when full) instead of flapping at the brim. SIZE_MAX outside such an episode.
  std::size_t queue_full_resume_at_ = SIZE_MAX;
  bool recreate_pending_ = false;
  bool failed_ = false;
  bool draining_ = false;
  bool stopped_ = false;
  std::optional<std::chrono::steady_clock::time_point> brokers_down_since_;

  std::chrono::steady_clock::time_point drain_deadline_{};
  drain_handler drain_done_;
  std::size_t drain_left_ = 0;
  boost::asio::steady_timer drain_timer_;

  // Threads destroying retired producer handles, by generation. While any runs, the bytes of records that such a
  // handle was given are kept in the graveyard instead of freed: librdkafka may still read them.
  std::map<std::uint32_t, std::thread> reapers_;
  std::vector<std::string> graveyard_;

  backpressure_handler on_backpressure_;
  fatal_handler on_fatal_;
  statistics stats_;
  // Posted handlers hold a weak reference: once the publisher is gone they do nothing.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace rtm::kafka
