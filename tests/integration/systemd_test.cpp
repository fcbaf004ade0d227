// The systemd unit and the notify protocol: the unit verifies and is hardened (exposure <= 1.5), and the daemon
// speaks READY=1, STATUS=, WATCHDOG=1 and STOPPING=1 to a real NOTIFY_SOCKET datagram listener.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "support/process.hpp"

using namespace std::chrono_literals;
using rtm::test::child_process;

namespace {

// The unit with ExecStart pointing at the binary under test, so `verify` checks real paths.
std::string unit_under_test(const rtm::test::temp_dir& dir) {
  std::string unit = rtm::test::read_file(rtm::test::env_path("RTM_SOURCE_ROOT") + "/systemd/rtm-bridge.service");
  const std::string installed = "/usr/bin/rtm-bridge";
  for (auto at = unit.find(installed); at != std::string::npos; at = unit.find(installed, at)) {
    unit.replace(at, installed.size(), rtm::test::env_path("RTM_BRIDGE_BIN"));
  }
  return dir.write("rtm-bridge.service", unit, 0644);
}

std::string run_capture(std::vector<std::string> argv, int& code) {
  rtm::test::temp_dir dir;
  child_process::options opts;
  opts.argv = std::move(argv);
  opts.stdout_file = dir.file("out");
  opts.stderr_file = dir.file("out.err");
  child_process p(std::move(opts));
  const auto rc = p.wait(60s);
  REQUIRE(rc.has_value());
  code = *rc;
  return rtm::test::read_file(dir.file("out")) + rtm::test::read_file(dir.file("out.err"));
}

class notify_listener {
 public:
  explicit notify_listener(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof(addr.sun_path));
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    timeval tv{0, 200000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  notify_listener(const notify_listener&) = delete;
  notify_listener& operator=(const notify_listener&) = delete;
  notify_listener(notify_listener&&) = delete;
  notify_listener& operator=(notify_listener&&) = delete;
  ~notify_listener() { ::close(fd_); }

  // Collects datagrams until one contains `needle` or the timeout passes.
  bool wait_for(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + rtm::test::patience(timeout);
    while (std::chrono::steady_clock::now() < deadline) {
      if (seen(needle)) {
        return true;
      }
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        messages_.emplace_back(buf, static_cast<std::size_t>(n));
      }
    }
    return seen(needle);
  }
  bool seen(const std::string& needle) const {
    for (const auto& m : messages_) {
      if (m.find(needle) != std::string::npos) {
        return true;
      }
    }
    return false;
  }
  std::string all() const {
    std::string out;
    for (const auto& m : messages_) {
      out += m + " | ";
    }
    return out;
  }

 private:
  std::string path_;
  int fd_ = -1;
  std::vector<std::string> messages_;
};

// The daemon with the embedded cluster, one unreachable Acme connection and no metrics endpoint, notifying the
// socket at dir/notify.sock; `prefix` runs it through another command (prlimit). Its log is dir/daemon.log.
child_process notifying_daemon(const rtm::test::temp_dir& dir, const std::string& shutdown_timeout,
                               std::map<std::string, std::string> env, std::vector<std::string> prefix = {}) {
  const auto config = dir.write(
      "rtm-bridge.yaml", "kafka:\n  brokers: embedded\n  shutdown_timeout: " + shutdown_timeout + "\n" + R"(connections:
  - name: acme-unreachable
    kind: acme
    url: "ws://127.0.0.1:9/"
    identifier: {value: "id"}
    key: {value: "key"}
    reconnect: {initial_delay: 1s, max_delay: 2s}
metrics:
  listen: ""
)");
  child_process::options opts;
  opts.argv = std::move(prefix);
  for (const std::string& arg : {rtm::test::env_path("RTM_BRIDGE_BIN"), std::string("--config"), config}) {
    opts.argv.push_back(arg);
  }
  opts.env = std::move(env);
  opts.env["NOTIFY_SOCKET"] = dir.file("notify.sock");
  opts.unset_env = {"WATCHDOG_PID"};
  opts.stdout_file = dir.file("daemon.out");
  opts.stderr_file = dir.file("daemon.log");
  return child_process(std::move(opts));
}

}  // namespace

TEST_CASE("the systemd unit verifies and its exposure is 1.5 or less") {
  rtm::test::temp_dir dir;
  const auto unit = unit_under_test(dir);
  int code = -1;
  const std::string verify = run_capture({"systemd-analyze", "verify", unit}, code);
  CHECK_MESSAGE(code == 0, verify);
  CHECK_MESSAGE(verify.find("rtm-bridge.service") == std::string::npos, verify);  // no complaint names the unit
  const std::string security = run_capture({"systemd-analyze", "security", "--offline=yes", unit}, code);
  const auto at = security.find("Overall exposure level for ");
  REQUIRE_MESSAGE(at != std::string::npos, security);
  const auto colon = security.find(": ", at);
  REQUIRE(colon != std::string::npos);
  CHECK(std::stod(security.substr(colon + 2)) <= 1.5);
}

TEST_CASE("meson install: the installed unit is the checked-in one with this prefix's binary and config paths") {
  const std::string source =
      rtm::test::read_file(rtm::test::env_path("RTM_SOURCE_ROOT") + "/systemd/rtm-bridge.service");
  const std::string installed = rtm::test::read_file(rtm::test::env_path("RTM_INSTALLED_UNIT"));
  const std::string bin = rtm::test::env_path("RTM_INSTALL_BIN");
  const std::string confdir = rtm::test::env_path("RTM_INSTALL_CONFDIR");
  CHECK(installed.find("ExecStart=" + bin + " --config " + confdir + "/rtm-bridge.yaml\n") != std::string::npos);
  CHECK(installed.find("ExecStartPre=" + bin + " --check-config --config " + confdir + "/rtm-bridge.yaml\n") !=
        std::string::npos);
  // Nothing else differs: same number of lines, and the same text once the paths are put back.
  std::string restored = installed;
  for (const auto& [from, to] :
       {std::pair{bin, std::string("/usr/bin/rtm-bridge")}, std::pair{confdir, std::string("/etc/rtm-bridge")}}) {
    for (auto at = restored.find(from); at != std::string::npos; at = restored.find(from, at + to.size())) {
      restored.replace(at, from.size(), to);
    }
  }
  CHECK(restored == source);
}

TEST_CASE("the daemon sends READY=1, STATUS=, WATCHDOG=1 and STOPPING=1 to NOTIFY_SOCKET") {
  rtm::test::temp_dir dir;
  notify_listener listener(dir.file("notify.sock"));
  child_process daemon = notifying_daemon(dir, "5s", {{"WATCHDOG_USEC", "400000"}});
  CHECK_MESSAGE(listener.wait_for("READY=1", 20s), listener.all() << rtm::test::read_file(dir.file("daemon.log")));
  CHECK_MESSAGE(listener.wait_for("STATUS=", 10s), listener.all());
  CHECK_MESSAGE(listener.wait_for("WATCHDOG=1", 5s), listener.all());
  daemon.signal(SIGTERM);
  CHECK_MESSAGE(listener.wait_for("STOPPING=1", 10s), listener.all());
  const auto code = daemon.wait(20s);
  REQUIRE(code.has_value());
  CHECK(*code == 0);
}

TEST_CASE("a stop tells systemd with EXTEND_TIMEOUT_USEC= how long kafka.shutdown_timeout lets the drain take") {
  rtm::test::temp_dir dir;
  notify_listener listener(dir.file("notify.sock"));
  // A drain allowed far beyond the unit's TimeoutStopSec=45s, started as systemd starts it without LimitNOFILE=
  // raised: a low soft limit under a higher hard one.
  child_process daemon = notifying_daemon(dir, "90s", {}, {"prlimit", "--nofile=512:4096", "--"});
  REQUIRE_MESSAGE(listener.wait_for("READY=1", 20s), listener.all() << rtm::test::read_file(dir.file("daemon.log")));
  // prlimit exec()s the daemon: the same process, whose soft limit is now the hard one.
  const std::string limits = rtm::test::read_file("/proc/" + std::to_string(daemon.pid()) + "/limits");
  const auto row = limits.find("Max open files");
  REQUIRE(row != std::string::npos);
  const std::string line = limits.substr(row, limits.find('\n', row) - row);
  CHECK_MESSAGE(line.find(" 4096 ") != std::string::npos, line);
  CHECK_MESSAGE(line.find(" 512 ") == std::string::npos, line);
  daemon.signal(SIGTERM);
  REQUIRE_MESSAGE(listener.wait_for("EXTEND_TIMEOUT_USEC=", 20s), listener.all());
  const std::string all = listener.all();
  const auto at = all.find("EXTEND_TIMEOUT_USEC=");
  const unsigned long long usec = std::stoull(all.substr(at + 20));
  CHECK(usec >= 90000000ULL);                // the whole configured drain
  CHECK(usec <= 90000000ULL + 60000000ULL);  // and not unbounded: a stuck stop is still killed
  CHECK(listener.seen("STOPPING=1"));
  const auto code = daemon.wait(20s);
  REQUIRE(code.has_value());
  CHECK(*code == 0);
}
