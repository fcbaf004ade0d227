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

// The command consumer (docs/CONTRACT.md, "Commands"): one librdkafka consumer handle in the group commands.group_id,
// subscribed to commands.topic, wired into the io_context like kafka::producer: librdkafka writes to an eventfd when
// its consumer queue (messages, rebalances, errors, commit results) goes from empty to non-empty, and an async_wait
// on it runs rd_kafka_consumer_poll(rk, 0) until the queue is empty, plus a slow safety timer. It never commits on
// its own (enable.auto.commit and auto offset store are off): the dispatcher commits a command's offset once its
// reply is confirmed. Cooperative-sticky assignment, so a rebalance never takes away a partition it keeps.
//
// Threading: every listener call runs on the io_context thread, inside serve(). close() hands the handle to a thread
// (the final commit, rd_kafka_consumer_close and rd_kafka_destroy block); from then on nothing reaches the listener.
namespace rtm::kafka {

struct command_consumer_settings {
  std::string bootstrap_servers;
  std::string client_id = "rtm-bridge";
  std::string group_id;
  std::string topic;
  // kafka.properties (security, timeouts): applied as librdkafka takes them; those only a producer knows are
  // ignored by librdkafka with a warning. The bridge's own settings (below) win.
  std::vector<std::pair<std::string, std::string>> properties;
  std::chrono::milliseconds safety_poll_interval{1000};
};

struct command_message {
  std::string_view topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::string_view key;
  std::string_view value;
  std::string_view command_id;                      // the rtm-command-id header, empty when absent
  std::chrono::system_clock::time_point timestamp;  // the record's timestamp (receipt time when it has none)
};

class command_listener {
 public:
  command_listener() = default;
  command_listener(const command_listener&) = delete;
  command_listener& operator=(const command_listener&) = delete;
  command_listener(command_listener&&) = delete;
  command_listener& operator=(command_listener&&) = delete;

  virtual void on_command(const command_message& m) = 0;
  // Partitions taken away (a rebalance): their offsets can no longer be committed by this member. `lost`: the group
  // gave them away already (a session that expired), so committing for them is refused too.
  virtual void on_revoked(std::span<const std::int32_t> partitions, bool lost) = 0;
  // An asynchronous commit of these partitions failed: their commit points must be offered again.
  virtual void on_commit_failed(std::span<const std::int32_t> partitions) = 0;

 protected:
  ~command_listener() = default;
};

class command_consumer : public std::enable_shared_from_this<command_consumer> {
 public:
  // Creates the handle and subscribes. Throws std::runtime_error naming the offending setting or librdkafka's reason.
  [[nodiscard]] static std::shared_ptr<command_consumer> create(boost::asio::io_context& io,
                                                                const command_consumer_settings& settings,
                                                                command_listener& listener);
  command_consumer(const command_consumer&) = delete;
  command_consumer& operator=(const command_consumer&) = delete;
  command_consumer(command_consumer&&) = delete;
  command_consumer& operator=(command_consumer&&) = delete;
  ~command_consumer();

  // Stops fetching from a partition / starts again from the message after the last one delivered (back pressure:
  // a connection's queue is full; never a drop).
  void pause(std::int32_t partition) noexcept;
  void resume(std::int32_t partition) noexcept;
  // Stops delivering messages at all (a stop has begun); commits still go out.
  void stop_intake() noexcept { intake_ = false; }
  // Commits offsets asynchronously: (partition, the next offset to read).
  void commit(std::span<const std::pair<std::int32_t, std::int64_t>> offsets) noexcept;
  // Serves the queue now (bounded per call).
  void serve() noexcept;

  // Detaches the listener, then on a thread: commits `final_offsets` synchronously, leaves the group
  // (rd_kafka_consumer_close) and destroys the handle; `closed` runs on that thread at the end (post it). Returns
  // the thread for the owner to join.
  [[nodiscard]] std::thread close(std::vector<std::pair<std::int32_t, std::int64_t>> final_offsets,
                                  std::function<void()> closed);
  [[nodiscard]] bool closed() const noexcept { return rk_ == nullptr; }

 private:
  struct callback_context {
    std::atomic<command_consumer*> target{nullptr};
  };

  command_consumer(boost::asio::io_context& io, command_listener& listener, std::string topic,
                   std::chrono::milliseconds safety_interval);
  void wait_for_events();
  void arm_safety_timer();
  void handle(const rd_kafka_message_t& msg);
  [[nodiscard]] rd_kafka_topic_partition_list_t* partition_list(
      std::span<const std::pair<std::int32_t, std::int64_t>> offsets) const;

  static void on_rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions,
                              void* opaque) noexcept;
  static void on_commit_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets,
                           void* opaque) noexcept;
  static void on_error_cb(rd_kafka_t* rk, int err, const char* reason, void* opaque) noexcept;

  boost::asio::io_context& io_;
  command_listener* listener_;
  std::string topic_;
  std::chrono::milliseconds safety_interval_;
  rd_kafka_t* rk_ = nullptr;
  std::unique_ptr<callback_context> callbacks_;
  boost::asio::posix::stream_descriptor wakeup_;
  boost::asio::steady_timer safety_timer_;
  bool continuation_posted_ = false;
  bool intake_ = true;
  std::chrono::steady_clock::time_point last_topic_warning_{};
};

}  // namespace rtm::kafka
