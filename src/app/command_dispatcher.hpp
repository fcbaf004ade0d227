#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>

#include "commands/command.hpp"
#include "commands/offset_tracker.hpp"
#include "commands/outbox.hpp"
#include "config/config.hpp"
#include "kafka/command_consumer.hpp"
#include "kafka/publisher.hpp"
#include "metrics/registry.hpp"
#include "pipeline/durability.hpp"
#include "upstream/connection.hpp"

// Commands, Kafka → Slack legacy RTM (docs/CONTRACT.md, "Commands"): the part that sees both halves. A command record
// from the consumer is validated, queued for its connection (by name, so a connection a reload replaces keeps its
// queue), sent on that connection's live socket at the connection's pace (upstream::connection::send_command), its
// reply_to matched, and answered by exactly one reply record through the publisher; the record's offset is committed
// once Kafka confirms that reply (the publisher tells on_durable()).
//
// Threading: the io_context thread only; the consumer's close (last commit, leaving the group) runs on a thread of
// its own, joined by the destructor.
namespace rtm::app {

// What the dispatcher asks the daemon about a connection name.
struct connection_directory {
  // The kind of the configured connection `name`; nullopt when the running configuration has none.
  std::function<std::optional<config::connection_kind>(std::string_view name)> kind_of;
  // The running connection object of `name`; nullptr while there is none (waiting behind an old socket, stopping).
  std::function<upstream::connection*(std::string_view name)> find;
};

class command_dispatcher final : private kafka::command_listener,
                                 private upstream::outbound_listener,
                                 private pipeline::durability_listener {
 public:
  // The most commands queued for one connection before the consumer pauses the partitions feeding it.
  static constexpr std::size_t max_queue = 1000;

  command_dispatcher(boost::asio::io_context& io, config::commands_config cfg,
                     kafka::command_consumer_settings settings, kafka::publisher& publisher, metrics::registry& metrics,
                     connection_directory directory);
  command_dispatcher(const command_dispatcher&) = delete;
  command_dispatcher& operator=(const command_dispatcher&) = delete;
  command_dispatcher(command_dispatcher&&) = delete;
  command_dispatcher& operator=(command_dispatcher&&) = delete;
  // Joins the closing thread (bounded: a consumer that cannot leave its group is not waited for forever).
  ~command_dispatcher();

  // Creates the consumer. Throws std::runtime_error when librdkafka refuses its settings.
  void start();
  // For every connection that sends: the dispatcher hears of its sockets and answers.
  [[nodiscard]] upstream::outbound_listener& outbound() noexcept { return *this; }
  // A connection object was started under `name` (its queue may go out once it is live).
  void connection_started(std::string_view name);
  // The first step of a stop: no new commands are taken (those read but not answered are read again next start).
  void stop_intake() noexcept;
  // After the drain: the last offsets are committed and the consumer leaves its group, on a thread.
  void close();

  [[nodiscard]] std::size_t queued() const noexcept;
  // After the loop stopped: waits up to `bound` for close() to finish; false if the consumer did not leave in time
  // (then the process should exit at once rather than unwind under a thread still inside librdkafka).
  [[nodiscard]] bool wait_closed(std::chrono::milliseconds bound);
  // How long wait_closed() is given at a stop (the systemd stop timeout allows for it).
  static constexpr std::chrono::seconds close_bound{10};

 private:
  struct connection_state {
    connection_state(boost::asio::io_context& io, std::chrono::milliseconds max_age)
        : box(max_queue, max_age), retry(io) {}
    commands::outbox box;
    std::set<std::int32_t> blocking;  // partitions this full queue holds paused (with blockers_)
    // When the rate budget lets the next command go: armed for that moment, so the pace is the session's own.
    boost::asio::steady_timer retry;
    std::chrono::steady_clock::time_point retry_at = std::chrono::steady_clock::time_point::max();
  };

  // kafka::command_listener
  void on_command(const kafka::command_message& m) override;
  void on_revoked(std::span<const std::int32_t> partitions, bool lost) override;
  void on_commit_failed(std::span<const std::int32_t> partitions) override;
  // upstream::outbound_listener
  void on_outbound_ready(const std::string& connection) noexcept override;
  void on_outbound_reply(const std::string& connection, std::uint64_t socket, std::uint64_t reply_to,
                         std::string_view frame) noexcept override;
  void on_outbound_closed(const std::string& connection, std::uint64_t socket) noexcept override;
  // pipeline::durability_listener: the reply of the command with this ticket is confirmed by Kafka.
  void on_durable(std::uint64_t ticket) noexcept override;
  // Its reply (and the reply's dead letter) failed for good: the command counts as done, or its partition's commit
  // point would never pass it.
  void on_lost(std::uint64_t ticket) noexcept override;

  void answer(std::string_view connection, const commands::queued_command& c, commands::reply_error error,
              std::string_view detail = {}, std::string_view reply_frame = {});
  void pump(std::string_view connection);
  void after_change(std::string_view connection, connection_state& state);
  void retry_at(const std::string& connection, connection_state& state, std::chrono::steady_clock::time_point at);
  void block(const std::string& connection, connection_state& state, std::int32_t partition);
  void arm_tick();
  void on_tick();
  void post_commit();
  [[nodiscard]] connection_state& state_of(std::string_view connection);

  template <typename Work>
  void guarded(std::string_view what, Work&& work) noexcept;

  boost::asio::io_context& io_;
  const config::commands_config cfg_;
  const kafka::command_consumer_settings settings_;
  kafka::publisher& publisher_;
  metrics::registry& metrics_;
  const connection_directory directory_;
  std::shared_ptr<pipeline::durability_registry> durability_;
  std::uint32_t listener_id_ = 0;

  std::shared_ptr<kafka::command_consumer> consumer_;
  std::map<std::string, connection_state, std::less<>> connections_;
  // Paused partitions and the connections whose full queues hold each paused: resumed once none does (two
  // connections can share a partition, keys hash together).
  std::map<std::int32_t, std::set<std::string>> blockers_;
  commands::offset_tracker offsets_;
  boost::asio::steady_timer tick_;
  bool tick_armed_ = false;
  bool commit_posted_ = false;
  boost::asio::steady_timer commit_retry_;
  bool commit_retry_armed_ = false;
  bool intake_ = true;
  std::thread closer_;
  std::shared_ptr<std::atomic<bool>> closed_ = std::make_shared<std::atomic<bool>>(false);
  // Posted handlers hold a weak reference: once the dispatcher is gone they do nothing.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace rtm::app
