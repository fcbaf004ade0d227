#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <string_view>

// systemd's notify protocol (Type=notify): READY=1, STATUS=, WATCHDOG=1, STOPPING=1, EXTEND_TIMEOUT_USEC=. A no-op
// outside systemd (no NOTIFY_SOCKET) and in builds without libsystemd. Owned by the daemon; used on the io_context
// thread only.
namespace rtm::app {

class notifier {
 public:
  explicit notifier(boost::asio::io_context& io);

  void ready();
  void stopping();
  void reloading();
  void status(std::string_view text);
  // EXTEND_TIMEOUT_USEC=: the stop (or start) may take `more` from now, beyond the unit's TimeoutStopSec=. systemd
  // honours it only while it is past the unit's own timeout, so sending it early or needlessly is harmless.
  void extend_timeout(std::chrono::microseconds more);

  // Starts WATCHDOG=1 pings from a timer on the io_context itself, at half the interval systemd asked for
  // (WATCHDOG_USEC): a stuck loop stops the pings and systemd restarts the service.
  void start_watchdog();
  void stop_watchdog();

 private:
  void on_watchdog_timer();
  void send(std::string_view state);

  boost::asio::steady_timer watchdog_timer_;
  std::chrono::microseconds watchdog_interval_{0};
  bool watchdog_running_ = false;
};

}  // namespace rtm::app
