#pragma once

#include <librdkafka/rdkafka.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "kafka/policy.hpp"
#include "kafka/producer.hpp"
#include "kafka/publisher_statistics.hpp"
#include "kafka/record_store.hpp"

// Producer recovery: the publisher's current producer handle, and what happens to it when it breaks.
//
// librdkafka 2.0.2's idempotent producer can wedge after an outage (it raises a fatal error, e.g. in an
// OUT_OF_ORDER_SEQUENCE_NUMBER loop, fixed upstream only in 2.3.0); a fatal handle never produces again. So:
//   - schedule() (called from inside the handle's own poll, which must return before the handle is closed) posts a
//     re-creation; until it runs, replacing() is true and nothing is produced;
//   - the re-creation retires the old handle (its records go back to waiting in the store, in their original
//     order) and creates a new one, which the publisher hands every unconfirmed record again. Records that the old
//     handle may have written can then appear twice in Kafka (same envelope id); none is lost;
//   - the `fatal_limit`-th fatal error within `fatal_window` (fatal_budget) gives up instead: recreating does not
//     help, the publisher's fatal handler runs, and the daemon drains and exits 69 for its supervisor to decide.
// A retired handle is destroyed on a thread of its own (rd_kafka_destroy() may take a while and must not block the
// io_context); until that thread is done, librdkafka may still read record values, so the store holds their
// buffers. The threads only post back to the io_context.
//
// Threading: every member runs on the io_context thread. Owned by the publisher, declared after its record store
// (destroyed first: the store's buffers outlive every handle).
namespace rtm::kafka {

// What the recovery tells its owner; each call runs on the io_context thread and must not throw.
class recovery_listener {
 public:
  recovery_listener() = default;
  recovery_listener(const recovery_listener&) = delete;
  recovery_listener& operator=(const recovery_listener&) = delete;
  recovery_listener(recovery_listener&&) = delete;
  recovery_listener& operator=(recovery_listener&&) = delete;

  // A producer exists: the first one (`replacement` false, from start()) or a replacement, which should now be
  // handed what waits.
  virtual void on_producer_created(const producer& p, bool replacement) noexcept = 0;
  // Recovery gave up for good (no producer any more).
  virtual void on_gave_up(const std::string& reason) noexcept = 0;
  // The last retired handle is destroyed: nothing of librdkafka is left unless a producer is current.
  virtual void on_retired_destroyed() noexcept = 0;

 protected:
  ~recovery_listener() = default;
};

class producer_recovery {
 public:
  struct limits {
    std::size_t fatal_limit = fatal_budget::default_limit;
    std::chrono::seconds fatal_window = fatal_budget::default_window;
  };

  // `reports` receives the producers' reports, `owner` the recovery's; both, `store` and `stats` (producers_created,
  // fatal_errors, reproduced, possibly_duplicated) must outlive this.
  producer_recovery(boost::asio::io_context& io, producer_settings settings, limits lim, producer_listener& reports,
                    recovery_listener& owner, record_store& store, publisher_statistics& stats);
  producer_recovery(const producer_recovery&) = delete;
  producer_recovery& operator=(const producer_recovery&) = delete;
  producer_recovery(producer_recovery&&) = delete;
  producer_recovery& operator=(producer_recovery&&) = delete;
  // Destroys a current producer (blocking) and joins the threads destroying retired ones.
  ~producer_recovery();

  // Creates the first producer. Throws std::runtime_error when librdkafka refuses the settings (naming the key).
  void start();

  // The producer to hand records to; nullptr while none is (retired, replaced, given up).
  [[nodiscard]] producer* current() const noexcept { return producer_.get(); }
  // The current producer's generation, which also stays that of a producer being retired until the next one: the
  // reports it serves while retiring still count.
  [[nodiscard]] std::uint32_t generation() const noexcept { return generation_; }
  [[nodiscard]] bool replacing() const noexcept { return pending_; }
  [[nodiscard]] bool gave_up() const noexcept { return gave_up_; }
  // No producer is current and every retired handle is destroyed.
  [[nodiscard]] bool idle() const noexcept { return !producer_ && reapers_.empty(); }
  [[nodiscard]] std::size_t tolerated_limit() const noexcept { return limits_.fatal_limit; }

  // A fatal error, or a handle that refuses records for good: replace the producer, from a posted handler. Ignored
  // while a replacement is pending, after giving up and after close(). Throws std::bad_alloc only, before changing
  // anything (the next error schedules it again).
  void schedule(const std::string& reason);
  // The publisher stopped: nothing is replaced any more (a replacement already posted does nothing).
  void close() noexcept { closed_ = true; }
  // Retires the current producer, if any: serves its last reports, sends its unconfirmed records back to waiting
  // (record_store::retire(), whose counts it returns) and hands it to a destroyer thread. Not from inside its own
  // poll (a delivery report or an error): post it. Throws std::bad_alloc only, before retiring anything.
  record_store::retired_counts retire();

  rd_kafka_resp_err_t inject_fatal_error_for_testing(rd_kafka_resp_err_t err) noexcept;

 private:
  void create();
  void recreate(const std::string& reason) noexcept;
  void replace(const std::string& reason);
  void give_up(const std::string& reason) noexcept;
  void on_destroyed(std::uint32_t generation) noexcept;

  boost::asio::io_context& io_;
  producer_settings settings_;
  limits limits_;
  producer_listener& reports_;
  recovery_listener& owner_;
  record_store& store_;
  publisher_statistics& stats_;
  fatal_budget budget_;

  std::shared_ptr<producer> producer_;
  std::uint32_t generation_ = 0;
  bool pending_ = false;
  bool gave_up_ = false;
  bool closed_ = false;
  // Threads destroying retired handles, with their generation.
  std::vector<std::pair<std::uint32_t, std::thread>> reapers_;
  // Posted handlers and the reapers' posts hold a weak reference: once this is gone they do nothing.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace rtm::kafka
