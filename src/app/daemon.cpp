#include "app/daemon.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "app/cli.hpp"
#include "app/notify.hpp"
#include "config/loader.hpp"
#include "kafka/embedded_cluster.hpp"
#include "kafka/publisher.hpp"
#include "metrics/http_server.hpp"
#include "metrics/registry.hpp"
#include "upstream/connection.hpp"
#include "util/log.hpp"

namespace rtm::app {
namespace {

log::level to_log_level(config::log_level level) noexcept {
  switch (level) {
    case config::log_level::trace:
      return log::level::trace;
    case config::log_level::debug:
      return log::level::debug;
    case config::log_level::info:
      return log::level::info;
    case config::log_level::warn:
      return log::level::warn;
    case config::log_level::error:
      return log::level::error;
  }
  return log::level::info;
}

void apply_log_config(const config::log_config& cfg) noexcept {
  log::configure(to_log_level(cfg.level),
                 cfg.format == config::log_format::json ? log::format::json : log::format::text);
}

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
    publisher_ = std::make_unique<kafka::publisher>(io_, cfg_.kafka, metrics_, bootstrap);
    publisher_->set_backpressure_handler([this](bool paused) { on_backpressure(paused); });
    publisher_->set_fatal_handler([this](const std::string& why) { on_producer_fatal(why); });
    if (!cfg_.metrics.listen.empty()) {
      http_ =
          std::make_unique<metrics::http_server>(io_, cfg_.metrics.listen, metrics_, [this]() { return readiness(); });
      http_->start();
    }

    wait_for_signal();
    for (const auto& c : cfg_.connections) {
      start_connection(c);
    }
    notify_.ready();
    notify_.start_watchdog();
    report_status();
    schedule_status();
    log::info("", "rtm-bridge ready");

    io_.run();
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
      io_.stop();
      return;
    }
    log::info("", "received ", sig == SIGTERM ? "SIGTERM" : "SIGINT", ": stopping");
    begin_stop(exit_ok);
    wait_for_signal();
  }

  void start_connection(const config::connection_config& cfg) {
    // At most one live socket per token: a connection of the same name that is still being torn down starts its
    // successor only from its stop callback.
    if (stopping_connections_.count(cfg.name) != 0) {
      deferred_starts_[cfg.name] = cfg;
      return;
    }
    try {
      auto conn = upstream::make_connection(io_, cfg, *publisher_, metrics_);
      if (paused_) {
        conn->pause_reading();
      }
      conn->start();
      connections_[cfg.name] = std::move(conn);
    } catch (const std::exception& e) {
      log::error(cfg.name, "cannot start connection: ", e.what());
    }
  }

  void stop_connection(const std::string& name, std::function<void()> then) {
    const auto it = connections_.find(name);
    if (it == connections_.end()) {
      if (then) {
        then();
      }
      return;
    }
    auto conn = it->second;
    connections_.erase(it);
    stopping_connections_.insert(name);
    conn->stop([this, name, conn, then = std::move(then)]() mutable {
      stopping_connections_.erase(name);
      metrics_.forget_connection(name);
      conn.reset();
      if (then) {
        then();
      }
      const auto deferred = deferred_starts_.find(name);
      if (deferred != deferred_starts_.end() && !stopping_) {
        const config::connection_config cfg = deferred->second;
        deferred_starts_.erase(deferred);
        start_connection(cfg);
      }
    });
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
    if (!(next.kafka == cfg_.kafka)) {
      log::warn("", "reload: kafka settings changed; they take effect only after a restart (systemctl restart)");
    }
    if (!(next.metrics == cfg_.metrics)) {
      log::warn("", "reload: metrics.listen changed; it takes effect only after a restart");
    }
    apply_log_config(next.log);

    std::map<std::string, const config::connection_config*> wanted;
    for (const auto& c : next.connections) {
      wanted[c.name] = &c;
    }
    std::size_t added = 0;
    std::size_t removed = 0;
    std::size_t changed = 0;
    std::vector<std::string> names;
    for (const auto& [name, conn] : connections_) {
      names.push_back(name);
    }
    for (const auto& name : names) {
      const auto w = wanted.find(name);
      if (w == wanted.end()) {
        log::info(name, "reload: connection removed, tearing it down");
        stop_connection(name, nullptr);
        ++removed;
      } else if (!(*w->second == connections_.at(name)->settings())) {
        log::info(name, "reload: connection changed, reconnecting with the new settings");
        deferred_starts_[name] = *w->second;
        stop_connection(name, nullptr);
        ++changed;
      }
    }
    for (const auto& c : next.connections) {
      if (connections_.count(c.name) == 0 && stopping_connections_.count(c.name) == 0 &&
          deferred_starts_.count(c.name) == 0) {
        log::info(c.name, "reload: connection added");
        start_connection(c);
        ++added;
      } else if (stopping_connections_.count(c.name) != 0 && deferred_starts_.count(c.name) == 0) {
        deferred_starts_[c.name] = c;  // removed and re-added while its old socket is still closing
      }
    }
    const auto kafka = cfg_.kafka;
    cfg_ = std::move(next);
    cfg_.kafka = kafka;  // the producer keeps running on the settings it was built with
    log::info("", "reload done: ", added, " added, ", removed, " removed, ", changed, " changed");
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
    for (const auto& [name, conn] : connections_) {
      if (!conn->live()) {
        r.ready = false;
        r.detail += "connection " + name + " not live\n";
      }
    }
    return r;
  }

  void on_backpressure(bool paused) {
    if (paused == paused_) {
      return;
    }
    paused_ = paused;
    log::info("", paused ? "Kafka queue full: pausing upstream reads until it drains"
                         : "Kafka queue drained: resuming upstream reads");
    for (const auto& [name, conn] : connections_) {
      if (paused) {
        conn->pause_reading();
      } else {
        conn->resume_reading();
      }
    }
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
    deferred_starts_.clear();
    status_timer_.cancel();
    // Upstreams first, so nothing new arrives while Kafka drains.
    std::vector<std::string> names;
    for (const auto& [name, conn] : connections_) {
      names.push_back(name);
    }
    for (const auto& name : names) {
      stop_connection(name, [this]() { maybe_drain(); });
    }
    stop_timer_.expires_after(upstream_stop_bound);
    stop_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) {
        return;
      }
      log::error("", "upstream connections did not close within ", upstream_stop_bound.count(),
                 " s; draining Kafka anyway");
      stopping_connections_.clear();
      maybe_drain();
    });
    maybe_drain();
  }

  void maybe_drain() {
    if (!stopping_ || draining_ || !stopping_connections_.empty() || !connections_.empty()) {
      return;
    }
    draining_ = true;
    stop_timer_.cancel();
    log::info("", "upstreams closed; waiting up to ", cfg_.kafka.shutdown_timeout.count(), " ms for ",
              publisher_->outstanding() + publisher_->waiting(), " outstanding Kafka deliveries");
    // The unit's TimeoutStopSec= is fixed, kafka.shutdown_timeout is not: tell systemd how long this drain may take,
    // plus a margin for the exit after it (closing the producer and the embedded cluster), so a configured drain is
    // not cut short by SIGKILL.
    constexpr std::chrono::seconds exit_margin{10};
    notify_.extend_timeout(cfg_.kafka.shutdown_timeout + exit_margin);
    publisher_->drain(std::chrono::steady_clock::now() + cfg_.kafka.shutdown_timeout, [this](std::size_t left) {
      if (left > 0) {
        log::error("", left, " record(s) were not delivered before kafka.shutdown_timeout");
        if (exit_code_ == exit_ok) {
          exit_code_ = exit_failure;
        }
      }
      log::info("", "received ", metrics_.received_total(), ", published ", metrics_.published_total(),
                ", dead-lettered ", metrics_.dead_letters_total(), ", failed ", metrics_.failed_total());
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
    notify_.status(std::to_string(metrics_.connections_up()) + "/" + std::to_string(connections_.size()) +
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
  std::unique_ptr<metrics::http_server> http_;
  std::map<std::string, std::shared_ptr<upstream::connection>> connections_;
  std::set<std::string> stopping_connections_;
  std::map<std::string, config::connection_config> deferred_starts_;
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
