#include "app/notify.hpp"

#include <string>

#include "build_config.hpp"
#include "util/log.hpp"

#if RTM_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace rtm::app {

notifier::notifier(boost::asio::io_context& io) : watchdog_timer_(io) {}

void notifier::send(std::string_view state) {
#if RTM_HAVE_SYSTEMD
  const std::string text(state);
  const int rc = sd_notify(0, text.c_str());
  if (rc < 0) {
    log::debug("", "sd_notify failed: ", -rc);
  }
#else
  (void)state;
#endif
}

void notifier::ready() {
  send("READY=1");
}
void notifier::stopping() {
  send("STOPPING=1");
}
void notifier::reloading() {
  send("RELOADING=1");
}
void notifier::status(std::string_view text) {
  send("STATUS=" + std::string(text));
}

void notifier::extend_timeout(std::chrono::microseconds more) {
  send("EXTEND_TIMEOUT_USEC=" + std::to_string(more.count()));
}

void notifier::start_watchdog() {
#if RTM_HAVE_SYSTEMD
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) {
    return;
  }
  watchdog_interval_ = std::chrono::microseconds(usec / 2);
  watchdog_running_ = true;
  log::info("", "systemd watchdog enabled: pinging every ", watchdog_interval_.count() / 1000, " ms");
  on_watchdog_timer();
#endif
}

void notifier::stop_watchdog() {
  watchdog_running_ = false;
  watchdog_timer_.cancel();
}

void notifier::on_watchdog_timer() {
  if (!watchdog_running_) {
    return;
  }
  send("WATCHDOG=1");
  watchdog_timer_.expires_after(watchdog_interval_);
  watchdog_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) {
      on_watchdog_timer();
    }
  });
}

}  // namespace rtm::app
