// The spool on a file system that really runs out of space (issue 16, "Proof": ENOSPC): a 96 MiB ext4 image on a
// loop device, the real rtm-bridge binary spooling onto it during a Kafka outage (the librdkafka mock cluster hosted
// by this test process, every broker down), the Acme fixture streaming at a steady rate. The file system is filled
// so that the next segment's preallocation (fallocate) fails with ENOSPC; then the space is freed again, the brokers
// come back, and what the spool wrote (the dump taken while it was full) must all be in Kafka.
//
// Needs root, a free loop device and permission to mount (true here and in CI). Where losetup or mount is refused
// (an unprivileged container), the test says so in a MESSAGE and exits 77, which meson reports as SKIP and
// scripts/count-results counts as skipped.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "kafka/embedded_cluster.hpp"
#include "support/daemon.hpp"
#include "support/kcat.hpp"
#include "support/process.hpp"
#include "support/spool_oracle.hpp"

using namespace std::chrono_literals;

namespace {

using namespace rtm::test;  // the integration fixtures: support/daemon.hpp, kcat.hpp, process.hpp

const std::map<std::string, std::string> acme_env{{"ACME_KEY", "acme-K3y-5ecret-77"}};
constexpr std::uint64_t segment_size = std::uint64_t{8} << 20U;
// The mock broker keeps only the last 5 MiB of each partition (librdkafka's mock, hard-coded): ~35k records of
// ~450 bytes must spread over enough partitions that none passes that before the topic is read. 32 teams over 32
// partitions put at most 5 teams on one partition (murmur2 of "team-NN").
constexpr int partitions = 32;

// A small ext4 file system on a loop device, mounted for the test and taken down (umount, losetup -d, image removed)
// by the destructor, whatever the test's outcome. Created with -b 4096 -m 0: 4 KiB blocks and no blocks reserved
// for root (the daemon runs as root here, and root may allocate the reserved blocks that statvfs' f_bavail leaves
// out), so that "available" means the same to statvfs and to fallocate.
class loop_mount {
 public:
  // Null, with `why` saying which step failed and its output, when this machine does not let us (not root, no loop
  // device, mount not permitted); nothing is left behind then.
  static std::unique_ptr<loop_mount> create(int size_mib, std::string& why) {
    if (::geteuid() != 0) {
      why = "not running as root (losetup and mount need it)";
      return nullptr;
    }
    auto m = std::unique_ptr<loop_mount>(new loop_mount);
    std::string tmpl =
        (std::getenv("TMPDIR") != nullptr ? std::string(std::getenv("TMPDIR")) : "/tmp") + "/rtm-enospc-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      why = "mkdtemp " + tmpl + ": " + std::strerror(errno);
      return nullptr;
    }
    m->work_ = tmpl;
    m->image_ = m->work_ + "/ext4.img";
    m->mount_point_ = m->work_ + "/mnt";
    std::filesystem::create_directory(m->mount_point_);
    const auto step = [&why](const std::vector<std::string>& argv) -> std::string {
      const command_result r = run(argv);
      if (r.code != 0) {
        why = joined(argv) + " exited " + std::to_string(r.code) + ": " + r.output;
        return {};
      }
      return r.output.empty() ? std::string(" ") : r.output;
    };
    if (step({"truncate", "-s", std::to_string(size_mib) + "M", m->image_}).empty() ||
        step({"mkfs.ext4", "-q", "-F", "-b", "4096", "-m", "0", m->image_}).empty()) {
      return nullptr;
    }
    std::string device = step({"losetup", "--find", "--show", m->image_});
    if (device.empty()) {
      return nullptr;
    }
    device.erase(device.find_last_not_of(" \n") + 1);
    m->device_ = device;
    if (step({"mount", "-t", "ext4", m->device_, m->mount_point_}).empty()) {
      return nullptr;  // the destructor detaches the device
    }
    m->mounted_ = true;
    return m;
  }

  loop_mount(const loop_mount&) = delete;
  loop_mount& operator=(const loop_mount&) = delete;
  loop_mount(loop_mount&&) = delete;
  loop_mount& operator=(loop_mount&&) = delete;

  ~loop_mount() {
    if (mounted_) {
      // Busy only while a process still has a file open there: every child of the test is gone by now, so a few
      // tries are plenty; a lazy unmount is the last resort (losetup -d then detaches once it completes).
      bool done = false;
      for (int i = 0; i < 10 && !done; ++i) {
        done = run({"umount", mount_point_}).code == 0;
        if (!done) {
          std::this_thread::sleep_for(200ms);
        }
      }
      if (!done) {
        const command_result lazy = run({"umount", "-l", mount_point_});
        MESSAGE("umount " << mount_point_ << " kept failing; lazy unmount: exit " << lazy.code << " " << lazy.output);
      }
    }
    if (!device_.empty()) {
      const command_result r = run({"losetup", "-d", device_});
      if (r.code != 0) {
        MESSAGE("losetup -d " << device_ << " failed: " << r.output);
      }
    }
    std::error_code ec;
    if (!work_.empty() && !std::filesystem::remove_all(work_, ec) && ec) {
      MESSAGE("cannot remove " << work_ << ": " << ec.message());
    }
  }

  [[nodiscard]] const std::string& path() const noexcept { return mount_point_; }

  // Bytes available to an ordinary allocation (what the spool's free-space check reads).
  [[nodiscard]] std::uint64_t available() const {
    struct statvfs st {};
    REQUIRE(::statvfs(mount_point_.c_str(), &st) == 0);
    return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
  }

  [[nodiscard]] std::uint64_t block_size() const {
    struct statvfs st {};
    REQUIRE(::statvfs(mount_point_.c_str(), &st) == 0);
    return st.f_frsize;
  }

 private:
  loop_mount() = default;

  std::string work_;
  std::string image_;
  std::string mount_point_;
  std::string device_;
  bool mounted_ = false;
};

// Ends this test executable as skipped (exit 77: meson's SKIP), saying why. Only before anything that needs tearing
// down exists.
[[noreturn]] void skip_test(const std::string& why) {
  MESSAGE("SKIPPED: the ENOSPC test needs a loop-mounted ext4 file system, and this machine refused: " << why);
  std::exit(77);
}

// Fills the file system at `disk` so that exactly `leave` bytes stay available (statvfs f_bavail), all of them in
// single blocks between blocks of one ballast file (fallocate over everything, then holes punched into it). A file
// preallocating `leave` bytes then passes the spool's free-space check (free >= segment size + min_free 0), but
// 2,048 one-block pieces need an extent tree of several blocks on top, which are not there: its fallocate fails
// with ENOSPC. This is the spool's "ENOSPC at preallocation" branch on a real file system. (When another process
// fills the disk, the free-space check usually sees it first and the spool is full for the same policy; the
// fallocate branch is the race in between.)
void make_fragmented_ballast(const loop_mount& disk, const std::string& ballast, std::uint64_t leave) {
  const std::uint64_t block = disk.block_size();
  REQUIRE(leave % block == 0);
  const int fd = ::open(ballast.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  REQUIRE_MESSAGE(fd >= 0, ballast << ": " << std::strerror(errno));
  const std::uint64_t start = disk.available();
  REQUIRE_MESSAGE(start > 2 * leave, "only " << start << " bytes available on " << disk.path());
  REQUIRE_MESSAGE(::fallocate(fd, 0, 0, static_cast<off_t>(start)) == 0,
                  "fallocate " << start << " bytes for " << ballast << ": " << std::strerror(errno));
  // Every other block from the start: each hole is one block with ballast on both sides. The holes also grow the
  // ballast's own extent tree, which takes a few of the freed blocks: punch until enough are free.
  std::uint64_t holes = 0;
  while (disk.available() < leave && holes * 2 * block < start) {
    REQUIRE_MESSAGE(::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(holes * 2 * block),
                                static_cast<off_t>(block)) == 0,
                    "punching a hole into " << ballast << ": " << std::strerror(errno));
    ++holes;
  }
  REQUIRE(::fsync(fd) == 0);
  ::close(fd);
  // One block too many is possible (the tree's last block came from an earlier hole): small files take them back.
  for (int i = 0; disk.available() > leave && i < 64; ++i) {
    const std::string path = ballast + ".fill-" + std::to_string(i);
    const int f = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    REQUIRE(f >= 0);
    const std::string data(block, 'b');
    REQUIRE(::write(f, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
    REQUIRE(::fsync(f) == 0);
    ::close(f);
  }
  REQUIRE_MESSAGE(disk.available() == leave, "available " << disk.available() << " after " << holes << " holes");
  MESSAGE("ballast: " << start << " bytes preallocated, " << holes << " one-block holes punched, " << leave
                      << " bytes available");
}

void remove_ballast(const std::string& ballast) {
  const std::filesystem::path p(ballast);
  for (const auto& entry : std::filesystem::directory_iterator(p.parent_path())) {
    if (entry.path().filename().string().rfind(p.filename().string(), 0) == 0) {
      std::filesystem::remove(entry.path());
    }
  }
}

std::string daemon_config(const rtm::kafka::embedded_cluster& cluster, const fixture& upstream,
                          const std::string& spool_dir, const std::string& when_full) {
  // max_size is far beyond the 96 MiB file system: only the disk itself can make the spool full. The reconnect
  // back-off is kept short so that the drain starts soon after the brokers are back.
  return "kafka:\n  brokers: \"" + cluster.bootstrap_servers() +
         "\"\n  shutdown_timeout: 60s\n  properties: {reconnect.backoff.max.ms: \"1000\"}\n"
         "spool:\n  path: \"" +
         spool_dir + "\"\n  segment_size: 8MiB\n  max_size: 1GiB\n  min_free: 0\n  when_full: " + when_full +
         "\nconnections:\n" + acme_connection("acme-main", upstream.port(), "acme-id", "ACME_KEY") +
         "metrics:\n  listen: \"127.0.0.1:0\"\n";
}

// Bytes the server sent on its connections to the daemon that the daemon has not read: the kernel's receive queue
// of the daemon's socket plus the send queue of the server's (/proc/net/tcp, loopback IPv4, every established
// connection with the server's port at one end). It grows only while the daemon does not read.
std::uint64_t unread_upstream_bytes(const std::string& server_port) {
  const unsigned port = static_cast<unsigned>(std::stoul(server_port));
  std::istringstream lines(read_file("/proc/net/tcp"));
  std::string line;
  std::getline(lines, line);  // the header
  std::uint64_t total = 0;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string slot;
    std::string local;
    std::string remote;
    std::string state;
    std::string queues;
    if (!(fields >> slot >> local >> remote >> state >> queues) || state != "01") {
      continue;  // 01: ESTABLISHED
    }
    const auto port_of = [](const std::string& address) {
      return static_cast<unsigned>(std::stoul(address.substr(address.find(':') + 1), nullptr, 16));
    };
    const auto colon = queues.find(':');
    const std::uint64_t tx = std::stoull(queues.substr(0, colon), nullptr, 16);
    const std::uint64_t rx = std::stoull(queues.substr(colon + 1), nullptr, 16);
    if (port_of(remote) == port) {
      total += rx;  // the daemon's socket: received, not read
    } else if (port_of(local) == port) {
      total += tx;  // the server's socket: sent, not yet taken by the peer
    }
  }
  return total;
}

}  // namespace

TEST_CASE(
    "spool: ENOSPC at a segment's preallocation on a real ext4, when_full drop_newest: the daemon and the session "
    "stay up and count the drops; after space is freed spooling resumes, and everything written is delivered") {
  std::string why;
  const auto disk = loop_mount::create(96, why);
  if (!disk) {
    skip_test(why);
  }
  rtm::kafka::embedded_cluster cluster;
  cluster.create_topic("rtm.message", partitions);
  auto upstream = acme_upstream(25000, 20000);
  temp_dir dir;  // the config and the daemon's log, off the small file system
  const std::string spool_dir = disk->path() + "/spool";
  const std::string ballast = disk->path() + "/ballast";
  daemon_process d(dir, daemon_config(cluster, upstream, spool_dir, "drop_newest"), acme_env);
  const endpoint http(d.metrics_port());
  REQUIRE_MESSAGE(upstream.wait_event("AUTH acme-id ok", 30s), d.log());

  // Kafka up: the first segment is created (8 MiB preallocated while there is room) and delivery works.
  constexpr std::uint64_t warmup = 200;
  upstream.command(R"({"cmd":"burst","event":"message:updated","count":200,"teams":8})");
  REQUIRE_MESSAGE(eventually([&] { return http.sum("rtm_bridge_events_published_total") == warmup; }, 60s), d.log());

  cluster.set_broker_down(-1);
  make_fragmented_ballast(*disk, ballast, segment_size);
  upstream.command(R"({"cmd":"stream","rate":4000,"teams":32})");

  // The first segment fills (~20k records), the second cannot be preallocated.
  REQUIRE_MESSAGE(d.log_has("spool: full (the file system has no space left for a new segment", 60s), d.log());
  REQUIRE(eventually([&] { return http.sum("rtm_bridge_spool_dropped_total") > 0; }, 20s));
  // Still up and still reading: received and dropped both grow, nothing failed.
  {
    const std::string before = http.metrics();
    std::this_thread::sleep_for(1s);
    const std::string after = http.metrics();
    CHECK(metric_sum(after, "rtm_bridge_events_received_total") >
          metric_sum(before, "rtm_bridge_events_received_total"));
    CHECK(metric_sum(after, "rtm_bridge_spool_dropped_total") > metric_sum(before, "rtm_bridge_spool_dropped_total"));
    CHECK(metric_sum(after, "rtm_bridge_events_failed_total") == 0);
  }
  CHECK(http.health_status() == 200);
  CHECK(upstream.count_events("DISCONNECT") == 0);
  CHECK(d.log().find("spool failed") == std::string::npos);

  // W: what the spool wrote, as the dump reads it from the disk.
  std::string summary;
  const std::set<std::string> written = spool_dump(spool_dir, summary);
  const std::uint64_t spooled = http.sum("rtm_bridge_spool_records");
  MESSAGE("while full: W = " << written.size() << " records; " << summary);
  CHECK(written.size() > 10000);  // a whole 8 MiB segment
  CHECK(written.size() == spooled);
  CHECK(summary.find(" 0 corrupt region(s)") != std::string::npos);

  // Space freed: within spool.full_retry (1 s) the next segment is created and spooling resumes.
  remove_ballast(ballast);
  REQUIRE_MESSAGE(d.log_has("spool: room again", 30s), d.log());
  CHECK(eventually([&] { return http.sum("rtm_bridge_spool_records") > spooled + 1000; }, 20s));
  {
    const std::uint64_t dropped = http.sum("rtm_bridge_spool_dropped_total");
    std::this_thread::sleep_for(1500ms);
    CHECK(http.sum("rtm_bridge_spool_dropped_total") == dropped);
  }
  const std::string stream = upstream.command(R"({"cmd":"stream_stop"})");
  const std::uint64_t sent = json_number(stream, "total");
  CHECK(json_number(stream, "disconnects") == 0);

  // Kafka back: the spool drains; delivered + dropped = received, and the session read everything the server sent.
  cluster.set_broker_up(-1);
  std::string text;
  const bool drained = eventually(
      [&] {
        text = http.metrics();
        return metric_sum(text, "rtm_bridge_spool_records") == 0 &&
               metric_sum(text, "rtm_bridge_events_published_total") +
                       metric_sum(text, "rtm_bridge_spool_dropped_total") ==
                   metric_sum(text, "rtm_bridge_events_received_total");
      },
      180s);
  REQUIRE_MESSAGE(drained, text, "\n", d.log());
  const std::uint64_t received = metric_sum(text, "rtm_bridge_events_received_total");
  const std::uint64_t published = metric_sum(text, "rtm_bridge_events_published_total");
  const std::uint64_t dropped = metric_sum(text, "rtm_bridge_spool_dropped_total");
  MESSAGE("received " << received << " (warm-up " << warmup << " + streamed " << sent << "), published " << published
                      << ", dropped " << dropped);
  CHECK(received == warmup + sent);
  CHECK(dropped > 0);
  CHECK(metric_sum(text, "rtm_bridge_events_failed_total") == 0);
  CHECK(metric_sum(text, "rtm_bridge_dead_letters_total") == 0);
  CHECK(metric_sum(text, "rtm_bridge_reconnects_total") == 0);
  CHECK(metric_sum(text, "rtm_bridge_spool_corrupt_records_total") == 0);
  CHECK(upstream.count_events("AUTH acme-id ok") == 0);  // authenticated once, at the start
  d.signal(SIGTERM);
  REQUIRE(d.wait(60s) == 0);

  const topic_census census = take_census(read_topic(cluster.bootstrap_servers(), "rtm.message"));
  const std::set<std::string>& in_kafka = census.ids;
  const std::uint64_t out_of_order = census.out_of_order;
  std::size_t lost = 0;
  for (const std::string& id : written) {
    lost += in_kafka.count(id) == 0 ? 1 : 0;
  }
  CHECK(lost == 0);
  CHECK(in_kafka.size() == published);
  CHECK(out_of_order == 0);
}

TEST_CASE(
    "spool: ENOSPC at a segment's preallocation on a real ext4, when_full block: upstream reading stops (the socket's "
    "unread bytes grow) and resumes once space is freed; nothing is lost or dropped") {
  std::string why;
  const auto disk = loop_mount::create(96, why);
  if (!disk) {
    skip_test(why);
  }
  rtm::kafka::embedded_cluster cluster;
  cluster.create_topic("rtm.message", partitions);
  auto upstream = acme_upstream(25000, 20000);
  temp_dir dir;
  const std::string spool_dir = disk->path() + "/spool";
  const std::string ballast = disk->path() + "/ballast";
  daemon_process d(dir, daemon_config(cluster, upstream, spool_dir, "block"), acme_env);
  const endpoint http(d.metrics_port());
  REQUIRE_MESSAGE(upstream.wait_event("AUTH acme-id ok", 30s), d.log());

  constexpr std::uint64_t warmup = 200;
  upstream.command(R"({"cmd":"burst","event":"message:updated","count":200,"teams":8})");
  REQUIRE_MESSAGE(eventually([&] { return http.sum("rtm_bridge_events_published_total") == warmup; }, 60s), d.log());

  cluster.set_broker_down(-1);
  make_fragmented_ballast(*disk, ballast, segment_size);
  upstream.command(R"({"cmd":"stream","rate":4000,"teams":32})");

  REQUIRE_MESSAGE(d.log_has("spool: full (the file system has no space left for a new segment", 60s), d.log());
  REQUIRE_MESSAGE(d.log_has("spool full (spool.when_full: block): pausing upstream reads", 20s), d.log());
  // Not reading: received stands still while the fixture's backlog for this client grows.
  std::uint64_t received_paused = 0;
  REQUIRE(eventually(
      [&] {
        received_paused = http.sum("rtm_bridge_events_received_total");
        std::this_thread::sleep_for(500ms);
        return http.sum("rtm_bridge_events_received_total") == received_paused;
      },
      20s));
  const std::uint64_t backlog_before = unread_upstream_bytes(upstream.port());
  std::this_thread::sleep_for(1s);
  const std::uint64_t backlog_after = unread_upstream_bytes(upstream.port());
  MESSAGE("paused at " << received_paused << " received; bytes the server sent that the daemon has not read "
                       << backlog_before << " -> " << backlog_after);
  CHECK(backlog_after > backlog_before);
  CHECK(http.sum("rtm_bridge_spool_dropped_total") == 0);
  CHECK(http.health_status() == 200);
  CHECK(upstream.count_events("DISCONNECT") == 0);

  std::string summary;
  const std::set<std::string> written = spool_dump(spool_dir, summary);
  MESSAGE("while full: W = " << written.size() << " records; " << summary);
  CHECK(written.size() > 10000);

  remove_ballast(ballast);
  REQUIRE_MESSAGE(d.log_has("spool: room again", 30s), d.log());
  REQUIRE_MESSAGE(d.log_has("spool has room again: resuming upstream reads", 20s), d.log());
  CHECK(eventually([&] { return http.sum("rtm_bridge_events_received_total") > received_paused + 1000; }, 20s));
  CHECK(eventually([&] { return unread_upstream_bytes(upstream.port()) < backlog_after; }, 20s));
  const std::string stream = upstream.command(R"({"cmd":"stream_stop"})");
  const std::uint64_t sent = json_number(stream, "total");
  CHECK(json_number(stream, "disconnects") == 0);

  cluster.set_broker_up(-1);
  std::string text;
  const bool drained = eventually(
      [&] {
        text = http.metrics();
        return metric_sum(text, "rtm_bridge_spool_records") == 0 &&
               metric_sum(text, "rtm_bridge_events_published_total") == warmup + sent;
      },
      180s);
  REQUIRE_MESSAGE(drained, text, "\n", d.log());
  CHECK(metric_sum(text, "rtm_bridge_events_received_total") == warmup + sent);
  CHECK(metric_sum(text, "rtm_bridge_spool_dropped_total") == 0);
  CHECK(metric_sum(text, "rtm_bridge_events_failed_total") == 0);
  CHECK(metric_sum(text, "rtm_bridge_reconnects_total") == 0);
  CHECK(upstream.count_events("AUTH acme-id ok") == 0);
  d.signal(SIGTERM);
  REQUIRE(d.wait(60s) == 0);

  const auto records = read_topic(cluster.bootstrap_servers(), "rtm.message");
  const topic_census census = take_census(records);
  const std::set<std::string>& in_kafka = census.ids;
  const std::uint64_t out_of_order = census.out_of_order;
  std::size_t lost = 0;
  for (const std::string& id : written) {
    lost += in_kafka.count(id) == 0 ? 1 : 0;
  }
  CHECK(lost == 0);
  CHECK(in_kafka.size() == warmup + sent);
  CHECK(out_of_order == 0);
  // Nothing dropped: per team the stream's seq runs 0, 1, 2, ... without a gap.
  std::map<std::string, long> next;
  std::size_t gaps = 0;
  std::set<std::string> seen;
  for (const auto& r : records) {
    if (r.payload.find("stream event") == std::string::npos || !seen.insert(json_string(r.payload, "id")).second) {
      continue;
    }
    const long seq = std::stol(r.payload.substr(r.payload.find("\"seq\":") + 6));
    long& expected = next[r.key.value_or("")];
    gaps += seq != expected ? 1 : 0;
    expected = seq + 1;
  }
  CHECK(gaps == 0);
}
