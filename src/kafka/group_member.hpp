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
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

// Several instances (docs/CONTRACT.md, "Several instances"; the design study, part A8): one librdkafka consumer in
// cluster.group_id, subscribed to the assignment topic, whose partitions are the buckets. It never commits (bug
// #4059 in 2.0.2 turns a commit refused mid-rebalance into a lost assignment) and its partitions are paused (the topic
// carries no data): the group is used only for who owns which bucket. Cooperative-sticky, so a rebalance moves only
// the buckets that change owner, each released by its old owner (the revocation) before the next one gets it.
//
// The lease: an interceptor sees every answered Heartbeat, JoinGroup and SyncGroup on librdkafka's broker threads
// and records when it was sent (now - rtt) in atomics; the owner (app/cluster_member) reads them on the loop thread
// with lease_inputs(). Polled from the io_context: an eventfd for the consumer queue plus a timer every 100 ms
// (what librdkafka counts as a poll for max.poll.interval.ms).
//
// Threading: every listener call runs on the io_context thread inside serve(), and a revocation is reported before
// librdkafka is told it is done (rd_kafka_incremental_unassign), so the listener's closes happen first.
namespace rtm::kafka {

struct group_member_settings {
  std::string bootstrap_servers;
  std::string client_id = "rtm-bridge";
  std::string group_id;
  std::string topic;
  std::optional<std::string> instance_id;
  std::chrono::milliseconds session_timeout{10000};
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds rebalance_timeout{10000};
  // kafka.properties then cluster.properties, as librdkafka takes them (the bridge's own below win).
  std::vector<std::pair<std::string, std::string>> properties;
  std::chrono::milliseconds poll_interval{100};
};

// What the interceptor saw, for the lease.
struct lease_inputs {
  // The send time of the latest-sent answered Heartbeat/JoinGroup/SyncGroup (time_point{} before the first).
  std::chrono::steady_clock::time_point latest_sent;
  // Answered heartbeats sent after the time given to count_heartbeats_after().
  std::uint64_t heartbeats_after = 0;
};

class group_listener {
 public:
  group_listener() = default;
  group_listener(const group_listener&) = delete;
  group_listener& operator=(const group_listener&) = delete;
  group_listener(group_listener&&) = delete;
  group_listener& operator=(group_listener&&) = delete;

  // The group assigned these buckets (incremental; called after every completed rebalance, even with none).
  virtual void on_assigned(std::span<const std::int32_t> buckets) noexcept = 0;
  // These buckets are taken away; `lost`: the group may have given them to another member already. Whatever the
  // listener closes here is closed before the group hears that the buckets are free.
  virtual void on_revoked(std::span<const std::int32_t> buckets, bool lost) noexcept = 0;
  // A turn of polling ended. `before`: what the interceptor had seen when the turn began; `drained`: the queue was
  // served to empty (everything librdkafka had queued until the turn began has reached the listener).
  virtual void on_polled(const lease_inputs& before, bool drained) noexcept = 0;
  // A fatal consumer error (FENCED_INSTANCE_ID: another live process uses this instance_id).
  virtual void on_fatal(const std::string& why) noexcept = 0;

 protected:
  ~group_listener() = default;
};

// Why the assignment topic cannot be used, or nullopt; `exit_config`: the config is wrong (no such topic, another
// partition count), else Kafka could not be asked.
struct topic_problem {
  bool config = false;
  std::string message;
};

class group_member : public std::enable_shared_from_this<group_member> {
 public:
  // Creates the handle (not yet in the group). Throws std::runtime_error naming the offending setting.
  [[nodiscard]] static std::shared_ptr<group_member> create(boost::asio::io_context& io,
                                                            const group_member_settings& settings,
                                                            group_listener& listener);
  group_member(const group_member&) = delete;
  group_member& operator=(const group_member&) = delete;
  group_member(group_member&&) = delete;
  group_member& operator=(group_member&&) = delete;
  ~group_member();

  // Blocking (start-up only, before the loop runs): the assignment topic exists with exactly `buckets` partitions.
  [[nodiscard]] std::optional<topic_problem> check_topic(std::size_t buckets, std::chrono::milliseconds timeout);
  // Joins the group and starts serving it from the io_context.
  void join();
  void serve() noexcept;

  [[nodiscard]] lease_inputs inputs() const noexcept;
  // From now on only heartbeats sent after `t` are counted in lease_inputs::heartbeats_after (from zero).
  void count_heartbeats_after(std::chrono::steady_clock::time_point t) noexcept;
  [[nodiscard]] std::uint64_t rebalances() const noexcept { return rebalances_; }
  // The handle was closed but not destroyed (#4381): the owner must leave with _Exit.
  [[nodiscard]] bool kept_alive() const noexcept { return shared_->kept_alive.load(); }

  // Leaves the group on a thread: rd_kafka_consumer_close revokes what is owned (reported to the listener first,
  // on that thread: the owner must have closed every connection before calling this), sends LeaveGroup unless
  // static, and destroys the handle; `closed` runs on that thread at the end. Returns the thread to join.
  [[nodiscard]] std::thread close(std::function<void()> closed);

 private:
  // Shared with librdkafka's threads (the interceptor) and its callbacks; outlives the handle.
  struct shared_state {
    std::atomic<group_member*> target{nullptr};
    std::atomic<std::int64_t> latest_sent_ns{0};
    // The threshold and the count change together (a heartbeat answered while the threshold moves must not be
    // counted against the new one); a heartbeat a second, so a lock costs nothing.
    std::mutex heartbeat_mutex;
    std::int64_t count_after_ns = 0;
    std::uint64_t heartbeats_after = 0;
    // Joined but never assigned: librdkafka 2.0.2 crashes destroying such a cooperative consumer (#4381), so it is
    // left undestroyed and the process exits without running exit handlers (kept_alive()).
    std::atomic<bool> joined{false};
    std::atomic<bool> ever_assigned{false};
    std::atomic<bool> kept_alive{false};
  };

  group_member(boost::asio::io_context& io, group_listener& listener, std::string topic,
               std::chrono::milliseconds poll_interval);
  void wait_for_events();
  void arm_poll_timer();

  static void on_rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions,
                              void* opaque) noexcept;
  static void on_error_cb(rd_kafka_t* rk, int err, const char* reason, void* opaque) noexcept;
  static rd_kafka_resp_err_t on_new(rd_kafka_t* rk, const rd_kafka_conf_t* conf, void* ic_opaque, char* errstr,
                                    std::size_t errstr_size) noexcept;
  static rd_kafka_resp_err_t on_response_received(rd_kafka_t* rk, int sockfd, const char* brokername,
                                                  std::int32_t brokerid, std::int16_t api_key, std::int16_t api_version,
                                                  std::int32_t corr_id, std::size_t size, std::int64_t rtt,
                                                  rd_kafka_resp_err_t err, void* ic_opaque) noexcept;

  boost::asio::io_context& io_;
  group_listener* listener_;
  std::string topic_;
  std::chrono::milliseconds poll_interval_;
  rd_kafka_t* rk_ = nullptr;
  std::shared_ptr<shared_state> shared_;
  boost::asio::posix::stream_descriptor wakeup_;
  boost::asio::steady_timer poll_timer_;
  std::uint64_t rebalances_ = 0;
  bool fatal_reported_ = false;
};

}  // namespace rtm::kafka
