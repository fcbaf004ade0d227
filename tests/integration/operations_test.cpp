// What operators see: the metrics endpoint as Prometheus' own checker reads it, librdkafka's figures beside the
// contract's, health endpoints, and no secret anywhere an operator (or a log shipper) could read it.
#include <doctest/doctest.h>

#include <algorithm>
#include <csignal>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kafka/embedded_cluster.hpp"
#include "support/daemon.hpp"
#include "support/kcat.hpp"
#include "support/process.hpp"
#include "upstream/http/url.hpp"

using namespace std::chrono_literals;
using namespace rtm::test;  // the integration fixtures: support/daemon.hpp, kcat.hpp, process.hpp

namespace {

// Runs `promtool check metrics` (Debian's prometheus package) on `text`; returns its exit code and output.
std::pair<int, std::string> promtool_check(const std::string& text) {
  rtm::test::temp_dir dir;
  child_process::options opts;
  opts.argv = {"promtool", "check", "metrics"};
  opts.stdin_data = text;
  opts.stdout_file = dir.file("out");
  opts.stderr_file = dir.file("err");
  child_process promtool(std::move(opts));
  const auto code = promtool.wait(30s);
  REQUIRE(code.has_value());
  return {*code, rtm::test::read_file(dir.file("out")) + rtm::test::read_file(dir.file("err"))};
}

// The HTTP status code of a GET (0 when nothing answered).
int http_status(const std::string& url) {
  return rtm::test::http_fetch(url).status;
}

}  // namespace

TEST_CASE("metrics: /metrics passes promtool, carries librdkafka's figures; /healthz and /readyz answer") {
  rtm::kafka::embedded_cluster cluster;
  cluster.create_topic("rtm.message", 4);
  cluster.create_topic("rtm.slack", 4);
  auto acme = acme_upstream();
  fixture slack({rtm::test::env_path("RTM_FIXTURES_DIR") + "/slack_server.js", "--token", "xoxb-sl4ck-T0k3n:T0001"});
  rtm::test::temp_dir dir;
  daemon_process d(dir,
                   "kafka:\n  brokers: \"" + cluster.bootstrap_servers() +
                       "\"\n  properties: {statistics.interval.ms: \"300\"}\nconnections:\n" +
                       acme_connection("acme-main", acme.port(), "acme-id", "ACME_KEY") +
                       slack_connection("slack-main", slack.port(), "SLACK_TOKEN") +
                       "metrics:\n  listen: \"127.0.0.1:0\"\n",
                   {{"ACME_KEY", "acme-K3y-5ecret-77"}, {"SLACK_TOKEN", "xoxb-sl4ck-T0k3n"}});
  const std::string base = "http://127.0.0.1:" + d.metrics_port();
  REQUIRE_MESSAGE(acme.wait_event("AUTH acme-id ok", 30s), d.log());
  REQUIRE_MESSAGE(d.log_has("connection=slack-main live", 30s), d.log());
  acme.command(R"({"cmd":"burst","event":"message:updated","count":50,"teams":4})");
  acme.command(R"({"cmd":"raw","frame":"42[broken"})");  // a dead letter and its labels
  slack.command(R"({"cmd":"emit","frame":"{\"type\":\"message\",\"ts\":\"1.2\"}"})");
  // Every family the contract names has a sample, and librdkafka's statistics (every 300 ms here) have arrived.
  std::string text;
  REQUIRE_MESSAGE(rtm::test::eventually(
                      [&] {
                        text = http_get(base + "/metrics");
                        return metric_sum(text, "rtm_bridge_events_published_total") == 51 &&
                               text.find("\nrtm_bridge_kafka_broker_rtt_p99_seconds{broker=") != std::string::npos &&
                               metric_sum(text, "rtm_bridge_dead_letters_total") == 1;
                      },
                      30s),
                  text);
  for (const char* family :
       {"rtm_bridge_events_received_total{connection=\"acme-main\",event=\"message:updated\"} 50",
        "rtm_bridge_events_received_total{connection=\"slack-main\",event=\"message\"} 1",
        "rtm_bridge_events_published_total{connection=\"acme-main\",topic=\"rtm.message\"} 50",
        "rtm_bridge_dead_letters_total{connection=\"acme-main\",reason=\"bad_json\"} 1",
        "rtm_bridge_connection_up{connection=\"acme-main\"} 1", "rtm_bridge_connection_up{connection=\"slack-main\"} 1",
        "\nrtm_bridge_kafka_queue_messages ", "\nrtm_bridge_publish_latency_seconds_bucket{le=\"+Inf\"} 51",
        "\nrtm_bridge_kafka_librdkafka_queue_messages ", "\nrtm_bridge_kafka_librdkafka_queue_max_messages ",
        "\nrtm_bridge_kafka_brokers_up ",
        "\nrtm_bridge_kafka_broker_up{broker=", "\nrtm_bridge_kafka_broker_queue_latency_p99_seconds{broker="}) {
    CHECK_MESSAGE(text.find(family) != std::string::npos, family << " missing from\n" << text);
  }
  // The mock cluster has 3 brokers and librdkafka learns them all from metadata.
  CHECK(metric_sum(text, "rtm_bridge_kafka_brokers_up") >= 1);

  const auto checked = promtool_check(text);  // not a structured binding: doctest's macros capture it (clang 14)
  const auto& code = checked.first;
  const auto& output = checked.second;
  CHECK_MESSAGE(code == 0, "promtool check metrics:\n" << output << "\non:\n" << text);
  CHECK(output.empty());  // no lint warnings either

  CHECK(http_status(base + "/healthz") == 200);
  CHECK(http_status(base + "/readyz") == 200);

  d.signal(SIGTERM);
  CHECK(d.wait(30s) == 0);
}

TEST_CASE("secrets: distinctive secrets never reach logs (text, JSON), metrics, --check-config or Kafka records") {
  // Every kind of secret the config takes, each distinctive enough that any copy of it would be found: the Acme
  // identifier and key (and the Basic credentials they make for REST discovery), Slack tokens (a good and a bad
  // one, so error paths log too), a wrong Acme key (refused: the unauthorized path) and a Kafka SASL password.
  const std::string acme_id = "acme-id";
  const std::string acme_key = "acme-K3y-5ecret-77";
  const std::string wrong_key = "wr0ng-K3y-zzq-4411";
  const std::string slack_token = "xoxb-sl4ck-T0k3n-qq";
  const std::string bad_token = "xoxb-r3voked-T0k3n-pp";
  const std::string kafka_password = "kafka-Pa55w0rd-xx93";
  const std::vector<std::string> secrets{acme_key,
                                         wrong_key,
                                         slack_token,
                                         bad_token,
                                         kafka_password,
                                         rtm::upstream::http::base64_encode(acme_id + ":" + acme_key),
                                         rtm::upstream::http::base64_encode("acme-id2:" + wrong_key)};

  rtm::kafka::embedded_cluster cluster;
  for (const char* topic : {"rtm.message", "rtm.slack", "rtm.dead-letter"}) {
    cluster.create_topic(topic, 2);
  }
  auto acme = acme_upstream();
  fixture slack({rtm::test::env_path("RTM_FIXTURES_DIR") + "/slack_server.js", "--token", slack_token + ":T0001"});
  rtm::test::temp_dir dir;
  const std::string key_file = dir.write("acme.key", acme_key + "\n");
  auto config = [&](const std::string& format) {
    return "kafka:\n  brokers: \"" + cluster.bootstrap_servers() + "\"\n  properties:\n    sasl.password: {value: \"" +
           kafka_password +
           "\"}\n    statistics.interval.ms: \"500\"\nconnections:\n"
           "  - name: acme-main\n    kind: acme\n    url: \"ws://127.0.0.1:" +
           acme.port() + "/\"\n    identifier: {value: \"" + acme_id + "\"}\n    key: {file: \"" + key_file +
           "\"}\n    reconnect: {initial_delay: 200ms, max_delay: 1s}\n"
           "  - name: acme-wrong\n    kind: acme\n    url: \"ws://127.0.0.1:" +
           acme.port() + "/\"\n    identifier: {value: \"acme-id2\"}\n    key: {value: \"" + wrong_key +
           "\"}\n    reconnect: {initial_delay: 200ms, max_delay: 1s}\n" +
           slack_connection("slack-main", slack.port(), "SLACK_TOKEN") +
           slack_connection("slack-revoked", slack.port(), "SLACK_BAD_TOKEN") +
           "metrics:\n  listen: \"127.0.0.1:0\"\nlog:\n  level: debug\n  format: " + format + "\n";
  };
  const std::map<std::string, std::string> env{{"SLACK_TOKEN", slack_token}, {"SLACK_BAD_TOKEN", bad_token}};
  std::vector<std::pair<std::string, std::string>> outputs;  // what → text

  // --check-config, on a file readable by others that holds inline secrets: a warning, and masked values.
  {
    rtm::test::temp_dir check_dir;
    const std::string path = check_dir.write("rtm-bridge.yaml", config("text"), 0644);
    child_process::options opts;
    opts.argv = {rtm::test::env_path("RTM_BRIDGE_BIN"), "--check-config", "--config", path};
    opts.env = env;
    opts.stdout_file = check_dir.file("out");
    opts.stderr_file = check_dir.file("err");
    child_process check(std::move(opts));
    REQUIRE(check.wait(30s) == 0);
    const std::string out = rtm::test::read_file(check_dir.file("out"));
    const std::string err = rtm::test::read_file(check_dir.file("err"));
    CHECK_MESSAGE(err.find("readable by everyone") != std::string::npos, err);
    CHECK(out.find("slack-revoked") != std::string::npos);
    outputs.emplace_back("--check-config stdout", out);
    outputs.emplace_back("--check-config stderr", err);
  }

  for (const std::string format : {"text", "json"}) {
    rtm::test::temp_dir run_dir;
    daemon_process d(run_dir, config(format), env);
    const std::string base = "http://127.0.0.1:" + d.metrics_port();
    REQUIRE_MESSAGE(acme.wait_event("AUTH acme-id ok", 30s), d.log());
    REQUIRE_MESSAGE(d.log_has("slack-main", 30s), d.log());
    // The refused connections have reached their error paths (and logged them) before we look.
    REQUIRE_MESSAGE(d.log_has("invalid_auth", 30s), d.log());
    REQUIRE_MESSAGE(acme.wait_event("AUTH acme-id2 refused", 30s), d.log());
    // Two connections are refused: alive, not ready.
    CHECK(http_status(base + "/healthz") == 200);
    CHECK(http_status(base + "/readyz") == 503);
    acme.command(R"({"cmd":"emit","event":"message:updated","payload":"{\"team_id\":\"T1\",\"n\":1}"})");
    acme.command(R"({"cmd":"raw","frame":"42[broken"})");
    acme.command(R"({"cmd":"emit","event":"message:updated","payload":"{\"n\":2}"})");
    slack.command(R"({"cmd":"emit","frame":"{\"type\":\"message\",\"ts\":\"1.2\"}"})");
    slack.command(R"({"cmd":"emit","frame":"{not json"})");
    std::string metrics;
    REQUIRE(rtm::test::eventually(
        [&] {
          metrics = http_get(base + "/metrics");
          return metric_sum(metrics, "rtm_bridge_dead_letters_total") == 3 &&
                 metric_sum(metrics, "rtm_bridge_events_published_total") == 2 &&
                 metrics.find("rtm_bridge_kafka_brokers_up") != std::string::npos;
        },
        30s));
    // A reload logs the config diff: also an output.
    d.signal(SIGHUP);
    REQUIRE(d.log_has("reload", 10s));
    d.signal(SIGTERM);
    REQUIRE(d.wait(30s) == 0);
    // Every connection's lines carry its name as a field, and the refused ones say so at warn/error level there.
    const std::string log = d.log();
    for (const std::string name : {"acme-main", "acme-wrong", "slack-main", "slack-revoked"}) {
      const std::string field = format == "json" ? "\"connection\":\"" + name + "\"" : "connection=" + name + " ";
      bool named = false;
      bool complained = false;
      std::size_t start = 0;
      while (start < log.size()) {
        const auto end = std::min(log.find('\n', start), log.size());
        const std::string_view line(log.data() + start, end - start);
        if (line.find(field) != std::string_view::npos) {
          named = true;
          complained =
              complained || line.find("error") != std::string_view::npos || line.find("warn") != std::string_view::npos;
        }
        start = end + 1;
      }
      CHECK_MESSAGE(named, name << " in the " << format << " log:\n" << log);
      if (name == "acme-wrong" || name == "slack-revoked") {
        CHECK_MESSAGE(complained, name << " refused without a warning or error line:\n" << log);
      }
    }
    if (format == "json") {
      for (std::size_t start = 0; start < log.size();) {
        const auto end = std::min(log.find('\n', start), log.size());
        const std::string_view line(log.data() + start, end - start);
        const bool json_line = line.rfind("{\"ts\":\"", 0) == 0 && line.back() == '}';
        CHECK_MESSAGE(json_line, "not a JSON line: " << line);
        start = end + 1;
      }
    }
    outputs.emplace_back(format + " log", log);
    outputs.emplace_back(format + " metrics", metrics);
  }
  for (const char* topic : {"rtm.message", "rtm.slack", "rtm.dead-letter"}) {
    std::string all;
    const auto records = rtm::test::read_topic(cluster.bootstrap_servers(), topic);
    CHECK(!records.empty());
    for (const auto& r : records) {
      all += r.key.value_or("") + "\n" + r.payload + "\n";
      for (const auto& [name, value] : r.headers) {
        all += name + ": " + value + "\n";
      }
    }
    outputs.emplace_back(std::string("topic ") + topic, all);
  }

  for (const auto& entry : outputs) {
    const auto& what = entry.first;  // named, not bound: doctest's macros capture them (clang 14)
    const auto& text = entry.second;
    CHECK_MESSAGE(!text.empty(), what);
    for (const auto& secret : secrets) {
      CHECK_MESSAGE(text.find(secret) == std::string::npos, "secret " << secret << " found in " << what << ":\n"
                                                                      << text);
    }
  }
}
