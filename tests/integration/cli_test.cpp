// The command line of the contract, against the real binary: exit codes, --check-config output, secrets masked.
#include <doctest/doctest.h>

#include <csignal>
#include <string>

#include "support/daemon.hpp"
#include "support/process.hpp"

using namespace std::chrono_literals;
using rtm::test::child_process;

namespace {

struct run_result {
  int code = -1;
  std::string out;
  std::string err;
};

run_result run(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
  rtm::test::temp_dir dir;
  args.insert(args.begin(), rtm::test::env_path("RTM_BRIDGE_BIN"));
  child_process::options opts;
  opts.argv = std::move(args);
  opts.env = std::move(env);
  opts.stdout_file = dir.file("out");
  opts.stderr_file = dir.file("err");
  child_process p(std::move(opts));
  run_result r;
  const auto code = p.wait(30s);
  REQUIRE(code.has_value());
  r.code = *code;
  r.out = rtm::test::read_file(dir.file("out"));
  r.err = rtm::test::read_file(dir.file("err"));
  return r;
}

const char* valid_config = R"(kafka:
  brokers: "127.0.0.1:9092"
connections:
  - name: acme-main
    kind: acme
    url: "ws://127.0.0.1:1/"
    identifier: {env: CLI_TEST_ACME_ID}
    key: {value: "sup3r-s3cret-acme-key-7731"}
  - name: slack-main
    kind: slack
    key: {env: CLI_TEST_SLACK_TOKEN}
)";

}  // namespace

TEST_CASE("--version and --help exit 0") {
  const auto v = run({"--version"});
  CHECK(v.code == 0);
  CHECK(v.out.find("rtm-bridge ") == 0);
  const auto h = run({"--help"});
  CHECK(h.code == 0);
  CHECK(h.out.find("--check-config") != std::string::npos);
}

TEST_CASE("a bad command line exits 64 with the usage") {
  const auto r = run({"--frobnicate"});
  CHECK(r.code == 64);
  CHECK(r.err.find("unknown argument '--frobnicate'") != std::string::npos);
  CHECK(r.err.find("Usage:") != std::string::npos);
  CHECK(run({"--config"}).code == 64);
}

TEST_CASE("--check-config on a valid file prints a summary with every secret masked") {
  rtm::test::temp_dir dir;
  const auto path = dir.write("rtm-bridge.yaml", valid_config);
  const auto r = run({"--check-config", "--config", path},
                     {{"CLI_TEST_ACME_ID", "acme-identifier-5521"}, {"CLI_TEST_SLACK_TOKEN", "xoxb-slack-token-9904"}});
  CHECK(r.code == 0);
  CHECK(r.out.find("acme-main") != std::string::npos);
  CHECK(r.out.find("slack-main") != std::string::npos);
  CHECK(r.out.find("127.0.0.1:9092") != std::string::npos);
  for (const char* secret : {"sup3r-s3cret-acme-key-7731", "acme-identifier-5521", "xoxb-slack-token-9904"}) {
    CHECK_MESSAGE(r.out.find(secret) == std::string::npos, secret);
    CHECK_MESSAGE(r.err.find(secret) == std::string::npos, secret);
  }
}

TEST_CASE("--check-config prints the expanded Acme subscription and warns about a glob that matches no known event") {
  rtm::test::temp_dir dir;
  const auto path = dir.write("rtm-bridge.yaml", R"(kafka:
  brokers: "127.0.0.1:9092"
connections:
  - name: acme-main
    kind: acme
    url: "ws://127.0.0.1:1/"
    identifier: {value: id}
    key: {value: key}
    events: ["spam:*", "nothing:known:*", "vendor:brand_new"]
    team_id: T-fixed
)");
  const auto r = run({"--check-config", "--config", path});
  INFO(r.out);
  CHECK(r.code == 0);
  CHECK(r.out.find("subscription (3 sent in authentication): spam:message,spam:decision,vendor:brand_new\n") !=
        std::string::npos);
  CHECK(r.out.find("warning: events glob \"nothing:known:*\" matches no event this build knows") != std::string::npos);
  CHECK(r.out.find("warning: events glob \"spam:*\"") == std::string::npos);
  CHECK(r.out.find("team_id T-fixed for events without one") != std::string::npos);
}

TEST_CASE("--check-config on an invalid file exits 78 with PATH:LINE:COL: key.path: message") {
  rtm::test::temp_dir dir;
  const auto path = dir.write("bad.yaml", R"(kafka:
  brokers: "127.0.0.1:9092"
  linger: 5
connections:
  - name: acme-main
    kind: acme
    url: "ws://127.0.0.1:1/"
    identifier: {value: "id"}
    key: {value: "key"}
    reconnect: {initial_delay: 5}
)");
  const auto r = run({"--check-config", "--config", path});
  CHECK(r.code == 78);
  CHECK(r.err.find(path + ":3:3: kafka.linger:") != std::string::npos);
  CHECK(r.err.find(path + ":10:") != std::string::npos);
  CHECK(r.err.find("connections[0].reconnect.initial_delay") != std::string::npos);
}

TEST_CASE("a missing config file exits 78 naming the file, with or without --check-config") {
  const auto r = run({"--config", "/nonexistent/rtm-bridge.yaml"});
  CHECK(r.code == 78);
  CHECK(r.err.find("/nonexistent/rtm-bridge.yaml") != std::string::npos);
  CHECK(run({"--check-config", "--config", "/nonexistent/rtm-bridge.yaml"}).code == 78);
}

TEST_CASE("kafka.properties that --check-config accepts, the daemon starts with; what it refuses, both refuse") {
  const std::string head = R"(kafka:
  brokers: embedded
  properties:
)";
  const std::string connections = R"(connections:
  - name: acme-main
    kind: acme
    url: "ws://127.0.0.1:1/"
    identifier: {value: "id"}
    key: {value: "key"}
metrics:
  listen: ""
)";
  // The bridge's own values, spelled out: a no-op, so accepted by both (the daemon used to exit 1 on them, a
  // restart loop under systemd after --check-config said the file was fine).
  rtm::test::temp_dir dir;
  const std::string same =
      head + "    acks: all\n    enable.idempotence: true\n    partitioner: murmur2_random\n" + connections;
  CHECK(run({"--check-config", "--config", dir.write("same.yaml", same)}).code == 0);
  {
    rtm::test::temp_dir run_dir;
    rtm::test::daemon_process d(run_dir, same);
    CHECK_MESSAGE(d.log_has("rtm-bridge ready", 30s), d.log());
    d.signal(SIGTERM);
    const auto code = d.wait(30s);
    REQUIRE(code.has_value());
    CHECK_MESSAGE(*code == 0, d.log());
  }
  // What the producer refuses, --check-config refuses first (exit 78), and the daemon the same way.
  for (const std::string property : {"transactional.id: t1", "delivery.timeout.ms: 1000", "acks: 1"}) {
    CAPTURE(property);
    const std::string path = dir.write("refused.yaml", head + "    " + property + "\n" + connections);
    const auto checked = run({"--check-config", "--config", path});
    CHECK(checked.code == 78);
    CHECK(checked.err.find("kafka.properties." + property.substr(0, property.find(':'))) != std::string::npos);
    CHECK(run({"--config", path}).code == 78);
  }
}
