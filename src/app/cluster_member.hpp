#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cluster/bucket_map.hpp"
#include "cluster/lease.hpp"
#include "config/config.hpp"
#include "kafka/group_member.hpp"

// This instance's seat in the cluster (docs/CONTRACT.md, "Several instances"): which buckets the group gave it
// (kafka::group_member), whether its membership is certainly alive (cluster::lease, the design study's A3), and so
// which connections it may hold. The daemon asks owns(name) and is told to apply() whenever the answer may have
// changed: after an assignment (open what is now owned), a revocation and a fence (close at once what is not).
//
// The fence: a timer every fence_margin / 4, every poll of the consumer and every event a connection forwards
// (may_forward()) check the lease; at its end every owned connection is dropped, the consumer kept, and nothing
// opens again until the group proves the membership alive (an assignment while the lease holds, or two answered
// heartbeats and a poll). A loop that did not run for fence_margin / 2 (SIGSTOP, a VM pause, a stall) fences as
// well: what librdkafka's threads saw meanwhile cannot be trusted until a fresh proof, and a resumed process must
// close before it forwards anything.
//
// Threading: everything on the io_context thread; the group consumer's callbacks arrive there too (it is polled from
// the loop), a revocation inside the poll, before librdkafka hears it is done.
namespace rtm::app {

class cluster_member final : public kafka::group_listener {
 public:
  struct hooks {
    // Bring the connections to what owns() says now; `drop`: those no longer owned are dropped at once (the
    // TCP connection closed before this returns), not closed gracefully.
    std::function<void(bool drop)> apply;
    // A fatal error of the group (another process with this instance_id): stop, exit non-zero.
    std::function<void(const std::string& why)> fatal;
  };

  cluster_member(boost::asio::io_context& io, const config::cluster_config& cfg,
                 const std::vector<config::connection_config>& connections, hooks h);
  cluster_member(const cluster_member&) = delete;
  cluster_member& operator=(const cluster_member&) = delete;
  cluster_member(cluster_member&&) = delete;
  cluster_member& operator=(cluster_member&&) = delete;
  ~cluster_member();

  // Creates the group consumer and checks the assignment topic (blocking, start-up only). The problem when the
  // daemon must not start: {config = true} for exit 78, else 69 (Kafka could not be asked).
  [[nodiscard]] std::optional<kafka::topic_problem> prepare(const kafka::group_member_settings& settings);
  // Joins the group; connections open as buckets are assigned.
  void start();
  // Closes nothing itself: the daemon has closed every connection; leaves the group on a thread (joined by
  // wait_closed()).
  void leave();
  [[nodiscard]] bool wait_closed(std::chrono::seconds bound);
  // The group consumer could not be destroyed safely (librdkafka #4381): leave the process with _Exit.
  [[nodiscard]] bool must_exit_at_once() const noexcept { return member_ && member_->kept_alive(); }
  // A reload that would move a token held under one bucket to another: the message when `next` does (two
  // instances could hold it at once while they reload one after the other), else nullopt.
  [[nodiscard]] std::optional<std::string> moved_token(const std::vector<config::connection_config>& current,
                                                       const std::vector<config::connection_config>& next) const;

  // A reload: the connection list (and so the map) changed.
  void set_connections(const std::vector<config::connection_config>& connections);

  [[nodiscard]] bool owns(std::string_view connection) const;
  // For every event a connection is about to forward: false (and a fence is on its way) when the lease does not
  // hold now.
  [[nodiscard]] bool may_forward();

  [[nodiscard]] std::size_t buckets_owned() const noexcept { return fenced() ? 0 : owned_.size(); }
  [[nodiscard]] bool fenced() const noexcept { return lease_.fenced(); }
  [[nodiscard]] std::uint64_t fences() const noexcept { return lease_.fences(); }
  [[nodiscard]] std::uint64_t rebalances() const noexcept { return member_ ? member_->rebalances() : 0; }
  [[nodiscard]] const std::string& fingerprint() const noexcept { return map_->fingerprint(); }

  // kafka::group_listener
  void on_assigned(std::span<const std::int32_t> buckets) noexcept override;
  void on_revoked(std::span<const std::int32_t> buckets, bool lost) noexcept override;
  void on_polled(const kafka::lease_inputs& before, bool drained) noexcept override;
  void on_fatal(const std::string& why) noexcept override;

 private:
  using clock = std::chrono::steady_clock;
  void refresh();
  // Fences when the lease ran out or the loop stalled; true when fenced now.
  bool check(clock::time_point now);
  void fence(clock::time_point now, const std::string& why);
  void arm_fence_timer();
  void apply(bool drop) noexcept;

  boost::asio::io_context& io_;
  config::cluster_config cfg_;
  hooks hooks_;
  std::unique_ptr<cluster::bucket_map> map_;
  cluster::lease lease_;
  std::shared_ptr<kafka::group_member> member_;
  std::set<std::int32_t> owned_;
  boost::asio::steady_timer fence_timer_;
  std::chrono::milliseconds tick_;
  clock::time_point last_tick_ = clock::now();
  clock::time_point seen_sent_{};
  bool fence_posted_ = false;
  bool leaving_ = false;
  std::thread closer_;
  std::shared_ptr<std::atomic<bool>> closed_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace rtm::app
