// kind: slack_socket end to end: the real daemon against the Socket Mode test upstream
// (tests/fixtures/slack_socket_server.js: node http + ws) and the librdkafka mock cluster hosted by this test, with
// what landed read back by kcat. Acknowledgement after durability, redeliveries, disconnect reasons, liveness.
#include <doctest/doctest.h>

#include <algorithm>
#include <csignal>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "kafka/embedded_cluster.hpp"
#include "support/daemon.hpp"
#include "support/kcat.hpp"
#include "support/process.hpp"

using namespace std::chrono_literals;

namespace {

using namespace rtm::test;

constexpr const char* app_token = "xapp-1-A0APP-1234-abcdef";

// Redeliveries 5 s apart unless a case asks otherwise: Slack's first retry comes "nearly immediately", but a case
// about records should not depend on how fast a sanitizer build on a busy machine gets them confirmed.
fixture socket_upstream(std::vector<std::string> extra = {"--retry-ms", "5000,5000,5000"}) {
  std::vector<std::string> argv{env_path("RTM_FIXTURES_DIR") + "/slack_socket_server.js", "--token", app_token};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return fixture(argv);
}

std::string socket_config(const rtm::kafka::embedded_cluster& cluster, const fixture& upstream,
                          const std::string& extra_kafka = "", const std::string& ping_timeout = "3s") {
  return "kafka:\n  brokers: \"" + cluster.bootstrap_servers() + "\"\n  shutdown_timeout: 10s\n" + extra_kafka +
         "connections:\n  - name: slack-app\n    kind: slack_socket\n    url: \"http://127.0.0.1:" + upstream.port() +
         "/api/\"\n    key: {env: SLACK_APP_TOKEN}\n    reconnect: {initial_delay: 200ms, max_delay: 1s}\n"
         "    ping_timeout: " +
         ping_timeout + "\nmetrics:\n  listen: \"127.0.0.1:0\"\n";
}

// A number from the fixture's STATS line.
std::int64_t stat(fixture& upstream, const std::string& name) {
  const std::string line = upstream.command(R"({"cmd":"stats"})");
  const std::string key = "\"" + name + "\":";
  const auto at = line.find(key);
  REQUIRE_MESSAGE(at != std::string::npos, name << " in " << line);
  return std::stoll(line.substr(at + key.size()));
}

std::string json_string(const std::string& json, const std::string& field) {
  const auto at = json.find("\"" + field + "\":\"");
  if (at == std::string::npos) {
    return {};
  }
  const auto start = at + field.size() + 4;
  return json.substr(start, json.find('"', start) - start);
}

const std::map<std::string, std::string> token_env{{"SLACK_APP_TOKEN", app_token}};

}  // namespace

TEST_CASE("slack_socket: events of two workspaces land keyed by team, acknowledged once Kafka confirmed them") {
  rtm::kafka::embedded_cluster cluster;
  cluster.create_topic("rtm.slack", 4);
  auto upstream = socket_upstream();
  temp_dir dir;
  daemon_process d(dir, socket_config(cluster, upstream), token_env);
  REQUIRE_MESSAGE(d.log_has("live (Socket Mode)", 30s), d.log());
  upstream.command(
      R"({"cmd":"event","team_id":"T111","event_id":"Ev111","event":"{\"type\":\"message\",\"subtype\":\"message_changed\",\"channel\":\"C1\",\"n\":12345678901234567890}"})");
  upstream.command(
      R"({"cmd":"event","team_id":"T222","event_id":"Ev222","event":{"type":"reaction_added","user":"U2"}})");
  upstream.command(R"({"cmd":"interactive","team_id":"T111","type":"block_actions"})");
  upstream.command(R"({"cmd":"slash","team_id":"T222","command":"/deploy"})");
  REQUIRE_MESSAGE(eventually([&] { return stat(upstream, "acks") == 4; }, 20s), d.log());
  CHECK(stat(upstream, "bad_acks") == 0);
  CHECK(stat(upstream, "retries_sent") == 0);
  CHECK(stat(upstream, "token_in_body") == 0);

  const auto records = read_topic(cluster.bootstrap_servers(), "rtm.slack");
  REQUIRE(records.size() == 4);
  std::map<std::string, consumed> by_event;
  for (const auto& r : records) {
    by_event[r.header("rtm-event").value_or("?")] = r;
  }
  REQUIRE(by_event.count("message.message_changed") == 1);
  const consumed& changed = by_event["message.message_changed"];
  CHECK(changed.key == std::optional<std::string>("T111"));
  CHECK(json_string(changed.payload, "id") == "slack-app:Ev111");
  CHECK(changed.payload.find("12345678901234567890") != std::string::npos);  // data byte for byte
  CHECK(changed.header("rtm-source") == std::optional<std::string>("slack"));
  CHECK_FALSE(changed.header("rtm-retry-attempt").has_value());
  REQUIRE(by_event.count("reaction_added") == 1);
  CHECK(by_event["reaction_added"].key == std::optional<std::string>("T222"));
  REQUIRE(by_event.count("interactive.block_actions") == 1);
  CHECK(by_event["interactive.block_actions"].key == std::optional<std::string>("T111"));
  REQUIRE(by_event.count("slash_commands") == 1);
  CHECK(by_event["slash_commands"].key == std::optional<std::string>("T222"));
  const std::string metrics = http_get("http://127.0.0.1:" + d.metrics_port() + "/metrics");
  CHECK(metrics.find("rtm_bridge_acks_total{connection=\"slack-app\"} 4") != std::string::npos);
  CHECK(metrics.find("rtm_bridge_ack_latency_seconds_count 4") != std::string::npos);
  d.signal(SIGTERM);
  CHECK(d.wait(30s) == std::optional<int>(0));
}

TEST_CASE("slack_socket: while every broker is down no events_api envelope is acknowledged; interactive within 1 s") {
  rtm::kafka::embedded_cluster cluster;
  cluster.create_topic("rtm.slack", 4);
  // Retries far apart: this case is about acknowledgements, not redeliveries.
  auto upstream = socket_upstream({"--retry-ms", "60000"});
  temp_dir dir;
  daemon_process d(dir, socket_config(cluster, upstream), token_env);
  REQUIRE_MESSAGE(d.log_has("live (Socket Mode)", 30s), d.log());
  cluster.set_broker_down(-1);
  upstream.command(R"({"cmd":"events","count":50,"teams":["T1","T2"]})");
  const auto interactive_at = std::chrono::steady_clock::now();
  upstream.command(R"({"cmd":"interactive","team_id":"T1","type":"view_submission"})");
  REQUIRE(eventually([&] { return stat(upstream, "acks") >= 1; }, 5s));
  CHECK(std::chrono::steady_clock::now() - interactive_at < patience(1s));
  std::this_thread::sleep_for(patience(2s));
  CHECK(stat(upstream, "acks") == 1);  // only the interactive one
  CHECK(stat(upstream, "unacked") == 50);
  cluster.set_broker_up(-1);
  REQUIRE_MESSAGE(eventually([&] { return stat(upstream, "acked_event_ids") == 50; }, 60s), d.log());
  const auto records = read_topic(cluster.bootstrap_servers(), "rtm.slack");
  std::set<std::string> ids;
  for (const auto& r : records) {
    ids.insert(json_string(r.payload, "id"));
  }
  CHECK(ids.size() == 51);  // nothing lost
  d.signal(SIGTERM);
  CHECK(d.wait(30s) == std::optional<int>(0));
}

TEST_CASE("slack_socket: a redelivered event keeps its record id and carries rtm-retry-attempt") {
  rtm::kafka::embedded_cluster cluster;
  cluster.create_topic("rtm.slack", 4);
  auto upstream = socket_upstream({"--retry-ms", "300,300,300"});
  temp_dir dir;
  daemon_process d(dir, socket_config(cluster, upstream), token_env);
  REQUIRE_MESSAGE(d.log_has("live (Socket Mode)", 30s), d.log());
  cluster.set_broker_down(-1);
  upstream.command(R"({"cmd":"event","team_id":"T1","event_id":"EvRETRY","event":{"type":"message","text":"x"}})");
  REQUIRE(eventually([&] { return stat(upstream, "retries_sent") >= 2; }, 10s));
  cluster.set_broker_up(-1);
  REQUIRE_MESSAGE(eventually([&] { return stat(upstream, "acked_event_ids") == 1; }, 60s), d.log());
  std::this_thread::sleep_for(patience(1s));
  const auto records = read_topic(cluster.bootstrap_servers(), "rtm.slack");
  REQUIRE(records.size() >= 2);
  bool saw_retry_header = false;
  for (const auto& r : records) {
    CHECK(json_string(r.payload, "id") == "slack-app:EvRETRY");
    saw_retry_header = saw_retry_header || r.header("rtm-retry-attempt").has_value();
  }
  CHECK(saw_retry_header);
  d.signal(SIGTERM);
  CHECK(d.wait(30s) == std::optional<int>(0));
}

TEST_CASE("slack_socket: refresh_requested and warning reconnect with never more than one live socket") {
  rtm::kafka::embedded_cluster cluster;
  auto upstream = socket_upstream({"--warning-close-ms", "3000", "--retry-ms", "5000,5000,5000"});
  temp_dir dir;
  daemon_process d(dir, socket_config(cluster, upstream), token_env);
  REQUIRE_MESSAGE(d.log_has("live (Socket Mode)", 30s), d.log());
  for (int round = 0; round < 3; ++round) {
    const std::int64_t opens = stat(upstream, "opens");
    upstream.command(round % 2 == 0 ? R"({"cmd":"disconnect","reason":"refresh_requested"})"
                                    : R"({"cmd":"disconnect","reason":"warning"})");
    REQUIRE_MESSAGE(
        eventually([&] { return stat(upstream, "opens") > opens && stat(upstream, "connections") == 1; }, 20s),
        d.log());
  }
  CHECK(stat(upstream, "max_connections") == 1);
  upstream.command(R"({"cmd":"event","team_id":"T1","event":{"type":"message"}})");
  CHECK(eventually([&] { return stat(upstream, "acked_event_ids") == 1; }, 20s));
  d.signal(SIGTERM);
  CHECK(d.wait(30s) == std::optional<int>(0));
}

TEST_CASE("slack_socket: link_disabled stops reconnecting and says so; a refused token does not loop") {
  rtm::kafka::embedded_cluster cluster;
  SUBCASE("link_disabled") {
    auto upstream = socket_upstream();
    temp_dir dir;
    daemon_process d(dir, socket_config(cluster, upstream), token_env);
    REQUIRE_MESSAGE(d.log_has("live (Socket Mode)", 30s), d.log());
    upstream.command(R"({"cmd":"disconnect","reason":"link_disabled"})");
    CHECK(d.log_has("link_disabled", 10s));
    std::this_thread::sleep_for(patience(3s));
    CHECK(stat(upstream, "opens") == 1);
    // The error line itself names the connection (not just any line of the log).
    const std::string log = d.log();
    const auto at = log.find("Slack disabled Socket Mode for this app");
    REQUIRE(at != std::string::npos);
    const auto line_start = log.rfind('\n', at);
    CHECK(log.substr(line_start == std::string::npos ? 0 : line_start, at - line_start).find("slack-app") !=
          std::string::npos);
    d.signal(SIGTERM);
    CHECK(d.wait(30s) == std::optional<int>(0));
  }
  SUBCASE("invalid token") {
    auto upstream = socket_upstream();
    temp_dir dir;
    daemon_process d(dir, socket_config(cluster, upstream), {{"SLACK_APP_TOKEN", "xapp-1-wrong-token"}});
    CHECK(d.log_has("refused the token: invalid_auth", 20s));
    std::this_thread::sleep_for(patience(3s));
    CHECK(stat(upstream, "opens") == 1);                             // the long back-off of a refused credential
    CHECK(d.log().find("xapp-1-wrong-token") == std::string::npos);  // never in a log
    d.signal(SIGTERM);
    CHECK(d.wait(30s) == std::optional<int>(0));
  }
}

TEST_CASE("slack_socket: a frozen socket is replaced within ping_timeout; malformed envelopes are dead-lettered") {
  rtm::kafka::embedded_cluster cluster;
  cluster.create_topic("rtm.dead-letter", 1);
  auto upstream = socket_upstream();
  temp_dir dir;
  daemon_process d(dir, socket_config(cluster, upstream, "  dead_letter_topic: rtm.dead-letter\n", "2s"), token_env);
  REQUIRE_MESSAGE(d.log_has("live (Socket Mode)", 30s), d.log());
  upstream.command(R"({"cmd":"raw","frame":"{\"envelope_id\":\"e-1\",\"type\":\"events_api\",\"payload\":[1,2]}"})");
  upstream.command(R"({"cmd":"raw","frame":"{\"envelope_id\":\"e-2\",\"type\":\"brand_new\",\"payload\":{}}"})");
  upstream.command(R"({"cmd":"raw","frame":"not json"})");
  // e-1 and e-2 are acknowledged (the fixture never sent those ids, so it counts them as bad acks); "not json" has
  // no envelope id to acknowledge.
  REQUIRE(eventually([&] { return stat(upstream, "bad_acks") == 2; }, 10s));
  const auto frozen_at = std::chrono::steady_clock::now();
  upstream.command(R"({"cmd":"freeze"})");
  REQUIRE_MESSAGE(eventually([&] { return stat(upstream, "opens") == 2 && stat(upstream, "connections") == 1; }, 20s),
                  d.log());
  CHECK(std::chrono::steady_clock::now() - frozen_at < patience(8s));
  const std::string metrics = http_get("http://127.0.0.1:" + d.metrics_port() + "/metrics");
  CHECK(metrics.find("rtm_bridge_reconnects_total{connection=\"slack-app\",reason=\"ping_timeout\"} 1") !=
        std::string::npos);
  const auto dead = read_topic(cluster.bootstrap_servers(), "rtm.dead-letter");
  CHECK(dead.size() == 3);
  d.signal(SIGTERM);
  CHECK(d.wait(30s) == std::optional<int>(0));
}

TEST_CASE("slack_socket: 1,000 envelopes while Kafka is healthy, acknowledged once durable (ack p99 printed)") {
  rtm::kafka::embedded_cluster cluster;
  cluster.create_topic("rtm.slack", 4);
  auto upstream = socket_upstream();
  temp_dir dir;
  daemon_process d(dir, socket_config(cluster, upstream), token_env);
  REQUIRE_MESSAGE(d.log_has("live (Socket Mode)", 30s), d.log());
  upstream.command(R"({"cmd":"events","count":1000,"teams":["T1","T2","T3"],"rate":500})");
  REQUIRE_MESSAGE(eventually([&] { return stat(upstream, "acked_event_ids") == 1000; }, 60s), d.log());
  const std::string stats = upstream.command(R"({"cmd":"stats"})");
  MESSAGE("Socket Mode acknowledgements of 1,000 envelopes at 500/s (fixture's view): ", stats);
  CHECK(stat(upstream, "bad_acks") == 0);
  d.signal(SIGTERM);
  CHECK(d.wait(30s) == std::optional<int>(0));
}
