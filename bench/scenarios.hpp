#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "frames.hpp"
#include "report.hpp"

// The benchmark scenarios. Each runs start to end on the controller (main) thread, blocking it on purpose: it owns
// no io_context; the emitter and the sink have their own threads and the daemon and kcat are child processes.
// Each adds its rows to the report and throws std::runtime_error when it cannot measure.
namespace rtm::kafka {
class embedded_cluster;
}

namespace rtm::bench {

struct bench_settings {
  std::string daemon;          // path of the rtm-bridge executable (a release build)
  std::string malloc_counter;  // path of libbench_malloc_counter.so
  std::string kcat = "kcat";   // resolved through PATH when not absolute
  std::string work_dir;        // daemon configs and logs
  std::uint64_t events = 1'000'000;
  std::uint64_t warmup_events = 20'000;
  double latency_rate = 20'000;
  double latency_seconds = 15;
  std::vector<int> scale_connections{2'000, 10'000};
  double idle_seconds = 10;
  std::uint64_t alloc_small = 100'000;
  std::uint64_t alloc_large = 300'000;
  bool alloc_stacks = false;  // --alloc-stacks: call stacks of our allocations, for finding them
  // --kafka-property NAME=VALUE: librdkafka settings for the daemon (kafka.properties), kcat (-X) and the bare
  // producer alike, to compare producer settings in otherwise identical runs.
  std::vector<std::pair<std::string, std::string>> kafka_properties;
};

// What every scenario shares: the mock cluster hosted by this process, its topics, the traffic.
struct bench_context {
  const bench_settings& settings;
  kafka::embedded_cluster& cluster;
  const frame_cycle& frames;
  report& out;
  static constexpr int partitions = 8;
  static constexpr const char* topic = "rtm.message";  // "rtm.{namespace}" for message:updated
};

void run_emitter_ceiling(bench_context& ctx);
// Returns the daemon's events/s (0 if not measured) for the kcat ratio.
double run_throughput(bench_context& ctx);
void run_kcat(bench_context& ctx, double daemon_events_per_s);
void run_latency(bench_context& ctx);
void run_scale(bench_context& ctx);
void run_allocations(bench_context& ctx);

}  // namespace rtm::bench
