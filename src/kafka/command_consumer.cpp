#include "kafka/command_consumer.hpp"

#include <array>
#include <boost/asio/post.hpp>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "config/kafka_properties.hpp"
#include "kafka/librdkafka_log.hpp"
#include "kafka/queue_wakeup.hpp"
#include "util/log.hpp"

namespace rtm::kafka {
namespace {

// Messages served per handler before yielding the io_context to other work.
constexpr int messages_per_turn = 256;
constexpr std::chrono::seconds topic_warning_interval{60};
constexpr const char* command_id_header = "rtm-command-id";
constexpr std::chrono::seconds final_commit_bound{5};

// The boundary between librdkafka's callbacks (and the handlers serving its queue) and the listener: nothing escapes
// into librdkafka's C code or into Asio.
template <typename Call>
void notify(std::string_view what, Call&& call) noexcept {
  try {
    std::forward<Call>(call)();
  } catch (const std::exception& e) {
    log::error("", "kafka: command consumer: ", what, " not fully handled: ", e.what());
  }
}

void set(rd_kafka_conf_t* conf, const std::string& name, const std::string& value, std::string_view origin) {
  std::array<char, 512> errstr{};
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr.data(), errstr.size()) != RD_KAFKA_CONF_OK) {
    const std::string detail =
        config::is_sensitive_property(name) ? std::string("rejected by librdkafka") : errstr.data();
    throw std::runtime_error(std::string(origin) + ": " + detail);
  }
}

// Whether the cooperative protocol is in use (cooperative-sticky): then (un)assignments are incremental.
bool cooperative(rd_kafka_t* rk) noexcept {
  const char* protocol = rd_kafka_rebalance_protocol(rk);
  return protocol != nullptr && std::strcmp(protocol, "COOPERATIVE") == 0;
}

void log_error_object(rd_kafka_error_t* error, std::string_view what) noexcept {
  if (error != nullptr) {
    log::error("", "kafka: command consumer: ", what, ": ", rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
  }
}

// What a rebalance asks for, done the protocol's way; without telling anyone (the handle is closing, or the
// listener has been told already).
void apply_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions) noexcept {
  const bool assign = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
  if (cooperative(rk)) {
    log_error_object(
        assign ? rd_kafka_incremental_assign(rk, partitions) : rd_kafka_incremental_unassign(rk, partitions),
        assign ? "incremental assign" : "incremental unassign");
    return;
  }
  const rd_kafka_resp_err_t result = rd_kafka_assign(rk, assign ? partitions : nullptr);
  if (result != RD_KAFKA_RESP_ERR_NO_ERROR) {
    log::error("", "kafka: command consumer: assign: ", rd_kafka_err2str(result));
  }
}

}  // namespace

command_consumer::command_consumer(boost::asio::io_context& io, command_listener& listener, std::string topic,
                                   std::chrono::milliseconds safety_interval)
    : io_(io),
      listener_(&listener),
      topic_(std::move(topic)),
      safety_interval_(safety_interval),
      callbacks_(std::make_unique<callback_context>()),
      wakeup_(io),
      safety_timer_(io) {}

std::shared_ptr<command_consumer> command_consumer::create(boost::asio::io_context& io,
                                                           const command_consumer_settings& settings,
                                                           command_listener& listener) {
  std::shared_ptr<command_consumer> self(
      new command_consumer(io, listener, settings.topic, settings.safety_poll_interval));
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  try {
    for (const auto& [name, value] : settings.properties) {
      if (!config::is_bridge_property(name)) {
        set(conf, name, value, "kafka.properties." + name);
      }
    }
    set(conf, "bootstrap.servers", settings.bootstrap_servers, "kafka.brokers");
    set(conf, "client.id", settings.client_id, "kafka.client_id");
    set(conf, "group.id", settings.group_id, "commands.group_id");
    // Offsets move only when a reply is confirmed (the dispatcher commits them); a new group starts at the earliest
    // command (CONTRACT).
    set(conf, "enable.auto.commit", "false", "commands (bridge setting enable.auto.commit)");
    set(conf, "enable.auto.offset.store", "false", "commands (bridge setting enable.auto.offset.store)");
    set(conf, "auto.offset.reset", "earliest", "commands (bridge setting auto.offset.reset)");
    set(conf, "partition.assignment.strategy", "cooperative-sticky",
        "commands (bridge setting partition.assignment.strategy)");
    // After a crash the group gives the partitions of the dead member to anyone only when its session times out:
    // librdkafka's 45 s would outlast commands.max_age (30 s), so the restarted bridge would find them expired.
    // Kafka's classic 10 s (librdkafka's heartbeat, 3 s, fits in it), unless kafka.properties says otherwise.
    const auto given = [&settings](std::string_view name) {
      for (const auto& p : settings.properties) {
        if (p.first == name) {
          return true;
        }
      }
      return false;
    };
    if (!given("session.timeout.ms")) {
      set(conf, "session.timeout.ms", "10000", "commands (bridge default session.timeout.ms)");
    }

  } catch (...) {
    rd_kafka_conf_destroy(conf);
    throw;
  }
  rd_kafka_conf_set_opaque(conf, self->callbacks_.get());
  rd_kafka_conf_set_rebalance_cb(conf, &command_consumer::on_rebalance_cb);
  rd_kafka_conf_set_offset_commit_cb(conf, &command_consumer::on_commit_cb);
  rd_kafka_conf_set_error_cb(conf, &command_consumer::on_error_cb);
  rd_kafka_conf_set_log_cb(conf, &forward_librdkafka_log);

  std::array<char, 512> errstr{};
  self->rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr.data(), errstr.size());
  if (self->rk_ == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("kafka: cannot create the command consumer: ") + errstr.data());
  }
  // Everything (errors, commit results, rebalances) now arrives on the consumer queue.
  rd_kafka_poll_set_consumer(self->rk_);

  if (auto error = attach_wakeup(self->rk_, wakeup_queue::consumer, self->wakeup_)) {
    rd_kafka_destroy(std::exchange(self->rk_, nullptr));
    throw std::runtime_error("kafka: cannot create an eventfd for the command consumer: " + *error);
  }

  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, settings.topic.c_str(), RD_KAFKA_PARTITION_UA);
  const rd_kafka_resp_err_t err = rd_kafka_subscribe(self->rk_, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_destroy(std::exchange(self->rk_, nullptr));
    throw std::runtime_error("kafka: cannot subscribe to commands.topic " + settings.topic + ": " +
                             rd_kafka_err2str(err));
  }
  self->callbacks_->target.store(self.get());
  log::info("", "kafka: command consumer ", rd_kafka_name(self->rk_), " in group ", settings.group_id, " reading ",
            settings.topic);
  self->wait_for_events();
  self->arm_safety_timer();
  boost::asio::post(io, [self] { self->serve(); });
  return self;
}

command_consumer::~command_consumer() {
  if (rk_ != nullptr) {
    // Only when close() was never called (the owner failed half-way): blocking, with nothing told.
    callbacks_->target.store(nullptr);
    detach_wakeup(rk_, wakeup_queue::consumer);
    rd_kafka_consumer_close(rk_);
    rd_kafka_destroy(rk_);
  }
}

void command_consumer::wait_for_events() {
  wakeup_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       if (ec || self->rk_ == nullptr) {
                         return;
                       }
                       reset_wakeup(self->wakeup_);
                       self->serve();
                       if (self->rk_ != nullptr) {
                         self->wait_for_events();
                       }
                     });
}

void command_consumer::arm_safety_timer() {
  safety_timer_.expires_after(safety_interval_);
  safety_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || self->rk_ == nullptr) {
      return;
    }
    self->serve();
    if (self->rk_ != nullptr) {
      self->arm_safety_timer();
    }
  });
}

void command_consumer::serve() noexcept {
  for (int i = 0; i < messages_per_turn; ++i) {
    if (rk_ == nullptr) {
      return;
    }
    rd_kafka_message_t* msg = rd_kafka_consumer_poll(rk_, 0);
    if (msg == nullptr) {
      return;
    }
    notify("a command record", [this, msg] { handle(*msg); });
    rd_kafka_message_destroy(msg);
  }
  if (!continuation_posted_) {
    continuation_posted_ = true;
    try {
      boost::asio::post(io_, [self = shared_from_this()] {
        self->continuation_posted_ = false;
        self->serve();
      });
    } catch (const std::exception& e) {
      continuation_posted_ = false;  // the safety timer serves it
      log::error("", "kafka: cannot schedule serving the command consumer: ", e.what());
    }
  }
}

void command_consumer::handle(const rd_kafka_message_t& msg) {
  if (msg.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (msg.err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      return;
    }
    const bool missing =
        msg.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || msg.err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    const auto now = std::chrono::steady_clock::now();
    if (!missing || now - last_topic_warning_ >= topic_warning_interval) {
      last_topic_warning_ = now;
      if (missing) {
        log::error("", "kafka: the command topic ", topic_, " does not exist; create it (kafka-topics.sh --create ",
                   "--topic ", topic_, ") or set commands.topic to an existing topic");
      } else {
        log::warn("", "kafka: command consumer: ", rd_kafka_message_errstr(&msg), " (", rd_kafka_err2name(msg.err),
                  ")");
      }
    }
    return;
  }
  if (!intake_) {
    return;  // stopping: not tracked, so its offset is not committed and the next start reads it again
  }
  command_message m;
  m.topic = topic_;
  m.partition = msg.partition;
  m.offset = msg.offset;
  m.key = msg.key != nullptr ? std::string_view(static_cast<const char*>(msg.key), msg.key_len) : std::string_view{};
  m.value =
      msg.payload != nullptr ? std::string_view(static_cast<const char*>(msg.payload), msg.len) : std::string_view{};
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(&msg, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR && headers != nullptr) {
    const void* value = nullptr;
    std::size_t size = 0;
    if (rd_kafka_header_get_last(headers, command_id_header, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        value != nullptr) {
      m.command_id = std::string_view(static_cast<const char*>(value), size);
    }
  }
  rd_kafka_timestamp_type_t type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
  const std::int64_t ms = rd_kafka_message_timestamp(&msg, &type);
  m.timestamp =
      ms >= 0 ? std::chrono::system_clock::time_point(std::chrono::milliseconds(ms)) : std::chrono::system_clock::now();
  listener_->on_command(m);
}

rd_kafka_topic_partition_list_t* command_consumer::partition_list(
    std::span<const std::pair<std::int32_t, std::int64_t>> offsets) const {
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size()));
  for (const auto& [partition, offset] : offsets) {
    rd_kafka_topic_partition_list_add(list, topic_.c_str(), partition)->offset = offset;
  }
  return list;
}

void command_consumer::pause(std::int32_t partition) noexcept {
  if (rk_ == nullptr) {
    return;
  }
  const std::array<std::pair<std::int32_t, std::int64_t>, 1> one{{{partition, RD_KAFKA_OFFSET_INVALID}}};
  rd_kafka_topic_partition_list_t* list = partition_list(one);
  rd_kafka_pause_partitions(rk_, list);
  rd_kafka_topic_partition_list_destroy(list);
}

void command_consumer::resume(std::int32_t partition) noexcept {
  if (rk_ == nullptr) {
    return;
  }
  const std::array<std::pair<std::int32_t, std::int64_t>, 1> one{{{partition, RD_KAFKA_OFFSET_INVALID}}};
  rd_kafka_topic_partition_list_t* list = partition_list(one);
  rd_kafka_resume_partitions(rk_, list);
  rd_kafka_topic_partition_list_destroy(list);
}

void command_consumer::commit(std::span<const std::pair<std::int32_t, std::int64_t>> offsets) noexcept {
  if (rk_ == nullptr || offsets.empty()) {
    return;
  }
  rd_kafka_topic_partition_list_t* list = partition_list(offsets);
  const rd_kafka_resp_err_t err = rd_kafka_commit(rk_, list, 1);
  rd_kafka_topic_partition_list_destroy(list);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    log::warn("", "kafka: cannot commit command offsets: ", rd_kafka_err2str(err), " (the commands may be sent ",
              "again after a restart)");
  }
}

std::thread command_consumer::close(std::vector<std::pair<std::int32_t, std::int64_t>> final_offsets,
                                    std::function<void()> closed) {
  if (rk_ == nullptr) {
    return {};
  }
  callbacks_->target.store(nullptr);  // rebalances during the close are applied, not reported
  detach_wakeup(rk_, wakeup_queue::consumer);
  boost::system::error_code ignored;
  wakeup_.close(ignored);
  safety_timer_.cancel();
  rd_kafka_topic_partition_list_t* list = final_offsets.empty() ? nullptr : partition_list(final_offsets);
  rd_kafka_t* rk = std::exchange(rk_, nullptr);
  auto job = [rk, list, callbacks = std::shared_ptr<callback_context>(std::move(callbacks_)),
              closed = std::move(closed)]() noexcept {
    if (list != nullptr) {
      // Bounded: with the coordinator gone a commit would wait for librdkafka's own timeouts (a minute).
      rd_kafka_queue_t* result = rd_kafka_queue_new(rk);
      rd_kafka_resp_err_t err = rd_kafka_commit_queue(rk, list, result, nullptr, nullptr);
      rd_kafka_topic_partition_list_destroy(list);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_event_t* ev = rd_kafka_queue_poll(result, static_cast<int>(final_commit_bound.count()));
        err = ev == nullptr ? RD_KAFKA_RESP_ERR__TIMED_OUT : rd_kafka_event_error(ev);
        if (ev != nullptr) {
          rd_kafka_event_destroy(ev);
        }
      }
      rd_kafka_queue_destroy(result);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        log::warn("", "kafka: the last commit of command offsets failed: ", rd_kafka_err2str(err),
                  " (those commands are sent again after the next start)");
      }
    }
    const rd_kafka_resp_err_t err = rd_kafka_consumer_close(rk);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      log::warn("", "kafka: closing the command consumer: ", rd_kafka_err2str(err));
    }
    rd_kafka_destroy(rk);
    log::info("", "kafka: command consumer closed");
    if (closed) {
      try {
        closed();
      } catch (const std::exception& e) {
        log::error("", "kafka: after closing the command consumer: ", e.what());
      }
    }
  };
  try {
    return std::thread(std::move(job));
  } catch (const std::system_error& e) {
    log::warn("", "kafka: closing the command consumer on the event loop (", e.what(), ")");
    job();
    return {};
  }
}

void command_consumer::on_rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                       rd_kafka_topic_partition_list_t* partitions, void* opaque) noexcept {
  auto* ctx = static_cast<callback_context*>(opaque);
  command_consumer* self = ctx != nullptr ? ctx->target.load() : nullptr;
  // A failed rebalance unassigns too (below): the listener forgets those partitions either way.
  if (self != nullptr && err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && partitions != nullptr) {
    const bool lost = err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS || rd_kafka_assignment_lost(rk) != 0;
    notify("a revocation", [self, partitions, lost] {
      std::vector<std::int32_t> revoked;
      revoked.reserve(static_cast<std::size_t>(partitions->cnt));
      for (int i = 0; i < partitions->cnt; ++i) {
        revoked.push_back(partitions->elems[i].partition);
      }
      self->listener_->on_revoked(revoked, lost);
    });
  }
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && partitions != nullptr && partitions->cnt > 0) {
    log::info("", "kafka: command consumer assigned ", partitions->cnt, " partition(s) of ",
              partitions->elems[0].topic);
  }
  if (err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    log::warn("", "kafka: command consumer rebalance failed: ", rd_kafka_err2str(err));
    err = RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS;  // librdkafka's advice: unassign
  }
  apply_rebalance(rk, err, partitions);
}

void command_consumer::on_commit_cb(rd_kafka_t* /*rk*/, rd_kafka_resp_err_t err,
                                    rd_kafka_topic_partition_list_t* offsets, void* opaque) noexcept {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET || offsets == nullptr) {
    // Per partition too: a commit can succeed for some and fail for others.
    bool any_failed = false;
    for (int i = 0; offsets != nullptr && i < offsets->cnt; ++i) {
      any_failed = any_failed || offsets->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR;
    }
    if (!any_failed) {
      return;
    }
  }
  log::warn("", "kafka: committing command offsets failed: ", rd_kafka_err2str(err),
            "; trying again in a second (after a crash before it succeeds, those commands are sent again)");
  auto* ctx = static_cast<callback_context*>(opaque);
  command_consumer* self = ctx != nullptr ? ctx->target.load() : nullptr;
  if (self == nullptr) {
    return;
  }
  notify("a failed commit", [self, err, offsets] {
    std::vector<std::int32_t> failed;
    failed.reserve(static_cast<std::size_t>(offsets->cnt));
    for (int i = 0; i < offsets->cnt; ++i) {
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR || offsets->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        failed.push_back(offsets->elems[i].partition);
      }
    }
    self->listener_->on_commit_failed(failed);
  });
}

void command_consumer::on_error_cb(rd_kafka_t* /*rk*/, int err, const char* reason, void* /*opaque*/) noexcept {
  const auto code = static_cast<rd_kafka_resp_err_t>(err);
  if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || code == RD_KAFKA_RESP_ERR__TRANSPORT) {
    log::debug("", "kafka: command consumer: ", reason != nullptr ? reason : "", " (", rd_kafka_err2name(code), ")");
    return;
  }
  log::warn("", "kafka: command consumer: ", reason != nullptr ? reason : "", " (", rd_kafka_err2name(code), ")");
}

}  // namespace rtm::kafka
