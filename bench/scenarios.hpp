#pragma once

#include <cstddef>
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
  // The spool (issue 16): off/on rounds of the end-to-end run (alternating, same `events`; medians reported), the
  // events spooled during the outage before the drain, and the append microbench's records and payload size.
  int spool_rounds = 3;
  std::uint64_t drain_events = 500'000;
  std::uint64_t spool_append_records = 1'000'000;
  std::size_t spool_payload_bytes = 400;
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
// The spool: end to end with it off vs on (throughput, CPU, latency at the paced rate).
void run_spool(bench_context& ctx);
// The spool during an outage (every broker down while drain_events arrive) and its drain once they are back.
void run_spool_drain(bench_context& ctx);
// The spool's own append rate on one core (spool::spool and an io_context in this process; spool_append.cpp).
void run_spool_append(bench_context& ctx);

}  // namespace rtm::bench
