// Soak: the real rtm-bridge binary (ASan-built, as the whole test build) carries RTM_SOAK_EVENTS events (1,000,000 by
// default) from the npm socket.io upstream to the mock cluster hosted here, in bursts, with faults drawn at random
// between them: every broker down for 0.5-2 s while a burst arrives (librdkafka's queue is kept small, so these
// outages also exercise backpressure), and the upstream TCP connection destroyed (the daemon reconnects). At the end
// every event must have been published exactly once, and the daemon's resident memory must be where it was after
// warm-up (within 10 %). Figures go to the test log (MESSAGE).
//
// ASan keeps freed memory in a quarantine (256 MiB by default) before reusing it, so the daemon's RSS would keep
// growing until that is full; the daemon runs with a small quarantine instead and the first sample is taken after a
// warm-up of a fifth of the events. The warm-up opens with the worst fault of each kind the draw can produce (the
// longest outage, then a disconnect), after one plain burst: the first outage once records flow lifts RSS by ~28 MB
// once and no later outage lifts it further (what the step is made of was not profiled), so a schedule whose first
// outage came after the baseline (seed 2983812854: at 575k events) showed that one step as drift. What the check is
// after is growth once every kind of fault has been seen.
//
// RTM_SOAK_TRACE=1 prints the fault and the RSS after every burst.
#include <librdkafka/rdkafka.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include "kafka/embedded_cluster.hpp"
#include "support/daemon.hpp"
#include "support/process.hpp"

using namespace std::chrono_literals;

namespace {

using namespace rtm::test;  // the integration fixtures: support/daemon.hpp, kcat.hpp, process.hpp

constexpr int partitions = 8;

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* text = std::getenv(name);
  return text != nullptr && *text != '\0' ? std::stoull(text) : fallback;
}

// VmRSS of `pid` in KiB.
std::uint64_t rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stoull(line.substr(6));
    }
  }
  FAIL("no VmRSS for pid " << pid);
  return 0;
}

// The sum of the topic's high watermarks: how many records the cluster took (the mock's retention drops old ones,
// the watermarks still count them).
class watermarks {
 public:
  explicit watermarks(const std::string& bootstrap) {
    std::array<char, 512> err{};
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    REQUIRE(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err.data(), err.size()) ==
            RD_KAFKA_CONF_OK);
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err.data(), err.size());
    REQUIRE_MESSAGE(rk_ != nullptr, err.data());
  }
  watermarks(const watermarks&) = delete;
  watermarks& operator=(const watermarks&) = delete;
  ~watermarks() { rd_kafka_destroy(rk_); }

  std::int64_t sum(const std::string& topic) {
    std::int64_t total = 0;
    for (int p = 0; p < partitions; ++p) {
      std::int64_t low = 0;
      std::int64_t high = 0;
      REQUIRE(rd_kafka_query_watermark_offsets(rk_, topic.c_str(), p, &low, &high, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR);
      total += high;
    }
    return total;
  }

 private:
  rd_kafka_t* rk_ = nullptr;
};

// What the daemon's log says about producer re-creations (after a fatal error: librdkafka 2.0.2's idempotent producer
// can wedge after an outage), each of which produces the unconfirmed records again and says how many of them the old
// producer may already have written.
struct recreations {
  std::uint64_t count = 0;
  std::uint64_t possible_duplicates = 0;
};

recreations producer_recreations(const std::string& log) {
  recreations out;
  const std::string line_marker = "kafka: producer recreated";
  const std::string count_marker = " of which may already be in Kafka";
  for (std::size_t at = log.find(line_marker); at != std::string::npos; at = log.find(line_marker, at + 1)) {
    ++out.count;
    const std::size_t eol = log.find('\n', at);
    const std::size_t end = log.find(count_marker, at);
    if (end == std::string::npos || end > eol) {
      FAIL("a producer re-creation line without its count: " << log.substr(at, eol - at));
      continue;
    }
    const std::size_t start = log.rfind(' ', end - 1) + 1;
    out.possible_duplicates += std::stoull(log.substr(start, end - start));
  }
  return out;
}

}  // namespace

TEST_CASE("soak: RTM_SOAK_EVENTS events with broker outages and upstream disconnects; nothing lost, RSS stable") {
  // 25,000 events per burst; a tenth of that under valgrind (rtm::test::volume), where the broker runs under memcheck.
  const std::uint64_t burst_size = rtm::test::volume(25000);
  const std::uint64_t total = std::max<std::uint64_t>(env_number("RTM_SOAK_EVENTS", 1'000'000), 5 * burst_size);
  // A fixed fault schedule by default, so a CI failure can be replayed exactly; RTM_SOAK_SEED explores others.
  const std::uint64_t seed = env_number("RTM_SOAK_SEED", 20261123);
  const bool trace = env_number("RTM_SOAK_TRACE", 0) != 0;
  MESSAGE("soak: ", total, " events, seed ", seed, " (rerun the same faults with RTM_SOAK_SEED=", seed, ")");
  std::mt19937_64 random(seed);

  rtm::kafka::embedded_cluster cluster;
  cluster.create_topic("rtm.message", partitions);
  auto upstream = acme_upstream(25000, 20000);
  rtm::test::temp_dir dir;
  daemon_process d(dir,
                   "kafka:\n  brokers: \"" + cluster.bootstrap_servers() +
                       "\"\n  shutdown_timeout: 60s\n  properties: {queue.buffering.max.messages: \"20000\", "
                       "reconnect.backoff.max.ms: \"1000\"}\n"
                       "connections:\n" +
                       acme_connection("acme-main", upstream.port(), "acme-id", "ACME_KEY") +
                       "metrics:\n  listen: \"127.0.0.1:0\"\n",
                   {{"ACME_KEY", "acme-K3y-5ecret-77"},
                    // The suite's options, with a 16 MiB quarantine instead of 256 MiB (see above).
                    {"ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1:strict_string_checks=1:quarantine_size_mb=16"}});
  const std::string metrics_url = "http://127.0.0.1:" + d.metrics_port() + "/metrics";
  REQUIRE_MESSAGE(upstream.wait_event("AUTH acme-id ok", 30s), d.log());

  const auto started = std::chrono::steady_clock::now();
  std::uint64_t sent = 0;
  std::uint64_t warm_rss = 0;
  std::uint64_t min_rss = UINT64_MAX;
  std::uint64_t max_rss = 0;
  int outages = 0;
  int disconnects = 0;
  // Waits until the daemon has read `sent` events (and, with `published`, until Kafka confirmed them all). Polls
  // every 100 ms: each poll is a curl process, on the same two cores as the daemon.
  const auto caught_up = [&](bool published) {
    const auto deadline = std::chrono::steady_clock::now() + rtm::test::patience(120s);
    while (std::chrono::steady_clock::now() < deadline) {
      const std::string text = http_get(metrics_url);
      if (metric_sum(text, "rtm_bridge_events_received_total") == sent &&
          (!published || metric_sum(text, "rtm_bridge_events_published_total") == sent)) {
        return true;
      }
      std::this_thread::sleep_for(100ms);
    }
    return false;
  };
  // A draw of random() % 6: 0 an outage, 1 a disconnect, anything else no fault.
  constexpr std::uint64_t outage = 0;
  constexpr std::uint64_t disconnect = 1;
  constexpr std::uint64_t no_fault = 2;
  constexpr std::uint64_t longest_outage_ms = 2000;
  // The warm-up's fixed start (see the top): a plain burst, the longest outage, a disconnect.
  constexpr std::array<std::uint64_t, 3> warm_up_faults{no_fault, outage, disconnect};
  for (std::uint64_t burst_index = 0; sent < total; ++burst_index) {
    const std::uint64_t count = std::min(burst_size, total - sent);
    const std::string burst = R"({"cmd":"burst","event":"message:updated","count":)" + std::to_string(count) +
                              R"(,"teams":32,"continue":true})";
    const bool warming_up = burst_index < warm_up_faults.size();
    const std::uint64_t fault = warming_up ? warm_up_faults.at(burst_index) : random() % 6;
    std::uint64_t outage_ms = 0;
    if (fault == outage) {
      // Every broker away while the burst arrives.
      ++outages;
      outage_ms = warming_up ? longest_outage_ms : 500 + random() % (longest_outage_ms - 500);
      cluster.set_broker_down(-1);
      REQUIRE(upstream.command(burst) == "OK burst 1");
      std::this_thread::sleep_for(std::chrono::milliseconds(outage_ms));
      cluster.set_broker_up(-1);
    } else if (fault == disconnect) {
      // The upstream drops the TCP connection (between bursts: an event in flight on a dropped connection is lost
      // upstream, which is not what this test measures); the daemon reconnects.
      ++disconnects;
      upstream.command(R"({"cmd":"destroy"})");
      REQUIRE_MESSAGE(upstream.wait_event("AUTH acme-id ok", 30s), d.log());
      REQUIRE(upstream.command(burst) == "OK burst 1");
    } else {
      REQUIRE(upstream.command(burst) == "OK burst 1");
    }
    sent += count;
    const bool sample = sent % (total / 5) < burst_size || sent == total;
    REQUIRE_MESSAGE(caught_up(sample || trace), "stuck at ", sent, " sent: ", http_get(metrics_url));
    if (trace) {
      MESSAGE("soak trace: ", sent, " events, ",
              fault == outage       ? "outage " + std::to_string(outage_ms) + " ms"
              : fault == disconnect ? std::string("disconnect")
                                    : std::string("no fault"),
              ", RSS ", rss_kib(d.pid()), " KiB");
    }
    if (sample) {
      const std::uint64_t rss = rss_kib(d.pid());
      MESSAGE("soak: ", sent, " events, RSS ", rss, " KiB, ",
              std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started).count(),
              " s");
      if (warm_rss == 0) {
        warm_rss = rss;  // after the first fifth: ASan's quarantine and librdkafka's buffers are in use by now
      } else {
        min_rss = std::min(min_rss, rss);
        max_rss = std::max(max_rss, rss);
      }
    }
  }
  const auto took = std::chrono::steady_clock::now() - started;
  const std::uint64_t end_rss = rss_kib(d.pid());
  const std::string text = http_get(metrics_url);
  CHECK(metric_sum(text, "rtm_bridge_events_received_total") == total);
  CHECK(metric_sum(text, "rtm_bridge_events_published_total") == total);
  CHECK(metric_sum(text, "rtm_bridge_events_failed_total") == 0);
  CHECK(metric_sum(text, "rtm_bridge_dead_letters_total") == 0);
  // Nothing lost at the broker. Repeats are reported, not judged: besides those a producer re-creation announces,
  // librdkafka's own retries of a batch whose acknowledgement an outage cut off land twice in the mock cluster (as
  // upstream's rdkafka_mock.c reads, it checks, and so de-duplicates, producer sequence numbers for transactional
  // producers only); a real broker drops them. Seen: seed 2983812854 over 3,000,000 events, 2,751 and 3,342 repeats
  // with no re-creation; the default run, 149. The mock does not keep every record, so they cannot be counted by
  // envelope id here; exactly-once per envelope id is asserted in kafka/publish_order_test.cpp.
  const recreations recreated = producer_recreations(d.log());
  watermarks probe(cluster.bootstrap_servers());
  const std::int64_t landed = probe.sum("rtm.message");
  MESSAGE("soak: ", landed, " records in the topic for ", total, " events (", landed - static_cast<std::int64_t>(total),
          " repeats); ", recreated.count, " producer re-creations announcing ", recreated.possible_duplicates,
          " possible duplicates");
  CHECK(landed >= static_cast<std::int64_t>(total));
  const double drift = (static_cast<double>(end_rss) - static_cast<double>(warm_rss)) / static_cast<double>(warm_rss);
  MESSAGE("soak: ", total, " events in ", std::chrono::duration_cast<std::chrono::seconds>(took).count(), " s, ",
          outages, " broker outages, ", disconnects, " upstream disconnects; RSS after warm-up ", warm_rss,
          " KiB, later samples ", min_rss, "-", max_rss, " KiB, at the end ", end_rss, " KiB (", drift * 100, " %)");
  if (burst_size == 25000) {
    CHECK(std::abs(drift) <= 0.10);
    CHECK(max_rss <= warm_rss + warm_rss / 10);
  } else {
    // A reduced-volume run (valgrind): a few bursts do not warm the daemon up, and memcheck's shadow memory grows
    // with every heap page first touched, so RSS is reported, not judged. Memory errors and leaks are memcheck's.
    MESSAGE("soak: RSS not judged in a reduced-volume run (RTM_TEST_VOLUME_DIVISOR)");
  }
  d.signal(SIGTERM);
  CHECK(d.wait(60s) == 0);  // LeakSanitizer runs at exit: a leak fails here
}
