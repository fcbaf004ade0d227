// What the Acme session does with what the server sends and with its configuration: byte-exact events, garbage
// frames, size limits, acknowledgements, endpoint discovery, TLS verification, event globs, team ids.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "upstream/pki.hpp"
#include "upstream/socketio/acme_rig.hpp"
#include "util/json_writer.hpp"

using namespace std::chrono_literals;
using namespace rtm::test::acme;
using rtm::test::eventually;
using rtm::test::recording_sink;
using rtm::test::temp_pki;

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

TEST_CASE("acme: protocol 4 against a Socket.IO v2 server says to set protocol 3") {
  acme_server server({"--eio3", "--token", "id-1:key-1", "--ping-interval", "300", "--ping-timeout", "300"});
  auto cfg = acme_config(server.port);
  cfg.reconnect = rtm::test::reconnect(200ms, 1000ms, 0.0);
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
    cfg.reconnect = rtm::test::reconnect(50ms, 2000ms, 0.5);
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
  // The test server sends everything to everyone; the session hands over only what the globs match.
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
  cfg.reconnect = rtm::test::reconnect(50ms, 2000ms, 0.0);
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
