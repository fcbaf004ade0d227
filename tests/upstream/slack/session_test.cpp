// The Slack RTM session against a real node `http` + `ws` upstream (tests/fixtures/slack_server.js) that hands out
// single-use URLs: events, reconnect triggers, dead-connection detection, rate limits and refused tokens.
#include "upstream/slack/session.hpp"

#include <doctest/doctest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "metrics/registry.hpp"
#include "support/process.hpp"
#include "upstream/harness.hpp"
#include "upstream/pki.hpp"
#include "upstream/recording_sink.hpp"

using namespace std::chrono_literals;
using rtm::test::child_process;
using rtm::test::recording_sink;

namespace {

std::string json_quote(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  return out + "\"";
}

class slack_fixture {
 public:
  explicit slack_fixture(std::vector<std::string> tokens, const std::vector<std::string>& extra = {})
      : server_(start(std::move(tokens), extra)) {
    const auto port = server_.wait_for_line("LISTENING ", 20s);
    REQUIRE_MESSAGE(port.has_value(), "slack_server.js did not start");
    port_ = *port;
  }
  std::string api_url() const { return "http://127.0.0.1:" + port_ + "/api/"; }
  std::string https_api_url() const { return "https://127.0.0.1:" + port_ + "/api/"; }

  // The answer to `json`; the server's notices of what the client did (RTM_CONNECT, CLIENT, SENT lines) are skipped.
  std::string command(const std::string& json) {
    server_.write_line(json);
    for (;;) {
      auto line = server_.read_line(rtm::test::patience(10s));
      REQUIRE_MESSAGE(line.has_value(), "no answer from slack_server.js to " << json);
      if (line->rfind("RTM_CONNECT ", 0) != 0 && line->rfind("CLIENT ", 0) != 0 && line->rfind("SENT ", 0) != 0) {
        return *line;
      }
    }
  }
  // A number from the STATS line, e.g. stat("connect_calls", "xoxb-good"): the value of "token" inside the object
  // "field" (0 when absent).
  long stat(const std::string& field, const std::string& token) {
    const std::string line = command(R"({"cmd":"stats"})");
    const auto object = line.find("\"" + field + "\":{");
    if (object == std::string::npos) {
      return 0;
    }
    const auto end = line.find('}', object);
    const auto key = line.find("\"" + token + "\":", object);
    if (key == std::string::npos || key > end) {
      return 0;
    }
    return std::stol(line.substr(key + token.size() + 3));
  }
  // A top-level number from the STATS line, e.g. total("pings").
  long total(const std::string& field) {
    const std::string line = command(R"({"cmd":"stats"})");
    const auto at = line.find("\"" + field + "\":");
    REQUIRE(at != std::string::npos);
    return std::stol(line.substr(at + field.size() + 3));
  }
  long connect_gap_ms(const std::string& token, std::size_t first, std::size_t second) {
    const std::string line = command(R"({"cmd":"stats"})");
    const auto times_at = line.find("\"connect_times\":{");
    REQUIRE(times_at != std::string::npos);
    const auto key = line.find("\"" + token + "\":[", times_at);
    REQUIRE(key != std::string::npos);
    const auto open = key + token.size() + 4;
    const auto close = line.find(']', open);
    std::vector<long> times;
    std::stringstream in(line.substr(open, close - open));
    for (std::string part; std::getline(in, part, ',');) {
      times.push_back(std::stol(part));
    }
    REQUIRE(times.size() > second);
    return times[second] - times[first];
  }

 private:
  static child_process start(std::vector<std::string> tokens, const std::vector<std::string>& extra) {
    child_process::options opts;
    opts.argv = {"node", rtm::test::env_path("RTM_FIXTURES_DIR") + "/slack_server.js"};
    for (auto& t : tokens) {
      opts.argv.push_back("--token");
      opts.argv.push_back(std::move(t));
    }
    opts.argv.insert(opts.argv.end(), extra.begin(), extra.end());
    opts.keep_stdin = true;
    return child_process(std::move(opts));
  }

  child_process server_;
  std::string port_;
};

rtm::config::connection_config slack_config(const std::string& name, const std::string& api_url,
                                            const std::string& token) {
  rtm::config::connection_config cfg;
  cfg.name = name;
  cfg.kind = rtm::config::connection_kind::slack;
  cfg.url = api_url;
  cfg.key.value = token;
  cfg.reconnect.initial_delay = 100ms;
  cfg.reconnect.max_delay = 1s;
  cfg.reconnect.jitter = 0.2;
  cfg.ping_timeout = 2s;
  return cfg;
}

// An io_context on its own thread, running sessions until the harness goes.
class loop {
 public:
  loop() : guard_(io_.get_executor()), thread_([this] { io_.run(); }) {}
  loop(const loop&) = delete;
  loop& operator=(const loop&) = delete;
  loop(loop&&) = delete;
  loop& operator=(loop&&) = delete;
  ~loop() {
    guard_.reset();
    io_.stop();
    thread_.join();
  }
  boost::asio::io_context& io() { return io_; }

  std::shared_ptr<rtm::upstream::slack::session> start(const rtm::config::connection_config& cfg,
                                                       rtm::pipeline::sink& sink) {
    auto s = std::make_shared<rtm::upstream::slack::session>(io_, cfg, sink, metrics_);
    boost::asio::post(io_, [s] { s->start(); });
    return s;
  }
  std::uint64_t reconnects(const std::string& connection, const std::string& reason) {
    auto result = std::make_shared<std::promise<std::string>>();
    auto future = result->get_future();
    boost::asio::post(io_, [this, result] { result->set_value(metrics_.render()); });
    const std::string text = future.get();
    const std::string key = "rtm_bridge_reconnects_total{connection=\"" + connection + "\",reason=\"" + reason + "\"} ";
    const auto at = text.find(key);
    return at == std::string::npos ? 0 : std::stoull(text.substr(at + key.size()));
  }
  std::uint64_t failed(const std::string& connection, const std::string& reason) {
    auto result = std::make_shared<std::promise<std::string>>();
    auto future = result->get_future();
    boost::asio::post(io_, [this, result] { result->set_value(metrics_.render()); });
    const std::string text = future.get();
    const std::string key =
        "rtm_bridge_events_failed_total{connection=\"" + connection + "\",reason=\"" + reason + "\"} ";
    const auto at = text.find(key);
    return at == std::string::npos ? 0 : std::stoull(text.substr(at + key.size()));
  }
  // What the daemon does under Kafka backpressure.
  void pause(const std::shared_ptr<rtm::upstream::slack::session>& s) {
    boost::asio::post(io_, [s] { s->pause_reading(); });
  }
  // Stops the session on the loop and waits until its socket is gone.
  bool stop(const std::shared_ptr<rtm::upstream::slack::session>& s) {
    auto done = std::make_shared<std::promise<void>>();
    auto future = done->get_future();
    boost::asio::post(io_, [s, done] { s->stop([done] { done->set_value(); }); });
    return future.wait_for(10s) == std::future_status::ready;
  }

 private:
  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  rtm::metrics::registry metrics_;
  std::thread thread_;
};

}  // namespace

TEST_CASE("slack: events flow with the connection's team, type.subtype names and byte-exact frames") {
  slack_fixture upstream({"xoxb-good:T0001:E0009"});
  recording_sink sink;
  loop l;
  auto s = l.start(slack_config("slack-main", upstream.api_url(), "xoxb-good"), sink);
  REQUIRE(rtm::test::eventually([&] { return upstream.stat("live", "xoxb-good") == 1; }, 10s));

  const std::string message =
      R"({"type":"message","channel":"C1","user":"U1","text":"héllo ✅","ts":"1582838099.000600","team":"T9"})";
  const std::string changed = R"({"type":"message","subtype":"message_changed","ts":"1582838100.000100"})";
  const std::string presence = R"({"type":"presence_change","user":"U1","presence":"away"})";
  for (const auto& frame : {message, changed, presence}) {
    upstream.command(R"({"cmd":"emit","frame":)" + json_quote(frame) + "}");
  }
  // Not published: acknowledgements, pongs, reconnect_url. Dead letters: what is not an event.
  upstream.command(R"({"cmd":"emit","frame":"{\"ok\":true,\"reply_to\":3,\"ts\":\"1.2\"}"})");
  upstream.command(R"({"cmd":"emit","frame":"{\"type\":\"reconnect_url\",\"url\":\"wss://x\"}"})");
  upstream.command(R"({"cmd":"emit","frame":"{\"type\":\"message\",broken"})");
  upstream.command(R"({"cmd":"emit","frame":"[1,2,3]"})");
  upstream.command(R"({"cmd":"emit","frame":"{\"type\":\"message\",\"text\":\"after\"}"})");

  REQUIRE(rtm::test::eventually([&] { return sink.event_count() >= 4; }, 10s));
  const auto events = sink.events();
  REQUIRE(events.size() == 4);
  CHECK(events[0].name == "message");
  CHECK(events[0].payload == message);
  CHECK(events[0].team_id == "T0001");  // the connection's team, not the frame's "team"
  CHECK(events[0].enterprise_id == "E0009");
  CHECK(events[0].name_space == "slack");
  CHECK(events[1].name == "message.message_changed");
  CHECK(events[1].payload == changed);
  CHECK(events[2].name == "presence_change");
  CHECK(events[3].payload == R"({"type":"message","text":"after"})");
  const auto dead = sink.dead_letters();
  REQUIRE(dead.size() == 2);
  CHECK(dead[0].reason == "bad_json");
  CHECK(dead[0].raw == R"({"type":"message",broken)");
  CHECK(dead[1].reason == "not_an_object");
  CHECK(upstream.stat("connect_calls", "xoxb-good") == 1);
  CHECK(l.stop(s));
  CHECK(rtm::test::eventually([&] { return upstream.stat("live", "xoxb-good") == 0; }, 5s));
}

TEST_CASE("slack: goodbye, migration, a server close and a dropped TCP connection each lead to a fresh rtm.connect") {
  slack_fixture upstream({"xoxb-good:T0001"});
  recording_sink sink;
  loop l;
  auto s = l.start(slack_config("slack-main", upstream.api_url(), "xoxb-good"), sink);
  REQUIRE(rtm::test::eventually([&] { return upstream.stat("live", "xoxb-good") == 1; }, 10s));
  long calls = 1;
  for (const char* cmd :
       {R"({"cmd":"goodbye"})", R"({"cmd":"migrate"})", R"({"cmd":"close","code":1001})", R"({"cmd":"destroy"})"}) {
    upstream.command(cmd);
    ++calls;
    REQUIRE_MESSAGE(rtm::test::eventually(
                        [&] {
                          return upstream.stat("connect_calls", "xoxb-good") == calls &&
                                 upstream.stat("live", "xoxb-good") == 1;
                        },
                        10s),
                    "no new session after " << cmd);
  }
  upstream.command(R"({"cmd":"emit","frame":"{\"type\":\"message\",\"text\":\"still here\"}"})");
  CHECK(rtm::test::eventually([&] { return sink.event_count() == 1; }, 5s));
  CHECK(upstream.stat("max_live", "xoxb-good") == 1);  // never two sockets for the token
  CHECK(l.stop(s));
}

TEST_CASE("slack: a server that stops answering is replaced within ping_timeout") {
  slack_fixture upstream({"xoxb-good:T0001"});
  recording_sink sink;
  loop l;
  auto s = l.start(slack_config("slack-main", upstream.api_url(), "xoxb-good"), sink);
  REQUIRE(rtm::test::eventually([&] { return upstream.stat("live", "xoxb-good") == 1; }, 10s));
  upstream.command(R"({"cmd":"blackhole","on":true})");
  const auto since = std::chrono::steady_clock::now();
  // ping_timeout 2 s, checked every second, then the TCP connection is dropped at once (a silent peer would not
  // answer a close handshake) and a back-off of at most 1 s.
  REQUIRE(rtm::test::eventually([&] { return upstream.stat("connect_calls", "xoxb-good") == 2; }, 10s));
  const auto took = std::chrono::steady_clock::now() - since;
  CHECK(took >= 1500ms);
  CHECK(took <= 4500ms);
  upstream.command(R"({"cmd":"blackhole","on":false})");
  CHECK(rtm::test::eventually([&] { return upstream.stat("live", "xoxb-good") == 1; }, 10s));
  CHECK(upstream.stat("max_live", "xoxb-good") == 1);
  CHECK(l.stop(s));
}

TEST_CASE("slack: HTTP 429 with Retry-After: 2 delays the next rtm.connect by at least 2 s") {
  slack_fixture upstream({"xoxb-good:T0001"});
  upstream.command(R"({"cmd":"script","token":"xoxb-good","responses":[{"status":429,"retry_after":2}]})");
  recording_sink sink;
  loop l;
  auto s = l.start(slack_config("slack-main", upstream.api_url(), "xoxb-good"), sink);
  REQUIRE(rtm::test::eventually([&] { return upstream.stat("live", "xoxb-good") == 1; }, 10s));
  CHECK(upstream.stat("connect_calls", "xoxb-good") == 2);
  CHECK(upstream.connect_gap_ms("xoxb-good", 0, 1) >= 2000);
  CHECK(l.stop(s));
}

TEST_CASE("slack: a refused token backs off for long while another connection keeps serving") {
  slack_fixture upstream({"xoxb-good:T0001"});
  recording_sink bad_sink;
  recording_sink good_sink;
  loop l;
  auto bad = l.start(slack_config("slack-revoked", upstream.api_url(), "xoxb-revoked"), bad_sink);
  auto good = l.start(slack_config("slack-main", upstream.api_url(), "xoxb-good"), good_sink);
  REQUIRE(rtm::test::eventually([&] { return upstream.stat("live", "xoxb-good") == 1; }, 10s));
  for (int i = 0; i < 5; ++i) {
    upstream.command(R"({"cmd":"emit","frame":"{\"type\":\"message\",\"text\":\"x\"}"})");
  }
  CHECK(rtm::test::eventually([&] { return good_sink.event_count() == 5; }, 5s));
  std::this_thread::sleep_for(8s);
  const long calls = upstream.stat("connect_calls", "xoxb-revoked");
  CHECK(calls >= 1);
  CHECK(calls <= 3);
  CHECK(bad_sink.event_count() == 0);
  CHECK(upstream.stat("live", "xoxb-good") == 1);
  CHECK(l.stop(bad));
  CHECK(l.stop(good));
}

TEST_CASE("slack: an expired URL and transient rtm.connect errors are retried through rtm.connect") {
  slack_fixture upstream({"xoxb-good:T0001"});
  upstream.command(
      R"({"cmd":"script","token":"xoxb-good","responses":[{"expired_url":true},{"error":"internal_error"},{"status":503}]})");
  recording_sink sink;
  loop l;
  auto s = l.start(slack_config("slack-main", upstream.api_url(), "xoxb-good"), sink);
  REQUIRE(rtm::test::eventually([&] { return upstream.stat("live", "xoxb-good") == 1; }, 15s));
  CHECK(upstream.stat("connect_calls", "xoxb-good") == 4);
  CHECK(upstream.stat("max_live", "xoxb-good") == 1);
  CHECK(l.stop(s));
}

TEST_CASE("slack: 100 cut/reconnect cycles: every event of a live socket arrives once, in order; one socket at most") {
  // After hello each socket gets 5 events and a FIN once they are written; the 101st socket stays.
  constexpr int cycles = 100;
  constexpr int per_cycle = 5;
  rtm::test::node_fixture upstream("slack_server.js", {"--token", "xoxb-good:T0001", "--cycle",
                                                       std::to_string(per_cycle), "--cycles", std::to_string(cycles)});
  recording_sink sink;
  loop l;
  auto cfg = slack_config("slack-main", "http://127.0.0.1:" + std::to_string(upstream.port) + "/api/", "xoxb-good");
  cfg.reconnect = rtm::test::reconnect(5ms, 20ms, 0.5);
  const auto started = std::chrono::steady_clock::now();
  auto s = l.start(cfg, sink);
  REQUIRE(upstream.wait_count("CYCLE ", cycles, 90s));
  MESSAGE(cycles
          << " cycles took "
          << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count()
          << " ms");
  REQUIRE(rtm::test::eventually([&] { return sink.event_count() >= cycles * per_cycle; }, 10s));
  std::this_thread::sleep_for(200ms);
  const auto events = sink.events();
  CHECK(events.size() == cycles * per_cycle);
  for (std::size_t i = 0; i < events.size(); ++i) {
    const std::string expected = R"({"type":"message","text":"cycle event","cycle":)" +
                                 std::to_string(i / per_cycle + 1) + R"(,"seq":)" + std::to_string(i % per_cycle) + "}";
    REQUIRE_MESSAGE(events[i].payload == expected, "event " << i);
  }
  CHECK(sink.dead_letters().empty());
  const std::string stats = upstream.command(R"({"cmd":"stats"})", "STATS ");
  CHECK_MESSAGE(stats.find(R"("max_live":{"xoxb-good":1})") != std::string::npos, stats);
  CHECK_MESSAGE(stats.find(R"("live":{"xoxb-good":1})") != std::string::npos, stats);
  CHECK(l.stop(s));
}

TEST_CASE("slack: size limits") {
  slack_fixture upstream({"xoxb-good:T0001"});
  recording_sink sink;
  loop l;
  auto cfg = slack_config("slack-main", upstream.api_url(), "xoxb-good");
  cfg.limits.max_frame_size = 1024 * 1024;
  cfg.limits.max_event_size = 32 * 1024;
  rtm::test::stderr_capture log;
  auto s = l.start(cfg, sink);
  REQUIRE(rtm::test::eventually([&] { return upstream.stat("live", "xoxb-good") == 1; }, 10s));

  // Within the frame limit, above the event limit: dead-lettered with its first 64 KiB, the socket stays.
  upstream.command(R"({"cmd":"big","size":100000})");
  upstream.command(R"({"cmd":"emit","frame":"{\"type\":\"message\",\"text\":\"after\"}"})");
  REQUIRE(rtm::test::eventually([&] { return sink.event_count() == 1 && sink.dead_letters().size() == 1; }, 5s));
  auto dead = sink.dead_letters();
  CHECK(dead[0].reason == "event_too_large");
  CHECK(dead[0].raw.size() == rtm::pipeline::oversized_event_prefix);
  CHECK(dead[0].raw.rfind(R"({"type":"message","text":"xxx)", 0) == 0);
  CHECK(dead[0].original_size == 100000);
  CHECK(dead[0].detail.find("100000 bytes exceeds limits.max_event_size (32768 bytes)") != std::string::npos);
  CHECK(sink.events()[0].payload == R"({"type":"message","text":"after"})");
  CHECK(upstream.stat("connect_calls", "xoxb-good") == 1);

  // Above the frame limit: refused unread, which costs the socket; dead-lettered, counted, logged, replaced.
  upstream.command(R"({"cmd":"big","size":2000000})");
  REQUIRE(rtm::test::eventually([&] { return sink.dead_letters().size() == 2; }, 10s));
  dead = sink.dead_letters();
  CHECK(dead[1].reason == "frame_too_large");
  CHECK(dead[1].raw.empty());
  CHECK(dead[1].detail.find("larger than limits.max_frame_size (1048576 bytes)") != std::string::npos);
  REQUIRE(rtm::test::eventually(
      [&] { return upstream.stat("connect_calls", "xoxb-good") == 2 && upstream.stat("live", "xoxb-good") == 1; },
      10s));
  CHECK(l.reconnects("slack-main", "frame_too_large") == 1);
  upstream.command(R"({"cmd":"emit","frame":"{\"type\":\"message\",\"text\":\"again\"}"})");
  CHECK(rtm::test::eventually([&] { return sink.event_count() == 2; }, 5s));
  CHECK(upstream.stat("max_live", "xoxb-good") == 1);
  CHECK_MESSAGE(
      log.lines_with({"warn connection=slack-main ", "limits.max_frame_size (1048576 bytes)", "frame_too_large"})
              .size() == 1,
      log.text());
  CHECK(l.stop(s));
}

TEST_CASE("slack: TLS peer and host name verification, for rtm.connect over HTTPS and for the wss:// socket") {
  rtm::test::temp_pki pki;
  SUBCASE("rtm.connect: a certificate from an unknown CA is refused by default") {
    slack_fixture upstream({"xoxb-good:T0001"}, {"--tls-cert", pki.good_cert, "--tls-key", pki.good_key});
    rtm::test::stderr_capture log;
    recording_sink sink;
    loop l;
    auto s = l.start(slack_config("slack-main", upstream.https_api_url(), "xoxb-good"), sink);
    REQUIRE(rtm::test::eventually([&] { return l.reconnects("slack-main", "rtm_connect_error") >= 1; }, 10s));
    CHECK(upstream.stat("connect_calls", "xoxb-good") == 0);  // refused before any HTTP was exchanged
    CHECK_MESSAGE(!log.lines_with({"connection=slack-main ", "rtm.connect failed", "certificate"}).empty(), log.text());
    CHECK(l.stop(s));
  }
  SUBCASE("rtm.connect: a certificate for another host name is refused, even from the trusted CA") {
    slack_fixture upstream({"xoxb-good:T0001"}, {"--tls-cert", pki.other_cert, "--tls-key", pki.other_key});
    recording_sink sink;
    loop l;
    auto cfg = slack_config("slack-main", upstream.https_api_url(), "xoxb-good");
    cfg.tls.ca_file = pki.ca_cert;
    auto s = l.start(cfg, sink);
    REQUIRE(rtm::test::eventually([&] { return l.reconnects("slack-main", "rtm_connect_error") >= 1; }, 10s));
    CHECK(upstream.stat("connect_calls", "xoxb-good") == 0);
    CHECK(l.stop(s));
  }
  SUBCASE("accepted with tls.ca_file, for both") {
    slack_fixture upstream({"xoxb-good:T0001"}, {"--tls-cert", pki.good_cert, "--tls-key", pki.good_key});
    recording_sink sink;
    loop l;
    auto cfg = slack_config("slack-main", upstream.https_api_url(), "xoxb-good");
    cfg.tls.ca_file = pki.ca_cert;
    auto s = l.start(cfg, sink);
    REQUIRE(rtm::test::eventually([&] { return upstream.stat("live", "xoxb-good") == 1; }, 10s));
    upstream.command(R"({"cmd":"emit","frame":"{\"type\":\"message\",\"text\":\"over tls\"}"})");
    CHECK(rtm::test::eventually([&] { return sink.event_count() == 1; }, 5s));
    CHECK(l.stop(s));
  }
  SUBCASE("the wss:// socket: a certificate from an unknown CA is refused although rtm.connect was trusted") {
    slack_fixture upstream({"xoxb-good:T0001"},
                           {"--tls-cert", pki.good_cert, "--tls-key", pki.good_key, "--socket-tls-cert", pki.rogue_cert,
                            "--socket-tls-key", pki.rogue_key});
    rtm::test::stderr_capture log;
    recording_sink sink;
    loop l;
    auto cfg = slack_config("slack-main", upstream.https_api_url(), "xoxb-good");
    cfg.tls.ca_file = pki.ca_cert;
    auto s = l.start(cfg, sink);
    REQUIRE(rtm::test::eventually([&] { return upstream.stat("connect_calls", "xoxb-good") >= 2; }, 10s));
    CHECK(upstream.stat("max_live", "xoxb-good") == 0);
    CHECK_MESSAGE(!log.lines_with({"connection=slack-main ", "certificate was refused"}).empty(), log.text());
    CHECK(l.stop(s));
  }
  SUBCASE("the wss:// socket: a certificate for another host name is refused") {
    slack_fixture upstream({"xoxb-good:T0001"},
                           {"--tls-cert", pki.good_cert, "--tls-key", pki.good_key, "--socket-tls-cert", pki.other_cert,
                            "--socket-tls-key", pki.other_key});
    recording_sink sink;
    loop l;
    auto cfg = slack_config("slack-main", upstream.https_api_url(), "xoxb-good");
    cfg.tls.ca_file = pki.ca_cert;
    auto s = l.start(cfg, sink);
    REQUIRE(rtm::test::eventually([&] { return upstream.stat("connect_calls", "xoxb-good") >= 2; }, 10s));
    CHECK(upstream.stat("max_live", "xoxb-good") == 0);
    CHECK(l.stop(s));
  }
  SUBCASE("tls.verify false accepts both, with a warning naming the connection at every connect") {
    slack_fixture upstream({"xoxb-good:T0001"},
                           {"--tls-cert", pki.other_cert, "--tls-key", pki.other_key, "--socket-tls-cert",
                            pki.rogue_cert, "--socket-tls-key", pki.rogue_key});
    rtm::test::stderr_capture log;
    recording_sink sink;
    loop l;
    auto cfg = slack_config("slack-main", upstream.https_api_url(), "xoxb-good");
    cfg.tls.verify = false;
    auto s = l.start(cfg, sink);
    for (long round = 1; round <= 3; ++round) {
      REQUIRE(rtm::test::eventually(
          [&] {
            return upstream.stat("connect_calls", "xoxb-good") == round && upstream.stat("live", "xoxb-good") == 1;
          },
          10s));
      if (round < 3) {
        upstream.command(R"({"cmd":"destroy"})");
      }
    }
    CHECK_MESSAGE(log.lines_with({"warn connection=slack-main ", "tls.verify is false"}).size() == 3, log.text());
    CHECK(l.stop(s));
  }
}

TEST_CASE("slack: stop called twice runs both callbacks only once the socket is gone") {
  slack_fixture upstream({"xoxb-good:T0001"});
  recording_sink sink;
  loop l;
  auto s = l.start(slack_config("slack-main", upstream.api_url(), "xoxb-good"), sink);
  REQUIRE(rtm::test::eventually([&] { return upstream.stat("live", "xoxb-good") == 1; }, 10s));
  // The server ignores the close frame: the socket stays open until the client's drain and close grace are over.
  CHECK(upstream.command(R"({"cmd":"hold_close"})") == "OK 1");
  auto first = std::make_shared<std::promise<void>>();
  auto second = std::make_shared<std::promise<void>>();
  auto first_done = first->get_future();
  auto second_done = second->get_future();
  boost::asio::post(l.io(), [s, first, second] {
    s->stop([first] { first->set_value(); });
    s->stop([second] { second->set_value(); });
  });
  CHECK(second_done.wait_for(500ms) == std::future_status::timeout);
  CHECK(upstream.stat("live", "xoxb-good") == 1);  // still open: a successor must not have been told to go ahead
  CHECK(first_done.wait_for(rtm::test::patience(10s)) == std::future_status::ready);
  CHECK(second_done.wait_for(rtm::test::patience(1s)) == std::future_status::ready);
  CHECK(rtm::test::eventually([&] { return upstream.stat("live", "xoxb-good") == 0; }, 5s));
}

TEST_CASE("slack: a stop delivers every frame the server sent before it; what the close discards is counted") {
  slack_fixture upstream({"xoxb-good:T0001"});
  recording_sink sink;
  loop l;
  auto s = l.start(slack_config("slack-main", upstream.api_url(), "xoxb-good"), sink);
  REQUIRE(rtm::test::eventually([&] { return upstream.stat("live", "xoxb-good") == 1; }, 10s));
  SUBCASE("while reading is paused for backpressure") {
    // The frames wait in our socket's receive buffer; a stop must read and deliver them, not throw them away. The
    // pause takes effect at the next frame read: one priming frame makes sure it has.
    l.pause(s);
    upstream.command(R"({"cmd":"emit","frame":"{\"type\":\"message\",\"seq\":-1}"})");
    REQUIRE(rtm::test::eventually([&] { return sink.event_count() == 1; }, 5s));
    for (int i = 0; i < 50; ++i) {
      upstream.command(R"({"cmd":"emit","frame":"{\"type\":\"message\",\"seq\":)" + std::to_string(i) + "}\"}");
    }
    std::this_thread::sleep_for(300ms);
    CHECK(sink.event_count() == 1);
    CHECK(l.stop(s));
    const auto events = sink.events();
    REQUIRE(events.size() == 51);
    for (std::size_t i = 1; i < events.size(); ++i) {
      CHECK(events[i].payload == R"({"type":"message","seq":)" + std::to_string(i - 1) + "}");
    }
    CHECK(l.failed("slack-main", "discarded_on_close") == 0);
  }
  SUBCASE("while the server keeps sending through the drain") {
    CHECK(upstream.command(R"({"cmd":"flood","interval_ms":2})") == "OK 1");
    REQUIRE(rtm::test::eventually([&] { return sink.event_count() >= 20; }, 10s));
    CHECK(l.stop(s));
    CHECK(rtm::test::eventually([&] { return upstream.stat("live", "xoxb-good") == 0; }, 5s));
    // Every frame the server sent while the socket was open was either delivered or counted as discarded.
    const auto sent = static_cast<std::uint64_t>(upstream.stat("flood_sent", "xoxb-good"));
    CHECK(sink.event_count() + l.failed("slack-main", "discarded_on_close") == sent);
  }
  SUBCASE("frames sent after our close frame are counted as discarded") {
    // The server answers our close frame only after sending 7 more frames: they arrive after the drain, inside the
    // close handshake, where websocketpp drops them. Nothing may vanish uncounted.
    upstream.command(R"({"cmd":"emit","frame":"{\"type\":\"message\",\"seq\":0}"})");
    REQUIRE(rtm::test::eventually([&] { return sink.event_count() == 1; }, 5s));
    CHECK(upstream.command(R"({"cmd":"send_after_close","count":7})") == "OK 1");
    CHECK(l.stop(s));
    CHECK(sink.event_count() == 1);
    CHECK(l.failed("slack-main", "discarded_on_close") == 7);
  }
}

TEST_CASE("slack: a Retry-After beyond 15 minutes is capped, with a warning") {
  rtm::test::stderr_capture log;
  slack_fixture upstream({"xoxb-good:T0001"});
  upstream.command(R"({"cmd":"script","token":"xoxb-good","responses":[{"status":429,"retry_after":86400}]})");
  recording_sink sink;
  loop l;
  auto s = l.start(slack_config("slack-main", upstream.api_url(), "xoxb-good"), sink);
  REQUIRE(rtm::test::eventually([&] { return l.reconnects("slack-main", "rate_limited") == 1; }, 10s));
  CHECK(l.stop(s));
  CHECK_MESSAGE(log.lines_with({"connection=slack-main ", "Retry-After", "86400 s", "cap of 900 s"}).size() == 1,
                log.text());
  CHECK_MESSAGE(log.lines_with({"connection=slack-main ", "retrying in no less than 900000 ms"}).size() == 1,
                log.text());
}

TEST_CASE("slack: a ping_timeout below 2 s does not make pings exceed one a second") {
  rtm::test::stderr_capture log;
  slack_fixture upstream({"xoxb-good:T0001"});
  recording_sink sink;
  loop l;
  auto cfg = slack_config("slack-main", upstream.api_url(), "xoxb-good");
  cfg.ping_timeout = 400ms;
  auto s = l.start(cfg, sink);
  REQUIRE(rtm::test::eventually([&] { return upstream.stat("live", "xoxb-good") == 1; }, 10s));
  const long before = upstream.total("pings");
  std::this_thread::sleep_for(4s);
  const long pings = upstream.total("pings") - before;
  // One a second at most over 4 s (plus one for the window's edges), and the healthy idle socket stays.
  CHECK(pings <= 5);
  CHECK(pings >= 1);
  CHECK(l.reconnects("slack-main", "ping_timeout") == 0);
  CHECK(l.stop(s));
  CHECK_MESSAGE(log.lines_with({"connection=slack-main ", "ping_timeout 400 ms is below 2000 ms"}).size() == 1,
                log.text());
}
