// rtm-bench: measures rtm-bridge (a release build, run as a child process) against the targets of the Performance
// issue, and writes a table to stdout and JSON to --json. Usually run through scripts/bench.
#include <sys/resource.h>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>

#include "frames.hpp"
#include "kafka/embedded_cluster.hpp"
#include "report.hpp"
#include "scenarios.hpp"

namespace {

constexpr const char* usage =
    "usage: rtm-bench --daemon PATH --malloc-counter PATH --work-dir DIR --json FILE [--quick] [--only LIST]\n"
    "                 [--events N] [--warmup N] [--kafka-property NAME=VALUE]... [--alloc-stacks]\n"
    "  --only LIST   comma-separated subset of: emitter,throughput,kcat,latency,scale,allocations,spool,\n"
    "                spool_drain,spool_append\n"
    "  --events N    events of the emitter, throughput and kcat runs (e.g. a short run under a profiler)\n"
    "  --warmup N    warm-up events before the throughput window\n"
    "  --kafka-property NAME=VALUE  a librdkafka setting for the daemon, kcat and the bare producer (repeatable)\n"
    "  --alloc-stacks  the allocations runs also record the call stack of each io-thread allocation that is not\n"
    "                librdkafka's (WORK_DIR/alloc-N.stacks; symbolize with scripts/alloc-stacks)\n";

// Both this process (emitter sockets) and the daemon (inherits it) hold one descriptor per idle connection.
void raise_fd_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one;
  std::string five;
  std::string fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

bool selected(const std::string& only, const std::string& name) {
  return only.empty() || ("," + only + ",").find("," + name + ",") != std::string::npos;
}

}  // namespace

int main(int argc, char** argv) {
  rtm::bench::bench_settings settings;
  std::string json_path;
  std::string only;
  bool quick = false;
  std::uint64_t events = 0;  // 0: the mode's default
  std::uint64_t warmup = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "rtm-bench: %s needs a value\n%s", arg.c_str(), usage);
        std::exit(64);
      }
      return argv[++i];
    };
    if (arg == "--daemon") {
      settings.daemon = value();
    } else if (arg == "--malloc-counter") {
      settings.malloc_counter = value();
    } else if (arg == "--work-dir") {
      settings.work_dir = value();
    } else if (arg == "--json") {
      json_path = value();
    } else if (arg == "--only") {
      only = value();
    } else if (arg == "--quick") {
      quick = true;
    } else if (arg == "--alloc-stacks") {
      settings.alloc_stacks = true;
    } else if (arg == "--kafka-property") {
      const std::string text = value();
      const auto eq = text.find('=');
      if (eq == std::string::npos || eq == 0) {
        std::fprintf(stderr, "rtm-bench: --kafka-property needs NAME=VALUE\n%s", usage);
        return 64;
      }
      settings.kafka_properties.emplace_back(text.substr(0, eq), text.substr(eq + 1));
    } else if (arg == "--events" || arg == "--warmup") {
      const std::string text = value();
      char* end = nullptr;
      const unsigned long long n = std::strtoull(text.c_str(), &end, 10);
      if (end == text.c_str() || *end != '\0' || n == 0) {
        std::fprintf(stderr, "rtm-bench: %s needs a positive number\n%s", arg.c_str(), usage);
        return 64;
      }
      (arg == "--events" ? events : warmup) = n;
    } else {
      std::fprintf(stderr, "rtm-bench: unknown argument %s\n%s", arg.c_str(), usage);
      return 64;
    }
  }
  if (settings.daemon.empty() || settings.malloc_counter.empty() || settings.work_dir.empty() || json_path.empty()) {
    std::fprintf(stderr, "%s", usage);
    return 64;
  }
  if (quick) {
    settings.events = 200'000;
    settings.warmup_events = 10'000;
    settings.latency_seconds = 5;
    settings.scale_connections = {500, 2'000};
    settings.idle_seconds = 5;
    settings.alloc_small = 50'000;
    settings.alloc_large = 150'000;
    settings.spool_rounds = 1;
    settings.drain_events = 200'000;
  }
  if (events != 0) {
    settings.events = events;
  }
  if (warmup != 0) {
    settings.warmup_events = warmup;
  }
  std::signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();

  rtm::bench::report out;
  out.setting("mode", quick ? "quick" : "full");
  out.setting("events", std::to_string(settings.events));
  out.setting("latency_rate", rtm::bench::fixed(settings.latency_rate, 0));
  out.setting("latency_seconds", rtm::bench::fixed(settings.latency_seconds, 0));
  out.setting("daemon", settings.daemon);
  std::string properties;
  for (const auto& [name, value] : settings.kafka_properties) {
    properties += (properties.empty() ? "" : " ") + name + "=" + value;
  }
  out.setting("kafka_properties", properties.empty() ? "(librdkafka defaults)" : properties);
  // The machine is shared: the load around the run says how much the figures can be trusted.
  out.setting("loadavg_at_start", load_average());
  try {
    const rtm::bench::frame_cycle frames;
    out.setting("packet_bytes", std::to_string(frames.min_packet()) + "-" + std::to_string(frames.max_packet()));
    out.setting("teams", std::to_string(rtm::bench::frame_cycle::teams));
    rtm::kafka::embedded_cluster cluster;
    cluster.create_topic(rtm::bench::bench_context::topic, rtm::bench::bench_context::partitions);
    cluster.create_topic("rtm.dead-letter", 1);
    out.setting("cluster", "embedded mock, " + std::to_string(cluster.broker_count()) + " brokers, " +
                               std::to_string(rtm::bench::bench_context::partitions) + " partitions");
    rtm::bench::bench_context ctx{settings, cluster, frames, out};

    auto attempt = [&ctx, &out](const char* section, const std::function<void()>& fn) {
      try {
        fn();
      } catch (const std::exception& e) {
        out.error(section, e.what());
        std::fprintf(stderr, "bench: %s failed: %s\n", section, e.what());
      }
    };
    double daemon_eps = 0;
    if (selected(only, "emitter")) {
      attempt("emitter", [&ctx] { run_emitter_ceiling(ctx); });
    }
    if (selected(only, "throughput")) {
      attempt("throughput", [&ctx, &daemon_eps] { daemon_eps = run_throughput(ctx); });
    }
    if (selected(only, "kcat")) {
      attempt("kcat", [&ctx, daemon_eps] { run_kcat(ctx, daemon_eps); });
    }
    if (selected(only, "latency")) {
      attempt("latency", [&ctx] { run_latency(ctx); });
    }
    if (selected(only, "scale")) {
      attempt("scale", [&ctx] { run_scale(ctx); });
    }
    if (selected(only, "allocations")) {
      attempt("allocations", [&ctx] { run_allocations(ctx); });
    }
    if (selected(only, "spool_append")) {
      attempt("spool_append", [&ctx] { run_spool_append(ctx); });
    }
    if (selected(only, "spool")) {
      attempt("spool", [&ctx] { run_spool(ctx); });
    }
    if (selected(only, "spool_drain")) {
      attempt("spool_drain", [&ctx] { run_spool_drain(ctx); });
    }
  } catch (const std::exception& e) {
    out.error("setup", e.what());
  }

  out.setting("loadavg_at_end", load_average());
  std::fputs(out.table().c_str(), stdout);
  std::ofstream json(json_path);
  json << out.json();
  if (!json) {
    std::fprintf(stderr, "rtm-bench: cannot write %s\n", json_path.c_str());
    return 1;
  }
  return out.has_errors() ? 1 : 0;
}
