// The Acme session against real socket.io servers (tests/fixtures/acme_server.js): handshake and authentication,
// byte-exact events, refused credentials, cut and silent connections, garbage frames, Engine.IO v3, endpoint
// discovery, TLS verification, event globs. The session runs on an io_context in its own thread, as in the daemon;
// the test thread talks to it only through posted calls and the recording sink's mutex.
#include "upstream/socketio/session.hpp"

#include <doctest/doctest.h>
#include <simdjson.h>

#include <chrono>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "metrics/registry.hpp"
#include "support/process.hpp"
#include "upstream/harness.hpp"
#include "upstream/pki.hpp"
#include "upstream/socketio/acme_events.hpp"
#include "util/json_writer.hpp"

using namespace std::chrono_literals;
namespace sio = rtm::upstream::socketio;
namespace config = rtm::config;
using rtm::test::eventually;
using rtm::test::temp_pki;

namespace {

struct recorded_event {
  std::string connection;
  rtm::pipeline::source from;
  std::string name;
  std::string name_space;
  std::string team_id;
  std::string payload;
  std::string extra_args;
};

struct recorded_dead_letter {
  std::string reason;
  std::string raw;
  std::string detail;
  std::size_t original_size = 0;
};

// Copies everything (the views die with the call), under a mutex: the session calls in from the io thread.
class recording_sink final : public rtm::pipeline::sink {
 public:
  void on_event(const rtm::pipeline::event& ev) noexcept override {
    const std::lock_guard<std::mutex> lock(mutex_);
    events_.push_back({std::string(ev.connection), ev.from, std::string(ev.name), std::string(ev.name_space),
                       std::string(ev.team_id), std::string(ev.payload), std::string(ev.extra_args)});
  }
  void on_dead_letter(const rtm::pipeline::dead_letter& dl) noexcept override {
    const std::lock_guard<std::mutex> lock(mutex_);
    dead_letters_.push_back({std::string(dl.reason), std::string(dl.raw), std::string(dl.detail), dl.original_size});
  }
  std::vector<recorded_event> events() {
    const std::lock_guard<std::mutex> lock(mutex_);
    return events_;
  }
  std::vector<recorded_dead_letter> dead_letters() {
    const std::lock_guard<std::mutex> lock(mutex_);
    return dead_letters_;
  }
  std::size_t event_count() { return events().size(); }
  std::size_t dead_letter_count() { return dead_letters().size(); }

 private:
  std::mutex mutex_;
  std::vector<recorded_event> events_;
  std::vector<recorded_dead_letter> dead_letters_;
};

// The fake Acme upstream (acme_server.js).
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

config::connection_config acme_config(int port) {
  config::connection_config cfg;
  cfg.name = "acme-test";
  cfg.kind = config::connection_kind::acme;
  cfg.url = "ws://127.0.0.1:" + std::to_string(port) + "/";
  cfg.protocol = 4;
  cfg.tier = config::acme_tier::user;
  cfg.identifier.value = "id-1";
  cfg.key.value = "key-1";
  cfg.reconnect = {50ms, 500ms, 0.2};
  cfg.ping_timeout = 30s;
  return cfg;
}

sio::session_tuning test_tuning() {
  sio::session_tuning t;
  t.phase_timeout = 3s;
  t.close_grace = 500ms;
  t.discovery_timeout = 3s;
  return t;
}

// One session under test, with its sink and metrics.
class rig {
 public:
  explicit rig(const config::connection_config& cfg, sio::session_tuning tuning = test_tuning()) {
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

std::string all_known_events_json() {
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

const std::string availability_payload =
    R"({"team_id":"42286ab3-b29a-4fde-8538-da0ae501d825","website_id":"w1","session_id":"session_1","inbox_id":null,"availability":"online"})";
const std::string verify_payload =
    R"({"team_id":"42286ab3-b29a-4fde-8538-da0ae501d825","website_id":"w1","session_id":"session_1","inbox_id":null,"is_verified":true,"verifications":[{"identity":"email","method":"link","annotation":"x"}]})";
// 2^53 + 1 and far beyond 64 bits; UTF-8 (é, ✓, 😀) untouched.
const std::string updated_payload =
    "{\"team_id\":\"42286ab3-b29a-4fde-8538-da0ae501d825\",\"website_id\":\"w1\",\"session_id\":\"session_1\","
    "\"fingerprint\":9007199254740993,\"big\":123456789012345678901234567890,"
    "\"content\":\"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80\"}";

}  // namespace

TEST_CASE("acme: handshake, authentication, byte-exact events, heartbeat and a clean stop") {
  acme_server server({"--token", "id-1:key-1", "--ping-interval", "300", "--ping-timeout", "200"});
  rig r(acme_config(server.port));
  r.start();
  const auto auth = server.wait_line("AUTH id-1 ", 10s);
  REQUIRE(auth);
  // No `events` configured: the full list of known events of the tier.
  CHECK(*auth == "ok " + all_known_events_json());
  REQUIRE(r.wait_live());
  CHECK(r.connections_up() == 1);

  CHECK(server.emit("session:update_availability", availability_payload) == "1");
  CHECK(server.emit("session:update_verify", verify_payload) == "1");
  CHECK(server.emit("message:updated", updated_payload) == "1");
  REQUIRE(eventually([&] { return r.sink.event_count() == 3; }, 5s));
  const auto events = r.sink.events();
  CHECK(events[0].name == "session:update_availability");
  CHECK(events[0].payload == availability_payload);
  CHECK(events[1].name == "session:update_verify");
  CHECK(events[1].payload == verify_payload);
  CHECK(events[2].name == "message:updated");
  CHECK(events[2].payload == updated_payload);
  for (const auto& ev : events) {
    CHECK(ev.connection == "acme-test");
    CHECK(ev.from == rtm::pipeline::source::acme);
    CHECK(ev.team_id == "42286ab3-b29a-4fde-8538-da0ae501d825");
  }
  CHECK(events[0].name_space == "session");
  CHECK(events[2].name_space == "message");
  CHECK(r.received("message:updated") == 1);

  // Several ping intervals: the client answers every ping, so the server keeps the session.
  std::this_thread::sleep_for(1500ms);
  CHECK(r.live());
  CHECK(server.count("AUTH ") == 1);
  CHECK(server.count("DISCONNECT ") == 0);
  CHECK(r.reconnects("closed") + r.reconnects("ping_timeout") + r.reconnects("error") == 0);
  CHECK(r.sink.dead_letter_count() == 0);

  REQUIRE(r.stop());
  CHECK_FALSE(r.live());
  CHECK(r.connections_up() == 0);
  CHECK(server.wait_line("DISCONNECT id-1 ", 5s));
  CHECK(eventually([&] { return server.stat("/connections") == 0; }, 5s));
  CHECK(server.stat("/max_connections") == 1);
}

TEST_CASE("acme: refused credentials back off at least max_delay, no hot loop") {
  acme_server server({"--token", "id-1:key-1", "--ping-interval", "300", "--ping-timeout", "200"});
  auto cfg = acme_config(server.port);
  cfg.key.value = "wrong-key";
  cfg.reconnect = {50ms, 2000ms, 0.5};
  rig r(cfg);
  r.start();
  REQUIRE(server.wait_line("AUTH id-1 refused", 10s));
  // With a 50 ms initial delay a hot loop would make dozens of attempts here.
  CHECK(server.count("AUTH id-1 refused", 3000ms) <= 2);
  CHECK_FALSE(r.live());
  CHECK(r.reconnects("unauthorized") >= 1);
  CHECK(server.count("AUTH id-1 ok") == 0);
}

TEST_CASE("acme: an explicit authenticated false is a refusal too") {
  acme_server server({"--token", "id-1:key-1", "--auth-reply", "false"});
  auto cfg = acme_config(server.port);
  cfg.reconnect = {50ms, 2000ms, 0.0};
  rig r(cfg);
  r.start();
  REQUIRE(server.wait_line("AUTH id-1 ok", 10s));
  REQUIRE(eventually([&] { return r.reconnects("unauthorized") == 1; }, 5s));
  CHECK_FALSE(r.live());
  CHECK(server.count("AUTH id-1 ", 1000ms) == 1);
}

TEST_CASE("acme: the server cuts the TCP connection 10 times, the client comes back every time, never twice") {
  acme_server server({"--token", "id-1:key-1", "--ping-interval", "300", "--ping-timeout", "200"});
  auto cfg = acme_config(server.port);
  cfg.reconnect = {50ms, 400ms, 0.2};
  rig r(cfg);
  r.start();
  for (std::size_t round = 1; round <= 10; ++round) {
    REQUIRE_MESSAGE(server.wait_count("AUTH id-1 ok", round, 10s), "round " << round);
    REQUIRE(r.wait_live());
    CHECK(server.command(R"({"cmd":"destroy"})", "OK destroy ") == "1");
  }
  REQUIRE(server.wait_count("AUTH id-1 ok", 11, 10s));
  REQUIRE(r.wait_live());
  CHECK(server.stat("/max_live/id-1") == 1);
  CHECK(server.stat("/max_connections") == 1);
  CHECK(r.reconnects("closed") == 10);
  // Re-authenticated after every reconnect: events flow on the 11th socket.
  CHECK(server.emit("message:updated", updated_payload) == "1");
  REQUIRE(eventually([&] { return r.sink.event_count() == 1; }, 5s));
  CHECK(r.sink.events()[0].payload == updated_payload);
}

TEST_CASE("acme: 100 cut/reconnect cycles: every event of a live session arrives once, in order; one session at most") {
  // The server answers each authentication with `authenticated`, 5 events and a FIN once they are written; the
  // 101st session stays. Every event was sent while its session was live, so every one must arrive.
  constexpr int cycles = 100;
  constexpr int per_cycle = 5;
  acme_server server({"--token", "id-1:key-1", "--cycle", std::to_string(per_cycle), "--cycles", std::to_string(cycles),
                      "--ping-interval", "5000", "--ping-timeout", "5000"});
  auto cfg = acme_config(server.port);
  cfg.reconnect = {5ms, 20ms, 0.5};
  rig r(cfg);
  const auto started = std::chrono::steady_clock::now();
  r.start();
  REQUIRE(server.wait_count("CYCLE ", cycles, 90s));
  REQUIRE(server.wait_count("AUTH id-1 ok", cycles + 1, 10s));
  REQUIRE(r.wait_live());
  MESSAGE(cycles
          << " cycles took "
          << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count()
          << " ms");
  REQUIRE(eventually([&] { return r.sink.event_count() >= cycles * per_cycle; }, 10s));
  CHECK(r.sink.event_count() == cycles * per_cycle);
  const auto events = r.sink.events();
  for (std::size_t i = 0; i < events.size(); ++i) {
    const std::string expected = R"({"team_id":"t1","cycle":)" + std::to_string(i / per_cycle + 1) + R"(,"seq":)" +
                                 std::to_string(i % per_cycle) + "}";
    REQUIRE_MESSAGE(events[i].payload == expected, "event " << i);
  }
  CHECK(r.sink.dead_letter_count() == 0);
  CHECK(r.reconnects("closed") == cycles);
  CHECK(server.stat("/max_live/id-1") == 1);
  CHECK(server.stat("/auth_ok") == cycles + 1);
}

TEST_CASE("acme: a silent server is detected within the ping bound and replaced") {
  SUBCASE("bound from the server's pingInterval + pingTimeout") {
    acme_server server({"--token", "id-1:key-1", "--ping-interval", "300", "--ping-timeout", "200"});
    rig r(acme_config(server.port));
    r.start();
    REQUIRE(server.wait_count("AUTH id-1 ok", 1, 10s));
    REQUIRE(r.wait_live());
    const auto silenced_at = std::chrono::steady_clock::now();
    CHECK(server.command(R"({"cmd":"silent"})", "OK silent ") == "1");
    // Dead after 500 ms without a ping, then a back-off of at most 50 ms and a fresh handshake.
    REQUIRE(server.wait_count("AUTH id-1 ok", 2, 5s));
    const auto elapsed = std::chrono::steady_clock::now() - silenced_at;
    CHECK(elapsed < 2000ms);
    CHECK(elapsed >= 300ms);
    CHECK(r.reconnects("ping_timeout") == 1);
    REQUIRE(r.wait_live());
    CHECK(server.emit("message:updated", updated_payload) == "1");
    CHECK(eventually([&] { return r.sink.event_count() == 1; }, 5s));
  }
  SUBCASE("the config's ping_timeout shortens a long server bound") {
    // The server would allow 1000 + 5000 ms; ping_timeout 1500 ms is clamped up to interval + 1 s = 2000 ms.
    acme_server server({"--token", "id-1:key-1", "--ping-interval", "1000", "--ping-timeout", "5000"});
    auto cfg = acme_config(server.port);
    cfg.ping_timeout = 1500ms;
    rig r(cfg);
    r.start();
    REQUIRE(server.wait_count("AUTH id-1 ok", 1, 10s));
    REQUIRE(r.wait_live());
    const auto silenced_at = std::chrono::steady_clock::now();
    CHECK(server.command(R"({"cmd":"silent"})", "OK silent ") == "1");
    REQUIRE(server.wait_count("AUTH id-1 ok", 2, 8s));
    const auto elapsed = std::chrono::steady_clock::now() - silenced_at;
    CHECK(elapsed < 3500ms);
    CHECK(r.reconnects("ping_timeout") == 1);
  }
}

TEST_CASE("acme: frames arriving without pings keep the connection; silence after them ends it") {
  // A ping queued behind a long backlog of events arrives late because the session is still reading what came
  // before it: any frame proves the peer alive. Bound here: 300 + 200 ms. Events every 100 ms for 1.5 s (three
  // bounds) with no ping at all must not cost the connection; the silence after the last one must.
  acme_server server({"--token", "id-1:key-1", "--ping-interval", "300", "--ping-timeout", "200"});
  rig r(acme_config(server.port));
  r.start();
  REQUIRE(server.wait_count("AUTH id-1 ok", 1, 10s));
  REQUIRE(r.wait_live());
  CHECK(server.command(R"({"cmd":"no_pings"})", "OK no_pings ") == "1");
  constexpr int events = 15;
  for (int i = 0; i < events; ++i) {
    CHECK(server.emit("message:updated", updated_payload) == "1");
    std::this_thread::sleep_for(100ms);
  }
  CHECK(eventually([&] { return r.sink.event_count() == events; }, 5s));
  CHECK(r.reconnects("ping_timeout") == 0);
  CHECK(server.count("AUTH id-1 ok") == 1);
  // Then nothing at all: dead within the bound of the last frame, replaced, live again.
  REQUIRE(server.wait_count("AUTH id-1 ok", 2, 5s));
  CHECK(r.reconnects("ping_timeout") == 1);
}

TEST_CASE("acme: a backpressure pause that outlasts the heartbeat does not throw away events already received") {
  // While reading is paused the server's pings sit unread in our socket, behind the events it sent. Declaring the
  // peer dead then (and dropping the TCP connection) would discard those events; the session waits for reading to
  // resume instead, reads them, and only then deals with whatever the server did about the missing pongs.
  acme_server server({"--token", "id-1:key-1", "--ping-interval", "300", "--ping-timeout", "700"});
  rig r(acme_config(server.port));
  r.start();
  REQUIRE(server.wait_count("AUTH id-1 ok", 1, 10s));
  REQUIRE(r.wait_live());
  r.pause();
  for (int i = 0; i < 5; ++i) {
    CHECK(server.emit("message:updated", updated_payload) == "1");
  }
  std::this_thread::sleep_for(2500ms);  // well past both sides' bound (300 + 700 ms)
  // A read already in flight when the pause began may still complete: at most the first event gets through.
  CHECK(r.sink.event_count() <= 1);
  r.resume();
  CHECK(eventually([&] { return r.sink.event_count() == 5; }, 5s));
  CHECK(r.reconnects("ping_timeout") == 0);
  REQUIRE(r.wait_live());
}

TEST_CASE("acme: garbage frames become dead letters and the link survives") {
  acme_server server({"--token", "id-1:key-1", "--ping-interval", "300", "--ping-timeout", "200"});
  rig r(acme_config(server.port));
  r.start();
  REQUIRE(server.wait_count("AUTH id-1 ok", 1, 10s));
  REQUIRE(r.wait_live());

  const std::vector<std::pair<std::string, std::string>> garbage{
      {R"(42[broken)", "bad_json"},
      {"4", "bad_packet"},
      {"99", "unknown_packet"},
      {R"(42["message:updated",5])", "not_an_object"},
      {R"(42["message:updated",{"website_id":"w1"}])", "no_team_id"},
      {R"(42["message:updated",{"team_id":7}])", "bad_team_id"},
      {R"(42[1,2])", "not_an_event"},
  };
  for (const auto& garbage_frame : garbage) {
    CHECK(server.raw(garbage_frame.first) == "1");
  }
  CHECK(server.command(R"({"cmd":"binary","event":"bin"})", "OK binary ") == "1");
  REQUIRE(eventually([&] { return r.sink.dead_letter_count() == garbage.size() + 1; }, 5s));
  const auto dead = r.sink.dead_letters();
  for (std::size_t i = 0; i < garbage.size(); ++i) {
    CHECK(dead[i].raw == garbage[i].first);
    CHECK(dead[i].reason == garbage[i].second);
  }
  CHECK(dead.back().reason == "binary_event");
  CHECK(dead.back().raw.rfind("451-[\"bin\"", 0) == 0);

  CHECK(server.emit("message:updated", updated_payload) == "1");
  REQUIRE(eventually([&] { return r.sink.event_count() == 1; }, 5s));
  CHECK(r.sink.events()[0].payload == updated_payload);
  // The attachment frame was swallowed, not dead-lettered twice; the socket never changed.
  CHECK(r.sink.dead_letter_count() == garbage.size() + 1);
  CHECK(r.live());
  CHECK(server.count("AUTH ") == 1);
}

TEST_CASE("acme: Engine.IO v3 (socket.io 2) works over several ping intervals, and its silence is detected") {
  acme_server server({"--eio3", "--token", "id-1:key-1", "--ping-interval", "300", "--ping-timeout", "300"});
  auto cfg = acme_config(server.port);
  cfg.protocol = 3;
  rig r(cfg);
  r.start();
  REQUIRE(server.wait_count("AUTH id-1 ok", 1, 10s));
  REQUIRE(r.wait_live());
  // The v3 server drops a client that does not ping within pingInterval + pingTimeout (600 ms).
  std::this_thread::sleep_for(2000ms);
  CHECK(r.live());
  CHECK(server.count("AUTH ") == 1);
  CHECK(server.count("DISCONNECT ") == 0);
  CHECK(server.emit("session:update_verify", verify_payload) == "1");
  REQUIRE(eventually([&] { return r.sink.event_count() == 1; }, 5s));
  CHECK(r.sink.events()[0].payload == verify_payload);

  CHECK(server.command(R"({"cmd":"silent"})", "OK silent ") == "1");
  REQUIRE(server.wait_count("AUTH id-1 ok", 2, 5s));
  CHECK(r.reconnects("ping_timeout") == 1);
  REQUIRE(r.wait_live());
}

TEST_CASE("acme: protocol 4 against a Socket.IO v2 server says to set protocol 3") {
  acme_server server({"--eio3", "--token", "id-1:key-1", "--ping-interval", "300", "--ping-timeout", "300"});
  auto cfg = acme_config(server.port);
  cfg.reconnect = {200ms, 1000ms, 0.0};
  rig r(cfg);
  r.start();
  REQUIRE(eventually([&] { return r.reconnects("error") >= 1; }, 5s));
  CHECK_FALSE(r.live());
  CHECK(server.count("AUTH ") == 0);
}

TEST_CASE("acme: endpoint discovery over REST") {
  acme_server server({"--api", "--token", "id-1:key-1", "--ping-interval", "300", "--ping-timeout", "200"});
  auto cfg = acme_config(server.port);
  cfg.url.clear();
  cfg.api_url = "http://127.0.0.1:" + std::to_string(server.api_port) + "/v1";

  SUBCASE("success") {
    rig r(cfg);
    r.start();
    REQUIRE(server.wait_line("API 200", 10s));
    REQUIRE(server.wait_count("AUTH id-1 ok", 1, 10s));
    REQUIRE(r.wait_live());
  }
  SUBCASE("401: a credential error with a long back-off") {
    server.command(R"({"cmd":"api","mode":"401","times":100})", "OK api");
    cfg.reconnect = {50ms, 2000ms, 0.5};
    rig r(cfg);
    r.start();
    REQUIRE(server.wait_line("API 401", 10s));
    CHECK(server.count("API 401", 3000ms) <= 2);
    CHECK(r.reconnects("unauthorized") >= 1);
    CHECK_FALSE(r.live());
    CHECK(server.count("AUTH ") == 0);
  }
  SUBCASE("5xx: the normal back-off, then success") {
    server.command(R"({"cmd":"api","mode":"503","times":2})", "OK api");
    rig r(cfg);
    r.start();
    REQUIRE(server.wait_count("AUTH id-1 ok", 1, 10s));
    REQUIRE(r.wait_live());
    CHECK(server.count("API 503") == 2);
    CHECK(server.count("API 200") == 1);
    CHECK(r.reconnects("error") == 2);
  }
}

TEST_CASE("acme: TLS peer and host name verification") {
  temp_pki pki;
  SUBCASE("a certificate from an unknown CA is refused by default") {
    acme_server server({"--tls-cert", pki.good_cert, "--tls-key", pki.good_key, "--token", "id-1:key-1"});
    auto cfg = acme_config(server.port);
    cfg.url = "wss://127.0.0.1:" + std::to_string(server.port) + "/";
    rig r(cfg);
    r.start();
    REQUIRE(eventually([&] { return r.reconnects("error") >= 1; }, 5s));
    CHECK_FALSE(r.live());
    CHECK(server.count("AUTH ", 500ms) == 0);
    CHECK(server.count("CONNECTION ") == 0);
  }
  SUBCASE("accepted with tls.ca_file") {
    acme_server server({"--tls-cert", pki.good_cert, "--tls-key", pki.good_key, "--token", "id-1:key-1"});
    auto cfg = acme_config(server.port);
    cfg.url = "wss://127.0.0.1:" + std::to_string(server.port) + "/";
    cfg.tls.ca_file = pki.ca_cert;
    rig r(cfg);
    r.start();
    REQUIRE(server.wait_count("AUTH id-1 ok", 1, 10s));
    REQUIRE(r.wait_live());
    CHECK(server.emit("message:updated", updated_payload) == "1");
    REQUIRE(eventually([&] { return r.sink.event_count() == 1; }, 5s));
    CHECK(r.sink.events()[0].payload == updated_payload);
  }
  SUBCASE("a certificate for another host name is refused, even from the trusted CA") {
    acme_server server({"--tls-cert", pki.other_cert, "--tls-key", pki.other_key, "--token", "id-1:key-1"});
    auto cfg = acme_config(server.port);
    cfg.url = "wss://127.0.0.1:" + std::to_string(server.port) + "/";
    cfg.tls.ca_file = pki.ca_cert;
    rig r(cfg);
    r.start();
    REQUIRE(eventually([&] { return r.reconnects("error") >= 1; }, 5s));
    CHECK_FALSE(r.live());
    CHECK(server.count("CONNECTION ", 500ms) == 0);
  }
  SUBCASE("tls.verify false accepts it, with a warning naming the connection at every connect") {
    acme_server server({"--tls-cert", pki.other_cert, "--tls-key", pki.other_key, "--token", "id-1:key-1"});
    auto cfg = acme_config(server.port);
    cfg.url = "wss://127.0.0.1:" + std::to_string(server.port) + "/";
    cfg.tls.verify = false;
    rtm::test::stderr_capture log;
    rig r(cfg);
    r.start();
    for (std::size_t round = 1; round <= 3; ++round) {
      REQUIRE(server.wait_count("AUTH id-1 ok", round, 10s));
      REQUIRE(r.wait_live());
      if (round < 3) {
        CHECK(server.command(R"({"cmd":"destroy"})", "OK destroy ") == "1");
      }
    }
    CHECK_MESSAGE(log.lines_with({"warn connection=acme-test ", "tls.verify is false", "NOT checked"}).size() == 3,
                  log.text());
  }
  SUBCASE("endpoint discovery over HTTPS verifies the same way") {
    acme_server server({"--tls-cert", pki.good_cert, "--tls-key", pki.good_key, "--token", "id-1:key-1"});
    auto cfg = acme_config(server.port);
    cfg.url.clear();
    // The RTM server itself answers the discovery request (socket.io rejects it with HTTP 400): what matters here
    // is that the TLS handshake is refused before any HTTP is exchanged, and accepted with the CA.
    cfg.api_url = "https://127.0.0.1:" + std::to_string(server.port) + "/v1";
    rig r(cfg);
    r.start();
    REQUIRE(eventually([&] { return r.reconnects("error") >= 1; }, 5s));
    CHECK(server.count("CONNECTION ", 300ms) == 0);
  }
}

TEST_CASE("acme: event globs select the subscription and filter what is handed over") {
  acme_server server({"--token", "id-1:key-1", "--ping-interval", "300", "--ping-timeout", "200"});
  auto cfg = acme_config(server.port);
  cfg.events = {"session:update_*", "message:updated"};
  rig r(cfg);
  r.start();
  const auto auth = server.wait_line("AUTH id-1 ", 10s);
  REQUIRE(auth);
  CHECK(*auth == R"(ok ["session:update_availability","session:update_verify","message:updated"])");
  REQUIRE(r.wait_live());
  // The fake server sends everything to everyone; the session hands over only what the globs match.
  CHECK(server.emit("message:send", updated_payload) == "1");
  CHECK(server.emit("session:update_verify", verify_payload) == "1");
  CHECK(server.emit("message:updated", updated_payload) == "1");
  CHECK(server.emit("session:set_email", verify_payload) == "1");
  REQUIRE(eventually([&] { return r.sink.event_count() >= 2; }, 5s));
  std::this_thread::sleep_for(300ms);
  const auto events = r.sink.events();
  REQUIRE(events.size() == 2);
  CHECK(events[0].name == "session:update_verify");
  CHECK(events[1].name == "message:updated");
  CHECK(r.sink.dead_letter_count() == 0);
}

TEST_CASE(
    "acme: a refused namespace (44 from a socket.io middleware) is logged with the server's message, long back-off") {
  rtm::test::stderr_capture log;
  acme_server server({"--connect-error", "--token", "id-1:key-1"});
  auto cfg = acme_config(server.port);
  cfg.reconnect = {50ms, 2000ms, 0.0};
  rig r(cfg);
  r.start();
  REQUIRE(server.wait_line("CONNECT_REFUSED", 10s));
  REQUIRE(eventually([&r] { return r.reconnects("namespace_refused") == 1; }, 5s));
  // With a 50 ms initial delay a hot loop would make dozens of attempts here; the back-off is max_delay (2 s).
  CHECK(server.count("CONNECT_REFUSED", 1000ms) == 1);
  CHECK_FALSE(r.live());
  const auto lines = log.lines_with({"error connection=acme-test ", "refused the Socket.IO namespace connect (44)",
                                     "\"not authorized\"", "reconnect.max_delay"});
  CHECK_MESSAGE(lines.size() == 1, log.text());
}

TEST_CASE("acme: size limits") {
  acme_server server({"--token", "id-1:key-1", "--ping-interval", "300", "--ping-timeout", "200"});
  auto cfg = acme_config(server.port);
  cfg.limits.max_frame_size = 1024 * 1024;
  cfg.limits.max_event_size = 32 * 1024;
  rtm::test::stderr_capture log;
  rig r(cfg);
  r.start();
  REQUIRE(server.wait_count("AUTH id-1 ok", 1, 10s));
  REQUIRE(r.wait_live());

  // Within the frame limit, above the event limit: dead-lettered with its first 64 KiB, the socket stays.
  CHECK(server.command(R"({"cmd":"big","size":100000})", "OK big ") == "1");
  CHECK(server.emit("message:updated", updated_payload) == "1");
  REQUIRE(eventually([&] { return r.sink.event_count() == 1 && r.sink.dead_letter_count() == 1; }, 5s));
  auto dead = r.sink.dead_letters();
  CHECK(dead[0].reason == "event_too_large");
  CHECK(dead[0].raw.size() == rtm::pipeline::oversized_event_prefix);
  CHECK(dead[0].raw.rfind(R"(42["message:updated",{"team_id":"t-big","pad":"xxx)", 0) == 0);
  CHECK(dead[0].original_size == 100000);
  CHECK(dead[0].detail.find("100000 bytes exceeds limits.max_event_size (32768 bytes)") != std::string::npos);
  CHECK(r.sink.events()[0].payload == updated_payload);
  CHECK(server.count("AUTH ") == 1);
  CHECK(r.live());

  // Exactly at the event limit: an event like any other.
  CHECK(server.command(R"({"cmd":"big","size":32768})", "OK big ") == "1");
  REQUIRE(eventually([&] { return r.sink.event_count() == 2; }, 5s));
  CHECK(r.sink.events()[1].team_id == "t-big");

  // Above the frame limit: the transport refuses it unread (1009), which costs the socket: a dead letter that says
  // so, a reconnect counted as frame_too_large, a log line naming the limit, and events flow on the next socket.
  CHECK(server.command(R"({"cmd":"big","size":2000000})", "OK big ") == "1");
  REQUIRE(eventually([&] { return r.sink.dead_letter_count() == 2; }, 5s));
  dead = r.sink.dead_letters();
  CHECK(dead[1].reason == "frame_too_large");
  CHECK(dead[1].raw.empty());
  CHECK(dead[1].detail.find("larger than limits.max_frame_size (1048576 bytes)") != std::string::npos);
  REQUIRE(server.wait_count("AUTH id-1 ok", 2, 10s));
  REQUIRE(r.wait_live());
  CHECK(r.reconnects("frame_too_large") == 1);
  CHECK(server.emit("message:updated", updated_payload) == "1");
  REQUIRE(eventually([&] { return r.sink.event_count() == 3; }, 5s));
  CHECK(server.stat("/max_live/id-1") == 1);
  CHECK_MESSAGE(
      log.lines_with({"warn connection=acme-test ", "limits.max_frame_size (1048576 bytes)", "frame_too_large"})
              .size() == 1,
      log.text());
}

TEST_CASE("acme: a server-side namespace disconnect (41) reconnects and re-authenticates") {
  acme_server server({"--token", "id-1:key-1", "--ping-interval", "300", "--ping-timeout", "200"});
  rig r(acme_config(server.port));
  r.start();
  REQUIRE(server.wait_count("AUTH id-1 ok", 1, 10s));
  REQUIRE(r.wait_live());
  CHECK(server.command(R"({"cmd":"disconnect"})", "OK disconnect ") == "1");
  REQUIRE(server.wait_count("AUTH id-1 ok", 2, 5s));
  CHECK(r.reconnects("closed") == 1);
  REQUIRE(r.wait_live());
  CHECK(server.stat("/max_live/id-1") == 1);
}

TEST_CASE("acme: an event that asks for an acknowledgement is handed over, then acknowledged") {
  acme_server server({"--token", "id-1:key-1", "--ping-interval", "300", "--ping-timeout", "200"});
  rig r(acme_config(server.port));
  r.start();
  REQUIRE(server.wait_count("AUTH id-1 ok", 1, 10s));
  REQUIRE(r.wait_live());
  CHECK(server.command(R"({"cmd":"emit_ack","event":"message:send","payload":{"team_id":"t1","n":1}})",
                       "OK emit_ack ") == "1");
  CHECK(server.wait_line("ACKED message:send", 5s));
  REQUIRE(eventually([&r] { return r.sink.event_count() == 1; }, 5s));
  CHECK(r.sink.events()[0].payload == R"({"team_id":"t1","n":1})");
  CHECK(r.sink.events()[0].team_id == "t1");
}

TEST_CASE("acme: stop in any phase ends with no socket and calls done") {
  SUBCASE("while backing off after a refusal") {
    acme_server server({"--token", "id-1:key-1"});
    auto cfg = acme_config(server.port);
    cfg.key.value = "wrong";
    cfg.reconnect = {50ms, 5000ms, 0.0};
    rig r(cfg);
    r.start();
    REQUIRE(server.wait_line("AUTH id-1 refused", 10s));
    REQUIRE(eventually([&r] { return r.reconnects("unauthorized") == 1; }, 5s));
    const auto stopping_at = std::chrono::steady_clock::now();
    CHECK(r.stop());
    CHECK(std::chrono::steady_clock::now() - stopping_at < 1s);
    CHECK(server.count("AUTH ", 500ms) == 1);
  }
  SUBCASE("while the WebSocket is still opening") {
    rtm::test::node_fixture blackhole("ws_server.js", {});
    const auto port = blackhole.wait_line("BLACKHOLE ", 5s);
    REQUIRE(port);
    rig r(acme_config(std::stoi(*port)));
    r.start();
    std::this_thread::sleep_for(200ms);
    const auto stopping_at = std::chrono::steady_clock::now();
    CHECK(r.stop());
    CHECK(std::chrono::steady_clock::now() - stopping_at < 1s);
    CHECK_FALSE(r.live());
  }
  SUBCASE("while live, twice") {
    acme_server server({"--token", "id-1:key-1", "--ping-interval", "300", "--ping-timeout", "200"});
    rig r(acme_config(server.port));
    r.start();
    REQUIRE(server.wait_count("AUTH id-1 ok", 1, 10s));
    REQUIRE(r.wait_live());
    CHECK(r.stop());
    CHECK(r.stop(true));
    CHECK(server.wait_line("DISCONNECT id-1 ", 5s));
    CHECK(eventually([&server] { return server.stat("/connections") == 0; }, 5s));
    CHECK(server.count("AUTH ", 500ms) == 1);  // no reconnect after a stop
  }
}

TEST_CASE("acme: a stop while reading is paused still delivers every event the server sent before it") {
  // The events wait in our socket's receive buffer behind the pause; the stop leaves the namespace (41), reads on
  // for the drain grace and delivers them, instead of reading them into a close handshake that discards them.
  acme_server server({"--token", "id-1:key-1"});
  rig r(acme_config(server.port));
  r.start();
  REQUIRE(server.wait_count("AUTH id-1 ok", 1, 10s));
  REQUIRE(r.wait_live());
  r.pause();
  // The pause takes effect at the next frame read: one priming event makes sure it has, so the batch below waits
  // unread in the socket.
  CHECK(server.emit("message:updated", R"({"team_id":"t1","seq":-1})") == "1");
  REQUIRE(eventually([&r] { return r.sink.event_count() == 1; }, 5s));
  constexpr int count = 100;
  for (int i = 0; i < count; ++i) {
    CHECK(server.emit("message:updated", R"({"team_id":"t1","seq":)" + std::to_string(i) + "}") == "1");
  }
  std::this_thread::sleep_for(300ms);
  CHECK(r.sink.event_count() == 1);
  CHECK(r.stop());
  const auto events = r.sink.events();
  REQUIRE(events.size() == count + 1);
  for (int i = 0; i < count; ++i) {
    CHECK(events[static_cast<std::size_t>(i) + 1].payload == R"({"team_id":"t1","seq":)" + std::to_string(i) + "}");
  }
  CHECK(r.failed("discarded_on_close") == 0);
  CHECK(server.wait_line("DISCONNECT id-1 client namespace disconnect", 5s));
}

TEST_CASE("acme: refused credentials wait at least 60 s, even with a short reconnect.max_delay") {
  rtm::test::stderr_capture log;
  acme_server server({"--token", "id-1:key-1"});
  auto cfg = acme_config(server.port);
  cfg.key.value = "wrong-key";
  cfg.reconnect = {50ms, 1000ms, 0.0};
  rig r(cfg);
  r.start();
  REQUIRE(server.wait_line("AUTH id-1 refused", 10s));
  REQUIRE(eventually([&r] { return r.reconnects("unauthorized") == 1; }, 5s));
  // max_delay alone would bring it back after a second.
  CHECK(server.count("AUTH id-1 refused", 2500ms) == 1);
  const auto lines = log.lines_with({"connection=acme-test ", "reconnecting in ", " ms (unauthorized)"});
  REQUIRE_MESSAGE(lines.size() == 1, log.text());
  const auto at = lines[0].find("reconnecting in ") + std::string("reconnecting in ").size();
  CHECK(std::stoll(lines[0].substr(at)) >= 60000);
}

// The server subscribes exact names: a glob is expanded over the events this build knows (the glob itself is never
// sent: a server taking names only could refuse it), an exact name outside the list is sent as it is, and what the
// server delivers is filtered by the globs on our side.
TEST_CASE("acme: globs expand over the known events, exact unknown names are subscribed as they are") {
  acme_server server({"--token", "id-1:key-1", "--ping-interval", "300", "--ping-timeout", "200"});
  auto cfg = acme_config(server.port);
  cfg.events = {"website:*", "brand:new:exact"};
  rig r(cfg);
  r.start();
  const auto auth = server.wait_line("AUTH id-1 ", 10s);
  REQUIRE(auth);
  CHECK(*auth == R"(ok ["website:update_visitors_count","website:update_operators_availability",)"
                 R"("website:users:available","brand:new:exact"])");
  REQUIRE(r.wait_live());
  CHECK(server.emit("website:brand_new_event", updated_payload) == "1");
  CHECK(server.emit("brand:new:exact", updated_payload) == "1");
  CHECK(server.emit("message:updated", updated_payload) == "1");
  REQUIRE(eventually([&] { return r.sink.event_count() >= 2; }, 5s));
  std::this_thread::sleep_for(300ms);
  const auto events = r.sink.events();
  REQUIRE(events.size() == 2);
  CHECK(events[0].name == "website:brand_new_event");
  CHECK(events[1].name == "brand:new:exact");
}

TEST_CASE("acme: a configured team_id keys the events without one; extra arguments and any valid JSON travel along") {
  acme_server server({"--token", "id-1:key-1", "--ping-interval", "300", "--ping-timeout", "200"});
  auto cfg = acme_config(server.port);
  cfg.team_id = "T-fixed";
  rig r(cfg);
  r.start();
  REQUIRE(server.wait_count("AUTH id-1 ok", 1, 10s));
  REQUIRE(r.wait_live());
  const std::vector<std::string> frames{
      R"(42["message:updated",{"website_id":"w1"}])",
      R"(42["message:updated",{"team_id":"t-own","text":"cut \ud83d","n":123456789012345678901234567890}])",
      R"(42["message:send",{"team_id":"t-own"}, 2 ,{"k":"\ud83d"}])",
      R"(42["message:updated",{"team_id":7}])",
  };
  for (const auto& frame : frames) {
    CHECK(server.raw(frame) == "1");
  }
  REQUIRE(eventually([&] { return r.sink.event_count() == 3 && r.sink.dead_letter_count() == 1; }, 5s));
  const auto events = r.sink.events();
  CHECK(events[0].team_id == "T-fixed");
  CHECK(events[0].payload == R"({"website_id":"w1"})");
  CHECK(events[1].team_id == "t-own");
  CHECK(events[1].payload == R"({"team_id":"t-own","text":"cut \ud83d","n":123456789012345678901234567890})");
  CHECK(events[1].extra_args.empty());
  CHECK(events[2].payload == R"({"team_id":"t-own"})");
  CHECK(events[2].extra_args == R"(2 ,{"k":"\ud83d"})");
  CHECK(r.sink.dead_letters()[0].reason == "bad_team_id");
}
