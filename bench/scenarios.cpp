#include "scenarios.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

#include "bare_producer.hpp"
#include "emitter.hpp"
#include "kafka/embedded_cluster.hpp"
#include "kafka_probe.hpp"
#include "metrics_scrape.hpp"
#include "process.hpp"
#include "sink.hpp"

namespace rtm::bench {

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

// The vendor's default; the emitter pings this often, so idle connections stay alive as they would in production.
constexpr auto ping_interval = 25s;
constexpr double nan = std::numeric_limits<double>::quiet_NaN();
// librdkafka 2.0.2's default linger.ms, which the daemon does not override unless kafka.properties says so.
constexpr double default_linger_s = 0.005;

double seconds(clock_type::duration d) {
  return std::chrono::duration<double>(d).count();
}

void info(const std::string& text) {
  std::fprintf(stderr, "bench: %s\n", text.c_str());
}

std::string tail(const std::string& path, int lines) {
  const std::string text = read_text_file(path);
  std::size_t pos = text.size();
  for (int i = 0; i <= lines && pos > 0; ++i) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      return text;
    }
  }
  return text.substr(pos + 1);
}

// `spool_dir` empty: no spool (today's in-memory path); else a spool there with the contract's defaults.
std::string daemon_config(const bench_context& ctx, unsigned short upstream_port, int connections,
                          const std::string& spool_dir) {
  std::string out = "kafka:\n  brokers: \"" + ctx.cluster.bootstrap_servers() +
                    "\"\n  client_id: rtm-bridge-bench\n  topic: \"rtm.{namespace}\"\n"
                    "  dead_letter_topic: rtm.dead-letter\n  shutdown_timeout: 60s\n";
  if (!ctx.settings.kafka_properties.empty()) {
    out += "  properties:\n";
    for (const auto& [name, value] : ctx.settings.kafka_properties) {
      out += "    " + name + ": \"" + value + "\"\n";
    }
  }
  out += "connections:\n";
  for (int i = 0; i < connections; ++i) {
    const std::string n = std::to_string(i);
    out += "  - name: bench-" + n + "\n    kind: acme\n    url: \"ws://127.0.0.1:" + std::to_string(upstream_port) +
           "/\"\n    protocol: 4\n    tier: user\n    identifier: {value: \"bench-id-" + n +
           "\"}\n    key: {value: \"bench-key\"}\n    events: [\"message:updated\"]\n";
  }
  out += "metrics:\n  listen: \"127.0.0.1:0\"\nlog:\n  level: info\n";
  if (!spool_dir.empty()) {
    out += "spool:\n  path: \"" + spool_dir + "\"\n";
  }
  return out;
}

// One daemon process for one scenario, configured against this run's emitter and the hosted cluster. Its stderr
// (the log) is kept in the work directory.
class daemon_run {
 public:
  daemon_run(const bench_context& ctx, const std::string& name, unsigned short upstream_port, int connections,
             std::vector<std::string> env = {}, const std::string& spool_dir = {})
      : log_path_(ctx.settings.work_dir + "/" + name + ".log") {
    const std::string config = ctx.settings.work_dir + "/" + name + ".yaml";
    write_private_file(config, daemon_config(ctx, upstream_port, connections, spool_dir));
    child::options opts;
    opts.argv = {ctx.settings.daemon, "--config", config};
    opts.env = std::move(env);
    opts.stderr_file = log_path_;
    child_.emplace(opts);
  }

  [[nodiscard]] pid_t pid() const noexcept { return child_->pid(); }

  void wait_live(const emitter& em, std::size_t connections, clock_type::duration timeout) {
    const auto deadline = clock_type::now() + timeout;
    while (em.authenticated() < connections) {
      if (!child_->running()) {
        throw std::runtime_error("the daemon exited during start-up; its log ends with:\n" + tail(log_path_, 8));
      }
      if (clock_type::now() >= deadline) {
        throw std::runtime_error("only " + std::to_string(em.authenticated()) + " of " + std::to_string(connections) +
                                 " connections authenticated in time; see " + log_path_);
      }
      std::this_thread::sleep_for(20ms);
    }
  }

  // The port the daemon's metrics endpoint bound (metrics.listen asks for port 0), from its start-up log line.
  [[nodiscard]] unsigned short metrics_port() const {
    const std::string marker = "metrics endpoint on http://127.0.0.1:";
    const std::string text = read_text_file(log_path_);
    const auto at = text.find(marker);
    if (at == std::string::npos) {
      throw std::runtime_error("the daemon did not log its metrics endpoint; see " + log_path_);
    }
    return static_cast<unsigned short>(std::stoul(text.substr(at + marker.size(), 6)));
  }

  void check_running() {
    if (!child_->running()) {
      throw std::runtime_error("the daemon exited unexpectedly; its log ends with:\n" + tail(log_path_, 8));
    }
  }

  // SIGTERM and wait for the graceful stop; throws unless it exits 0 in time.
  void stop(clock_type::duration timeout) {
    child_->signal(SIGTERM);
    const auto status = child_->wait(std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
    if (!status) {
      throw std::runtime_error("the daemon did not stop within the timeout after SIGTERM; see " + log_path_);
    }
    if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
      throw std::runtime_error("the daemon's stop was not clean (wait status " + std::to_string(*status) + "); see " +
                               log_path_);
    }
  }

  [[nodiscard]] const std::string& log_path() const noexcept { return log_path_; }

  // The daemon's closing "received N, published N, dead-lettered N, failed N" line, without the timestamp.
  [[nodiscard]] std::string summary() const {
    std::istringstream lines(read_text_file(log_path_));
    std::string line;
    std::string found;
    while (std::getline(lines, line)) {
      const auto at = line.find("received ");
      if (at != std::string::npos && line.find(", dead-lettered ", at) != std::string::npos) {
        found = line.substr(at);
      }
    }
    return found;
  }

 private:
  std::string log_path_;
  std::optional<child> child_;
};

std::int64_t acked(watermark_probe& probe) {
  const std::int64_t n = probe.sum(bench_context::topic, bench_context::partitions);
  if (n < 0) {
    throw std::runtime_error(std::string("cannot read the watermarks of ") + bench_context::topic);
  }
  return n;
}

// Polls until the topic's watermarks reach `target`; returns when that was first seen.
clock_type::time_point wait_for_acks(watermark_probe& probe, std::int64_t target, clock_type::duration timeout,
                                     daemon_run* daemon) {
  const auto deadline = clock_type::now() + timeout;
  for (;;) {
    const std::int64_t n = probe.sum(bench_context::topic, bench_context::partitions);
    const auto now = clock_type::now();
    if (n >= target) {
      return now;
    }
    if (daemon != nullptr) {
      daemon->check_running();
    }
    if (now >= deadline) {
      throw std::runtime_error("only " + std::to_string(n) + " of " + std::to_string(target) +
                               " records acknowledged before the timeout");
    }
    std::this_thread::sleep_for(10ms);
  }
}

// Closes a descriptor unless released.
class fd_guard {
 public:
  explicit fd_guard(int fd) noexcept : fd_(fd) {}
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  ~fd_guard() { reset(); }
  [[nodiscard]] int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset() noexcept {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }

 private:
  int fd_;
};

void wait_streams(const emitter& em, std::size_t done, clock_type::duration timeout) {
  const auto deadline = clock_type::now() + timeout;
  while (em.streams_done() < done) {
    if (clock_type::now() >= deadline) {
      throw std::runtime_error("the emitter did not finish writing its stream in time");
    }
    std::this_thread::sleep_for(5ms);
  }
}

clock_type::duration ack_timeout(std::uint64_t events) {
  return 60s + std::chrono::seconds(events / 10'000);
}

}  // namespace

void run_emitter_ceiling(bench_context& ctx) {
  info("emitter ceiling: " + std::to_string(ctx.settings.events) + " frames into a reading sink");
  std::optional<reading_sink> sink;  // declared first: destroyed after the emitter, whose sockets it reads
  emitter em(ctx.frames, ping_interval);
  sink.emplace(em.port(), ctx.frames.stream_bytes(ctx.settings.events));
  const auto deadline = clock_type::now() + 10s;
  while (!sink->ready() || em.authenticated() < 1) {
    if (sink->finished() || clock_type::now() >= deadline) {
      throw std::runtime_error("the sink did not authenticate: " + sink->error());
    }
    std::this_thread::sleep_for(5ms);
  }
  em.start_stream(ctx.settings.events, 0);
  const auto done_deadline = clock_type::now() + ack_timeout(ctx.settings.events);
  while (!sink->finished()) {
    if (clock_type::now() >= done_deadline) {
      throw std::runtime_error("the sink did not receive the whole stream in time");
    }
    std::this_thread::sleep_for(5ms);
  }
  if (!sink->error().empty()) {
    throw std::runtime_error(sink->error());
  }
  const double secs = seconds(sink->done_at() - em.last_stream().first_write);
  const double fps = static_cast<double>(ctx.settings.events) / secs;
  const double mbps = static_cast<double>(ctx.frames.stream_bytes(ctx.settings.events)) / secs / 1e6;
  ctx.out.add({"emitter", "frames_per_s", "frames/s into a reading sink", fps, "1/s", fixed(fps, 0), "", {}});
  ctx.out.add({"emitter", "megabytes_per_s", "wire MB/s into a reading sink", mbps, "MB/s", fixed(mbps, 1), "", {}});
}

namespace {

// One end-to-end run on one connection: N events as fast as the emitter pushes, after a warm-up, first frame sent
// to the last broker ack. Shared by the throughput section and the spool's off/on comparison.
struct throughput_sample {
  double secs = 0;
  double cpu = 0;  // daemon utime+stime across the window
  thread_cpu threads{};
  double hwm_mib = 0;
  std::int64_t final_count = 0;  // records the topic grew by in the window (and until the stop)
  std::string summary;           // the daemon's closing summary line
  std::string log_path;
};

throughput_sample measure_throughput(bench_context& ctx, const std::string& name, std::uint64_t n,
                                     const std::string& spool_dir) {
  emitter em(ctx.frames, ping_interval);
  daemon_run daemon(ctx, name, em.port(), 1, {}, spool_dir);
  daemon.wait_live(em, 1, 30s);
  watermark_probe probe(ctx.cluster.bootstrap_servers());

  // Warm-up: producer connections, partition leaders and the daemon's lazily built per-label state exist before
  // the clock starts.
  std::int64_t base = acked(probe);
  em.start_stream(ctx.settings.warmup_events, 0);
  wait_for_acks(probe, base + static_cast<std::int64_t>(ctx.settings.warmup_events),
                ack_timeout(ctx.settings.warmup_events), &daemon);
  wait_streams(em, 1, 10s);

  base = acked(probe);
  const double cpu_before = cpu_seconds(daemon.pid());
  const thread_cpu threads_before = cpu_seconds_by_thread(daemon.pid());
  const auto asked = clock_type::now();
  em.start_stream(n, 0);
  const auto done = wait_for_acks(probe, base + static_cast<std::int64_t>(n), ack_timeout(n), &daemon);
  const double cpu_after = cpu_seconds(daemon.pid());
  const thread_cpu threads_after = cpu_seconds_by_thread(daemon.pid());
  throughput_sample out;
  out.hwm_mib = static_cast<double>(status_kib(daemon.pid(), "VmHWM")) / 1024.0;
  wait_streams(em, 2, 10s);
  const auto first = em.last_stream().first_write;
  out.secs = seconds(done - (first > asked ? first : asked));
  out.final_count = acked(probe) - base;
  daemon.stop(90s);
  out.cpu = cpu_after - cpu_before;
  out.threads = {threads_after.main - threads_before.main, threads_after.librdkafka - threads_before.librdkafka,
                 threads_after.other - threads_before.other};
  out.summary = daemon.summary();
  out.log_path = daemon.log_path();
  // Every frame must have become a record on the topic: a dead letter or a failure means the traffic or the daemon
  // is wrong, and the rate would not mean what it says.
  if (out.summary.find("dead-lettered 0, failed 0") == std::string::npos) {
    throw std::runtime_error("the daemon dead-lettered or failed events: \"" + out.summary + "\"; see " + out.log_path);
  }
  return out;
}

}  // namespace

double run_throughput(bench_context& ctx) {
  const std::uint64_t n = ctx.settings.events;
  info("end to end: " + std::to_string(n) + " events through the daemon");
  const throughput_sample sample = measure_throughput(ctx, "throughput", n, {});
  const double secs = sample.secs;
  const double hwm_mib = sample.hwm_mib;
  const std::int64_t final_count = sample.final_count;
  const double eps = static_cast<double>(n) / secs;
  const double cpu_per_million = sample.cpu / static_cast<double>(n) * 1e6;
  ctx.out.add({"throughput", "events_per_s", "events/s, first frame sent -> last ack", eps, "1/s", fixed(eps, 0),
               ">= 500000", eps >= 500'000});
  ctx.out.add({"throughput", "seconds", "wall time for the run", secs, "s", fixed(secs, 2), "", {}});
  ctx.out.add({"throughput",
               "cpu_s_per_million",
               "daemon CPU s per million events",
               cpu_per_million,
               "s",
               fixed(cpu_per_million, 2),
               "",
               {}});
  const double million_events = static_cast<double>(n) / 1e6;
  const double io_cpu = sample.threads.main / million_events;
  const double rdk_cpu = sample.threads.librdkafka / million_events;
  const double other_cpu = sample.threads.other / million_events;
  ctx.out.add({"throughput",
               "io_thread_cpu_s_per_million",
               "  of which the io thread (main)",
               io_cpu,
               "s",
               fixed(io_cpu, 2),
               "",
               {}});
  ctx.out.add({"throughput",
               "rdkafka_cpu_s_per_million",
               "  of which librdkafka threads (rdk:*)",
               rdk_cpu,
               "s",
               fixed(rdk_cpu, 2),
               "",
               {}});
  ctx.out.add({"throughput",
               "other_cpu_s_per_million",
               "  of which other threads",
               other_cpu,
               "s",
               fixed(other_cpu, 2),
               "",
               {}});
  ctx.out.add({"throughput",
               "io_thread_busy_percent",
               "io thread busy during the run",
               io_cpu * million_events / secs * 100.0,
               "%",
               fixed(io_cpu * million_events / secs * 100.0, 0),
               "",
               {}});
  ctx.out.add({"throughput", "peak_rss_mib", "daemon peak RSS (VmHWM)", hwm_mib, "MiB", fixed(hwm_mib, 1), "", {}});
  ctx.out.note("throughput: the daemon reported \"" + sample.summary + "\"");
  if (final_count != static_cast<std::int64_t>(n)) {
    ctx.out.note("throughput: the topic grew by " + std::to_string(final_count) + " records for " + std::to_string(n) +
                 " events sent");
  }
  return eps;
}

void run_kcat(bench_context& ctx, double daemon_events_per_s) {
  const std::uint64_t n = ctx.settings.events;
  info("kcat ceiling: " + std::to_string(n) + " records of the same size and keys");
  watermark_probe probe(ctx.cluster.bootstrap_servers());
  const std::string lines = ctx.frames.kcat_lines("bench-0");
  std::vector<std::size_t> ends;  // end offset of each line in `lines`
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i] == '\n') {
      ends.push_back(i + 1);
    }
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  }
  // The read end belongs to kcat once it runs; the write end to the writer thread below.
  fd_guard read_end(fds[0]);
  fd_guard write_end(fds[1]);
  const std::int64_t base = acked(probe);
  child::options opts;
  opts.argv = {ctx.settings.kcat,
               "-P",
               "-q",
               "-b",
               ctx.cluster.bootstrap_servers(),
               "-t",
               bench_context::topic,
               "-K",
               "\t",
               "-H",
               "rtm-event=message:updated",
               "-H",
               "rtm-connection=bench-0",
               "-H",
               "rtm-source=acme",
               "-H",
               "content-type=application/json",
               "-X",
               "enable.idempotence=true",
               "-X",
               "acks=all",
               "-X",
               "partitioner=murmur2_random"};
  for (const auto& [name, value] : ctx.settings.kafka_properties) {
    opts.argv.push_back("-X");
    opts.argv.push_back(name + "=" + value);
  }
  opts.stdin_fd = read_end.get();
  opts.stderr_file = ctx.settings.work_dir + "/kcat.log";
  const auto start = clock_type::now();
  std::optional<child> kcat;
  kcat.emplace(opts);
  read_end.reset();
  // The writer only copies bytes into the pipe; kcat's parsing is part of what is measured.
  std::thread writer([fd = write_end.release(), &lines, &ends, n] {
    std::uint64_t left = n;
    while (left > 0) {
      const std::size_t count = left >= ends.size() ? ends.size() : static_cast<std::size_t>(left);
      const std::size_t bytes = ends[count - 1];
      std::size_t done = 0;
      while (done < bytes) {
        const ssize_t w = ::write(fd, lines.data() + done, bytes - done);
        if (w <= 0) {
          ::close(fd);
          return;  // kcat went away: the wait below reports it
        }
        done += static_cast<std::size_t>(w);
      }
      left -= count;
    }
    ::close(fd);
  });
  clock_type::time_point done;
  try {
    done = wait_for_acks(probe, base + static_cast<std::int64_t>(n), ack_timeout(n), nullptr);
  } catch (const std::exception&) {
    kcat->signal(SIGKILL);
    writer.join();
    throw;
  }
  writer.join();
  const auto status = kcat->wait(60s);
  if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    ctx.out.note("kcat did not exit cleanly; see " + opts.stderr_file);
  }
  const double eps = static_cast<double>(n) / seconds(done - start);
  ctx.out.add(
      {"kcat", "events_per_s", "kcat -P records/s (same size, keys, acks=all)", eps, "1/s", fixed(eps, 0), "", {}});
  if (daemon_events_per_s > 0) {
    const double ratio = daemon_events_per_s / eps;
    ctx.out.add({"kcat", "daemon_ratio", "daemon rate / kcat rate", ratio, "", fixed(ratio, 3), ">= 0.333",
                 ratio >= 1.0 / 3.0});
  }
}

namespace {

// A paced run: `rate` events/s for `total` events after a one-second warm-up at the same pace; the daemon's
// receipt -> delivery report histogram over exactly the measured events, and its CPU across them.
struct latency_sample {
  std::vector<histogram_bucket> delta;
  double offered_rate = 0;  // what the paced emitter achieved
  double cpu = 0;           // daemon utime+stime from the window's start to its last ack
  std::uint64_t warmup = 0;
};

latency_sample measure_latency(bench_context& ctx, const std::string& name, double rate, std::uint64_t total,
                               const std::string& spool_dir) {
  emitter em(ctx.frames, ping_interval);
  daemon_run daemon(ctx, name, em.port(), 1, {}, spool_dir);
  daemon.wait_live(em, 1, 30s);
  const unsigned short metrics_port = daemon.metrics_port();
  watermark_probe probe(ctx.cluster.bootstrap_servers());

  latency_sample out;
  std::int64_t base = acked(probe);
  out.warmup = static_cast<std::uint64_t>(rate);  // one second at the same pace
  em.start_stream(out.warmup, rate);
  wait_for_acks(probe, base + static_cast<std::int64_t>(out.warmup), 60s, &daemon);
  wait_streams(em, 1, 10s);

  // The broker's ack is visible to the probe a moment before the daemon handles the delivery report: wait until
  // every warm-up event is in the histogram, so the window below holds exactly the measured events.
  const std::string histogram = "rtm_bridge_publish_latency_seconds";
  std::vector<histogram_bucket> before;
  for (const auto deadline = clock_type::now() + 10s;;) {
    before = parse_histogram(scrape_metrics(metrics_port), histogram);
    if ((!before.empty() && before.back().cumulative >= out.warmup) || clock_type::now() >= deadline) {
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  base = acked(probe);
  const double cpu_before = cpu_seconds(daemon.pid());
  em.start_stream(total, rate);
  wait_for_acks(probe, base + static_cast<std::int64_t>(total),
                ack_timeout(total) + std::chrono::seconds(static_cast<long>(static_cast<double>(total) / rate)),
                &daemon);
  out.cpu = cpu_seconds(daemon.pid()) - cpu_before;
  wait_streams(em, 2, 10s);
  const auto stream = em.last_stream();
  const auto deadline = clock_type::now() + 10s;
  for (;;) {
    out.delta = histogram_delta(before, parse_histogram(scrape_metrics(metrics_port), histogram));
    if ((!out.delta.empty() && out.delta.back().cumulative >= total) || clock_type::now() >= deadline) {
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  daemon.stop(60s);
  if (out.delta.empty()) {
    throw std::runtime_error("no " + histogram + " histogram in the daemon's /metrics");
  }
  out.offered_rate = static_cast<double>(total) / seconds(stream.last_write - stream.first_write);
  return out;
}

// "4.99 ms (bucket 4.0-5.0)", or "> 50.0 ms" past the last finite bound.
std::string shown_quantile(const quantile_estimate& est) {
  return std::isinf(est.upper) ? "> " + fixed(est.lower * 1e3, 1) + " ms"
                               : fixed(est.value * 1e3, 2) + " ms (bucket " + fixed(est.lower * 1e3, 1) + "-" +
                                     fixed(est.upper * 1e3, 1) + ")";
}

}  // namespace

void run_latency(bench_context& ctx) {
  const double rate = ctx.settings.latency_rate;
  const auto total = static_cast<std::uint64_t>(rate * ctx.settings.latency_seconds);
  info("latency: " + std::to_string(total) + " events at " + fixed(rate, 0) + "/s");
  const latency_sample sample = measure_latency(ctx, "latency", rate, total, {});
  const std::vector<histogram_bucket>& delta = sample.delta;
  const std::uint64_t warmup = sample.warmup;

  // The same records at the same rate through a bare librdkafka producer in this process, right after the daemon,
  // against the same cluster: what librdkafka and the mock cluster give without the bridge on this machine now.
  info("latency: a bare librdkafka producer, same records, settings and rate");
  const bare_latency bare =
      run_bare_producer(ctx.cluster.bootstrap_servers(), bench_context::topic, "bench-0",
                        ctx.frames.kcat_lines("bench-0"), ctx.settings.kafka_properties, rate, warmup, total);
  if (bare.failed != 0) {
    throw std::runtime_error("the bare producer had " + std::to_string(bare.failed) + " failed deliveries");
  }

  const double achieved = sample.offered_rate;
  ctx.out.add(
      {"latency", "offered_rate", "offered events/s (paced emitter)", achieved, "1/s", fixed(achieved, 0), "", {}});
  ctx.out.add({"latency",
               "samples",
               "histogram samples in the window",
               static_cast<double>(delta.back().cumulative),
               "",
               std::to_string(delta.back().cumulative),
               "",
               {}});
  const double target = default_linger_s + 0.002;
  for (const auto& [key, q] : {std::pair{"p50", 0.5}, std::pair{"p99", 0.99}, std::pair{"p99_9", 0.999}}) {
    const auto est = histogram_quantile(delta, q);
    const std::string shown = shown_quantile(est);
    std::optional<bool> pass;
    std::string target_text;
    if (std::string(key) == "p99") {
      target_text = "<= " + fixed(target * 1e3, 0) + " ms";
      if (est.upper <= target) {
        pass = true;
      } else if (est.lower >= target) {
        pass = false;
      }  // else the bucket straddles the target: the histogram cannot decide
    }
    ctx.out.add({"latency", std::string(key) + "_ms", std::string(key) + " receipt -> broker ack (interpolated)",
                 std::isinf(est.upper) ? nan : est.value * 1e3, "ms", shown, target_text, pass});
  }

  // The bare producer: exact quantiles from every sample, and the same samples put into the daemon's buckets and
  // read the daemon's way, so the two compare like for like.
  std::vector<double> sorted = bare.seconds;
  std::sort(sorted.begin(), sorted.end());
  std::vector<histogram_bucket> bare_buckets;
  for (const auto& b : delta) {
    const auto within = std::upper_bound(sorted.begin(), sorted.end(), b.le) - sorted.begin();
    bare_buckets.push_back({b.le, static_cast<std::uint64_t>(within)});
  }
  ctx.out.add({"latency",
               "bare_offered_rate",
               "bare librdkafka producer: offered records/s",
               bare.offered_rate,
               "1/s",
               fixed(bare.offered_rate, 0),
               "",
               {}});
  for (const auto& [key, q] : {std::pair{"p50", 0.5}, std::pair{"p99", 0.99}, std::pair{"p99_9", 0.999}}) {
    const auto index = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size()))) - 1;
    const double exact = sorted.empty() ? nan : sorted[std::min(index, sorted.size() - 1)];
    const auto est = histogram_quantile(bare_buckets, q);
    const std::string bucketed = shown_quantile(est);
    ctx.out.add({"latency",
                 "bare_" + std::string(key) + "_ms",
                 "bare librdkafka " + std::string(key) + " produce -> ack (exact; bucketed: " + bucketed + ")",
                 exact * 1e3,
                 "ms",
                 fixed(exact * 1e3, 2) + " ms",
                 "",
                 {}});
  }
}

void run_scale(bench_context& ctx) {
  struct idle_sample {
    int connections;
    double rss_mib;
    double cpu_percent;
    bool held;
  };
  std::vector<idle_sample> samples;
  std::vector<int> counts{1};
  counts.insert(counts.end(), ctx.settings.scale_connections.begin(), ctx.settings.scale_connections.end());
  for (const int n : counts) {
    info("scale: " + std::to_string(n) + " idle connections");
    emitter em(ctx.frames, ping_interval);
    daemon_run daemon(ctx, "scale-" + std::to_string(n), em.port(), n);
    daemon.wait_live(em, static_cast<std::size_t>(n), 60s + std::chrono::milliseconds(20 * n));
    std::this_thread::sleep_for(3s);  // let start-up garbage settle (allocator caches, librdkafka metadata)
    const double cpu_before = cpu_seconds(daemon.pid());
    const auto t0 = clock_type::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(ctx.settings.idle_seconds));
    const double cpu_after = cpu_seconds(daemon.pid());
    const double window = seconds(clock_type::now() - t0);
    const double rss = static_cast<double>(status_kib(daemon.pid(), "VmRSS")) / 1024.0;
    const bool held =
        em.authenticated() == static_cast<std::size_t>(n) && em.handshakes() == static_cast<std::size_t>(n);
    daemon.stop(120s);
    samples.push_back({n, rss, (cpu_after - cpu_before) / window * 100.0, held});
  }
  const idle_sample& baseline = samples.front();
  ctx.out.add({"scale",
               "rss_mib_1",
               "daemon RSS, 1 idle connection",
               baseline.rss_mib,
               "MiB",
               fixed(baseline.rss_mib, 1),
               "",
               {}});
  for (std::size_t i = 1; i < samples.size(); ++i) {
    const auto& s = samples[i];
    const std::string n = std::to_string(s.connections);
    const double per_conn_kib = (s.rss_mib - baseline.rss_mib) * 1024.0 / (s.connections - 1);
    ctx.out.add({"scale",
                 "rss_mib_" + n,
                 "daemon RSS, " + n + " idle connections",
                 s.rss_mib,
                 "MiB",
                 fixed(s.rss_mib, 1),
                 "",
                 {}});
    std::optional<bool> per_conn_pass;
    std::string per_conn_target;
    if (s.connections == 2'000) {
      per_conn_target = "<= 64 KiB";
      per_conn_pass = per_conn_kib <= 64.0;
    }
    ctx.out.add({"scale", "rss_kib_per_connection_" + n, "RSS per idle connection at " + n, per_conn_kib, "KiB",
                 fixed(per_conn_kib, 1), per_conn_target, per_conn_pass});
    ctx.out.add({"scale",
                 "idle_cpu_percent_" + n,
                 "daemon CPU% idle over " + fixed(ctx.settings.idle_seconds, 0) + " s at " + n,
                 s.cpu_percent,
                 "%",
                 fixed(s.cpu_percent, 2),
                 "",
                 {}});
    ctx.out.add({"scale", "held_" + n, n + " connections held (no drop, no reconnect)", s.held ? 1.0 : 0.0, "",
                 s.held ? "yes" : "no", s.connections == 10'000 ? "held" : "",
                 s.connections == 10'000 ? std::optional<bool>(s.held) : std::nullopt});
  }
  ctx.out.add({"scale",
               "idle_cpu_percent_1",
               "daemon CPU% idle, 1 connection",
               baseline.cpu_percent,
               "%",
               fixed(baseline.cpu_percent, 2),
               "",
               {}});
}

namespace {

struct alloc_counts {
  std::uint64_t total = 0;
  std::uint64_t io_thread = 0;             // the main thread, which runs the io_context
  std::uint64_t io_thread_by_rdkafka = 0;  // of those, called directly from librdkafka code (rd_kafka_produce*)
  std::uint64_t rdkafka_threads = 0;       // threads named rdk:*
  std::uint64_t other_threads = 0;         // everything else (bridge helper threads, unnamed threads)
  double stream_seconds = 0;
};

alloc_counts parse_alloc_dump(const std::string& path) {
  std::istringstream in(read_text_file(path));
  alloc_counts c;
  std::string line;
  bool any = false;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    long tid = 0;
    int is_main = 0;
    std::uint64_t allocs = 0;
    std::uint64_t from_rdkafka = 0;
    std::string name;
    if (!(fields >> tid >> is_main >> allocs >> from_rdkafka)) {
      continue;
    }
    std::getline(fields >> std::ws, name);
    any = true;
    c.total += allocs;
    if (is_main == 1) {
      c.io_thread += allocs;
      c.io_thread_by_rdkafka += from_rdkafka;
    } else if (name.starts_with("rdk:")) {
      c.rdkafka_threads += allocs;
    } else {
      c.other_threads += allocs;
    }
  }
  if (!any) {
    throw std::runtime_error("the allocation counter wrote nothing to " + path +
                             " (was the daemon stopped cleanly, and did LD_PRELOAD apply?)");
  }
  return c;
}

alloc_counts count_allocations(bench_context& ctx, std::uint64_t events, double pad_to_seconds) {
  info("allocations: " + std::to_string(events) + " events under the malloc counter");
  const std::string name = "alloc-" + std::to_string(events);
  const std::string dump = ctx.settings.work_dir + "/" + name + ".allocs";
  ::unlink(dump.c_str());
  emitter em(ctx.frames, ping_interval);
  std::vector<std::string> env{"LD_PRELOAD=" + ctx.settings.malloc_counter, "RTM_BENCH_ALLOC_OUT=" + dump};
  if (ctx.settings.alloc_stacks) {
    env.push_back("RTM_BENCH_ALLOC_STACKS=" + ctx.settings.work_dir + "/" + name + ".stacks");
  }
  daemon_run daemon(ctx, name, em.port(), 1, env);
  daemon.wait_live(em, 1, 30s);
  watermark_probe probe(ctx.cluster.bootstrap_servers());
  const std::int64_t base = acked(probe);
  const auto start = clock_type::now();
  em.start_stream(events, 0);
  wait_for_acks(probe, base + static_cast<std::int64_t>(events), ack_timeout(events), &daemon);
  double secs = seconds(clock_type::now() - start);
  // Equal wall time for both runs, so allocations that follow the clock (statistics callbacks, pings, metadata
  // refreshes) cancel out in the difference.
  if (pad_to_seconds > secs) {
    std::this_thread::sleep_for(std::chrono::duration<double>(pad_to_seconds - secs));
    secs = pad_to_seconds;
  }
  daemon.stop(60s);
  alloc_counts c = parse_alloc_dump(dump);
  c.stream_seconds = secs;
  return c;
}

}  // namespace

void run_allocations(bench_context& ctx) {
  const std::uint64_t small = ctx.settings.alloc_small;
  const std::uint64_t large = ctx.settings.alloc_large;
  const alloc_counts big = count_allocations(ctx, large, 0);
  const alloc_counts little = count_allocations(ctx, small, big.stream_seconds);
  const auto per_event = [&](std::uint64_t a, std::uint64_t b) {
    return (static_cast<double>(a) - static_cast<double>(b)) / static_cast<double>(large - small);
  };
  const double total = per_event(big.total, little.total);
  const double io = per_event(big.io_thread, little.io_thread);
  const double io_rdkafka = per_event(big.io_thread_by_rdkafka, little.io_thread_by_rdkafka);
  const double io_ours = io - io_rdkafka;
  const double rdk = per_event(big.rdkafka_threads, little.rdkafka_threads);
  const double other = per_event(big.other_threads, little.other_threads);
  const std::string range = "(" + std::to_string(large) + " - " + std::to_string(small) + " events)";
  ctx.out.add({"allocations",
               "per_event_total",
               "heap allocations/event, whole process " + range,
               total,
               "",
               fixed(total, 2),
               "",
               {}});
  ctx.out.add({"allocations", "per_event_io_thread", "  io thread, all callers", io, "", fixed(io, 2), "", {}});
  ctx.out.add({"allocations",
               "per_event_io_thread_librdkafka",
               "  io thread, called from librdkafka",
               io_rdkafka,
               "",
               fixed(io_rdkafka, 2),
               "",
               {}});
  // A thousandth per event is what clock-driven work can leave behind even when the path itself allocates nothing.
  ctx.out.add({"allocations", "per_event_ours", "  io thread, our side (not librdkafka)", io_ours, "",
               fixed(io_ours, 2), "0", io_ours < 0.01});
  ctx.out.add(
      {"allocations", "per_event_rdkafka_threads", "  librdkafka threads (rdk:*)", rdk, "", fixed(rdk, 2), "", {}});
  ctx.out.add({"allocations", "per_event_other_threads", "  other threads", other, "", fixed(other, 2), "", {}});
}

// ---- the spool (issue 16) -----------------------------------------------------------------------------------------

namespace {

// The value of a counter or gauge in Prometheus text, summed over its label sets (0 when absent).
double metric_value(const std::string& text, const std::string& name) {
  double total = 0;
  for (std::size_t at = text.find(name); at != std::string::npos; at = text.find(name, at + 1)) {
    const bool line_start = at == 0 || text[at - 1] == '\n';
    const char next = at + name.size() < text.size() ? text[at + name.size()] : '\0';
    if (!line_start || (next != ' ' && next != '{')) {
      continue;  // a longer name, or the name inside a # HELP line
    }
    const auto eol = text.find('\n', at);
    const auto space = text.rfind(' ', eol);
    total += std::strtod(text.c_str() + space + 1, nullptr);
  }
  return total;
}

// A fresh spool directory on the local disk (under the work directory), removed again by the destructor: a run
// leaves no gigabytes behind.
class scratch_spool {
 public:
  scratch_spool(const bench_context& ctx, const std::string& name) : path_(ctx.settings.work_dir + "/" + name) {
    std::filesystem::remove_all(path_);
  }
  scratch_spool(const scratch_spool&) = delete;
  scratch_spool& operator=(const scratch_spool&) = delete;
  ~scratch_spool() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

// The middle value (the mean of the two middle ones for an even count): one run disturbed by another engineer's
// build moves it less than it moves a mean.
double median(std::vector<double> v) {
  if (v.empty()) {
    return nan;
  }
  std::sort(v.begin(), v.end());
  const std::size_t mid = v.size() / 2;
  return v.size() % 2 == 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

std::string listed(const std::vector<double>& v, int decimals) {
  std::string out;
  for (const double x : v) {
    out += (out.empty() ? "" : ", ") + fixed(x, decimals);
  }
  return out;
}

// Spool off vs on, same scenario, alternating: throughput and CPU unpaced, then latency and CPU at the paced rate.
void spool_end_to_end(bench_context& ctx) {
  const std::uint64_t n = ctx.settings.events;
  const double million = static_cast<double>(n) / 1e6;
  std::vector<double> eps[2];
  std::vector<double> cpu[2];
  thread_cpu threads[2]{};
  for (int round = 0; round < ctx.settings.spool_rounds; ++round) {
    for (const int on : {0, 1}) {
      const std::string name = std::string(on != 0 ? "spool-on" : "spool-off") + "-" + std::to_string(round + 1);
      info("spool: end to end, spool " + std::string(on != 0 ? "on" : "off") + ", round " + std::to_string(round + 1) +
           ": " + std::to_string(n) + " events");
      const scratch_spool dir(ctx, name + ".spool");
      const throughput_sample t = measure_throughput(ctx, name, n, on != 0 ? dir.path() : std::string());
      if (t.final_count != static_cast<std::int64_t>(n)) {
        ctx.out.note("spool: " + name + ": the topic grew by " + std::to_string(t.final_count) + " records for " +
                     std::to_string(n) + " events sent");
      }
      eps[on].push_back(static_cast<double>(n) / t.secs);
      cpu[on].push_back(t.cpu / million);
      threads[on].main += t.threads.main / million / ctx.settings.spool_rounds;
      threads[on].librdkafka += t.threads.librdkafka / million / ctx.settings.spool_rounds;
      threads[on].other += t.threads.other / million / ctx.settings.spool_rounds;
    }
  }
  const std::string rounds = std::to_string(ctx.settings.spool_rounds);
  for (const int on : {0, 1}) {
    const std::string mode = on != 0 ? "on" : "off";
    const double e = median(eps[on]);
    const double c = median(cpu[on]);
    ctx.out.add({"spool",
                 "events_per_s_" + mode,
                 "events/s end to end, spool " + mode + " (median of " + rounds + ": " + listed(eps[on], 0) + ")",
                 e,
                 "1/s",
                 fixed(e, 0),
                 "",
                 {}});
    ctx.out.add({"spool",
                 "cpu_s_per_million_" + mode,
                 "daemon CPU s per million events, spool " + mode + " (median; mean split: io " +
                     fixed(threads[on].main, 2) + ", rdk " + fixed(threads[on].librdkafka, 2) + ", other " +
                     fixed(threads[on].other, 2) + ")",
                 c,
                 "s",
                 fixed(c, 2),
                 "",
                 {}});
  }
  const double ratio = median(eps[1]) / median(eps[0]);
  ctx.out.add({"spool", "events_per_s_ratio", "events/s spool on / spool off", ratio, "", fixed(ratio, 3), ">= 0.8",
               ratio >= 0.8});

  // Same paced rate, off then on: CPU per event at equal load, and the receipt -> ack tail with the spool.
  const double rate = ctx.settings.latency_rate;
  const auto total = static_cast<std::uint64_t>(rate * ctx.settings.latency_seconds);
  for (const int on : {0, 1}) {
    const std::string mode = on != 0 ? "on" : "off";
    info("spool: latency, spool " + mode + ": " + std::to_string(total) + " events at " + fixed(rate, 0) + "/s");
    const scratch_spool dir(ctx, "spool-latency-" + mode + ".spool");
    const latency_sample l =
        measure_latency(ctx, "spool-latency-" + mode, rate, total, on != 0 ? dir.path() : std::string());
    const double c = l.cpu / (static_cast<double>(total) / 1e6);
    ctx.out.add({"spool",
                 "paced_cpu_s_per_million_" + mode,
                 "at " + fixed(l.offered_rate, 0) + "/s: daemon CPU s per million events, spool " + mode,
                 c,
                 "s",
                 fixed(c, 2),
                 "",
                 {}});
    for (const auto& [key, q] : {std::pair{"p50", 0.5}, std::pair{"p99", 0.99}, std::pair{"p99_9", 0.999}}) {
      const auto est = histogram_quantile(l.delta, q);
      ctx.out.add({"spool",
                   std::string(key) + "_ms_" + mode,
                   std::string(key) + " receipt -> broker ack at " + fixed(rate, 0) + "/s, spool " + mode,
                   std::isinf(est.upper) ? nan : est.value * 1e3,
                   "ms",
                   shown_quantile(est),
                   "",
                   {}});
    }
  }
}

// Kafka down while N events arrive (unpaced): the rate they are spooled at; then Kafka up: how long until the
// spool holds nothing unconfirmed (rtm_bridge_spool_records 0).
void spool_drain(bench_context& ctx) {
  const std::uint64_t n = ctx.settings.drain_events;
  info("spool: outage and drain: " + std::to_string(n) + " events spooled with every broker down");
  const scratch_spool dir(ctx, "spool-drain.spool");
  emitter em(ctx.frames, ping_interval);
  daemon_run daemon(ctx, "spool-drain", em.port(), 1, {}, dir.path());
  daemon.wait_live(em, 1, 30s);
  const unsigned short metrics_port = daemon.metrics_port();
  watermark_probe probe(ctx.cluster.bootstrap_servers());
  std::int64_t base = acked(probe);
  em.start_stream(ctx.settings.warmup_events, 0);
  wait_for_acks(probe, base + static_cast<std::int64_t>(ctx.settings.warmup_events),
                ack_timeout(ctx.settings.warmup_events), &daemon);
  wait_streams(em, 1, 10s);
  base = acked(probe);
  ctx.cluster.set_broker_down(-1);
  // The cluster must come back whatever happens below: later sections use it.
  struct brokers_back {
    kafka::embedded_cluster& cluster;
    bool up = false;
    void now() {
      if (!up) {
        cluster.set_broker_up(-1);
        up = true;
      }
    }
    ~brokers_back() { now(); }
  } restore{ctx.cluster};
  em.start_stream(n, 0);
  std::string text;
  const auto spool_deadline = clock_type::now() + ack_timeout(n);
  for (;;) {
    text = scrape_metrics(metrics_port);
    if (metric_value(text, "rtm_bridge_spool_records") >= static_cast<double>(n)) {
      break;
    }
    daemon.check_running();
    if (clock_type::now() >= spool_deadline) {
      throw std::runtime_error("only " + fixed(metric_value(text, "rtm_bridge_spool_records"), 0) + " of " +
                               std::to_string(n) + " events spooled before the timeout");
    }
    std::this_thread::sleep_for(25ms);
  }
  const auto spooled_at = clock_type::now();
  wait_streams(em, 2, 10s);
  const double ingest = static_cast<double>(n) / seconds(spooled_at - em.last_stream().first_write);
  const double spool_mib = metric_value(text, "rtm_bridge_spool_bytes") / (1024.0 * 1024.0);

  const double cpu_before = cpu_seconds(daemon.pid());
  restore.now();
  const auto up_at = clock_type::now();
  // Acks are watched at the broker, as everywhere in this bench (scraping the daemon every few ms would cost its
  // io thread time), with a fresh probe: the old one's reconnect back-off grew during the outage.
  watermark_probe after(ctx.cluster.bootstrap_servers());
  std::optional<clock_type::time_point> first_delivery;
  const auto drain_deadline = up_at + ack_timeout(n);
  const std::int64_t target = base + static_cast<std::int64_t>(n);
  for (;;) {
    const std::int64_t sum = after.sum(bench_context::topic, bench_context::partitions);
    const auto now = clock_type::now();
    if (!first_delivery && sum > base) {
      first_delivery = now;
    }
    if (sum >= target) {
      break;
    }
    daemon.check_running();
    if (now >= drain_deadline) {
      throw std::runtime_error("only " + std::to_string(sum - base) + " of " + std::to_string(n) +
                               " spooled records acknowledged before the timeout");
    }
    std::this_thread::sleep_for(10ms);
  }
  const auto drained_at = clock_type::now();
  const double drain_cpu = cpu_seconds(daemon.pid()) - cpu_before;
  // The daemon settles the last records when their delivery reports are served, just after the broker's ack.
  bool empty = false;
  for (const auto deadline = clock_type::now() + 10s; !empty && clock_type::now() < deadline;) {
    empty = metric_value(scrape_metrics(metrics_port), "rtm_bridge_spool_records") == 0;
    if (!empty) {
      std::this_thread::sleep_for(20ms);
    }
  }
  if (!empty) {
    throw std::runtime_error("every spooled record is acknowledged, but rtm_bridge_spool_records is not 0");
  }
  daemon.stop(90s);
  if (!first_delivery) {
    first_delivery = drained_at;
  }
  const double to_first = seconds(*first_delivery - up_at);
  const double whole = static_cast<double>(n) / seconds(drained_at - up_at);
  const double from_first = static_cast<double>(n) / seconds(drained_at - *first_delivery);
  ctx.out.add({"spool",
               "outage_spooled_events_per_s",
               "Kafka down: events/s spooled (" + std::to_string(n) + " events, " + fixed(spool_mib, 0) + " MiB)",
               ingest,
               "1/s",
               fixed(ingest, 0),
               "",
               {}});
  ctx.out.add({"spool",
               "drain_first_delivery_s",
               "Kafka up: first ack after the brokers are back",
               to_first,
               "s",
               fixed(to_first, 2) + " s",
               "",
               {}});
  ctx.out.add({"spool",
               "drain_records_per_s",
               "drain: records/s, brokers up -> last ack (spool_records 0)",
               whole,
               "1/s",
               fixed(whole, 0),
               "",
               {}});
  ctx.out.add({"spool",
               "drain_records_per_s_after_first",
               "drain: records/s, first ack -> last ack",
               from_first,
               "1/s",
               fixed(from_first, 0),
               "",
               {}});
  const double drain_cpu_per_million = drain_cpu / (static_cast<double>(n) / 1e6);
  ctx.out.add({"spool",
               "drain_cpu_s_per_million",
               "drain: daemon CPU s per million records",
               drain_cpu_per_million,
               "s",
               fixed(drain_cpu_per_million, 2),
               "",
               {}});
}

}  // namespace

void run_spool(bench_context& ctx) {
  spool_end_to_end(ctx);
}

void run_spool_drain(bench_context& ctx) {
  spool_drain(ctx);
}

}  // namespace rtm::bench
