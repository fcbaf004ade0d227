// The spool's own append rate (issue 16: >= 500k records/s on one core): spool::spool in this process with its
// production defaults on the local disk, driven by an io_context on the controller thread the way the publisher
// drives it, without the daemon, the network or Kafka.
#include <time.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "scenarios.hpp"
#include "spool/spool.hpp"

namespace rtm::bench {
namespace {

using clock_type = std::chrono::steady_clock;

double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// The spool's owner: nothing to do on "room" (it never fills here); a failure is remembered and ends the run.
class recording_listener final : public spool::listener {
 public:
  void on_spool_room() noexcept override {}
  void on_spool_failed(const std::string& reason) noexcept override { failure = reason; }
  std::string failure;
};

}  // namespace

void run_spool_append(bench_context& ctx) {
  const std::uint64_t n = ctx.settings.spool_append_records;
  const std::size_t payload_bytes = ctx.settings.spool_payload_bytes;
  // One handler appends what one upstream read would bring (~60 KiB of events); the spool writes them with one
  // write() after the handler (and at 64 KiB within it).
  const std::uint64_t batch = std::max<std::uint64_t>(1, (60 * 1024) / payload_bytes);
  std::fprintf(stderr, "bench: spool append: %llu records of %zu bytes, batches of %llu\n",
               static_cast<unsigned long long>(n), payload_bytes, static_cast<unsigned long long>(batch));

  // Incompressible payloads (random bytes, fixed seed), a few distinct ones so no two neighbours are equal.
  std::vector<std::string> payloads(64);
  std::mt19937_64 rng(16);
  for (std::string& p : payloads) {
    p.resize(payload_bytes);
    for (char& c : p) {
      c = static_cast<char>(rng());
    }
  }

  const std::string dir = ctx.settings.work_dir + "/spool-append.spool";
  std::filesystem::remove_all(dir);
  struct cleanup {
    std::string dir;
    ~cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } remove_after{dir};

  boost::asio::io_context io;  // declared before the spool: its timers and posts refer to it
  recording_listener owner;
  spool::options opts;  // the contract's defaults: 64 MiB segments, fsync_interval 200 ms, checkpoint 100 ms
  opts.path = dir;
  std::uint64_t appended = 0;
  std::uint64_t not_ok = 0;
  clock_type::time_point start;
  clock_type::time_point end;
  double cpu_start = 0;
  double cpu_end = 0;
  {
    spool::spool s(io, opts, owner);
    // As during a Kafka outage, the demanding case: every record is appended and stays (nothing is confirmed, so
    // nothing is reclaimed before the sync thread has made it durable); all 1M x ~420 B reach the disk.
    std::function<void()> step = [&] {
      if (!owner.failure.empty()) {
        io.stop();
        return;
      }
      const std::int64_t now_ns =
          std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
              .count();
      const std::uint64_t count = std::min(batch, n - appended);
      for (std::uint64_t i = 0; i < count; ++i) {
        std::uint64_t seq = 0;
        if (s.append(now_ns, payloads[(appended + i) % payloads.size()], seq) != spool::spool::append_result::ok) {
          ++not_ok;
        }
      }
      appended += count;
      if (appended < n) {
        boost::asio::post(io, step);
        return;
      }
      // After the flush the last append posted: every record is written.
      boost::asio::post(io, [&] {
        end = clock_type::now();
        cpu_end = thread_cpu_seconds();
        io.stop();
      });
    };
    start = clock_type::now();
    cpu_start = thread_cpu_seconds();
    boost::asio::post(io, step);
    io.run();
    const auto close_start = clock_type::now();
    s.close();  // the last fdatasync and checkpoint
    const double close_ms = std::chrono::duration<double, std::milli>(clock_type::now() - close_start).count();
    if (!owner.failure.empty() || not_ok != 0) {
      throw std::runtime_error("the spool refused " + std::to_string(not_ok) + " appends" +
                               (owner.failure.empty() ? std::string() : ": " + owner.failure));
    }
    // The target counts until everything is durable: the appends and writes, plus the close's last fdatasync of
    // what the sync thread had not synced yet.
    const double written_secs = std::chrono::duration<double>(end - start).count();
    const double synced_secs = written_secs + close_ms / 1e3;
    const double rate = static_cast<double>(n) / synced_secs;
    const double written_rate = static_cast<double>(n) / written_secs;
    const double mb_s = static_cast<double>(n * (payload_bytes + spool::frame_overhead)) / synced_secs / 1e6;
    const double us_per_record = (cpu_end - cpu_start) / static_cast<double>(n) * 1e6;
    ctx.out.add({"spool", "append_records_per_s",
                 "append: records/s on one core until all synced (" + std::to_string(n) + " x " +
                     std::to_string(payload_bytes) + " B, fdatasync every 200 ms on the sync thread)",
                 rate, "1/s", fixed(rate, 0), ">= 500000", rate >= 500'000});
    ctx.out.add({"spool",
                 "append_written_records_per_s",
                 "  records/s appended and written (before the last sync)",
                 written_rate,
                 "1/s",
                 fixed(written_rate, 0),
                 "",
                 {}});
    ctx.out.add({"spool",
                 "append_mb_per_s",
                 "  to disk, MB/s of frames until all synced",
                 mb_s,
                 "MB/s",
                 fixed(mb_s, 0),
                 "",
                 {}});
    ctx.out.add({"spool",
                 "append_cpu_us_per_record",
                 "  CPU of the appending thread per record",
                 us_per_record,
                 "us",
                 fixed(us_per_record, 3) + " us",
                 "",
                 {}});
    ctx.out.add({"spool",
                 "append_close_ms",
                 "  close: the last fdatasync and checkpoint",
                 close_ms,
                 "ms",
                 fixed(close_ms, 1) + " ms",
                 "",
                 {}});
  }
}

}  // namespace rtm::bench
