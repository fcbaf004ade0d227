#pragma once

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "kafka/record.hpp"
#include "metrics/kafka_client.hpp"

// One librdkafka producer handle, wired into the io_context without blocking it and without busy polling: librdkafka
// writes to an eventfd whenever its main queue (delivery reports, errors, statistics) goes from empty to non-empty;
// an async_wait on that eventfd runs rd_kafka_poll(rk, 0) until the queue is empty, plus a slow safety timer in case
// a wake-up is ever missed. Every callback the listener sees therefore runs on the io_context thread, inside
// serve(). librdkafka's log callback is the exception: it runs on librdkafka's threads and only writes to rtm::log.
//
// The publisher owns one of these at a time and replaces it after a fatal error; close() hands the handle to a
// background thread for rd_kafka_destroy(), which may take a while and must not block the io_context.
namespace rtm::kafka {

struct producer_settings {
  std::string bootstrap_servers;
  std::string client_id = "rtm-bridge";
  std::chrono::milliseconds delivery_timeout{0};  // message.timeout.ms; 0 = never give up
  // kafka.properties, applied after the bridge's own settings through config::set_property(), the config loader's
  // rule: what the bridge owns is refused unless equal to the bridge's value (the loader refuses it first; this is
  // the second line of defence for the delivery guarantees).
  std::vector<std::pair<std::string, std::string>> properties;
  std::chrono::milliseconds safety_poll_interval{1000};
};

// The settings from the config's kafka section (client_id, delivery_timeout, properties) for `bootstrap_servers`
// (the daemon decides: kafka.brokers, or an embedded cluster's address).
[[nodiscard]] producer_settings make_producer_settings(const config::kafka_config& cfg, std::string bootstrap_servers,
                                                       std::chrono::milliseconds safety_poll_interval);

// librdkafka settings the bridge decides and kafka.properties may not override: config::is_bridge_property().
[[nodiscard]] bool bridge_owned_property(std::string_view name) noexcept;

struct delivery_report {
  std::uint64_t seq = 0;  // the publisher's record sequence number (the message opaque)
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  rd_kafka_msg_status_t status = RD_KAFKA_MSG_STATUS_NOT_PERSISTED;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  // The handle was in a fatal state when it reported this failure: librdkafka then fails what it held with the
  // underlying error code (e.g. OUT_OF_ORDER_SEQUENCE_NUMBER), which says nothing about the record itself.
  bool handle_fatal = false;
};

// What a producer reports; every call runs on the io_context thread, inside producer::serve(). Implementations must
// not close the producer from inside these calls (post it instead). What they throw (std::bad_alloc) the producer
// catches at the librdkafka callback and logs: an implementation keeps its own state consistent when it throws.
class producer_listener {
 public:
  producer_listener() = default;
  producer_listener(const producer_listener&) = delete;
  producer_listener& operator=(const producer_listener&) = delete;
  producer_listener(producer_listener&&) = delete;
  producer_listener& operator=(producer_listener&&) = delete;

  virtual void on_delivery(std::uint32_t generation, const delivery_report& report) = 0;
  // `fatal`: librdkafka raised a fatal error (err is then the underlying code, reason its text); the handle will
  // not produce anything any more and must be replaced.
  virtual void on_error(std::uint32_t generation, rd_kafka_resp_err_t err, bool fatal, const std::string& reason) = 0;
  // librdkafka's statistics, every statistics.interval.ms: queue figures, broker states and latencies.
  virtual void on_statistics(std::uint32_t generation, const metrics::kafka_client_figures& figures) = 0;
  // After each round of serving the queue (and each safety tick): a good moment to produce what waits.
  virtual void on_served(std::uint32_t generation) = 0;

 protected:
  ~producer_listener() = default;
};

struct outgoing_record {
  const char* topic = nullptr;  // NUL-terminated
  std::string_view key;         // empty: no key
  std::string_view value;       // NOT copied by librdkafka: must stay valid until the delivery report (or until the
                                // handle is destroyed); see record.hpp
  std::span<const header_view> headers;  // copied by librdkafka
  std::uint64_t seq = 0;
};

class producer : public std::enable_shared_from_this<producer> {
 public:
  // Creates the handle and starts serving its queue. Throws std::runtime_error naming the offending property (its
  // value is never repeated: it may be a secret) or librdkafka's reason.
  [[nodiscard]] static std::shared_ptr<producer> create(boost::asio::io_context& io, const producer_settings& settings,
                                                        producer_listener& listener, std::uint32_t generation);

  producer(const producer&) = delete;
  producer& operator=(const producer&) = delete;
  producer(producer&&) = delete;
  producer& operator=(producer&&) = delete;
  ~producer();

  // Hands one record to librdkafka (never blocks). NO_ERROR, __QUEUE_FULL (retry after serving), __FATAL (the handle
  // raised a fatal error, whatever its code) / __STATE (closed), or a permanent error for this record (e.g.
  // MSG_SIZE_TOO_LARGE).
  [[nodiscard]] rd_kafka_resp_err_t produce(const outgoing_record& rec) noexcept;

  // Serves the main queue now (rd_kafka_poll(rk, 0) until empty, bounded per call), then tells the listener.
  void serve() noexcept;

  // Stops serving and detaches the listener (nothing is reported any more), then purges and destroys the handle on
  // a background thread, which runs `destroyed` when rd_kafka_destroy() has returned (from that thread: post it).
  // Until then librdkafka may still read record values it was given. Returns the thread, for the owner to join.
  [[nodiscard]] std::thread close(std::function<void()> destroyed);

  [[nodiscard]] std::uint32_t generation() const noexcept { return generation_; }
  [[nodiscard]] bool closed() const noexcept { return rk_ == nullptr; }
  // message.max.bytes as configured, the largest record librdkafka accepts.
  [[nodiscard]] std::size_t max_message_bytes() const noexcept { return max_message_bytes_; }
  // queue.buffering.max.kbytes in bytes: librdkafka answers QUEUE_FULL, even with an empty queue, to a record whose
  // value is larger.
  [[nodiscard]] std::size_t max_queue_bytes() const noexcept { return max_queue_bytes_; }
  // Messages librdkafka holds (queued or in flight) plus undelivered reports: rd_kafka_outq_len().
  [[nodiscard]] int librdkafka_queue_length() const noexcept;

  // Test hook: raises a fabricated fatal error, as librdkafka 2.0.2's idempotent producer does by itself when it
  // wedges in an out-of-order-sequence loop after an outage.
  rd_kafka_resp_err_t inject_fatal_error_for_testing(rd_kafka_resp_err_t err) noexcept;

 private:
  // What librdkafka's callbacks reach through the handle's opaque. It outlives this object when the handle is
  // destroyed in the background, and `target` is cleared first so late callbacks do nothing.
  struct callback_context {
    std::atomic<producer*> target{nullptr};
  };

  // Destroys a closed handle off the io_context; shared between the thread and the fallback path.
  struct reaper {
    rd_kafka_t* rk = nullptr;
    std::string name;
    std::unique_ptr<callback_context> callbacks;
    std::function<void()> destroyed;
    void run() noexcept;
  };

  producer(boost::asio::io_context& io, producer_listener& listener, std::uint32_t generation,
           std::chrono::milliseconds safety_interval);

  void wait_for_events();
  void on_events(const boost::system::error_code& ec);
  void arm_safety_timer();
  void on_safety_timer(const boost::system::error_code& ec);

  static void on_delivery_cb(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque) noexcept;
  static void on_error_cb(rd_kafka_t* rk, int err, const char* reason, void* opaque) noexcept;
  static int on_stats_cb(rd_kafka_t* rk, char* json, size_t json_len, void* opaque) noexcept;

  boost::asio::io_context& io_;
  producer_listener* listener_;
  std::uint32_t generation_;
  std::chrono::milliseconds safety_interval_;
  rd_kafka_t* rk_ = nullptr;
  std::unique_ptr<callback_context> callbacks_;
  boost::asio::posix::stream_descriptor wakeup_;  // the eventfd librdkafka writes to
  boost::asio::steady_timer safety_timer_;
  bool continuation_posted_ = false;
  std::size_t max_message_bytes_ = 1000000;
  std::size_t max_queue_bytes_ = std::size_t{1} << 30;
};

}  // namespace rtm::kafka
