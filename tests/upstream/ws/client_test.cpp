// The WebSocket transport (src/upstream/ws) against a real npm `ws` server (tests/fixtures/ws_server.js): queued
// sends, graceful and forced closes, the message size limit, open failures and timeouts, pause/resume, and
// destroying a client at any point.
#include "upstream/ws/client.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "upstream/harness.hpp"

using namespace std::chrono_literals;
namespace ws = rtm::upstream::ws;
using rtm::test::eventually;
using rtm::test::io_thread;
using rtm::test::node_fixture;

namespace {

struct close_record {
  int code = 0;
  std::string reason;
  std::string error;
};

// Records the handler calls (made on the io thread) for the test thread.
class recorder final : public ws::handler {
 public:
  void on_open() override {
    const std::lock_guard<std::mutex> lock(mutex_);
    ++opens_;
  }
  void on_message(std::string_view payload, bool binary) override {
    const std::lock_guard<std::mutex> lock(mutex_);
    messages_.emplace_back(binary ? "binary:" : "");
    messages_.back() += payload;
    if (pause_on_first_ && messages_.size() == 1 && client != nullptr) {
      client->pause_reading();
    }
  }
  void on_close(int code, std::string_view reason, std::string_view error_text) override {
    const std::lock_guard<std::mutex> lock(mutex_);
    closes_.push_back({code, std::string(reason), std::string(error_text)});
  }
  void on_message_refused(std::size_t limit) override {
    const std::lock_guard<std::mutex> lock(mutex_);
    refused_.push_back(limit);
    refused_before_close_ = closes_.empty();
  }

  int opens() {
    const std::lock_guard<std::mutex> lock(mutex_);
    return opens_;
  }
  std::vector<std::string> messages() {
    const std::lock_guard<std::mutex> lock(mutex_);
    return messages_;
  }
  std::vector<close_record> closes() {
    const std::lock_guard<std::mutex> lock(mutex_);
    return closes_;
  }
  std::vector<std::size_t> refused() {
    const std::lock_guard<std::mutex> lock(mutex_);
    return refused_;
  }
  bool refused_before_close() {
    const std::lock_guard<std::mutex> lock(mutex_);
    return refused_before_close_;
  }
  void pause_on_first_message() { pause_on_first_ = true; }

  ws::client* client = nullptr;  // set and used on the io thread only

 private:
  std::mutex mutex_;
  int opens_ = 0;
  std::vector<std::string> messages_;
  std::vector<close_record> closes_;
  std::vector<std::size_t> refused_;
  bool refused_before_close_ = false;
  bool pause_on_first_ = false;
};

// A client and its recorder, owned on the io thread.
class harness {
 public:
  explicit harness(ws::options opts) : events_(std::make_shared<recorder>()) {
    io_.call([this, opts = std::move(opts)]() mutable {
      client_ = std::make_unique<ws::client>(io_.io, std::move(opts), events_);
      events_->client = client_.get();
    });
  }
  harness(const harness&) = delete;
  harness& operator=(const harness&) = delete;
  harness(harness&&) = delete;
  harness& operator=(harness&&) = delete;
  ~harness() { destroy(); }

  template <typename Fn>
  void with_client(Fn fn) {
    io_.call([this, fn]() mutable {
      if (client_) {
        fn(*client_);
      }
    });
  }
  void destroy() {
    io_.call([this] {
      events_->client = nullptr;
      client_.reset();
    });
  }
  bool is_open() {
    return io_.call([this] { return client_ && client_->is_open(); });
  }

  recorder& events() { return *events_; }

 private:
  io_thread io_;
  std::shared_ptr<recorder> events_;
  std::unique_ptr<ws::client> client_;
};

ws::options options_for(const std::string& url) {
  ws::options opts;
  opts.url = url;
  opts.open_timeout = 3s;
  opts.close_grace = 500ms;
  return opts;
}

std::string url(const node_fixture& server, const std::string& path) {
  return "ws://127.0.0.1:" + std::to_string(server.port) + path;
}

}  // namespace

TEST_CASE("ws client: open, queued sends in order, graceful close with exactly one on_close") {
  node_fixture server("ws_server.js", {});
  harness h(options_for(url(server, "/echo")));
  h.with_client([](ws::client& c) { c.open(); });
  REQUIRE(eventually([&h] { return h.events().opens() == 1; }, 5s));
  REQUIRE(server.wait_line("CONNECTED /echo", 5s));
  // Back to back, without waiting: websocketpp queues them and writes one frame at a time.
  h.with_client([](ws::client& c) {
    for (int i = 0; i < 50; ++i) {
      c.send_text("m" + std::to_string(i));
    }
  });
  REQUIRE(eventually([&h] { return h.events().messages().size() == 50; }, 5s));
  const auto messages = h.events().messages();
  for (int i = 0; i < 50; ++i) {
    CHECK(messages[static_cast<std::size_t>(i)] == "m" + std::to_string(i));
  }
  h.with_client([](ws::client& c) { c.close(ws::close_code::normal, "bye"); });
  REQUIRE(eventually([&h] { return h.events().closes().size() == 1; }, 5s));
  const auto close = h.events().closes().front();
  CHECK(close.code == ws::close_code::normal);
  CHECK(close.error.empty());
  CHECK(server.wait_line("CLOSED 1000 bye", 5s));
  CHECK(server.wait_line("SOCKET_CLOSED", 5s));
  CHECK_FALSE(h.is_open());
  // Nothing more after the close, whatever is called.
  h.with_client([](ws::client& c) {
    c.send_text("late");
    c.close(ws::close_code::normal, "");
    c.abort();
  });
  CHECK(server.count("MESSAGE late", 300ms) == 0);
  CHECK(h.events().closes().size() == 1);
}

TEST_CASE("ws client: a message above max_message_size is refused unread: 1009, on_message_refused, on_close") {
  node_fixture server("ws_server.js", {});
  SUBCASE("refused, reported at once") {
    auto opts = options_for(url(server, "/big?n=5000"));
    opts.max_message_size = 1024;
    harness h(opts);
    const auto started = std::chrono::steady_clock::now();
    h.with_client([](ws::client& c) { c.open(); });
    REQUIRE(eventually([&h] { return h.events().closes().size() == 1; }, 5s));
    // 1009 is a terminal close code for websocketpp: it drops the TCP connection once its close frame is written,
    // without waiting for the close handshake (close_grace).
    CHECK(std::chrono::steady_clock::now() - started < 1s);
    const auto close = h.events().closes().front();
    CHECK(close.code == ws::close_code::message_too_big);
    CHECK_MESSAGE(close.error.find("larger than the limit of 1024 bytes") != std::string::npos, close.error);
    CHECK(h.events().refused() == std::vector<std::size_t>{1024});
    CHECK(h.events().refused_before_close());
    CHECK(h.events().messages().empty());
    CHECK(server.wait_line("CLOSED 1009", 5s));
  }
  SUBCASE("a peer's own 1009 is no refusal of ours") {
    harness h(options_for(url(server, "/echo")));
    h.with_client([](ws::client& c) { c.open(); });
    REQUIRE(eventually([&h] { return h.events().opens() == 1; }, 5s));
    CHECK(server.command(R"({"cmd":"close","code":1009})", "OK close ") == "1");
    REQUIRE(eventually([&h] { return h.events().closes().size() == 1; }, 5s));
    CHECK(h.events().closes().front().code == ws::close_code::message_too_big);
    CHECK(h.events().refused().empty());
  }
}

TEST_CASE("ws client: a peer that trickles byte by byte") {
  node_fixture server("ws_server.js", {});
  const auto port = server.wait_line("TRICKLE ", 5s);
  REQUIRE(port);
  const std::string base = "ws://127.0.0.1:" + *port;
  SUBCASE("a frame, one byte every 10 ms: delivered whole and correct") {
    harness h(options_for(base + "/frame"));
    h.with_client([](ws::client& c) { c.open(); });
    REQUIRE(eventually([&h] { return h.events().opens() == 1; }, 5s));
    REQUIRE(server.wait_line("TRICKLED /frame", 5s));
    REQUIRE(eventually([&h] { return h.events().messages().size() == 1; }, 2s));
    CHECK(h.events().messages().front() == "trickled \xe2\x9c\x93 frame");
    CHECK(h.is_open());
  }
  SUBCASE("the HTTP upgrade response, one byte every 5 ms: the open completes, then the frame") {
    harness h(options_for(base + "/upgrade"));
    h.with_client([](ws::client& c) { c.open(); });
    REQUIRE(server.wait_line("TRICKLED /upgrade", 5s));
    REQUIRE(eventually([&h] { return h.events().messages().size() == 1; }, 2s));
    CHECK(h.events().opens() == 1);
    CHECK(h.events().messages().front() == "trickled \xe2\x9c\x93 frame");
  }
  SUBCASE("an upgrade response that never ends: the open timeout still bounds it") {
    auto opts = options_for(base + "/forever");
    opts.open_timeout = 700ms;
    harness h(opts);
    const auto started = std::chrono::steady_clock::now();
    h.with_client([](ws::client& c) { c.open(); });
    REQUIRE(eventually([&h] { return h.events().closes().size() == 1; }, 5s));
    const auto took = std::chrono::steady_clock::now() - started;
    CHECK(took >= 700ms);
    CHECK(took < 2s);
    CHECK(h.events().opens() == 0);
    CHECK_MESSAGE(h.events().closes().front().error.find("timed out") != std::string::npos,
                  h.events().closes().front().error);
  }
}

TEST_CASE("ws client: text frames are checked for UTF-8 across fragments; invalid UTF-8 closes with 1007") {
  node_fixture server("ws_server.js", {});
  harness h(options_for(url(server, "/utf8")));
  h.with_client([](ws::client& c) { c.open(); });
  REQUIRE(eventually([&h] { return h.events().closes().size() == 1; }, 5s));
  const auto messages = h.events().messages();
  REQUIRE(messages.size() == 2);
  // A code point split between two fragments, and multi-byte sequences after a long ASCII run, both pass.
  CHECK(messages[0] == "abcdefghijklmnop\xC3\xA9\xE2\x82\xAC");
  CHECK(messages[1] == std::string(1000, 'a') + "\xC3\xBC\xE2\x82\xAC\xF0\x9F\x98\x80" + std::string(37, 'b'));
  // The invalid one is not delivered; the connection fails with "invalid frame payload data".
  CHECK(h.events().closes().front().code == 1007);
  CHECK(server.wait_line("CLOSED 1007", 5s));
}

TEST_CASE("ws client: a peer that never answers the close handshake is dropped after the grace") {
  node_fixture server("ws_server.js", {});
  harness h(options_for(url(server, "/deaf")));
  h.with_client([](ws::client& c) { c.open(); });
  REQUIRE(eventually([&h] { return h.events().opens() == 1; }, 5s));
  const auto closing_at = std::chrono::steady_clock::now();
  h.with_client([](ws::client& c) { c.close(ws::close_code::normal, ""); });
  REQUIRE(server.wait_line("SOCKET_CLOSED", 5s));
  CHECK(std::chrono::steady_clock::now() - closing_at < 2s);
  REQUIRE(eventually([&h] { return h.events().closes().size() == 1; }, 5s));
  CHECK(h.events().closes().front().code == ws::close_code::normal);
  CHECK(h.events().closes().front().error.find("close handshake") != std::string::npos);
}

TEST_CASE("ws client: abort drops the TCP connection at once") {
  node_fixture server("ws_server.js", {});
  harness h(options_for(url(server, "/echo")));
  h.with_client([](ws::client& c) { c.open(); });
  REQUIRE(eventually([&h] { return h.events().opens() == 1; }, 5s));
  h.with_client([](ws::client& c) { c.abort(); });
  REQUIRE(server.wait_line("SOCKET_CLOSED", 2s));
  REQUIRE(eventually([&h] { return h.events().closes().size() == 1; }, 5s));
  CHECK(h.events().closes().front().code == ws::close_code::abnormal);
  CHECK(server.count("CLOSED 1000", 200ms) == 0);  // no close handshake
}

TEST_CASE("ws client: failures to open are reported once, with the reason") {
  node_fixture server("ws_server.js", {});
  const auto blackhole = server.wait_line("BLACKHOLE ", 5s);
  REQUIRE(blackhole);

  SUBCASE("connection refused") {
    // Nothing listens on port 1 of the loopback (a privileged port no test service uses).
    harness h(options_for("ws://127.0.0.1:1/"));
    h.with_client([](ws::client& c) { c.open(); });
    REQUIRE(eventually([&h] { return h.events().closes().size() == 1; }, 5s));
    CHECK(h.events().closes().front().code == ws::close_code::abnormal);
    CHECK_FALSE(h.events().closes().front().error.empty());
    CHECK(h.events().opens() == 0);
  }
  SUBCASE("HTTP status instead of an upgrade") {
    harness h(options_for(url(server, "/reject")));
    h.with_client([](ws::client& c) { c.open(); });
    REQUIRE(eventually([&h] { return h.events().closes().size() == 1; }, 5s));
    CHECK(h.events().closes().front().error.find("HTTP 403") != std::string::npos);
  }
  SUBCASE("a single-use URL: the error names the origin, never the path that is the credential") {
    auto opts = options_for(url(server, "/reject") + "?ticket=5ecret-t1cket-0042");
    opts.url_path_is_secret = true;
    harness h(opts);
    h.with_client([](ws::client& c) { c.open(); });
    REQUIRE(eventually([&h] { return h.events().closes().size() == 1; }, 5s));
    const std::string error = h.events().closes().front().error;
    CHECK_MESSAGE(error.find("HTTP 403") != std::string::npos, error);
    CHECK_MESSAGE(error.find("ws://127.0.0.1:" + std::to_string(server.port) + "/") != std::string::npos, error);
    CHECK_MESSAGE(error.find("5ecret-t1cket") == std::string::npos, error);
    CHECK_MESSAGE(error.find("/reject") == std::string::npos, error);
  }
  SUBCASE("a server that accepts TCP and never answers: open timeout") {
    auto opts = options_for("ws://127.0.0.1:" + *blackhole + "/");
    opts.open_timeout = 500ms;
    harness h(opts);
    const auto started = std::chrono::steady_clock::now();
    h.with_client([](ws::client& c) { c.open(); });
    REQUIRE(eventually([&h] { return h.events().closes().size() == 1; }, 5s));
    CHECK(std::chrono::steady_clock::now() - started < 2s);
    CHECK_MESSAGE(h.events().closes().front().error.find("timed out") != std::string::npos,
                  h.events().closes().front().error);
  }
  SUBCASE("an invalid URL") {
    harness h(options_for("ws://"));
    h.with_client([](ws::client& c) { c.open(); });
    REQUIRE(eventually([&h] { return h.events().closes().size() == 1; }, 5s));
    CHECK_FALSE(h.events().closes().front().error.empty());
  }
  SUBCASE("an unreadable CA file") {
    auto opts = options_for("wss://127.0.0.1:" + std::to_string(server.port) + "/");
    opts.tls.ca_file = "/nonexistent/ca.pem";
    harness h(opts);
    h.with_client([](ws::client& c) { c.open(); });
    REQUIRE(eventually([&h] { return h.events().closes().size() == 1; }, 5s));
    CHECK(h.events().closes().front().error.find("tls.ca_file") != std::string::npos);
  }
}

TEST_CASE("ws client: pause_reading holds later frames until resume_reading") {
  node_fixture server("ws_server.js", {});
  harness h(options_for(url(server, "/echo")));
  h.events().pause_on_first_message();
  h.with_client([](ws::client& c) { c.open(); });
  REQUIRE(eventually([&h] { return h.events().opens() == 1; }, 5s));
  CHECK(server.command(R"({"cmd":"send","text":"first"})", "OK send ") == "1");
  REQUIRE(eventually([&h] { return h.events().messages().size() == 1; }, 5s));
  CHECK(server.command(R"({"cmd":"send","text":"second"})", "OK send ") == "1");
  CHECK(server.command(R"({"cmd":"send","text":"third"})", "OK send ") == "1");
  std::this_thread::sleep_for(500ms);
  CHECK(h.events().messages().size() == 1);
  h.with_client([](ws::client& c) { c.resume_reading(); });
  REQUIRE(eventually([&h] { return h.events().messages().size() == 3; }, 5s));
  CHECK(h.events().messages() == std::vector<std::string>{"first", "second", "third"});
  // Resuming twice must not start a second read.
  h.with_client([](ws::client& c) {
    c.resume_reading();
    c.resume_reading();
  });
  CHECK(server.command(R"({"cmd":"send","text":"fourth"})", "OK send ") == "1");
  REQUIRE(eventually([&h] { return h.events().messages().size() == 4; }, 5s));
}

TEST_CASE("ws client: destroying the client while opening or open calls nothing and drops the connection") {
  node_fixture server("ws_server.js", {});
  SUBCASE("while open") {
    harness h(options_for(url(server, "/echo")));
    h.with_client([](ws::client& c) { c.open(); });
    REQUIRE(eventually([&h] { return h.events().opens() == 1; }, 5s));
    h.destroy();
    CHECK(server.wait_line("SOCKET_CLOSED", 2s));
    CHECK(h.events().closes().empty());
  }
  SUBCASE("while connecting, repeatedly") {
    for (int i = 0; i < 20; ++i) {
      harness h(options_for(url(server, "/echo")));
      h.with_client([](ws::client& c) { c.open(); });
      h.destroy();
      CHECK(h.events().closes().empty());
    }
    // Whatever reached the server is gone again: no connection outlives its client.
    std::this_thread::sleep_for(500ms);
    CHECK(server.count("CONNECTED ") == server.count("SOCKET_CLOSED", 1000ms));
  }
}
