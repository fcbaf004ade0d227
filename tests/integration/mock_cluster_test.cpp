// tests/support/mock_cluster_main.cpp (rtm-mock-cluster) as the tests that share one cluster between processes use
// it: it comes up, takes records from one process and hands them to another, and takes brokers down and up on
// command.
#include <doctest/doctest.h>

#include <string>

#include "support/kcat.hpp"
#include "support/process.hpp"

using namespace std::chrono_literals;
using namespace rtm::test;

TEST_CASE("rtm-mock-cluster: one cluster for several processes, brokers down and up on command") {
  child_process::options opts;
  opts.argv = {env_path("RTM_MOCK_CLUSTER_BIN"), "--brokers", "3", "--topic", "shared:4"};
  opts.keep_stdin = true;
  child_process cluster(std::move(opts));
  const auto bootstrap = cluster.wait_for_line("BOOTSTRAP ", 30s);
  REQUIRE(bootstrap.has_value());

  child_process::options produce;
  produce.argv = {"kcat", "-P", "-b", *bootstrap, "-t", "shared", "-k", "T1"};
  produce.stdin_data = "{\"n\":1}\n{\"n\":2}\n";
  child_process kcat(std::move(produce));
  REQUIRE(kcat.wait(30s) == std::optional<int>(0));
  const auto records = read_topic(*bootstrap, "shared");
  REQUIRE(records.size() == 2);
  CHECK(records[0].partition == records[1].partition);  // one key, one partition

  cluster.write_line("down 2");
  CHECK(cluster.wait_for_line("OK down 2", 10s).has_value());
  cluster.write_line("up 2");
  CHECK(cluster.wait_for_line("OK up 2", 10s).has_value());
  cluster.write_line("topic more 2");
  CHECK(cluster.wait_for_line("OK topic more 2", 10s).has_value());
  cluster.write_line("coordinator rtm-bridge 1");
  CHECK(cluster.wait_for_line("OK coordinator rtm-bridge 1", 10s).has_value());
  cluster.write_line("nonsense");
  CHECK(cluster.wait_for_line("ERROR unknown command nonsense", 10s).has_value());
  cluster.write_line("quit");
  CHECK(cluster.wait(10s) == std::optional<int>(0));
}
