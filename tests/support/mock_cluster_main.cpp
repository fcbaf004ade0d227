// rtm-mock-cluster: the librdkafka mock cluster in a process of its own, for tests where several bridge processes
// (and kcat) must share one cluster and where the test, not a bridge, decides when brokers fail: e.g. several
// instances in one consumer group (issue 19), or a cluster that outlives a bridge killed with SIGKILL.
//
// Usage: rtm-mock-cluster [--brokers N] [--topic NAME:PARTITIONS]...
// Prints "BOOTSTRAP host:port,..." once the cluster is up, then reads commands on stdin, one per line, each answered
// by one line ("OK ..." or "ERROR ..."):
//   down ID | up ID          a broker (1..N, or -1 for every one) stops / starts answering (connections refused)
//   rtt ID MS                adds MS of round-trip time to a broker
//   topic NAME PARTITIONS    creates a topic
//   coordinator GROUP ID     pins the coordinator of consumer group GROUP to broker ID
//   quit                     exits (so does EOF on stdin)
// Spawned with exec by the tests, never forked from a process that created a mock cluster (the study's pitfall).
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <cstdio>
#include <exception>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "kafka/embedded_cluster.hpp"

namespace {

int run(int argc, char** argv) {
  int brokers = rtm::kafka::embedded_cluster::default_brokers;
  std::vector<std::pair<std::string, int>> topics;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--brokers" && i + 1 < argc) {
      brokers = std::stoi(argv[++i]);
    } else if (arg == "--topic" && i + 1 < argc) {
      const std::string spec = argv[++i];
      const auto colon = spec.rfind(':');
      if (colon == std::string::npos) {
        std::cerr << "rtm-mock-cluster: --topic takes NAME:PARTITIONS, got " << spec << '\n';
        return 64;
      }
      topics.emplace_back(spec.substr(0, colon), std::stoi(spec.substr(colon + 1)));
    } else {
      std::cerr << "rtm-mock-cluster: unknown argument " << arg << '\n';
      return 64;
    }
  }
  rtm::kafka::embedded_cluster cluster(brokers);
  for (const auto& [name, partitions] : topics) {
    cluster.create_topic(name, partitions);
  }
  std::cout << "BOOTSTRAP " << cluster.bootstrap_servers() << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    try {
      if (cmd == "down" || cmd == "up") {
        std::int32_t id = 0;
        in >> id;
        if (cmd == "down") {
          cluster.set_broker_down(id);
        } else {
          cluster.set_broker_up(id);
        }
      } else if (cmd == "rtt") {
        std::int32_t id = 0;
        int ms = 0;
        in >> id >> ms;
        cluster.set_broker_rtt(id, ms);
      } else if (cmd == "topic") {
        std::string name;
        int partitions = 0;
        in >> name >> partitions;
        cluster.create_topic(name, partitions);
      } else if (cmd == "coordinator") {
        std::string group;
        std::int32_t id = 0;
        in >> group >> id;
        const rd_kafka_resp_err_t err = rd_kafka_mock_coordinator_set(cluster.mock(), "group", group.c_str(), id);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          std::cout << "ERROR " << rd_kafka_err2str(err) << std::endl;
          continue;
        }
      } else if (cmd == "quit") {
        std::cout << "OK quit" << std::endl;
        return 0;
      } else {
        std::cout << "ERROR unknown command " << cmd << std::endl;
        continue;
      }
      std::cout << "OK " << line << std::endl;
    } catch (const std::exception& e) {
      std::cout << "ERROR " << e.what() << std::endl;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "rtm-mock-cluster: " << e.what() << '\n';
    return 1;
  }
}
