#include "app/daemon.hpp"

#include <sys/resource.h>
#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "app/cli.hpp"
#include "app/cluster_member.hpp"
#include "app/command_dispatcher.hpp"
#include "app/connection_set.hpp"
#include "app/daemon_settings.hpp"
#include "app/fd_limit.hpp"
#include "app/notify.hpp"
#include "config/loader.hpp"
#include "kafka/embedded_cluster.hpp"
#include "kafka/publisher.hpp"
#include "metrics/http_server.hpp"
#include "metrics/registry.hpp"
#include "pipeline/gated_sink.hpp"
#include "spool/directory_lock.hpp"
#include "upstream/connection.hpp"
#include "util/log.hpp"

namespace rtm::app {
namespace {

// How long stop waits for every upstream socket to be closed for certain; sessions force their own close after a
// short grace, so this only guards against a bug.
constexpr std::chrono::seconds upstream_stop_bound{10};
constexpr std::chrono::seconds status_interval{5};

// Owns everything the process runs, in the start order of STYLE.md: config, components, signals, connect, READY=1,
// run; and the reverse on stop: STOPPING=1, close upstreams, drain Kafka with a deadline. Everything below runs on
// the one io_context thread.
class daemon {
 public:
  explicit daemon(config::config cfg)
      : cfg_(std::move(cfg)),
        signals_(io_, SIGTERM, SIGINT, SIGHUP),
        stop_timer_(io_),
        status_timer_(io_),
        notify_(io_) {}

  int run() {
    apply_log_config(cfg_.log);
    log::info("", "rtm-bridge starting: ", cfg_.connections.size(), " connection(s), config ", cfg_.path);

    std::string bootstrap = cfg_.kafka.brokers;
    if (cfg_.kafka.embedded()) {
      embedded_ = std::make_unique<kafka::embedded_cluster>();
      bootstrap = embedded_->bootstrap_servers();
    }
    try {
      publisher_ = std::make_unique<kafka::publisher>(io_, cfg_.kafka, metrics_, bootstrap, publisher_tuning(cfg_));
    } catch (const spool::directory_in_use& e) {
      // A config problem in effect: two instances configured with one spool.path.
      log::error("", e.what());
      return exit_config;
    }
    publisher_->set_backpressure_handler([this](bool paused) { on_backpressure(paused); });
    publisher_->set_fatal_handler([this](const std::string& why) { on_producer_fatal(why); });
    publisher_->set_spool_failed_handler([this](const std::string& why) { on_spool_failed(why); });
    index_kinds();
    if (cfg_.commands.enabled()) {
      try {
        start_commands(bootstrap);
      } catch (const std::exception& e) {
        log::error("", "cannot start the command consumer: ", e.what());
        return exit_config;
      }
    }
    if (cfg_.cluster.enabled()) {
      if (const int code = prepare_cluster(bootstrap); code != exit_ok) {
        return code;
      }
    }
    if (!cfg_.metrics.listen.empty()) {
      http_ =
          std::make_unique<metrics::http_server>(io_, cfg_.metrics.listen, metrics_, [this]() { return readiness(); });
      http_->start();
    }

    wire_connections();
    wait_for_signal();
    if (cluster_) {
      cluster_->start();  // connections open as the group assigns their buckets
    } else {
      for (const auto& c : cfg_.connections) {
        connections_.start(c);
      }
    }
    notify_.ready();
    notify_.start_watchdog();
    report_status();
    schedule_status();
    log::info("", "rtm-bridge ready");

    io_.run();
    if (cluster_ && (!cluster_->wait_closed(std::chrono::seconds(command_dispatcher::close_bound)) ||
                     cluster_->must_exit_at_once())) {
      log::warn("", "rtm-bridge stopped without waiting for the group consumer, exit code ", exit_code_);
      std::_Exit(exit_code_);
    }
    if (commands_ && !commands_->wait_closed(command_dispatcher::close_bound)) {
      // A thread is still inside librdkafka: unwinding (destructors, static ones at exit) under it could crash.
      log::warn("", "rtm-bridge stopped without waiting for the command consumer, exit code ", exit_code_);
      std::_Exit(exit_code_);
    }
    log::info("", "rtm-bridge stopped, exit code ", exit_code_);
    return exit_code_;
  }

 private:
  void wait_for_signal() {
    signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (ec) {
        return;
      }
      on_signal(sig);
    });
  }

  // The command consumer (commands.topic set): created after the publisher, which carries its replies.
  void start_commands(const std::string& bootstrap) {
    connection_directory directory;
    directory.kind_of = [this](std::string_view name) -> std::optional<config::connection_kind> {
      const auto it = kinds_.find(name);
      return it == kinds_.end() ? std::nullopt : std::optional<config::connection_kind>(it->second);
    };
    directory.find = [this](std::string_view name) -> upstream::connection* { return connections_.find(name); };
    commands_ = std::make_unique<command_dispatcher>(io_, cfg_.commands, command_consumer_settings(cfg_, bootstrap),
                                                     *publisher_, metrics_, std::move(directory));
    commands_->start();
  }

  // Cluster mode: the group consumer and the gate every event passes (the lease must hold). Before the loop runs:
  // the assignment topic is checked (blocking) and the daemon does not start without it.
  int prepare_cluster(const std::string& bootstrap) {
    cluster_member::hooks hooks;
    hooks.apply = [this](bool drop) { apply_ownership(drop); };
    hooks.fatal = [this](const std::string& /*why*/) { begin_stop(exit_unavailable); };
    try {
      cluster_ = std::make_unique<cluster_member>(io_, cfg_.cluster, cfg_.connections, std::move(hooks));
      if (const auto problem = cluster_->prepare(group_member_settings(cfg_, bootstrap))) {
        log::error("", problem->message);
        return problem->config ? exit_config : exit_unavailable;
      }
    } catch (const std::exception& e) {
      log::error("", "cannot start cluster mode: ", e.what());
      return exit_config;
    }
    gate_ = std::make_unique<pipeline::gated_sink>(*publisher_, [this] { return cluster_->may_forward(); });
    metrics_.set_cluster_source([this] {
      metrics::registry::cluster_figures f;
      f.buckets_owned = cluster_->buckets_owned();
      f.rebalances = cluster_->rebalances();
      f.fenced = cluster_->fences();
      f.held_back = gate_->held_back();
      f.fingerprint = cluster_->fingerprint();
      return f;
    });
    return exit_ok;
  }

  // The connections of `all` this instance holds: every one, or in cluster mode those of the buckets it owns.
  std::vector<config::connection_config> owned(const std::vector<config::connection_config>& all) const {
    if (!cluster_) {
      return all;
    }
    std::vector<config::connection_config> out;
    for (const auto& c : all) {
      if (cluster_->owns(c.name)) {
        out.push_back(c);
      }
    }
    return out;
  }

  // Cluster mode: what the instance owns changed (an assignment, a revocation, a fence). Those no longer owned go
  // first, dropped (`drop`) so no socket of theirs outlives this call; then those now owned start (each waits, as
  // always, for an old socket of its token to be gone).
  void apply_ownership(bool drop) {
    if (drop) {
      // Sockets still closing gracefully (a reload, a stop) are dropped too when their bucket is no longer ours.
      connections_.drop_closing([this](const std::string& name) { return cluster_->owns(name); });
    }
    if (stopping_) {
      return;
    }
    for (const auto& name : connections_.names()) {
      if (!cluster_->owns(name)) {
        connections_.stop(name, nullptr, drop);
      }
    }
    for (const auto& name : connections_.pending_names()) {
      if (!cluster_->owns(name)) {
        connections_.remove_pending(name);
      }
    }
    for (const auto& c : cfg_.connections) {
      if (cluster_->owns(c.name) && connections_.find(c.name) == nullptr && !connections_.is_pending(c.name)) {
        connections_.start(c);
      }
    }
  }

  // What every connection forwards to (the gate in cluster mode), and what the daemon does with a new one.
  void wire_connections() {
    connection_set::hooks hooks;
    hooks.events = gate_ ? static_cast<pipeline::sink*>(gate_.get()) : publisher_.get();
    hooks.made = [this](upstream::connection& conn) {
      if (paused_) {
        conn.pause_reading();
      }
      if (commands_ && conn.sends_commands()) {
        conn.set_outbound_listener(&commands_->outbound());
      }
    };
    hooks.started = [this](const std::string& name) {
      if (commands_) {
        commands_->connection_started(name);
      }
    };
    hooks.stopping = [this] { return stopping_; };
    connections_.set_hooks(std::move(hooks));
  }

  // Connection kinds by name, for the command dispatcher (a command names its connection).
  void index_kinds() {
    kinds_.clear();
    for (const auto& c : cfg_.connections) {
      kinds_.emplace(c.name, c.kind);
    }
  }

  void on_signal(int sig) {
    if (sig == SIGHUP) {
      reload();
      wait_for_signal();
      return;
    }
    if (stopping_) {
      // A second SIGTERM/SIGINT during a stop: the operator does not want to wait for the drain.
      log::warn("", "second stop signal: exiting now with ", publisher_->outstanding() + publisher_->waiting(),
                " record(s) undelivered");
      exit_code_ = exit_failure;
      connections_.drop_all();  // nothing outlives the loop with a socket open, whoever holds the token next
      io_.stop();
      return;
    }
    log::info("", "received ", sig == SIGTERM ? "SIGTERM" : "SIGINT", ": stopping");
    begin_stop(exit_ok);
    wait_for_signal();
  }

  void reload() {
    notify_.reloading();
    log::info("", "SIGHUP: reloading ", cfg_.path);
    config::config next;
    try {
      next = config::load_file(cfg_.path);
    } catch (const config::load_error& e) {
      for (const auto& p : e.problems()) {
        log::error("", "reload rejected: ", p.format());
      }
      log::error("", "reload rejected: keeping the running configuration");
      notify_.ready();
      return;
    } catch (const std::exception& e) {
      log::error("", "reload rejected: ", e.what(), "; keeping the running configuration");
      notify_.ready();
      return;
    }
    if (stopping_) {
      return;
    }
    // The limit in force now (raised at start): a reload that adds connections must fit in it too, or the new
    // sockets would fail one by one with EMFILE, the metrics endpoint with them.
    descriptor_limit limit;
    if (rlimit current{}; ::getrlimit(RLIMIT_NOFILE, &current) == 0) {
      limit.soft_before = current.rlim_cur;
      limit.limit = current.rlim_cur;
      if (const std::string shortfall = descriptor_shortfall(next, limit); !shortfall.empty()) {
        log::error("", "reload rejected: ", shortfall, "; keeping the running configuration");
        notify_.ready();
        return;
      }
    }
    if (!(next.spool == cfg_.spool)) {
      log::warn("", "reload: spool settings changed; they take effect only after a restart (systemctl restart)");
    }
    if (!(next.kafka == cfg_.kafka)) {
      log::warn("", "reload: kafka settings changed; they take effect only after a restart (systemctl restart)");
    }
    if (!(next.commands == cfg_.commands)) {
      log::warn("", "reload: commands settings changed; they take effect only after a restart (systemctl restart)");
    }
    if (!(next.cluster == cfg_.cluster)) {
      log::warn("", "reload: cluster settings changed; they take effect only after a restart (systemctl restart)");
    }
    if (!(next.metrics == cfg_.metrics)) {
      log::warn("", "reload: metrics.listen changed; it takes effect only after a restart");
    }
    apply_log_config(next.log);
    if (cluster_) {
      if (const auto moved = cluster_->moved_token(cfg_.connections, next.connections)) {
        log::error("", "reload rejected: ", *moved, "; keeping the running configuration");
        notify_.ready();
        return;
      }
      cluster_->set_connections(next.connections);
    }
    const auto counts = connections_.reconcile(owned(next.connections));
    const auto kafka = cfg_.kafka;
    const auto spool = cfg_.spool;
    const auto commands = cfg_.commands;
    const auto cluster = cfg_.cluster;
    cfg_ = std::move(next);
    cfg_.cluster = cluster;    // and the group consumer in its group
    cfg_.kafka = kafka;        // the producer keeps running on the settings it was built with
    cfg_.spool = spool;        // and the spool on its directory
    cfg_.commands = commands;  // and the command consumer in its group
    index_kinds();
    log::info("", "reload done: ", counts.added, " added, ", counts.removed, " removed, ", counts.changed, " changed");
    notify_.ready();
  }

  // Ready = the producer is healthy and every configured connection is live; the detail names what is not.
  metrics::readiness readiness() const {
    metrics::readiness r{true, {}};
    if (stopping_) {
      r.ready = false;
      r.detail += "stopping\n";
    }
    if (!publisher_->healthy()) {
      r.ready = false;
      r.detail += "kafka producer unhealthy\n";
    }
    for (const auto& [name, conn] : connections_.live()) {
      if (!conn->live()) {
        r.ready = false;
        r.detail += "connection " + name + " not live\n";
      }
    }
    for (const auto& name : connections_.pending_names()) {
      r.ready = false;
      r.detail += "connection " + name + " waiting for an old socket to close\n";
    }
    if (cluster_ && cluster_->fenced()) {
      r.ready = false;
      r.detail += "cluster: fenced (waiting for the group to confirm this member)\n";
    } else if (cluster_ && cluster_->rebalances() == 0) {
      r.ready = false;
      r.detail += "cluster: no assignment from the group yet\n";
    }
    return r;
  }

  void on_backpressure(bool paused) {
    if (paused == paused_) {
      return;
    }
    paused_ = paused;
    // With a spool, upstream waits only for the spool (when_full: block), never for Kafka's queue: the log says
    // which one the operator has to look at (the spool's own warning names why it is full: max_size, min_free or
    // the disk).
    if (publisher_ && publisher_->spool() != nullptr) {
      log::info("", paused ? "spool full (spool.when_full: block): pausing upstream reads until it has room"
                           : "spool has room again: resuming upstream reads");
    } else {
      log::info("", paused ? "Kafka queue full: pausing upstream reads until it drains"
                           : "Kafka queue drained: resuming upstream reads");
    }
    for (const auto& [name, conn] : connections_.live()) {
      if (paused) {
        conn->pause_reading();
      } else {
        conn->resume_reading();
      }
    }
  }

  void on_spool_failed(const std::string& why) {
    log::error("", "spool failed: ", why, "; stopping (what the spool holds is sent after the next start)");
    begin_stop(exit_failure);
  }

  void on_producer_fatal(const std::string& why) {
    log::error("", "Kafka producer failed for good: ", why, "; stopping");
    begin_stop(exit_unavailable);
  }

  void begin_stop(int exit_code) {
    if (exit_code > exit_code_) {
      exit_code_ = exit_code;
    }
    if (stopping_) {
      return;
    }
    stopping_ = true;
    notify_.stopping();
    if (commands_) {
      commands_->stop_intake();  // nothing new is taken; sent commands are answered as their sockets close
    }
    connections_.clear_pending();
    status_timer_.cancel();
    // Upstreams first, so nothing new arrives while Kafka drains.
    for (const auto& name : connections_.names()) {
      connections_.stop(name, [this]() { maybe_drain(); });
    }
    stop_timer_.expires_after(upstream_stop_bound);
    stop_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) {
        return;
      }
      log::error("", "upstream connections did not close within ", upstream_stop_bound.count(),
                 " s; draining Kafka anyway");
      connections_.forget_closing();
      maybe_drain();
    });
    maybe_drain();
  }

  void maybe_drain() {
    if (!stopping_ || draining_ || !connections_.quiet()) {
      return;
    }
    draining_ = true;
    stop_timer_.cancel();
    if (cluster_) {
      cluster_->leave();  // every connection is closed: the buckets can go to the others now
    }
    log::info("", "upstreams closed; waiting up to ", cfg_.kafka.shutdown_timeout.count(), " ms for ",
              publisher_->outstanding() + publisher_->waiting(), " outstanding Kafka deliveries");
    // The unit's TimeoutStopSec= is fixed, kafka.shutdown_timeout is not: tell systemd how long this drain may take,
    // plus a margin for the exit after it (closing the producer and the embedded cluster), so a configured drain is
    // not cut short by SIGKILL.
    constexpr std::chrono::seconds exit_margin{10};
    notify_.extend_timeout(
        cfg_.kafka.shutdown_timeout + exit_margin +
        (commands_ ? std::chrono::seconds(command_dispatcher::close_bound) : std::chrono::seconds(0)));
    publisher_->drain(std::chrono::steady_clock::now() + cfg_.kafka.shutdown_timeout, [this](std::size_t left) {
      if (left > 0 && publisher_->spool() == nullptr) {
        log::error("", left, " record(s) were not delivered before kafka.shutdown_timeout");
        if (exit_code_ == exit_ok) {
          exit_code_ = exit_failure;
        }
      }
      log::info("", "received ", metrics_.received_total(), ", published ", metrics_.published_total(),
                ", dead-lettered ", metrics_.dead_letters_total(), ", failed ", metrics_.failed_total());
      if (commands_) {
        commands_->close();  // the replies are confirmed now: their offsets are committed, then the group is left
      }
      notify_.stop_watchdog();
      if (http_) {
        http_->stop();
      }
      signals_.cancel();
      io_.stop();
    });
  }

  // STATUS= for `systemctl status`: how many connections are live and the publish rate since the last report.
  void report_status() {
    const auto now = std::chrono::steady_clock::now();
    const auto published = metrics_.published_total();
    const double seconds = std::chrono::duration<double>(now - last_status_at_).count();
    const double rate = seconds > 0 ? static_cast<double>(published - last_published_) / seconds : 0.0;
    last_published_ = published;
    last_status_at_ = now;
    notify_.status(std::to_string(metrics_.connections_up()) + "/" + std::to_string(connections_.live().size()) +
                   " connections live, " + std::to_string(static_cast<long long>(rate)) + " events/s");
  }

  void schedule_status() {
    status_timer_.expires_after(status_interval);
    status_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping_) {
        return;
      }
      report_status();
      schedule_status();
    });
  }

  config::config cfg_;
  boost::asio::io_context io_{1};
  boost::asio::signal_set signals_;
  boost::asio::steady_timer stop_timer_;
  boost::asio::steady_timer status_timer_;
  notifier notify_;
  metrics::registry metrics_;
  std::unique_ptr<kafka::embedded_cluster> embedded_;
  std::unique_ptr<kafka::publisher> publisher_;
  // After the publisher (it carries the replies), before the connections (they tell it about their sockets).
  std::unique_ptr<command_dispatcher> commands_;
  // Cluster mode only; the gate sits between the connections and the publisher.
  std::unique_ptr<cluster_member> cluster_;
  std::unique_ptr<pipeline::gated_sink> gate_;
  std::unique_ptr<metrics::http_server> http_;
  std::map<std::string, config::connection_kind, std::less<>> kinds_;
  connection_set connections_{io_, metrics_, {}};
  std::uint64_t last_published_ = 0;
  std::chrono::steady_clock::time_point last_status_at_ = std::chrono::steady_clock::now();
  int exit_code_ = exit_ok;
  bool paused_ = false;
  bool stopping_ = false;
  bool draining_ = false;
};

}  // namespace

int run_daemon(config::config cfg) {
  // Members are declared before use: io_context first, so timers and sockets are destroyed before it.
  daemon d(std::move(cfg));
  return d.run();
}

}  // namespace rtm::app
