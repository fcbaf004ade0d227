// Commands end to end (docs/CONTRACT.md, "Commands"): the real daemon with a command topic, the Slack legacy RTM test
// upstream (tests/fixtures/slack_server.js, which answers `message` frames with reply_to as its `replies` mode says
// and reports every frame with an id it receives), the librdkafka mock cluster hosted by this test, commands produced
// and replies read back with kcat.
#include <doctest/doctest.h>

#include <csignal>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "kafka/embedded_cluster.hpp"
#include "support/daemon.hpp"
#include "support/kcat.hpp"
#include "support/process.hpp"
#include "support/spool_oracle.hpp"

using namespace std::chrono_literals;

namespace {

using namespace rtm::test;

constexpr const char* slack_token = "xoxb-commands";
constexpr const char* command_topic = "rtm.commands";
constexpr const char* reply_topic = "rtm.command-replies";

fixture slack_upstream() {
  return fixture({env_path("RTM_FIXTURES_DIR") + "/slack_server.js", "--token", std::string(slack_token) + ":T123"});
}

void create_topics(rtm::kafka::embedded_cluster& cluster) {
  cluster.create_topic(command_topic, 1);
  cluster.create_topic(reply_topic, 1);
  cluster.create_topic("rtm.slack", 1);
}

// The group's session timeout is short so that a member killed with SIGKILL is evicted in seconds, not 45.
std::string commands_config(const rtm::kafka::embedded_cluster& cluster, const std::string& connections,
                            const std::string& max_age = "30s") {
  return "kafka:\n  brokers: \"" + cluster.bootstrap_servers() +
         "\"\n  shutdown_timeout: 10s\n  properties: {session.timeout.ms: 6000, heartbeat.interval.ms: 500}\n"
         "commands:\n  topic: " +
         command_topic + "\n  reply_topic: " + reply_topic + "\n  max_age: " + max_age + "\nconnections:\n" +
         connections + "metrics:\n  listen: \"127.0.0.1:0\"\n";
}

// Produces one command record per value (kcat -P: one record per line), keyed by `connection`, with an
// rtm-command-id header when `id` is given.
void produce(const rtm::kafka::embedded_cluster& cluster, const std::string& connection,
             const std::vector<std::string>& values, const std::string& id = {}) {
  child_process::options opts;
  opts.argv = {"kcat", "-P", "-b", cluster.bootstrap_servers(), "-t", command_topic, "-k", connection};
  if (!id.empty()) {
    opts.argv.insert(opts.argv.end(), {"-H", "rtm-command-id=" + id});
  }
  for (const auto& v : values) {
    opts.stdin_data += v + "\n";
  }
  child_process kcat(std::move(opts));
  REQUIRE(kcat.wait(30s) == std::optional<int>(0));
}

struct reply {
  consumed record;
  std::string command_id;
  std::string error;  // "" for null
  bool ok = false;
};

std::vector<reply> replies(const rtm::kafka::embedded_cluster& cluster) {
  std::vector<reply> out;
  for (auto& r : read_topic(cluster.bootstrap_servers(), reply_topic)) {
    reply x;
    x.command_id = json_string(r.payload, "command_id");
    x.error = json_string(r.payload, "error");
    x.ok = r.payload.find(R"("ok":true)") != std::string::npos;
    x.record = std::move(r);
    out.push_back(std::move(x));
  }
  return out;
}

std::map<std::string, reply> replies_by_id(const rtm::kafka::embedded_cluster& cluster) {
  std::map<std::string, reply> out;
  for (auto& r : replies(cluster)) {
    const std::string id = r.command_id;
    out.insert_or_assign(id, std::move(r));
  }
  return out;
}

// The fixture's SENT lines: when (ms since it started), on which socket, with which id.
struct sent_frame {
  std::int64_t at_ms = 0;
  int socket = 0;
  std::int64_t id = 0;
  std::string type;
};
// Commands only, unless `everything` (pings and presence_sub too: every frame the pacing covers).
std::vector<sent_frame> sent_frames(fixture& upstream, bool everything = false) {
  std::vector<sent_frame> out;
  for (const auto& line : upstream.events("SENT ")) {
    std::istringstream in(line.substr(5));
    sent_frame f;
    in >> f.at_ms >> f.socket >> f.id >> f.type;
    if (everything || (f.type != "ping" && f.type != "presence_sub")) {
      out.push_back(f);
    }
  }
  return out;
}

// The CLIENT lines (whole frames) that carry `text`.
std::size_t frames_with(fixture& upstream, const std::string& text) {
  std::size_t n = 0;
  for (const auto& line : upstream.events("CLIENT ")) {
    n += line.find(text) != std::string::npos ? 1 : 0;
  }
  return n;
}

const std::map<std::string, std::string> token_env{{"SLACK_TOKEN", slack_token}, {"ACME_KEY", "acme-K3y-5ecret-77"}};

}  // namespace

TEST_CASE("commands: a message and its reply, every error word, one reply record each") {
  rtm::kafka::embedded_cluster cluster;
  create_topics(cluster);
  auto upstream = slack_upstream();
  auto acme = acme_upstream();
  temp_dir dir;
  // A Socket Mode connection that never connects (nothing listens there): its kind alone decides its answer.
  const std::string socket_mode =
      "  - name: app-main\n    kind: slack_socket\n    url: \"http://127.0.0.1:9/api/\"\n"
      "    key: {env: SLACK_APP_TOKEN}\n";
  auto env = token_env;
  env["SLACK_APP_TOKEN"] = "xapp-1-A0APP-1-commands";
  daemon_process d(
      dir,
      commands_config(cluster, slack_connection("slack-main", upstream.port(), "SLACK_TOKEN") +
                                   acme_connection("acme-main", acme.port(), "acme-id", "ACME_KEY") + socket_mode),
      env);
  REQUIRE_MESSAGE(d.log_has("live (team T123", 30s), d.log());

  produce(cluster, "app-main", {R"({"type":"message","channel":"C1","text":"x"})"}, "c-socket-mode");
  produce(cluster, "slack-main", {R"({"type":"message","channel":"C1","text":"hello from kafka"})"}, "c-ok");
  produce(cluster, "slack-main", {R"({"type":"typing","channel":"C1"})"}, "c-typing");
  produce(cluster, "slack-main", {R"({"type":"presence_query","ids":["U061F7AUR"]})"}, "c-presence");
  produce(cluster, "nope", {R"({"type":"message","channel":"C1","text":"x"})"}, "c-unknown");
  produce(cluster, "slack-main", {R"({"type":"message","channel":)"}, "c-bad-json");
  produce(cluster, "slack-main", {R"({"id":5,"type":"message","channel":"C1","text":"x"})"}, "c-own-id");
  produce(cluster, "slack-main", {R"({"type":"reactions.add","name":"+1"})"}, "c-type");
  produce(cluster, "acme-main", {R"({"type":"message","channel":"C1","text":"x"})"}, "c-acme");
  REQUIRE_MESSAGE(eventually([&] { return replies_by_id(cluster).size() == 9; }, 30s), d.log());
  upstream.command(R"({"cmd":"replies","mode":"error"})");
  produce(cluster, "slack-main", {R"({"type":"message","channel":"C1","text":""})"}, "c-slack-error");
  REQUIRE_MESSAGE(eventually([&] { return replies_by_id(cluster).size() == 10; }, 30s), d.log());
  std::this_thread::sleep_for(2s);  // a second reply to any of them would be in Kafka by now

  const auto all = replies(cluster);
  CHECK(all.size() == 10);  // exactly one reply per command
  auto by_id = replies_by_id(cluster);
  const reply& ok = by_id["c-ok"];
  CHECK(ok.ok);
  CHECK(ok.error.empty());
  CHECK(ok.record.payload.find(R"("schema":"rtm-bridge.reply/v1")") != std::string::npos);
  CHECK(ok.record.payload.find(R"("connection":"slack-main")") != std::string::npos);
  CHECK(ok.record.payload.find(R"("reply":{"ok":true,"reply_to":)") != std::string::npos);  // Slack's frame
  CHECK(ok.record.payload.find(R"("text":"hello from kafka")") != std::string::npos);
  CHECK(ok.record.key == std::optional<std::string>("slack-main"));
  CHECK(ok.record.header("rtm-command-id") == std::optional<std::string>("c-ok"));
  CHECK(ok.record.header("rtm-connection") == std::optional<std::string>("slack-main"));
  CHECK(ok.record.header("content-type") == std::optional<std::string>("application/json"));
  CHECK(by_id["c-typing"].ok);
  CHECK(by_id["c-typing"].record.payload.find(R"("reply":null)") != std::string::npos);
  CHECK(by_id["c-presence"].ok);
  CHECK(by_id["c-unknown"].error == "unknown_connection");
  CHECK(by_id["c-bad-json"].error == "bad_command");
  CHECK(by_id["c-own-id"].error == "bad_command");
  CHECK(by_id["c-type"].error == "unsupported_type");
  CHECK(by_id["c-acme"].error == "unsupported");
  CHECK(by_id["c-socket-mode"].error == "unsupported");
  CHECK(by_id["c-socket-mode"].record.payload.find("kind slack_socket") != std::string::npos);
  const reply& refused = by_id["c-slack-error"];
  CHECK_FALSE(refused.ok);
  CHECK(refused.error == "slack_error");
  CHECK(refused.record.payload.find(R"("error":{"code":2,"msg":"message text is missing"})") != std::string::npos);

  // What the socket got: the two commands that were valid for it, each with an id of the bridge's, nothing else.
  CHECK(frames_with(upstream, R"({"id":)") == 4);  // c-ok, c-typing, c-presence, c-slack-error
  CHECK(frames_with(upstream, R"("type":"presence_query","ids":["U061F7AUR"]})") == 1);
  CHECK(frames_with(upstream, R"("text":"hello from kafka")") == 1);
  CHECK(frames_with(upstream, R"("name":"+1")") == 0);
  const endpoint e(d.metrics_port());
  const std::string metrics = e.metrics();
  CHECK(metrics.find(R"(rtm_bridge_commands_total{connection="slack-main",result="ok"} 3)") != std::string::npos);
  CHECK(metrics.find(R"(rtm_bridge_commands_total{connection="slack-main",result="bad_command"} 2)") !=
        std::string::npos);
  CHECK(metrics.find(R"(rtm_bridge_commands_total{connection="acme-main",result="unsupported"} 1)") !=
        std::string::npos);
  CHECK(metrics.find("rtm_bridge_command_latency_seconds_count 10") != std::string::npos);
  CHECK(metrics.find(R"(rtm_bridge_command_queue{connection="slack-main"} 0)") != std::string::npos);
  d.signal(SIGTERM);
  CHECK(d.wait(30s) == std::optional<int>(0));
}

TEST_CASE("commands: four messages produced at once reach the socket at least a second apart, in offset order") {
  rtm::kafka::embedded_cluster cluster;
  create_topics(cluster);
  auto upstream = slack_upstream();
  temp_dir dir;
  daemon_process d(dir, commands_config(cluster, slack_connection("slack-main", upstream.port(), "SLACK_TOKEN")),
                   token_env);
  REQUIRE_MESSAGE(d.log_has("live (team T123", 30s), d.log());
  produce(cluster, "slack-main",
          {R"({"type":"message","channel":"C1","text":"m1"})", R"({"type":"message","channel":"C1","text":"m2"})",
           R"({"type":"message","channel":"C1","text":"m3"})", R"({"type":"message","channel":"C1","text":"m4"})"});
  REQUIRE_MESSAGE(eventually([&] { return replies(cluster).size() == 4; }, 30s), d.log());
  const auto frames = sent_frames(upstream);
  REQUIRE(frames.size() == 4);
  for (std::size_t i = 1; i < frames.size(); ++i) {
    CHECK_MESSAGE(frames[i].at_ms - frames[i - 1].at_ms >= 1000, "frame ", i, " came ",
                  frames[i].at_ms - frames[i - 1].at_ms, " ms after the one before");
    CHECK(frames[i].id > frames[i - 1].id);
  }
  const auto client = upstream.events("CLIENT {\"id\":");
  REQUIRE(client.size() == 4);
  for (std::size_t i = 0; i < client.size(); ++i) {
    CHECK(client[i].find("\"text\":\"m" + std::to_string(i + 1) + "\"") != std::string::npos);
  }
  // Default command ids: TOPIC:PARTITION:OFFSET.
  const auto by_id = replies_by_id(cluster);
  CHECK(by_id.count("rtm.commands:0:0") == 1);
  CHECK(by_id.count("rtm.commands:0:3") == 1);
  for (const auto& [id, r] : by_id) {
    CHECK_MESSAGE(r.ok, id);
  }
  d.signal(SIGTERM);
  CHECK(d.wait(30s) == std::optional<int>(0));
}

TEST_CASE("commands: while the connection is down a command waits; past max_age it is expired and never sent") {
  rtm::kafka::embedded_cluster cluster;
  create_topics(cluster);
  auto upstream = slack_upstream();
  upstream.command(R"({"cmd":"refuse","on":true})");  // rtm.connect fails until the test says otherwise
  temp_dir dir;
  const std::string entry = "  - name: slack-main\n    kind: slack\n    url: \"http://127.0.0.1:" + upstream.port() +
                            "/api/\"\n    key: {env: SLACK_TOKEN}\n    reconnect: {initial_delay: 200ms, max_delay: "
                            "500ms}\n";
  daemon_process d(dir, commands_config(cluster, entry, "5s"), token_env);
  REQUIRE_MESSAGE(upstream.wait_event("RTM_CONNECT", 30s), d.log());
  produce(cluster, "slack-main", {R"({"type":"message","channel":"C1","text":"too late"})"}, "c-expired");
  REQUIRE_MESSAGE(eventually([&] { return replies_by_id(cluster).count("c-expired") == 1; }, 30s), d.log());
  CHECK(replies_by_id(cluster)["c-expired"].error == "expired");
  CHECK(d.log().find("live (team") == std::string::npos);
  // Produced while still down, sent once the socket is live (within max_age).
  produce(cluster, "slack-main", {R"({"type":"message","channel":"C1","text":"waited"})"}, "c-waited");
  upstream.command(R"({"cmd":"refuse","on":false})");
  REQUIRE_MESSAGE(d.log_has("live (team T123", 30s), d.log());
  REQUIRE_MESSAGE(eventually([&] { return replies_by_id(cluster).count("c-waited") == 1; }, 30s), d.log());
  CHECK(replies_by_id(cluster)["c-waited"].ok);
  std::this_thread::sleep_for(2s);
  CHECK(frames_with(upstream, R"("text":"too late")") == 0);
  CHECK(frames_with(upstream, R"("text":"waited")") == 1);
  CHECK(replies(cluster).size() == 2);
  d.signal(SIGTERM);
  CHECK(d.wait(30s) == std::optional<int>(0));
}

TEST_CASE("commands: pings, the presence_sub list and commands share the pace: every frame >= 1 s after the last") {
  rtm::kafka::embedded_cluster cluster;
  create_topics(cluster);
  auto upstream = slack_upstream();
  temp_dir dir;
  // The shortest ping_timeout (2 s) pings after half a second of silence; typing gets no answer, so the socket is
  // quiet between commands and pings go out between them.
  daemon_process d(dir,
                   commands_config(cluster, slack_connection("slack-main", upstream.port(), "SLACK_TOKEN") +
                                                "    ping_timeout: 2s\n    presence_sub: [\"U061F7AUR\"]\n"),
                   token_env);
  REQUIRE_MESSAGE(d.log_has("live (team T123", 30s), d.log());
  std::vector<std::string> typing;
  for (int i = 0; i < 6; ++i) {
    typing.push_back(R"({"type":"typing","channel":"C1"})");
  }
  produce(cluster, "slack-main", typing);
  REQUIRE_MESSAGE(eventually([&] { return replies(cluster).size() == 6; }, 60s), d.log());
  std::this_thread::sleep_for(3s);  // pings alone, after the last command
  const auto frames = sent_frames(upstream, true);
  std::size_t pings = 0;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    pings += frames[i].type == "ping" ? 1 : 0;
    if (i > 0) {
      CHECK_MESSAGE(frames[i].at_ms - frames[i - 1].at_ms >= 1000, frames[i].type, " ",
                    frames[i].at_ms - frames[i - 1].at_ms, " ms after ", frames[i - 1].type);
    }
  }
  CHECK(frames.size() >= 8);  // presence_sub, 6 typing, and pings
  CHECK(pings >= 2);
  CHECK(frames.front().type == "presence_sub");
  d.signal(SIGTERM);
  CHECK(d.wait(30s) == std::optional<int>(0));
}

TEST_CASE("commands: a socket that closes before the reply_to, or no reply_to within 10 s, is no_reply") {
  rtm::kafka::embedded_cluster cluster;
  create_topics(cluster);
  auto upstream = slack_upstream();
  temp_dir dir;
  daemon_process d(dir, commands_config(cluster, slack_connection("slack-main", upstream.port(), "SLACK_TOKEN")),
                   token_env);
  REQUIRE_MESSAGE(d.log_has("live (team T123", 30s), d.log());
  upstream.command(R"({"cmd":"replies","mode":"close_once"})");
  produce(cluster, "slack-main", {R"({"type":"message","channel":"C1","text":"cut"})"}, "c-cut");
  REQUIRE_MESSAGE(eventually([&] { return replies_by_id(cluster).count("c-cut") == 1; }, 30s), d.log());
  const reply cut = replies_by_id(cluster)["c-cut"];
  CHECK(cut.error == "no_reply");
  CHECK(cut.record.payload.find("may or may not have been posted") != std::string::npos);
  CHECK(cut.record.payload.find(R"("reply":null)") != std::string::npos);
  // The next one goes out on the new socket and is answered.
  produce(cluster, "slack-main", {R"({"type":"message","channel":"C1","text":"after"})"}, "c-after");
  REQUIRE_MESSAGE(eventually([&] { return replies_by_id(cluster).count("c-after") == 1; }, 30s), d.log());
  CHECK(replies_by_id(cluster)["c-after"].ok);
  const auto frames = sent_frames(upstream);
  REQUIRE(frames.size() == 2);
  CHECK(frames[1].socket != frames[0].socket);
  CHECK(frames[1].id != frames[0].id);  // ids are never reused across reconnects

  upstream.command(R"({"cmd":"replies","mode":"none"})");
  produce(cluster, "slack-main", {R"({"type":"message","channel":"C1","text":"unanswered"})"}, "c-silent");
  REQUIRE_MESSAGE(eventually([&] { return sent_frames(upstream).size() == 3; }, 30s), d.log());
  const auto sent_at = std::chrono::steady_clock::now();
  REQUIRE_MESSAGE(eventually([&] { return replies_by_id(cluster).count("c-silent") == 1; }, 30s), d.log());
  CHECK(std::chrono::steady_clock::now() - sent_at >= 9s);
  CHECK(replies_by_id(cluster)["c-silent"].error == "no_reply");
  CHECK(replies(cluster).size() == 3);
  d.signal(SIGTERM);
  CHECK(d.wait(30s) == std::optional<int>(0));
}

TEST_CASE(
    "commands: kill -9 with commands in flight; after the restart every command has a reply and none whose "
    "reply was confirmed is sent again") {
  rtm::kafka::embedded_cluster cluster;
  create_topics(cluster);
  auto upstream = slack_upstream();
  temp_dir dir;
  const std::string config = commands_config(cluster, slack_connection("slack-main", upstream.port(), "SLACK_TOKEN"));
  std::set<std::string> confirmed_before;
  {
    daemon_process d(dir, config, token_env);
    REQUIRE_MESSAGE(d.log_has("live (team T123", 30s), d.log());
    for (int i = 1; i <= 3; ++i) {
      produce(cluster, "slack-main", {R"({"type":"message","channel":"C1","text":"k)" + std::to_string(i) + R"("})"},
              "k" + std::to_string(i));
    }
    REQUIRE_MESSAGE(eventually([&] { return replies(cluster).size() == 3; }, 30s), d.log());
    for (const auto& [id, r] : replies_by_id(cluster)) {
      confirmed_before.insert(id);
    }
    // The next ones get no reply_to: the first is sent and waits, the others queue behind the rate limit.
    upstream.command(R"({"cmd":"replies","mode":"none"})");
    for (int i = 4; i <= 6; ++i) {
      produce(cluster, "slack-main", {R"({"type":"message","channel":"C1","text":"k)" + std::to_string(i) + R"("})"},
              "k" + std::to_string(i));
    }
    REQUIRE_MESSAGE(eventually([&] { return frames_with(upstream, R"("text":"k4")") == 1; }, 30s), d.log());
    d.signal(SIGKILL);
    d.wait(10s);
  }
  CHECK(confirmed_before == std::set<std::string>{"k1", "k2", "k3"});
  const std::size_t k4_before = frames_with(upstream, R"("text":"k4")");
  upstream.command(R"({"cmd":"replies","mode":"ok"})");
  upstream.command(R"({"cmd":"close","code":1001})");  // the killed daemon's socket: the server side ends it
  temp_dir dir2;
  daemon_process d(dir2, config, token_env);
  REQUIRE_MESSAGE(d.log_has("live (team T123", 30s), d.log());
  REQUIRE_MESSAGE(eventually(
                      [&] {
                        const auto by_id = replies_by_id(cluster);
                        return by_id.count("k4") == 1 && by_id.count("k5") == 1 && by_id.count("k6") == 1;
                      },
                      60s),
                  d.log());
  for (const auto& [id, r] : replies_by_id(cluster)) {
    CHECK_MESSAGE(r.ok, id, ": ", r.record.payload);
  }
  // Confirmed before the kill: sent exactly once in all. Unconfirmed: sent again (k4 once more), answered once.
  for (int i = 1; i <= 3; ++i) {
    CHECK_MESSAGE(frames_with(upstream, "\"text\":\"k" + std::to_string(i) + "\"") == 1, "k", i);
  }
  CHECK(frames_with(upstream, R"("text":"k4")") == k4_before + 1);
  CHECK(frames_with(upstream, R"("text":"k5")") >= 1);
  CHECK(frames_with(upstream, R"("text":"k6")") >= 1);
  std::map<std::string, int> count;
  for (const auto& r : replies(cluster)) {
    ++count[r.command_id];
  }
  for (const auto& [id, n] : count) {
    CHECK_MESSAGE(n == 1, id, " has ", n, " replies");
  }
  d.signal(SIGTERM);
  CHECK(d.wait(30s) == std::optional<int>(0));
}

namespace {

// Runs tests/fixtures/check_schema.js on `values` (one JSON text per line): "VALID N" when every one is valid.
std::string check_schema(const std::string& schema, const std::vector<std::string>& values) {
  temp_dir dir;
  child_process::options opts;
  opts.argv = {"node", env_path("RTM_FIXTURES_DIR") + "/check_schema.js",
               env_path("RTM_SOURCE_ROOT") + "/docs/schema/" + schema};
  for (const auto& v : values) {
    opts.stdin_data += v + "\n";
  }
  opts.stdout_file = dir.file("out");
  child_process node(std::move(opts));
  const auto status = node.wait(30s);
  const std::string out = read_file(dir.file("out"));
  CHECK_MESSAGE(status == std::optional<int>(0), out);
  return out;
}

}  // namespace

TEST_CASE("commands: real reply records and event envelopes match the published JSON Schemas (docs/schema)") {
  rtm::kafka::embedded_cluster cluster;
  create_topics(cluster);
  cluster.create_topic("rtm.session", 1);
  auto upstream = slack_upstream();
  auto acme = acme_upstream();
  temp_dir dir;
  daemon_process d(dir,
                   commands_config(cluster, slack_connection("slack-main", upstream.port(), "SLACK_TOKEN") +
                                                acme_connection("acme-main", acme.port(), "acme-id", "ACME_KEY")),
                   token_env);
  REQUIRE_MESSAGE(d.log_has("live (team T123", 30s), d.log());
  REQUIRE_MESSAGE(acme.wait_event("AUTH", 30s), d.log());
  produce(cluster, "slack-main", {R"({"type":"message","channel":"C1","text":"schema"})"}, "s-ok");
  produce(cluster, "slack-main", {R"({"type":"typing","channel":"C1"})"}, "s-typing");
  produce(cluster, "nope", {"{}"});
  produce(cluster, "", {R"({"type":"typing"})"}, "s-no-key");
  produce(cluster, "acme-main", {R"({"type":"typing"})"}, "s-acme");
  produce(cluster, "slack-main", {"not json"}, "s-bad");
  produce(cluster, "slack-main", {R"({"type":"im.open"})"}, "s-type");
  upstream.command(R"({"cmd":"replies","mode":"error"})");
  produce(cluster, "slack-main", {R"({"type":"message","channel":"C1","text":""})"}, "s-refused");
  REQUIRE_MESSAGE(eventually([&] { return replies(cluster).size() == 8; }, 30s), d.log());
  upstream.command(R"({"cmd":"emit","frame":"{\"type\":\"message\",\"channel\":\"C1\",\"text\":\"ev\"}"})");
  upstream.command(
      R"({"cmd":"emit","frame":"{\"type\":\"presence_change\",\"users\":[\"U1\"],\"presence\":\"away\"}"})");
  acme.command(R"({"cmd":"emit","event":"session:update_availability","payload":"{\"team_id\":\"T9\",\"n\":1}"})");
  REQUIRE_MESSAGE(eventually(
                      [&] {
                        return read_topic(cluster.bootstrap_servers(), "rtm.slack").size() == 2 &&
                               read_topic(cluster.bootstrap_servers(), "rtm.session").size() == 1;
                      },
                      30s),
                  d.log());
  std::vector<std::string> reply_values;
  for (const auto& r : replies(cluster)) {
    reply_values.push_back(r.record.payload);
  }
  CHECK(check_schema("reply.schema.json", reply_values).find("VALID 8") != std::string::npos);
  // presence_change in its batched form (presence_sub asks for batch_presence_aware) is published like any event.
  std::size_t batched = 0;
  for (const auto& r : read_topic(cluster.bootstrap_servers(), "rtm.slack")) {
    batched += r.header("rtm-event") == std::optional<std::string>("presence_change") &&
                       r.payload.find(R"("users":["U1"])") != std::string::npos
                   ? 1
                   : 0;
  }
  CHECK(batched == 1);
  std::vector<std::string> envelopes;
  for (const auto& topic : {"rtm.slack", "rtm.session"}) {
    for (const auto& r : read_topic(cluster.bootstrap_servers(), topic)) {
      envelopes.push_back(r.payload);
    }
  }
  CHECK(check_schema("envelope.schema.json", envelopes).find("VALID 3") != std::string::npos);
  // The checker is no rubber stamp: a reply without its schema field, and an envelope with a stray member, fail.
  temp_dir scratch;
  child_process::options opts;
  opts.argv = {"node", env_path("RTM_FIXTURES_DIR") + "/check_schema.js",
               env_path("RTM_SOURCE_ROOT") + "/docs/schema/reply.schema.json"};
  opts.stdin_data = R"({"command_id":"x","connection":"slack-main","ok":true,"error":null,"detail":null,"reply":null})"
                    "\n";
  opts.stdout_file = scratch.file("out");
  child_process bad(std::move(opts));
  CHECK(bad.wait(30s) == std::optional<int>(1));
  d.signal(SIGTERM);
  CHECK(d.wait(30s) == std::optional<int>(0));
}

TEST_CASE("commands: a full queue pauses the consumer instead of dropping; every command is still answered once") {
  rtm::kafka::embedded_cluster cluster;
  create_topics(cluster);
  auto upstream = slack_upstream();
  // The connection never goes live: every command waits in its queue until max_age.
  upstream.command(std::string(R"({"cmd":"script","token":")") + slack_token + R"(","responses":[)" +
                   R"({"error":"invalid_auth"},{"error":"invalid_auth"},{"error":"invalid_auth"}]})");
  temp_dir dir;
  daemon_process d(dir, commands_config(cluster, slack_connection("slack-main", upstream.port(), "SLACK_TOKEN"), "4s"),
                   token_env);
  REQUIRE_MESSAGE(upstream.wait_event("RTM_CONNECT", 30s), d.log());
  std::vector<std::string> values;
  constexpr std::size_t count = 1500;
  for (std::size_t i = 0; i < count; ++i) {
    values.push_back(R"({"type":"message","channel":"C1","text":"q)" + std::to_string(i) + R"("})");
  }
  produce(cluster, "slack-main", values);
  REQUIRE_MESSAGE(d.log_has("pausing partition 0", 30s), d.log());
  REQUIRE_MESSAGE(d.log_has("partition 0 of rtm.commands resumed", 30s), d.log());
  REQUIRE_MESSAGE(eventually([&] { return replies(cluster).size() >= count; }, 60s), d.log());
  std::map<std::string, int> seen;
  for (const auto& r : replies(cluster)) {
    ++seen[r.command_id];
    CHECK_MESSAGE(r.error == "expired", r.record.payload);
  }
  CHECK(seen.size() == count);
  for (const auto& [id, n] : seen) {
    CHECK_MESSAGE(n == 1, id);
  }
  CHECK(frames_with(upstream, R"({"id":)") == 0);
  d.signal(SIGTERM);
  CHECK(d.wait(30s) == std::optional<int>(0));
}

TEST_CASE("commands: a reload that removes a connection answers what waits for it unknown_connection") {
  rtm::kafka::embedded_cluster cluster;
  create_topics(cluster);
  auto upstream = slack_upstream();
  auto acme = acme_upstream();
  // The Slack connection stays down (rtm.connect refuses it), so its command waits in the queue.
  upstream.command(std::string(R"({"cmd":"script","token":")") + slack_token +
                   R"(","responses":[{"error":"invalid_auth"}]})");
  temp_dir dir;
  const std::string acme_entry = acme_connection("acme-main", acme.port(), "acme-id", "ACME_KEY");
  daemon_process d(
      dir, commands_config(cluster, slack_connection("slack-main", upstream.port(), "SLACK_TOKEN") + acme_entry),
      token_env);
  REQUIRE_MESSAGE(upstream.wait_event("RTM_CONNECT", 30s), d.log());
  produce(cluster, "slack-main", {R"({"type":"message","channel":"C1","text":"orphan"})"}, "c-orphan");
  const endpoint e(d.metrics_port());
  REQUIRE_MESSAGE(eventually(
                      [&] {
                        return e.metrics().find(R"(rtm_bridge_command_queue{connection="slack-main"} 1)") !=
                               std::string::npos;
                      },
                      30s),
                  d.log());
  dir.write("rtm-bridge.yaml", commands_config(cluster, acme_entry));
  d.signal(SIGHUP);
  REQUIRE_MESSAGE(eventually([&] { return replies_by_id(cluster).count("c-orphan") == 1; }, 30s), d.log());
  const reply orphan = replies_by_id(cluster)["c-orphan"];
  CHECK(orphan.error == "unknown_connection");
  CHECK(orphan.record.payload.find("removed from the configuration") != std::string::npos);
  CHECK(frames_with(upstream, "orphan") == 0);
  d.signal(SIGTERM);
  CHECK(d.wait(30s) == std::optional<int>(0));
}
