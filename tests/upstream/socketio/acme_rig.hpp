#pragma once

// The Acme session's test rig, shared by the session tests: the Acme test upstream (a real socket.io server,
// tests/fixtures/acme_server.js), a connection config for it, and one session on an io_context in its own thread, as in
// the daemon. The test thread talks to the session only through posted calls and the recording sink's mutex.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "metrics/registry.hpp"
#include "support/process.hpp"
#include "upstream/harness.hpp"
#include "upstream/recording_sink.hpp"
#include "upstream/socketio/acme_events.hpp"
#include "upstream/socketio/session.hpp"
#include "util/json_writer.hpp"

namespace rtm::test::acme {

using namespace std::chrono_literals;
namespace sio = rtm::upstream::socketio;
namespace config = rtm::config;

// The Acme test upstream (acme_server.js, a real socket.io server).
class acme_server : public rtm::test::node_fixture {
 public:
  explicit acme_server(const std::vector<std::string>& extra) : node_fixture("acme_server.js", extra) {
    if (std::find(extra.begin(), extra.end(), "--api") != extra.end()) {
      const auto api = wait_line("API_LISTENING ", 10s);
      REQUIRE(api);
      api_port = std::stoi(*api);
    }
  }

  // A number from the STATS answer, e.g. stat("/max_live/id-1").
  std::int64_t stat(const std::string& pointer) {
    const std::string json = command(R"({"cmd":"stats"})", "STATS ");
    simdjson::dom::parser parser;
    std::int64_t value = 0;
    if (parser.parse(json).at_pointer(pointer).get(value) != simdjson::SUCCESS) {
      return 0;
    }
    return value;
  }

  std::string emit(const std::string& event, const std::string& raw_payload) {
    std::string cmd = R"({"cmd":"emit","event":)";
    rtm::json::append_string(cmd, event);
    cmd += R"(,"payload":)";
    rtm::json::append_string(cmd, raw_payload);
    cmd += '}';
    return command(cmd, "OK emit ");
  }

  std::string raw(const std::string& frame) {
    std::string cmd = R"({"cmd":"raw","frame":)";
    rtm::json::append_string(cmd, frame);
    cmd += '}';
    return command(cmd, "OK raw ");
  }

  int api_port = 0;
};

inline config::connection_config acme_config(int port) {
  config::connection_config cfg;
  cfg.name = "acme-test";
  cfg.kind = config::connection_kind::acme;
  cfg.url = "ws://127.0.0.1:" + std::to_string(port) + "/";
  cfg.protocol = 4;
  cfg.tier = config::acme_tier::user;
  cfg.identifier.value = "id-1";
  cfg.key.value = "key-1";
  cfg.reconnect = rtm::test::reconnect(50ms, 500ms, 0.2);
  cfg.ping_timeout = 30s;
  return cfg;
}

inline rtm::upstream::session_tuning test_tuning() {
  rtm::upstream::session_tuning t;
  t.phase_timeout = 3s;
  t.close_grace = 500ms;
  t.request_timeout = 3s;
  return t;
}

// One session under test, with its sink and metrics.
class rig {
 public:
  explicit rig(const config::connection_config& cfg, rtm::upstream::session_tuning tuning = test_tuning()) {
    session_ =
        runner_.call([this, &cfg, tuning] { return sio::session::create(runner_.io, cfg, sink, metrics_, tuning); });
  }
  rig(const rig&) = delete;
  rig& operator=(const rig&) = delete;
  rig(rig&&) = delete;
  rig& operator=(rig&&) = delete;
  ~rig() {
    stop();
    // The session goes on the io thread; handlers of its cancelled timers may still hold it for a moment.
    const std::weak_ptr<sio::session> gone = session_;
    runner_.call([this] { session_.reset(); });
    CHECK(eventually([&gone] { return gone.expired(); }, 5s));
  }

  void start() {
    runner_.call([this] { session_->start(); });
  }

  // Stops and waits for `done`; true when it ran. `again`: stop a stopped session once more.
  bool stop(bool again = false) {
    if (stopped_ && !again) {
      return true;
    }
    stopped_ = true;
    auto done = std::make_shared<std::promise<void>>();
    auto future = done->get_future();
    runner_.call([this, done] { session_->stop([done] { done->set_value(); }); });
    return future.wait_for(10s) == std::future_status::ready;
  }

  bool live() {
    return runner_.call([this] { return session_->live(); });
  }

  // What the daemon does under Kafka backpressure.
  void pause() {
    runner_.call([this] { session_->pause_reading(); });
  }
  void resume() {
    runner_.call([this] { session_->resume_reading(); });
  }

  bool wait_live(std::chrono::milliseconds timeout = 10s) {
    return eventually([this] { return live(); }, timeout);
  }

  std::uint64_t reconnects(const std::string& reason) {
    const std::string text = runner_.call([this] { return metrics_.render(); });
    const std::string key = "rtm_bridge_reconnects_total{connection=\"acme-test\",reason=\"" + reason + "\"} ";
    const auto at = text.find(key);
    return at == std::string::npos ? 0 : std::stoull(text.substr(at + key.size()));
  }

  std::uint64_t failed(const std::string& reason) {
    const std::string text = runner_.call([this] { return metrics_.render(); });
    const std::string key = "rtm_bridge_events_failed_total{connection=\"acme-test\",reason=\"" + reason + "\"} ";
    const auto at = text.find(key);
    return at == std::string::npos ? 0 : std::stoull(text.substr(at + key.size()));
  }

  std::uint64_t received(const std::string& event) {
    return runner_.call([this, event] { return metrics_.received("acme-test", event); });
  }

  std::size_t connections_up() {
    return runner_.call([this] { return metrics_.connections_up(); });
  }

  recording_sink sink;

 private:
  rtm::test::io_thread runner_;
  rtm::metrics::registry metrics_;
  std::shared_ptr<sio::session> session_;
  bool stopped_ = false;
};

inline std::string all_known_events_json() {
  std::string out = "[";
  bool first = true;
  for (const auto name : sio::known_events()) {
    out += first ? "\"" : ",\"";
    out += name;
    out += '"';
    first = false;
  }
  return out + "]";
}

inline const std::string availability_payload =
    R"({"team_id":"42286ab3-b29a-4fde-8538-da0ae501d825","website_id":"w1","session_id":"session_1","inbox_id":null,"availability":"online"})";
inline const std::string verify_payload =
    R"({"team_id":"42286ab3-b29a-4fde-8538-da0ae501d825","website_id":"w1","session_id":"session_1","inbox_id":null,"is_verified":true,"verifications":[{"identity":"email","method":"link","annotation":"x"}]})";
// 2^53 + 1 and far beyond 64 bits; UTF-8 (é, ✓, 😀) untouched.
inline const std::string updated_payload =
    "{\"team_id\":\"42286ab3-b29a-4fde-8538-da0ae501d825\",\"website_id\":\"w1\",\"session_id\":\"session_1\","
    "\"fingerprint\":9007199254740993,\"big\":123456789012345678901234567890,"
    "\"content\":\"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80\"}";

}  // namespace rtm::test::acme
