#pragma once

#include "config/config.hpp"

namespace rtm::app {

// Runs the daemon in the foreground until SIGTERM/SIGINT (or a fatal producer error); returns the exit code.
[[nodiscard]] int run_daemon(config::config cfg);

}  // namespace rtm::app
