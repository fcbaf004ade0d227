#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "metrics/registry.hpp"

// The operator's HTTP endpoint (metrics.listen): Prometheus text at /metrics, liveness at /healthz (answering at all
// proves the io_context turns), readiness at /readyz. Boost.Beast on the daemon's io_context; every handler runs on
// that one thread, so the registry is read without locks.
namespace rtm::metrics {

struct readiness {
  bool ready = false;
  std::string detail;  // one line per unready part, shown in the /readyz body
};

class http_server {
 public:
  using readiness_probe = std::function<readiness()>;
  using extra_metrics = std::function<std::string()>;  // appended to /metrics (e.g. librdkafka figures)

  // Scrapers and probes are few; this bounds a misbehaving client. When every session is taken, a new connection
  // evicts the session that has waited longest for its request (idle or still arriving), so one local client holding
  // every session cannot lock /healthz out: the newest connection is always served.
  static constexpr std::size_t max_sessions = 64;

  // Binds `listen` ("host:port", "[v6]:port"); throws std::runtime_error naming the address when it cannot.
  http_server(boost::asio::io_context& io, const std::string& listen, const registry& metrics, readiness_probe probe,
              extra_metrics extra = nullptr);
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;
  http_server(http_server&&) = delete;
  http_server& operator=(http_server&&) = delete;
  ~http_server();

  void start();
  void stop() noexcept;
  [[nodiscard]] unsigned short port() const noexcept;

  struct state;  // defined in the .cpp; shared with in-flight client sessions, which may outlive a stop()

 private:
  std::shared_ptr<state> state_;
};

}  // namespace rtm::metrics
