// The Acme session's life cycle against real socket.io servers: handshake and authentication, refused credentials,
// cut and silent connections, Engine.IO v3, backpressure pauses, stops in every phase.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "upstream/socketio/acme_rig.hpp"

using namespace std::chrono_literals;
using namespace rtm::test::acme;
using rtm::test::eventually;
using rtm::test::recording_sink;

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
  cfg.reconnect = rtm::test::reconnect(50ms, 2000ms, 0.5);
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
  cfg.reconnect = rtm::test::reconnect(50ms, 2000ms, 0.0);
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
  cfg.reconnect = rtm::test::reconnect(50ms, 400ms, 0.2);
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
  cfg.reconnect = rtm::test::reconnect(5ms, 20ms, 0.5);
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
  // A read already in flight when the pause began may still complete with whatever bytes arrived together: the
  // first event goes out alone, so that read can carry it and nothing more.
  CHECK(server.emit("message:updated", updated_payload) == "1");
  std::this_thread::sleep_for(200ms);
  for (int i = 1; i < 5; ++i) {
    CHECK(server.emit("message:updated", updated_payload) == "1");
  }
  std::this_thread::sleep_for(2500ms);  // well past both sides' bound (300 + 700 ms)
  // At most the first event gets through.
  CHECK(r.sink.event_count() <= 1);
  r.resume();
  CHECK(eventually([&] { return r.sink.event_count() == 5; }, 5s));
  CHECK(r.reconnects("ping_timeout") == 0);
  REQUIRE(r.wait_live());
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

TEST_CASE("acme: stop in any phase ends with no socket and calls done") {
  SUBCASE("while backing off after a refusal") {
    acme_server server({"--token", "id-1:key-1"});
    auto cfg = acme_config(server.port);
    cfg.key.value = "wrong";
    cfg.reconnect = rtm::test::reconnect(50ms, 5000ms, 0.0);
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
  cfg.reconnect = rtm::test::reconnect(50ms, 1000ms, 0.0);
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
