#include "kafka/producer.hpp"

#include <array>
#include <boost/asio/post.hpp>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "config/kafka_properties.hpp"
#include "kafka/librdkafka_log.hpp"
#include "kafka/queue_wakeup.hpp"
#include "kafka/statistics.hpp"
#include "util/log.hpp"

namespace rtm::kafka {
namespace {

// How many rd_kafka_poll() rounds one handler may run before yielding the io_context to other work (each round
// serves everything queued at that moment, delivery reports come in batches).
constexpr int poll_rounds_per_turn = 16;

// Statistics every 5 s give the broker states behind healthy(); kafka.properties may change or disable it.
constexpr const char* default_statistics_interval_ms = "5000";

// The boundary between librdkafka's callbacks (and the io_context handlers that serve its queue) and the listener
// (src/kafka/README.md "Error policy"): nothing may escape into librdkafka's C code or into Asio. The listener keeps
// its own records consistent when it throws; what it could not finish is logged here.
template <typename Call>
void notify(std::string_view what, Call&& call) noexcept {
  try {
    std::forward<Call>(call)();
  } catch (const std::exception& e) {
    log::error("", "kafka: ", what, " not fully handled: ", e.what());
  }
}

class conf_guard {
 public:
  conf_guard() : conf_(rd_kafka_conf_new()) {}
  conf_guard(const conf_guard&) = delete;
  conf_guard& operator=(const conf_guard&) = delete;
  conf_guard(conf_guard&&) = delete;
  conf_guard& operator=(conf_guard&&) = delete;
  ~conf_guard() {
    if (conf_ != nullptr) {
      rd_kafka_conf_destroy(conf_);
    }
  }
  [[nodiscard]] rd_kafka_conf_t* get() const noexcept { return conf_; }
  rd_kafka_conf_t* release() noexcept { return std::exchange(conf_, nullptr); }

  // `origin` names the setting in the bridge's config for the error message.
  void set(const std::string& name, const std::string& value, std::string_view origin) {
    std::array<char, 512> errstr{};
    if (rd_kafka_conf_set(conf_, name.c_str(), value.c_str(), errstr.data(), errstr.size()) != RD_KAFKA_CONF_OK) {
      // librdkafka's text may quote the value; for anything that looks like a secret, keep only the name.
      const std::string detail =
          config::is_sensitive_property(name) ? std::string("rejected by librdkafka") : errstr.data();
      throw std::runtime_error(std::string(origin) + ": " + detail);
    }
  }

 private:
  rd_kafka_conf_t* conf_;
};

}  // namespace

producer_settings make_producer_settings(const config::kafka_config& cfg, std::string bootstrap_servers,
                                         std::chrono::milliseconds safety_poll_interval) {
  producer_settings settings;
  settings.bootstrap_servers = std::move(bootstrap_servers);
  settings.client_id = cfg.client_id;
  settings.delivery_timeout = cfg.delivery_timeout;
  settings.properties = cfg.properties;
  settings.safety_poll_interval = safety_poll_interval;
  return settings;
}

bool bridge_owned_property(std::string_view name) noexcept {
  return config::is_bridge_property(name);
}

producer::producer(boost::asio::io_context& io, producer_listener& listener, std::uint32_t generation,
                   std::chrono::milliseconds safety_interval)
    : io_(io),
      listener_(&listener),
      generation_(generation),
      safety_interval_(safety_interval),
      callbacks_(std::make_unique<callback_context>()),
      wakeup_(io),
      safety_timer_(io) {}

std::shared_ptr<producer> producer::create(boost::asio::io_context& io, const producer_settings& settings,
                                           producer_listener& listener, std::uint32_t generation) {
  // make_shared cannot reach the private constructor.
  std::shared_ptr<producer> self(new producer(io, listener, generation, settings.safety_poll_interval));

  conf_guard conf;
  conf.set("bootstrap.servers", settings.bootstrap_servers, "kafka.brokers");
  conf.set("client.id", settings.client_id, "kafka.client_id");
  // The delivery guarantees of the contract: idempotent (so retries cannot reorder or duplicate within a producer
  // session), every in-sync replica acknowledges, Java-compatible placement of keys.
  conf.set("enable.idempotence", "true", "kafka (bridge setting enable.idempotence)");
  conf.set("acks", "all", "kafka (bridge setting acks)");
  conf.set("partitioner", "murmur2_random", "kafka (bridge setting partitioner)");
  conf.set("message.timeout.ms", std::to_string(settings.delivery_timeout.count()), "kafka.delivery_timeout");
  conf.set("statistics.interval.ms", default_statistics_interval_ms, "kafka (bridge default statistics.interval.ms)");
  // The config loader's own rule (config/kafka_properties.hpp), so the daemon refuses nothing --check-config
  // accepted: a value equal to the bridge's own (acks: all) changes nothing and is accepted.
  for (const auto& [name, value] : settings.properties) {
    if (auto error = config::set_property(conf.get(), name, value)) {
      throw std::runtime_error("kafka.properties." + name + ": " + *error);
    }
  }
  rd_kafka_conf_set_opaque(conf.get(), self->callbacks_.get());
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &producer::on_delivery_cb);
  rd_kafka_conf_set_error_cb(conf.get(), &producer::on_error_cb);
  rd_kafka_conf_set_stats_cb(conf.get(), &producer::on_stats_cb);
  rd_kafka_conf_set_log_cb(conf.get(), &forward_librdkafka_log);

  std::array<char, 512> value{};
  std::size_t value_size = value.size();
  if (rd_kafka_conf_get(conf.get(), "message.max.bytes", value.data(), &value_size) == RD_KAFKA_CONF_OK) {
    self->max_message_bytes_ = std::strtoull(value.data(), nullptr, 10);
  }
  value_size = value.size();
  if (rd_kafka_conf_get(conf.get(), "queue.buffering.max.kbytes", value.data(), &value_size) == RD_KAFKA_CONF_OK) {
    self->max_queue_bytes_ = std::strtoull(value.data(), nullptr, 10) * 1024;
  }

  std::array<char, 512> errstr{};
  self->rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), errstr.data(), errstr.size());
  if (self->rk_ == nullptr) {
    throw std::runtime_error(std::string("kafka: cannot create the producer: ") + errstr.data());
  }
  conf.release();  // owned by the handle now

  if (auto error = attach_wakeup(self->rk_, wakeup_queue::main, self->wakeup_)) {
    rd_kafka_destroy(std::exchange(self->rk_, nullptr));
    throw std::runtime_error("kafka: cannot create an eventfd for the producer: " + *error);
  }

  self->callbacks_->target.store(self.get());
  log::info("", "kafka: producer ", rd_kafka_name(self->rk_), " (generation ", generation, ") created for ",
            settings.bootstrap_servers);
  self->wait_for_events();
  self->arm_safety_timer();
  // Anything queued before the io event was enabled would not have woken us.
  boost::asio::post(io, [self] { self->serve(); });
  return self;
}

producer::~producer() {
  if (rk_ != nullptr) {
    // Only reached when close() was never called (e.g. the owner failed half-way): destroy here, blocking.
    callbacks_->target.store(nullptr);
    detach_wakeup(rk_, wakeup_queue::main);
    rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_destroy(rk_);
  }
}

void producer::wait_for_events() {
  wakeup_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                     [self = shared_from_this()](const boost::system::error_code& ec) { self->on_events(ec); });
}

void producer::on_events(const boost::system::error_code& ec) {
  if (ec || rk_ == nullptr) {
    return;  // closed (operation_aborted) or the descriptor failed; the safety timer keeps serving in the latter case
  }
  reset_wakeup(wakeup_);
  serve();
  if (rk_ != nullptr) {
    wait_for_events();
  }
}

void producer::arm_safety_timer() {
  safety_timer_.expires_after(safety_interval_);
  safety_timer_.async_wait(
      [self = shared_from_this()](const boost::system::error_code& ec) { self->on_safety_timer(ec); });
}

void producer::on_safety_timer(const boost::system::error_code& ec) {
  if (ec || rk_ == nullptr) {
    return;
  }
  serve();
  if (rk_ != nullptr) {
    arm_safety_timer();
  }
}

void producer::serve() noexcept {
  if (rk_ == nullptr) {
    return;
  }
  bool drained = false;
  for (int round = 0; round < poll_rounds_per_turn; ++round) {
    if (rd_kafka_poll(rk_, 0) == 0) {
      drained = true;
      break;
    }
    if (rk_ == nullptr) {
      return;
    }
  }
  if (!drained && !continuation_posted_) {
    // More is queued than one turn may serve; the io event will not fire again for it (the queue never emptied),
    // so come back after other handlers had their turn.
    continuation_posted_ = true;
    try {
      boost::asio::post(io_, [self = shared_from_this()] {
        self->continuation_posted_ = false;
        self->serve();
      });
    } catch (const std::exception& e) {
      continuation_posted_ = false;  // the safety timer will serve it
      log::error("", "kafka: cannot schedule serving the producer queue: ", e.what());
    }
  }
  if (rk_ != nullptr) {
    notify("a round of producer reports", [this] { listener_->on_served(generation_); });
  }
}

rd_kafka_resp_err_t producer::produce(const outgoing_record& rec) noexcept {
  if (rk_ == nullptr) {
    return RD_KAFKA_RESP_ERR__STATE;
  }
  static_assert(sizeof(void*) >= sizeof(std::uint64_t), "the record sequence travels as the message opaque");
  // Headers go in as an application-owned list (VTYPE_HEADERS), not one VTYPE_HEADER each: librdkafka 2.0.2's
  // rd_kafka_produceva() frees its own header list twice when the partitioner refuses a message synchronously (a
  // topic in an error state, e.g. after TOPIC_AUTHORIZATION_FAILED or an unknown topic), while an application-owned
  // list is detached on that path and simply stays ours. Ownership passes to librdkafka only on success.
  rd_kafka_headers_t* headers = rd_kafka_headers_new(rec.headers.size());
  for (const auto& h : rec.headers) {
    rd_kafka_header_add(headers, h.name, -1, h.value.data(), static_cast<ssize_t>(h.value.size()));
  }
  std::array<rd_kafka_vu_t, 7> vus{};
  std::size_t n = 0;
  vus[n].vtype = RD_KAFKA_VTYPE_TOPIC;
  vus[n++].u.cstr = rec.topic;
  if (!rec.key.empty()) {
    // Keys are always copied by librdkafka.
    vus[n].vtype = RD_KAFKA_VTYPE_KEY;
    vus[n].u.mem.ptr = const_cast<char*>(rec.key.data());
    vus[n++].u.mem.size = rec.key.size();
  }
  vus[n].vtype = RD_KAFKA_VTYPE_VALUE;
  // librdkafka never writes through this pointer; without RD_KAFKA_MSG_F_COPY / F_FREE it neither copies nor frees
  // it, which is the point: the record's single buffer is the message until the delivery report.
  vus[n].u.mem.ptr = const_cast<char*>(rec.value.data());
  vus[n++].u.mem.size = rec.value.size();
  vus[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
  vus[n++].u.i = 0;
  vus[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
  // The opaque carries a number, never dereferenced.
  vus[n++].u.ptr = reinterpret_cast<void*>(static_cast<std::uintptr_t>(rec.seq));  // NOLINT(performance-no-int-to-ptr)
  vus[n].vtype = RD_KAFKA_VTYPE_HEADERS;
  vus[n++].u.headers = headers;
  rd_kafka_error_t* error = rd_kafka_produceva(rk_, vus.data(), n);
  if (error == nullptr) {
    return RD_KAFKA_RESP_ERR_NO_ERROR;
  }
  rd_kafka_headers_destroy(headers);
  // After a fatal error librdkafka refuses every record with the fatal error's own code (e.g.
  // OUT_OF_ORDER_SEQUENCE_NUMBER), which says nothing about the record: report it as __FATAL so the record waits for
  // the next producer instead of being dead-lettered (the error callback with the fatal error may still be queued).
  const rd_kafka_resp_err_t code =
      rd_kafka_error_is_fatal(error) != 0 ? RD_KAFKA_RESP_ERR__FATAL : rd_kafka_error_code(error);
  rd_kafka_error_destroy(error);
  return code;
}

std::thread producer::close(std::function<void()> destroyed) {
  if (rk_ == nullptr) {
    return {};
  }
  auto job = std::make_shared<reaper>();  // first: if it fails, the handle is still open and still served
  callbacks_->target.store(nullptr);
  detach_wakeup(rk_, wakeup_queue::main);
  boost::system::error_code ignored;
  wakeup_.close(ignored);  // after librdkafka stopped writing to it: the fd number may be reused at once
  safety_timer_.cancel();
  job->rk = std::exchange(rk_, nullptr);
  job->name = rd_kafka_name(job->rk);
  job->callbacks = std::move(callbacks_);
  job->destroyed = std::move(destroyed);
  try {
    return std::thread([job] { job->run(); });
  } catch (const std::system_error& e) {
    // No thread to be had: destroying here blocks the io_context, but leaking the handle would be worse.
    log::warn("", "kafka: destroying producer ", job->name, " on the event loop (", e.what(), ")");
    job->run();
    return {};
  }
}

void producer::reaper::run() noexcept {
  // Purging first makes destroy quick even with unreachable brokers; purged messages' reports are never served.
  rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_destroy(rk);
  callbacks.reset();
  log::info("", "kafka: producer ", name, " destroyed");
  if (destroyed) {
    try {
      destroyed();
    } catch (const std::exception& e) {
      log::error("", "kafka: after destroying producer ", name, ": ", e.what());
    }
  }
}

int producer::librdkafka_queue_length() const noexcept {
  return rk_ != nullptr ? rd_kafka_outq_len(rk_) : 0;
}

rd_kafka_resp_err_t producer::inject_fatal_error_for_testing(rd_kafka_resp_err_t err) noexcept {
  if (rk_ == nullptr) {
    return RD_KAFKA_RESP_ERR__STATE;
  }
  return rd_kafka_test_fatal_error(rk_, err, "injected by inject_fatal_error_for_testing()");
}

void producer::on_delivery_cb(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque) noexcept {
  auto* ctx = static_cast<callback_context*>(opaque);
  producer* self = ctx != nullptr ? ctx->target.load() : nullptr;
  if (self == nullptr || msg == nullptr) {
    return;
  }
  delivery_report report;
  report.seq = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(msg->_private));
  report.err = msg->err;
  report.status = rd_kafka_message_status(msg);
  report.partition = msg->partition;
  report.offset = msg->offset;
  if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::array<char, 256> text{};
    report.handle_fatal = rd_kafka_fatal_error(rk, text.data(), text.size()) != RD_KAFKA_RESP_ERR_NO_ERROR;
  }
  notify("a delivery report", [self, &report] { self->listener_->on_delivery(self->generation_, report); });
}

void producer::on_error_cb(rd_kafka_t* rk, int err, const char* reason, void* opaque) noexcept {
  auto* ctx = static_cast<callback_context*>(opaque);
  producer* self = ctx != nullptr ? ctx->target.load() : nullptr;
  if (self == nullptr) {
    return;
  }
  notify("a librdkafka error", [rk, err, reason, self] {
    auto code = static_cast<rd_kafka_resp_err_t>(err);
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
      std::array<char, 512> text{};
      code = rd_kafka_fatal_error(rk, text.data(), text.size());
      self->listener_->on_error(self->generation_, code, true, text.data());
      return;
    }
    self->listener_->on_error(self->generation_, code, false, reason != nullptr ? reason : "");
  });
}

int producer::on_stats_cb(rd_kafka_t* /*rk*/, char* json, size_t json_len, void* opaque) noexcept {
  auto* ctx = static_cast<callback_context*>(opaque);
  producer* self = ctx != nullptr ? ctx->target.load() : nullptr;
  if (self == nullptr || json == nullptr) {
    return 0;
  }
  notify("librdkafka statistics", [self, json, json_len] {
    if (const auto figures = parse_statistics(std::string_view(json, json_len))) {
      self->listener_->on_statistics(self->generation_, *figures);
    } else {
      log::warn("", "kafka: librdkafka statistics in an unexpected shape; broker metrics not updated");
    }
  });
  return 0;  // librdkafka frees the JSON
}

}  // namespace rtm::kafka
