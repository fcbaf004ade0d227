#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "pipeline/event.hpp"

namespace rtm::metrics {
class registry;
}

// One configured upstream token: the thing that holds at most one live socket and reconnects it. Both dialects
// (upstream/socketio, upstream/slack) implement this; the daemon owns them all and only talks through it.
// Every member is called on the io_context thread.
namespace rtm::upstream {

// A token the upstream refused (bad credentials, a revoked or wrong-type token) will not fix itself in seconds: every
// dialect waits at least this long before trying it again, whatever reconnect.max_delay says, so a fleet of refused
// tokens never becomes a login storm that gets the account or the IP blocked.
inline constexpr std::chrono::seconds refused_credential_min_delay{60};

class connection {
 public:
  connection() = default;
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  connection(connection&&) = delete;
  connection& operator=(connection&&) = delete;
  virtual ~connection() = default;

  // Begins connecting; reconnects on its own until stop().
  virtual void start() = 0;

  // Tears the upstream down for good (no reconnect after this). `done` runs on the io_context once the socket is
  // closed for certain (a graceful close, forced after a short grace), so a successor may open a new one.
  virtual void stop(std::function<void()> done) = 0;

  // Backpressure from the publishing side: stop/resume reading from the socket. Frames already read are delivered.
  virtual void pause_reading() = 0;
  virtual void resume_reading() = 0;

  // True while authenticated and receiving events.
  [[nodiscard]] virtual bool live() const noexcept = 0;
  [[nodiscard]] virtual const config::connection_config& settings() const noexcept = 0;
};

// Builds the session for `cfg.kind`. `events` and `metrics` must outlive the connection.
[[nodiscard]] std::shared_ptr<connection> make_connection(boost::asio::io_context& io,
                                                          const config::connection_config& cfg, pipeline::sink& events,
                                                          metrics::registry& metrics);

}  // namespace rtm::upstream
