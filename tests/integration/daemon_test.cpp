// The daemon end to end, as operators and downstream consumers see it: the real rtm-bridge binary between real
// upstreams (npm socket.io as Acme, node ws + http as Slack) and the librdkafka mock cluster hosted by this test
// process, with what landed read back by kcat.
#include <doctest/doctest.h>

#include <csignal>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "kafka/embedded_cluster.hpp"
#include "kafka/murmur2.hpp"
#include "support/daemon.hpp"
#include "support/kcat.hpp"
#include "support/process.hpp"

using namespace std::chrono_literals;

namespace {

using namespace rtm::test;  // the integration fixtures: support/daemon.hpp, kcat.hpp, process.hpp

std::string json_field(const std::string& json, const std::string& field) {
  const auto at = json.find("\"" + field + "\":\"");
  REQUIRE_MESSAGE(at != std::string::npos, field << " in " << json);
  const auto start = at + field.size() + 4;
  return json.substr(start, json.find('"', start) - start);
}

// The envelope's `data`: everything after "data": up to the envelope's closing brace.
std::string data_of(const std::string& envelope) {
  const auto at = envelope.find(",\"data\":");
  REQUIRE(at != std::string::npos);
  REQUIRE(envelope.back() == '}');
  return envelope.substr(at + 8, envelope.size() - at - 9);
}

}  // namespace

TEST_CASE("daemon: seed events land with the contract's key, headers, envelope and Java partition") {
  rtm::kafka::embedded_cluster cluster;
  cluster.create_topic("rtm.message", 6);
  cluster.create_topic("rtm.session", 6);
  auto upstream = acme_upstream();
  rtm::test::temp_dir dir;
  daemon_process d(
      dir,
      "kafka:\n  brokers: \"" + cluster.bootstrap_servers() + "\"\n  shutdown_timeout: 20s\nconnections:\n" +
          acme_connection("acme-main", upstream.port(), "acme-id", "ACME_KEY") + "metrics:\n  listen: \"\"\n",
      {{"ACME_KEY", "acme-K3y-5ecret-77"}});
  REQUIRE_MESSAGE(upstream.wait_event("AUTH acme-id ok", 30s), d.log());

  const std::string team_a = "42286ab3-b29a-4fde-8538-da0ae501d825";
  const std::string team_b = "8c1b7e1e-4c8e-4f0a-9d65-0f3f8b8f2a11";
  const std::string availability = R"({"team_id":")" + team_a + R"(","session_id":"s1","availability":"online"})";
  const std::string verify =
      R"({"team_id":")" + team_b + R"(","session_id":"s2","is_verified":true,"verifications":[{"identity":"email"}]})";
  const std::string updated =
      R"({"team_id":")" + team_a + R"(","session_id":"s1","fingerprint":9007199254740993123,"content":"héllo ✓ 日本"})";
  upstream.command(R"({"cmd":"emit","event":"session:update_availability","payload":")" +
                   std::string(R"({\"team_id\":\")") + team_a +
                   R"(\",\"session_id\":\"s1\",\"availability\":\"online\"}"})");
  upstream.command(R"({"cmd":"emit","event":"session:update_verify","payload":")" + std::string(R"({\"team_id\":\")") +
                   team_b +
                   R"(\",\"session_id\":\"s2\",\"is_verified\":true,\"verifications\":[{\"identity\":\"email\"}]}"})");
  upstream.command(R"({"cmd":"emit","event":"message:updated","payload":")" + std::string(R"({\"team_id\":\")") +
                   team_a +
                   R"(\",\"session_id\":\"s1\",\"fingerprint\":9007199254740993123,\"content\":\"héllo ✓ 日本\"}"})");
  // Two that cannot be normalized: bad JSON, and an event without a team id.
  upstream.command(R"({"cmd":"raw","frame":"42[broken"})");
  upstream.command(R"({"cmd":"emit","event":"message:updated","payload":"{\"session_id\":\"s9\"}"})");
  REQUIRE(d.log_has("", 1s));
  std::this_thread::sleep_for(1s);
  d.signal(SIGTERM);
  const auto code = d.wait(30s);
  REQUIRE(code.has_value());
  CHECK(*code == 0);

  const auto sessions = rtm::test::read_topic(cluster.bootstrap_servers(), "rtm.session");
  const auto messages = rtm::test::read_topic(cluster.bootstrap_servers(), "rtm.message");
  const auto dead = rtm::test::read_topic(cluster.bootstrap_servers(), "rtm.dead-letter");
  REQUIRE(sessions.size() == 2);
  REQUIRE(messages.size() == 1);
  REQUIRE(dead.size() == 2);

  std::map<std::string, const rtm::test::consumed*> by_event;
  for (const auto& r : sessions) {
    by_event[*r.header("rtm-event")] = &r;
  }
  by_event["message:updated"] = &messages[0];
  const std::map<std::string, std::pair<std::string, std::string>> expected{
      {"session:update_availability", {team_a, availability}},
      {"session:update_verify", {team_b, verify}},
      {"message:updated", {team_a, updated}}};
  std::set<std::string> ids;
  for (const auto& entry : expected) {
    // Named, not structured bindings: doctest's macros capture them in lambdas, which clang 14 refuses.
    const std::string& event = entry.first;
    const auto& want = entry.second;
    REQUIRE_MESSAGE(by_event.count(event) == 1, event);
    const auto& r = *by_event[event];
    CHECK(r.key == want.first);
    CHECK(r.header("rtm-connection") == "acme-main");
    CHECK(r.header("rtm-source") == "acme");
    CHECK(r.header("content-type") == "application/json");
    CHECK(r.payload.rfind(R"({"schema":"rtm-bridge.event/v1","id":")", 0) == 0);
    CHECK(json_field(r.payload, "source") == "acme");
    CHECK(json_field(r.payload, "connection") == "acme-main");
    CHECK(json_field(r.payload, "event") == event);
    CHECK(json_field(r.payload, "team_id") == want.first);
    CHECK(json_field(r.payload, "received_at").size() == 27);  // 2026-11-23T07:36:49.123456Z
    CHECK(data_of(r.payload) == want.second);                  // byte for byte: 2^53+ integers, UTF-8
    CHECK(r.partition == rtm::kafka::murmur2_partition(want.first, 6));
    ids.insert(json_field(r.payload, "id"));
  }
  CHECK(ids.size() == 3);
  std::multiset<std::string> reasons;
  for (const auto& r : dead) {
    reasons.insert(r.header("rtm-error").value_or("?"));
    CHECK(r.header("rtm-connection") == "acme-main");
  }
  CHECK(reasons.count("no_team_id") == 1);
  CHECK(reasons.size() == 2);
  // Secrets never reach the logs.
  CHECK(d.log().find("acme-K3y-5ecret-77") == std::string::npos);
}

TEST_CASE("daemon: SIGTERM right after 20,000 events over 16 teams: all in Kafka, in per-team order, exit 0") {
  rtm::kafka::embedded_cluster cluster;
  cluster.create_topic("rtm.message", 8);
  // Socket.IO's default heartbeat: a 20,000-event burst is a backlog of seconds for a slow (valgrind) daemon, and the
  // ping queued behind it arrives that late; the heartbeat is not what this case is about.
  auto upstream = acme_upstream(25000, 20000);
  rtm::test::temp_dir dir;
  daemon_process d(dir,
                   "kafka:\n  brokers: \"" + cluster.bootstrap_servers() +
                       "\"\n  shutdown_timeout: 60s\nconnections:\n" +
                       acme_connection("acme-main", upstream.port(), "acme-id", "ACME_KEY") +
                       "metrics:\n  listen: \"127.0.0.1:0\"\n",
                   {{"ACME_KEY", "acme-K3y-5ecret-77"}});
  const std::string port = d.metrics_port();
  REQUIRE_MESSAGE(upstream.wait_event("AUTH acme-id ok", 30s), d.log());
  const int total = static_cast<int>(rtm::test::volume(20000));
  upstream.command(R"({"cmd":"burst","event":"message:updated","count":)" + std::to_string(total) + R"(,"teams":16})");
  // "Right after": as soon as the daemon has received the last event, before Kafka can have caught up.
  std::uint64_t received = 0;
  REQUIRE_MESSAGE(rtm::test::eventually(
                      [&] {
                        received = metric_sum(http_get("http://127.0.0.1:" + port + "/metrics"),
                                              "rtm_bridge_events_received_total");
                        return received == static_cast<std::uint64_t>(total);
                      },
                      60s),
                  received << " of " << total << " received; daemon log:\n"
                           << d.log());
  d.signal(SIGTERM);
  const auto code = d.wait(90s);
  REQUIRE(code.has_value());
  CHECK(*code == 0);

  const auto records = rtm::test::read_topic(cluster.bootstrap_servers(), "rtm.message");
  CHECK(records.size() == static_cast<std::size_t>(total));
  std::map<std::string, int> next_seq;
  std::set<std::string> ids;
  int out_of_order = 0;
  for (const auto& r : records) {  // offset order within each partition; a team lives in one partition
    REQUIRE(r.key.has_value());
    const auto at = r.payload.find("\"seq\":");
    REQUIRE(at != std::string::npos);
    const int seq = std::stoi(r.payload.substr(at + 6));
    int& expected = next_seq[*r.key];
    if (seq != expected) {
      ++out_of_order;
    }
    expected = seq + 1;
    ids.insert(json_field(r.payload, "id"));
  }
  CHECK(out_of_order == 0);
  CHECK(next_seq.size() == 16);
  CHECK(ids.size() == static_cast<std::size_t>(total));
}

TEST_CASE("daemon: an Acme and a Slack connection run side by side") {
  rtm::kafka::embedded_cluster cluster;
  auto acme = acme_upstream();
  fixture slack(
      {rtm::test::env_path("RTM_FIXTURES_DIR") + "/slack_server.js", "--token", "xoxb-sl4ck-T0k3n:T0001:E0001"});
  rtm::test::temp_dir dir;
  daemon_process d(dir,
                   "kafka:\n  brokers: \"" + cluster.bootstrap_servers() + "\"\nconnections:\n" +
                       acme_connection("acme-main", acme.port(), "acme-id", "ACME_KEY") +
                       rtm::test::slack_connection("slack-main", slack.port(), "SLACK_TOKEN") +
                       "metrics:\n  listen: \"\"\n",
                   {{"ACME_KEY", "acme-K3y-5ecret-77"}, {"SLACK_TOKEN", "xoxb-sl4ck-T0k3n"}});
  REQUIRE_MESSAGE(acme.wait_event("AUTH acme-id ok", 30s), d.log());
  REQUIRE_MESSAGE(d.log_has("connection=slack-main live", 30s), d.log());
  acme.command(R"({"cmd":"emit","event":"message:updated","payload":"{\"team_id\":\"T-acme\",\"n\":1}"})");
  slack.command(
      R"({"cmd":"emit","frame":"{\"type\":\"message\",\"subtype\":\"message_changed\",\"ts\":\"1582838099.000600\"}"})");
  std::this_thread::sleep_for(1s);
  d.signal(SIGTERM);
  REQUIRE(d.wait(30s) == 0);
  const auto acme_records = rtm::test::read_topic(cluster.bootstrap_servers(), "rtm.message");
  const auto slack_records = rtm::test::read_topic(cluster.bootstrap_servers(), "rtm.slack");
  REQUIRE(acme_records.size() == 1);
  REQUIRE(slack_records.size() == 1);
  CHECK(acme_records[0].key == "T-acme");
  CHECK(slack_records[0].key == "T0001");
  CHECK(slack_records[0].header("rtm-event") == "message.message_changed");
  CHECK(slack_records[0].header("rtm-source") == "slack");
  CHECK(slack_records[0].header("rtm-enterprise") == "E0001");
  CHECK(data_of(slack_records[0].payload) ==
        R"({"type":"message","subtype":"message_changed","ts":"1582838099.000600"})");
  const std::string log = d.log();
  CHECK(log.find("xoxb-sl4ck-T0k3n") == std::string::npos);
  CHECK(log.find("acme-K3y-5ecret-77") == std::string::npos);
}

TEST_CASE("daemon: SIGHUP reload adds, removes and changes connections and leaves the others untouched") {
  rtm::kafka::embedded_cluster cluster;
  auto upstream = acme_upstream();
  rtm::test::temp_dir dir;
  const std::string head = "kafka:\n  brokers: \"" + cluster.bootstrap_servers() + "\"\nconnections:\n";
  const std::string tail = "metrics:\n  listen: \"\"\n";
  const std::string a = acme_connection("acme-a", upstream.port(), "acme-id", "ACME_KEY");
  const std::string b = acme_connection("acme-b", upstream.port(), "acme-id2", "ACME_KEY2");
  daemon_process d(dir, head + a + tail, {{"ACME_KEY", "acme-K3y-5ecret-77"}, {"ACME_KEY2", "acme-K3y-5ecret-88"}});
  REQUIRE_MESSAGE(upstream.wait_event("AUTH acme-id ok", 30s), d.log());

  // Added: b starts; a is untouched (no second authentication).
  dir.write("rtm-bridge.yaml", head + a + b + tail);
  d.signal(SIGHUP);
  REQUIRE_MESSAGE(upstream.wait_event("AUTH acme-id2 ok", 30s), d.log());
  CHECK(d.log_has("reload done: 1 added, 0 removed, 0 changed", 10s));

  // Invalid: rejected, the daemon keeps running on the old config.
  dir.write("rtm-bridge.yaml", head + a + b + "  - name: BAD NAME\n" + tail);
  d.signal(SIGHUP);
  CHECK(d.log_has("reload rejected", 10s));

  // Changed: b is torn down, then started with its new settings; removed: nothing of a remains.
  const std::string b_changed =
      acme_connection("acme-b", upstream.port(), "acme-id2", "ACME_KEY2") + "    events: [\"message:*\"]\n";
  dir.write("rtm-bridge.yaml", head + b_changed + tail);
  d.signal(SIGHUP);
  CHECK(d.log_has("reload done: 0 added, 1 removed, 1 changed", 10s));
  CHECK(upstream.wait_event("AUTH acme-id2 ok", 30s));
  CHECK(upstream.wait_event("DISCONNECT acme-id ", 10s));
  const std::string stats = upstream.command(R"({"cmd":"stats"})");
  CHECK_MESSAGE(stats.find(R"("max_live":{"acme-id":1,"acme-id2":1})") != std::string::npos, stats);
  CHECK(upstream.count_events("AUTH acme-id ok") == 0);  // a authenticated once, at start, never again

  d.signal(SIGTERM);
  CHECK(d.wait(30s) == 0);
}

// The reload window: the old socket of a changed connection is still closing (the server does not answer the close
// handshake, so it lasts the close grace) when the next SIGHUP arrives. Whatever the files say, the token never has
// two sockets (the fixture's max_connections counts Engine.IO connections, i.e. sockets, of its one token here), and
// the latest file wins: nothing an earlier reload deferred comes back.
TEST_CASE("daemon: two SIGHUPs while an old socket is still closing: the latest file wins, one socket per token") {
  rtm::kafka::embedded_cluster cluster;
  auto upstream = acme_upstream(10000, 10000);  // slow server pings: the held close is not cut short by a timeout
  rtm::test::temp_dir dir;
  const std::string head = "kafka:\n  brokers: \"" + cluster.bootstrap_servers() + "\"\nconnections:\n";
  const std::string tail = "metrics:\n  listen: \"\"\n";
  const std::string a = acme_connection("acme-a", upstream.port(), "acme-id", "ACME_KEY");
  const std::string with_events = "    events: [\"message:*\"]\n";
  daemon_process d(dir, head + a + tail, {{"ACME_KEY", "acme-K3y-5ecret-77"}});
  REQUIRE_MESSAGE(upstream.wait_event("AUTH acme-id ok", 30s), d.log());

  SUBCASE("changed, then removed and its token given to a new name") {
    CHECK(upstream.command(R"({"cmd":"hold_close"})") == "OK hold_close 1");
    dir.write("rtm-bridge.yaml", head + a + with_events + tail);
    d.signal(SIGHUP);
    REQUIRE(d.log_has("reload done: 0 added, 0 removed, 1 changed", 10s));
    dir.write("rtm-bridge.yaml", head + acme_connection("acme-b", upstream.port(), "acme-id", "ACME_KEY") + tail);
    d.signal(SIGHUP);
    REQUIRE(d.log_has("reload done: 1 added, 1 removed, 0 changed", 10s));
    // b connects once a's socket is gone; a never comes back with the first reload's settings.
    REQUIRE_MESSAGE(upstream.wait_event("AUTH acme-id ok", 30s), d.log());
    CHECK(upstream.count_events("AUTH acme-id ok") == 0);
    std::this_thread::sleep_for(3s);
    CHECK(upstream.count_events("AUTH acme-id ok") == 0);
  }
  SUBCASE("changed twice: the second edit wins") {
    CHECK(upstream.command(R"({"cmd":"hold_close"})") == "OK hold_close 1");
    dir.write("rtm-bridge.yaml", head + a + with_events + tail);
    d.signal(SIGHUP);
    REQUIRE(d.log_has("reload done: 0 added, 0 removed, 1 changed", 10s));
    dir.write("rtm-bridge.yaml", head + a + "    events: [\"session:*\"]\n" + tail);
    d.signal(SIGHUP);
    // The second reload's own line (the first one printed the same).
    REQUIRE(rtm::test::eventually(
        [&d] {
          const std::string log = d.log();
          const std::string line = "reload done: 0 added, 0 removed, 1 changed";
          const auto first = log.find(line);
          return first != std::string::npos && log.find(line, first + 1) != std::string::npos;
        },
        10s));
    REQUIRE_MESSAGE(upstream.wait_event("AUTH acme-id ok [\"session:", 30s), d.log());
    std::this_thread::sleep_for(3s);
    CHECK(upstream.count_events("AUTH acme-id ok") == 0);
  }
  SUBCASE("renamed: the new name waits for the old socket of the same token") {
    CHECK(upstream.command(R"({"cmd":"hold_close"})") == "OK hold_close 1");
    dir.write("rtm-bridge.yaml", head + acme_connection("acme-renamed", upstream.port(), "acme-id", "ACME_KEY") + tail);
    d.signal(SIGHUP);
    REQUIRE(d.log_has("reload done: 1 added, 1 removed, 0 changed", 10s));
    REQUIRE_MESSAGE(upstream.wait_event("AUTH acme-id ok", 30s), d.log());
  }
  const std::string stats = upstream.command(R"({"cmd":"stats"})");
  CHECK_MESSAGE(stats.find(R"("max_connections":1,)") != std::string::npos, stats);
  d.signal(SIGTERM);
  CHECK(d.wait(30s) == 0);
}

TEST_CASE("daemon: a second instance on the same spool directory exits 78 naming the first one's PID") {
  rtm::kafka::embedded_cluster cluster;
  auto upstream = acme_upstream();
  rtm::test::temp_dir dir;
  const std::string config =
      "kafka:\n  brokers: \"" + cluster.bootstrap_servers() + "\"\n  shutdown_timeout: 5s\nspool:\n  path: \"" +
      dir.file("spool") + "\"\nconnections:\n" + acme_connection("acme-main", upstream.port(), "acme-id", "ACME_KEY") +
      "metrics:\n  listen: \"\"\n";
  daemon_process first(dir, config, {{"ACME_KEY", "acme-K3y-5ecret-77"}});
  REQUIRE_MESSAGE(first.log_has("spool: " + dir.file("spool"), 30s), first.log());
  rtm::test::temp_dir other;
  daemon_process second(other, config, {{"ACME_KEY", "acme-K3y-5ecret-77"}});
  const std::optional<int> code = second.wait(30s);
  REQUIRE(code.has_value());
  CHECK(*code == 78);
  CHECK(second.log().find("is in use by another rtm-bridge process (PID " + std::to_string(first.pid()) + ")") !=
        std::string::npos);
  first.signal(SIGTERM);
  CHECK(first.wait(30s) == std::optional<int>(0));
}

TEST_CASE("daemon: slack presence_sub asks rtm.connect for it and sends the list after every hello") {
  rtm::kafka::embedded_cluster cluster;
  fixture upstream({env_path("RTM_FIXTURES_DIR") + "/slack_server.js", "--token", "xoxb-presence:T777"});
  rtm::test::temp_dir dir;
  daemon_process d(dir,
                   "kafka:\n  brokers: \"" + cluster.bootstrap_servers() +
                       "\"\n  shutdown_timeout: 5s\nconnections:\n" +
                       slack_connection("slack-main", upstream.port(), "SLACK_TOKEN") +
                       "    presence_sub: [\"U061F7AUR\", \"W012A3CDE\"]\nmetrics:\n  listen: \"\"\n",
                   {{"SLACK_TOKEN", "xoxb-presence"}});
  REQUIRE_MESSAGE(upstream.wait_event("RTM_CONNECT batch_presence_aware=1&presence_sub=true", 30s), d.log());
  const std::string subscribe = R"(CLIENT {"type":"presence_sub","ids":["U061F7AUR","W012A3CDE"]})";
  REQUIRE_MESSAGE(upstream.wait_event(subscribe, 30s), d.log());
  upstream.command(R"({"cmd":"close","code":1001})");
  // The reconnect: rtm.connect again, and the subscription again after its hello (wait_event takes each line once).
  CHECK_MESSAGE(upstream.wait_event("RTM_CONNECT batch_presence_aware=1&presence_sub=true", 30s), d.log());
  CHECK_MESSAGE(upstream.wait_event(subscribe, 30s), d.log());
  d.signal(SIGTERM);
  CHECK(d.wait(30s) == std::optional<int>(0));
}
