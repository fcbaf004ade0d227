#include "app/fd_limit.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "kafka/embedded_cluster.hpp"
#include "metrics/http_server.hpp"

namespace rtm::app {
namespace {

constexpr std::uint64_t process_reserve = 64;   // stdio, epoll, timers, signals, resolver, CA and config files
constexpr std::uint64_t per_connection = 1;     // the WebSocket
constexpr std::uint64_t per_rest_call = 1;      // discovery or rtm.connect, overlapping a closing socket
constexpr std::uint64_t per_kafka_broker = 3;   // its socket and its thread's wake-up pipe
constexpr std::uint64_t kafka_brokers_min = 3;  // a cluster usually has more brokers than the list names
constexpr std::uint64_t kafka_reserve = 16;     // librdkafka's own queues and its internal broker thread
constexpr std::uint64_t embedded_reserve = 32;  // the mock cluster's listeners and its side of each connection

std::uint64_t to_count(rlim_t value) noexcept {
  return value == RLIM_INFINITY ? UINT64_MAX : static_cast<std::uint64_t>(value);
}

// The kernel's ceiling for RLIMIT_NOFILE, which an unlimited hard limit stands for.
rlim_t nr_open() noexcept {
  unsigned long long value = 0;
  if (std::FILE* f = std::fopen("/proc/sys/fs/nr_open", "re")) {
    if (std::fscanf(f, "%llu", &value) != 1) {
      value = 0;
    }
    std::fclose(f);
  }
  return value > 0 ? static_cast<rlim_t>(value) : 1048576;  // no /proc: the kernel's default fs.nr_open
}

std::uint64_t broker_count(const config::kafka_config& kafka) noexcept {
  if (kafka.embedded()) {
    return kafka::embedded_cluster::default_brokers;
  }
  const auto listed = static_cast<std::uint64_t>(std::count(kafka.brokers.begin(), kafka.brokers.end(), ',')) + 1;
  // The bootstrap entries stay next to the brokers learned from metadata: count both.
  return listed + std::max(listed, kafka_brokers_min);
}

}  // namespace

descriptor_limit raise_descriptor_limit() noexcept {
  descriptor_limit out;
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    out.raise_error = std::string("getrlimit(RLIMIT_NOFILE): ") + std::strerror(errno);
    return out;
  }
  out.soft_before = to_count(rl.rlim_cur);
  out.limit = out.soft_before;
  const rlim_t target = rl.rlim_max == RLIM_INFINITY ? nr_open() : rl.rlim_max;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < target) {
    rlimit raised = rl;
    raised.rlim_cur = target;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
      out.limit = to_count(target);
    } else {
      out.raise_error = std::string("setrlimit(RLIMIT_NOFILE): ") + std::strerror(errno);
    }
  }
  return out;
}

std::uint64_t descriptors_needed(const config::config& cfg) noexcept {
  std::uint64_t need = process_reserve;
  for (const auto& c : cfg.connections) {
    need += per_connection;
    if (c.kind != config::connection_kind::acme || c.url.empty()) {
      need += per_rest_call;
    }
  }
  need += kafka_reserve + per_kafka_broker * broker_count(cfg.kafka);
  if (cfg.kafka.embedded()) {
    need += embedded_reserve;
  }
  if (!cfg.metrics.listen.empty()) {
    need += 1 + metrics::http_server::max_sessions;
  }
  return need;
}

std::string descriptor_shortfall(const config::config& cfg, const descriptor_limit& limit) {
  const std::uint64_t need = descriptors_needed(cfg);
  if (need <= limit.limit) {
    return {};
  }
  std::string text = "connections: " + std::to_string(cfg.connections.size()) + " connection(s) need about " +
                     std::to_string(need) + " file descriptors, but the process may open only " +
                     std::to_string(limit.limit) + " (RLIMIT_NOFILE";
  if (limit.limit != limit.soft_before) {
    text += ", already raised from " + std::to_string(limit.soft_before) + " to the hard limit";
  } else if (!limit.raise_error.empty()) {
    text += "; raising it failed: " + limit.raise_error;
  } else {
    text += ", the hard limit";
  }
  text += "). Raise the hard limit to at least " + std::to_string(need) +
          ": LimitNOFILE= in the systemd unit, ulimit -Hn in a shell, --ulimit nofile= for a container";
  return text;
}

std::string descriptor_summary(const config::config& cfg, const descriptor_limit& limit) {
  std::string text = "file descriptors: about " + std::to_string(descriptors_needed(cfg)) + " needed, limit " +
                     std::to_string(limit.limit);
  if (limit.limit != limit.soft_before) {
    text += " (raised from " + std::to_string(limit.soft_before) + ")";
  }
  return text + '\n';
}

}  // namespace rtm::app
