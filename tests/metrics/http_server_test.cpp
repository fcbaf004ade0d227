// The operator's HTTP endpoint against misbehaving local clients: raw blocking sockets on the test's thread, the
// server on its own io_context thread (as in the daemon, everything of the server runs there).
#include "metrics/http_server.hpp"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"
#include "support/stderr_capture.hpp"

using namespace std::chrono_literals;

namespace {

// The server on 127.0.0.1, an ephemeral port, run by a thread of its own until the object goes.
class running_server {
 public:
  running_server() : server_(io_, "127.0.0.1:0", registry_, nullptr) {
    server_.start();
    thread_ = std::thread([this] { io_.run(); });
  }
  running_server(const running_server&) = delete;
  running_server& operator=(const running_server&) = delete;
  running_server(running_server&&) = delete;
  running_server& operator=(running_server&&) = delete;
  ~running_server() {
    io_.stop();
    thread_.join();
  }
  [[nodiscard]] unsigned short port() const noexcept { return server_.port(); }

 private:
  boost::asio::io_context io_{1};
  rtm::metrics::registry registry_;
  rtm::metrics::http_server server_;
  std::thread thread_;
};

// A connected client socket (-1 when socket() or connect() failed; errno tells why).
int connect_to(unsigned short port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -1;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int saved = errno;
    ::close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

void send_text(int fd, const std::string& text) {
  REQUIRE(::send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size()));
}

// Sends GET `path` on a fresh connection and returns everything the server sent before closing (empty: refused).
std::string fetch(unsigned short port, const std::string& path) {
  const int fd = connect_to(port);
  REQUIRE(fd >= 0);
  const auto limit = rtm::test::patience(5s);
  timeval tv{static_cast<time_t>(limit.count() / 1000), static_cast<suseconds_t>(limit.count() % 1000 * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  // A refused connection may already be closed by the server: the send fails, the read below finds nothing.
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[4096];
  for (ssize_t n = ::recv(fd, buf, sizeof buf, 0); n > 0; n = ::recv(fd, buf, sizeof buf, 0)) {
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

void close_all(std::vector<int>& fds) {
  for (const int fd : fds) {
    ::close(fd);
  }
  fds.clear();
}

}  // namespace

TEST_CASE("metrics endpoint: /healthz is answered while one client holds every session") {
  running_server server;
  std::vector<int> hogs;
  SUBCASE("connections that send nothing") {
    for (int i = 0; i < 64; ++i) {
      hogs.push_back(connect_to(server.port()));
      REQUIRE(hogs.back() >= 0);
    }
  }
  SUBCASE("connections that send half a request and stall") {
    for (int i = 0; i < 64; ++i) {
      hogs.push_back(connect_to(server.port()));
      REQUIRE(hogs.back() >= 0);
      send_text(hogs.back(), "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    }
  }
  // Accepted in order, after the 64: the newest connection is served, an old hog makes room.
  const std::string answer = fetch(server.port(), "/healthz");
  CHECK_MESSAGE(answer.rfind("HTTP/1.1 200 OK\r\n", 0) == 0, "answer: " << answer);
  CHECK(answer.find("\r\n\r\nok\n") != std::string::npos);
  close_all(hogs);
}

TEST_CASE("metrics endpoint: accept failing for want of descriptors backs off instead of spinning, then recovers") {
  rtm::test::stderr_capture capture;
  REQUIRE(capture.ok());
  running_server server;
  // Allocated before the limit drops: connecting it needs no new descriptor, so it can queue a connection the server
  // has no descriptor left to accept.
  const int spare = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(spare >= 0);
  rlimit original{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &original) == 0);
  std::vector<int> clients;
  {
    // Leave a few descriptors free, then take them (the server takes one per connection it accepts too).
    const int probe = ::dup(0);
    REQUIRE(probe >= 0);
    ::close(probe);
    rlimit low = original;
    low.rlim_cur = static_cast<rlim_t>(probe) + 8;
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
    for (int i = 0; i < 64; ++i) {
      const int fd = connect_to(server.port());
      if (fd < 0) {
        break;
      }
      clients.push_back(fd);
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(server.port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(spare, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    // The server now fails accept(2) with EMFILE for as long as the limit stays: a spinning accept loop logs (and
    // burns a core) thousands of times in this window, a backing-off one a handful of times at most.
    std::this_thread::sleep_for(500ms);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &original) == 0);
  }
  close_all(clients);
  ::close(spare);
  const std::string answer = fetch(server.port(), "/healthz");  // served once accept works again
  capture.restore();
  const std::string log = capture.text();
  std::size_t failures = 0;
  for (auto at = log.find("accept failed"); at != std::string::npos; at = log.find("accept failed", at + 1)) {
    ++failures;
  }
  CHECK_MESSAGE(failures == 1, "accept failures logged: " << failures);
  CHECK(log.find("accepting again after ") != std::string::npos);
  CHECK_MESSAGE(answer.rfind("HTTP/1.1 200 OK\r\n", 0) == 0, "answer: " << answer);
}
