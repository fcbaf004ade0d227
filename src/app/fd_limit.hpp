#pragma once

#include <cstdint>
#include <string>

#include "config/config.hpp"

// File descriptors (RLIMIT_NOFILE). Every upstream connection holds a socket, so the soft limit decides how many
// connections a process can keep: 1,024 under systemd's default, far below the connections the bridge is built for.
// The soft limit may be raised to the hard one without privilege, so the process does that at start (the unit sets
// LimitNOFILE= for the hard one), and a config that cannot fit even then is refused before anything connects.
// Called from main() before any thread exists.
namespace rtm::app {

struct descriptor_limit {
  std::uint64_t soft_before = 0;  // the soft limit the process was started with
  std::uint64_t limit = 0;        // the soft limit now in force
  std::string raise_error;        // why raising failed (empty: it worked, or nothing to raise)
};

// Raises the soft limit to the hard one (to fs.nr_open when the hard limit is unlimited).
[[nodiscard]] descriptor_limit raise_descriptor_limit() noexcept;

// A conservative estimate of the descriptors `cfg` needs at once: a socket per connection, one more where a REST
// call precedes the WebSocket (Acme discovery, Slack's rtm.connect, which a reconnect repeats while the old socket
// may still be closing), librdkafka's sockets and wake-up pipes per broker (bootstrap entries and learned brokers
// are separate), the embedded cluster's listeners, the metrics endpoint's sessions, and headroom for the rest of the
// process (stdio, the event loop, the resolver, CA files, log).
[[nodiscard]] std::uint64_t descriptors_needed(const config::config& cfg) noexcept;

// Empty when cfg fits in the limit; otherwise what is wrong and what to do, for stderr.
[[nodiscard]] std::string descriptor_shortfall(const config::config& cfg, const descriptor_limit& limit);

// One line for --check-config: "file descriptors: about N needed, limit M (raised from S)".
[[nodiscard]] std::string descriptor_summary(const config::config& cfg, const descriptor_limit& limit);

}  // namespace rtm::app
