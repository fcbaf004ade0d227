#include "kafka/group_member.hpp"

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

constexpr const char* interceptor_name = "rtm-bridge-lease";
// Kafka's ApiKeys whose answers renew the group session (the broker resets the member's timer on each).
constexpr std::int16_t api_join_group = 11;
constexpr std::int16_t api_heartbeat = 12;
constexpr std::int16_t api_sync_group = 14;
constexpr int events_per_turn = 64;

std::int64_t steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void set(rd_kafka_conf_t* conf, const std::string& name, const std::string& value, std::string_view origin) {
  std::array<char, 512> errstr{};
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr.data(), errstr.size()) != RD_KAFKA_CONF_OK) {
    const std::string detail =
        config::is_sensitive_property(name) ? std::string("rejected by librdkafka") : errstr.data();
    throw std::runtime_error(std::string(origin) + ": " + detail);
  }
}

std::string ms(std::chrono::milliseconds d) {
  return std::to_string(d.count());
}

void log_error_object(rd_kafka_error_t* error, std::string_view what) noexcept {
  if (error != nullptr) {
    log::error("", "cluster: ", what, ": ", rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
  }
}

std::vector<std::int32_t> partitions_of(const rd_kafka_topic_partition_list_t* list) {
  std::vector<std::int32_t> out;
  for (int i = 0; list != nullptr && i < list->cnt; ++i) {
    out.push_back(list->elems[i].partition);
  }
  return out;
}

}  // namespace

group_member::group_member(boost::asio::io_context& io, group_listener& listener, std::string topic,
                           std::chrono::milliseconds poll_interval)
    : io_(io),
      listener_(&listener),
      topic_(std::move(topic)),
      poll_interval_(poll_interval),
      shared_(std::make_shared<shared_state>()),
      wakeup_(io),
      poll_timer_(io) {}

std::shared_ptr<group_member> group_member::create(boost::asio::io_context& io, const group_member_settings& settings,
                                                   group_listener& listener) {
  std::shared_ptr<group_member> self(new group_member(io, listener, settings.topic, settings.poll_interval));
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  try {
    for (const auto& [name, value] : settings.properties) {
      if (!config::is_bridge_property(name)) {
        set(conf, name, value, "kafka/cluster properties." + name);
      }
    }
    set(conf, "bootstrap.servers", settings.bootstrap_servers, "kafka.brokers");
    set(conf, "client.id", settings.client_id, "kafka.client_id");
    set(conf, "group.id", settings.group_id, "cluster.group_id");
    if (settings.instance_id) {
      set(conf, "group.instance.id", *settings.instance_id, "cluster.instance_id");
    }
    set(conf, "session.timeout.ms", ms(settings.session_timeout), "cluster.session_timeout");
    set(conf, "heartbeat.interval.ms", ms(settings.heartbeat_interval), "cluster.heartbeat_interval");
    set(conf, "max.poll.interval.ms", ms(settings.rebalance_timeout), "cluster.rebalance_timeout");
    set(conf, "partition.assignment.strategy", "cooperative-sticky", "cluster (bridge setting)");
    set(conf, "enable.auto.commit", "false", "cluster (bridge setting)");
    set(conf, "enable.auto.offset.store", "false", "cluster (bridge setting)");
    // No fetching worth the name: the partitions are paused as soon as they are assigned.
    set(conf, "enable.partition.eof", "false", "cluster (bridge setting)");
    // The assignment topic is made by the operator with exactly `buckets` partitions, never by a metadata request.
    set(conf, "allow.auto.create.topics", "false", "cluster (bridge setting)");
  } catch (...) {
    rd_kafka_conf_destroy(conf);
    throw;
  }
  if (rd_kafka_conf_interceptor_add_on_new(conf, interceptor_name, &group_member::on_new, self->shared_.get()) !=
      RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error("cluster: cannot install the lease interceptor");
  }
  rd_kafka_conf_set_opaque(conf, self->shared_.get());
  rd_kafka_conf_set_rebalance_cb(conf, &group_member::on_rebalance_cb);
  rd_kafka_conf_set_error_cb(conf, &group_member::on_error_cb);
  rd_kafka_conf_set_log_cb(conf, &forward_librdkafka_log);

  std::array<char, 512> errstr{};
  self->rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr.data(), errstr.size());
  if (self->rk_ == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("cluster: cannot create the group consumer: ") + errstr.data());
  }
  rd_kafka_poll_set_consumer(self->rk_);
  if (auto error = attach_wakeup(self->rk_, wakeup_queue::consumer, self->wakeup_)) {
    rd_kafka_destroy(std::exchange(self->rk_, nullptr));
    throw std::runtime_error("cluster: cannot create an eventfd for the group consumer: " + *error);
  }
  return self;
}

group_member::~group_member() {
  if (rk_ != nullptr) {
    // Only when close() was never called (a forced exit, or the owner failed half-way): the daemon has dropped
    // every connection first. Blocking, with nothing told.
    shared_->target.store(nullptr);
    detach_wakeup(rk_, wakeup_queue::consumer);
    rd_kafka_consumer_close(rk_);
    if (!shared_->joined.load() || shared_->ever_assigned.load()) {
      rd_kafka_destroy(rk_);
    } else {
      shared_->kept_alive.store(true);  // the process is exiting; destroying it would crash (#4381)
    }
  }
}

std::optional<topic_problem> group_member::check_topic(std::size_t buckets, std::chrono::milliseconds timeout) {
  const std::string create = "kafka-topics.sh --bootstrap-server BROKER --create --topic " + topic_ + " --partitions " +
                             std::to_string(buckets) + " --replication-factor 3";
  rd_kafka_topic_t* topic = rd_kafka_topic_new(rk_, topic_.c_str(), nullptr);
  if (topic == nullptr) {
    return topic_problem{true, "cluster: cannot use assignment topic " + topic_};
  }
  const rd_kafka_metadata_t* md = nullptr;
  const rd_kafka_resp_err_t err = rd_kafka_metadata(rk_, 0, topic, &md, static_cast<int>(timeout.count()));
  rd_kafka_topic_destroy(topic);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return topic_problem{false, "cluster: cannot read the metadata of assignment topic " + topic_ + " within " +
                                    std::to_string(timeout.count()) + " ms: " + rd_kafka_err2str(err) +
                                    " (are kafka.brokers reachable?)"};
  }
  std::optional<topic_problem> problem;
  if (md->topic_cnt != 1 || md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
    problem = topic_problem{true, "cluster: the assignment topic " + topic_ + " does not exist; create it with " +
                                      std::to_string(buckets) + " partitions (cluster.buckets): " + create};
  } else if (md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    problem = topic_problem{false, "cluster: assignment topic " + topic_ + ": " + rd_kafka_err2str(md->topics[0].err)};
  } else if (static_cast<std::size_t>(md->topics[0].partition_cnt) != buckets) {
    problem = topic_problem{
        true, "cluster: the assignment topic " + topic_ + " has " + std::to_string(md->topics[0].partition_cnt) +
                  " partitions, but cluster.buckets is " + std::to_string(buckets) +
                  ": every bucket must be one partition. Set cluster.buckets to " +
                  std::to_string(md->topics[0].partition_cnt) + " on every instance, or recreate the topic: " + create};
  }
  rd_kafka_metadata_destroy(md);
  return problem;
}

void group_member::join() {
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, topic_.c_str(), RD_KAFKA_PARTITION_UA);
  const rd_kafka_resp_err_t err = rd_kafka_subscribe(rk_, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error("cluster: cannot subscribe to " + topic_ + ": " + rd_kafka_err2str(err));
  }
  shared_->target.store(this);
  log::info("", "cluster: joining group as ", rd_kafka_name(rk_), " (assignment topic ", topic_, ")");
  wait_for_events();
  arm_poll_timer();
}

void group_member::wait_for_events() {
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

void group_member::arm_poll_timer() {
  poll_timer_.expires_after(poll_interval_);
  poll_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || self->rk_ == nullptr) {
      return;
    }
    self->serve();
    if (self->rk_ != nullptr) {
      self->arm_poll_timer();
    }
  });
}

void group_member::serve() noexcept {
  const lease_inputs before = inputs();
  bool drained = false;
  for (int i = 0; i < events_per_turn && rk_ != nullptr; ++i) {
    rd_kafka_message_t* msg = rd_kafka_consumer_poll(rk_, 0);
    if (msg == nullptr) {
      drained = true;
      break;
    }
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR && msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      log::warn("", "cluster: group consumer: ", rd_kafka_message_errstr(msg), " (", rd_kafka_err2name(msg->err), ")");
    }
    rd_kafka_message_destroy(msg);  // a record on the assignment topic means nothing: it is a lock table
  }
  if (rk_ == nullptr) {
    return;
  }
  if (!fatal_reported_) {
    std::array<char, 512> errstr{};
    if (rd_kafka_fatal_error(rk_, errstr.data(), errstr.size()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      fatal_reported_ = true;
      listener_->on_fatal(errstr.data());
      return;
    }
  }
  listener_->on_polled(before, drained);
}

lease_inputs group_member::inputs() const noexcept {
  lease_inputs in;
  const std::int64_t ns = shared_->latest_sent_ns.load();
  if (ns != 0) {
    in.latest_sent = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(ns));
  }
  const std::lock_guard<std::mutex> lock(shared_->heartbeat_mutex);
  in.heartbeats_after = shared_->heartbeats_after;
  return in;
}

void group_member::count_heartbeats_after(std::chrono::steady_clock::time_point t) noexcept {
  const std::lock_guard<std::mutex> lock(shared_->heartbeat_mutex);
  shared_->count_after_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  shared_->heartbeats_after = 0;
}

std::thread group_member::close(std::function<void()> closed) {
  if (rk_ == nullptr) {
    return {};
  }
  shared_->target.store(nullptr);  // a revocation during the close is applied, not reported: nothing is open
  detach_wakeup(rk_, wakeup_queue::consumer);
  boost::system::error_code ignored;
  wakeup_.close(ignored);
  poll_timer_.cancel();
  rd_kafka_t* rk = std::exchange(rk_, nullptr);
  auto job = [rk, shared = shared_, closed = std::move(closed)]() noexcept {
    const rd_kafka_resp_err_t err = rd_kafka_consumer_close(rk);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      log::warn("", "cluster: leaving the group: ", rd_kafka_err2str(err));
    }
    if (!shared->joined.load() || shared->ever_assigned.load()) {
      rd_kafka_destroy(rk);
    } else {
      shared->kept_alive.store(true);  // destroying a consumer joined but never assigned crashes in 2.0.2 (#4381)
    }
    log::info("", "cluster: left the group");
    if (closed) {
      closed();
    }
  };
  try {
    return std::thread(std::move(job));
  } catch (const std::system_error& e) {
    log::warn("", "cluster: leaving the group on the event loop (", e.what(), ")");
    job();
    return {};
  }
}

void group_member::on_rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions,
                                   void* opaque) noexcept {
  auto* shared = static_cast<shared_state*>(opaque);
  group_member* self = shared != nullptr ? shared->target.load() : nullptr;
  const std::vector<std::int32_t> buckets = partitions_of(partitions);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    if (rd_kafka_error_t* error = rd_kafka_incremental_assign(rk, partitions)) {
      log_error_object(error, "incremental assign (those buckets are not taken)");
      return;
    }
    if (shared != nullptr) {
      shared->ever_assigned.store(true);
    }
    // Nothing to fetch: the topic is a lock table. Paused right away so the consumer never asks for records.
    if (partitions != nullptr && partitions->cnt > 0) {
      rd_kafka_pause_partitions(rk, partitions);
    }
    if (self != nullptr) {
      ++self->rebalances_;
      self->listener_->on_assigned(buckets);
    }
    return;
  }
  const bool lost = err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS || rd_kafka_assignment_lost(rk) != 0;
  if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    log::warn("", "cluster: rebalance failed: ", rd_kafka_err2str(err), "; releasing those buckets");
  }
  if (self != nullptr) {
    ++self->rebalances_;
    // The listener closes those buckets' connections now, before librdkafka may tell the group they are free.
    self->listener_->on_revoked(buckets, lost);
  }
  log_error_object(rd_kafka_incremental_unassign(rk, partitions), "incremental unassign");
}

void group_member::on_error_cb(rd_kafka_t* /*rk*/, int err, const char* reason, void* /*opaque*/) noexcept {
  const auto code = static_cast<rd_kafka_resp_err_t>(err);
  if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || code == RD_KAFKA_RESP_ERR__TRANSPORT) {
    log::debug("", "cluster: group consumer: ", reason != nullptr ? reason : "", " (", rd_kafka_err2name(code), ")");
    return;
  }
  log::warn("", "cluster: group consumer: ", reason != nullptr ? reason : "", " (", rd_kafka_err2name(code), ")");
}

rd_kafka_resp_err_t group_member::on_new(rd_kafka_t* rk, const rd_kafka_conf_t* /*conf*/, void* ic_opaque,
                                         char* /*errstr*/, std::size_t /*errstr_size*/) noexcept {
  return rd_kafka_interceptor_add_on_response_received(rk, interceptor_name, &group_member::on_response_received,
                                                       ic_opaque);
}

// On a librdkafka broker thread: atomics only.
rd_kafka_resp_err_t group_member::on_response_received(rd_kafka_t* /*rk*/, int /*sockfd*/, const char* /*brokername*/,
                                                       std::int32_t /*brokerid*/, std::int16_t api_key,
                                                       std::int16_t /*api_version*/, std::int32_t /*corr_id*/,
                                                       std::size_t /*size*/, std::int64_t rtt, rd_kafka_resp_err_t err,
                                                       void* ic_opaque) noexcept {
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR || rtt < 0 ||
      (api_key != api_join_group && api_key != api_heartbeat && api_key != api_sync_group)) {
    return RD_KAFKA_RESP_ERR_NO_ERROR;
  }
  auto* shared = static_cast<shared_state*>(ic_opaque);
  if (api_key == api_join_group) {
    shared->joined.store(true);
  }
  // rtt is in microseconds: the request left at most this long ago, so the broker received it no earlier.
  const std::int64_t sent = steady_ns() - rtt * 1000;
  std::int64_t seen = shared->latest_sent_ns.load();
  while (sent > seen && !shared->latest_sent_ns.compare_exchange_weak(seen, sent)) {
  }
  if (api_key == api_heartbeat) {
    const std::lock_guard<std::mutex> lock(shared->heartbeat_mutex);
    if (sent > shared->count_after_ns) {
      ++shared->heartbeats_after;
    }
  }
  return RD_KAFKA_RESP_ERR_NO_ERROR;
}

}  // namespace rtm::kafka
