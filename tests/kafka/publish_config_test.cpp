// The publisher's construction: librdkafka settings the bridge owns, judged by the config loader's rule.
#include "kafka/publisher.hpp"

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "config/kafka_properties.hpp"
#include "metrics/registry.hpp"

using rtm::kafka::publisher;

TEST_CASE("publish: the bridge's own librdkafka settings cannot be overridden; bad properties name their key") {
  boost::asio::io_context io;
  rtm::metrics::registry metrics;
  rtm::config::kafka_config cfg;
  cfg.properties = {{"enable.idempotence", "false"}};
  CHECK_THROWS_WITH_AS(publisher(io, cfg, metrics, "127.0.0.1:9"),
                       doctest::Contains("kafka.properties.enable.idempotence: set by rtm-bridge itself"),
                       std::runtime_error);
  cfg.properties = {{"partitioner", "random"}};
  CHECK_THROWS_AS(publisher(io, cfg, metrics, "127.0.0.1:9"), std::runtime_error);
  cfg.properties = {{"compression.type", "bogus"}};
  CHECK_THROWS_WITH_AS(publisher(io, cfg, metrics, "127.0.0.1:9"),
                       doctest::Contains("kafka.properties.compression.type"), std::runtime_error);
  cfg.properties = {{"no.such.property", "1"}};
  CHECK_THROWS_WITH_AS(publisher(io, cfg, metrics, "127.0.0.1:9"),
                       doctest::Contains("kafka.properties.no.such.property"), std::runtime_error);
  cfg.properties = {};
  cfg.topic = "rtm.{nope}";
  CHECK_THROWS_WITH_AS(publisher(io, cfg, metrics, "127.0.0.1:9"), doctest::Contains("kafka.topic"),
                       std::runtime_error);
  // A valid configuration with a user property on top builds, and is healthy only once a broker answers.
  cfg.topic = "rtm.{namespace}";
  cfg.properties = {{"linger.ms", "10"}, {"compression.type", "lz4"}};
  publisher ok(io, cfg, metrics, "127.0.0.1:9");
  CHECK(ok.bootstrap_servers() == "127.0.0.1:9");
}

TEST_CASE("publish: the producer judges kafka.properties by the config loader's rule, property by property") {
  boost::asio::io_context io;
  rtm::metrics::registry metrics;
  rtm::config::kafka_config cfg;
  // The bridge's own values, as an operator may spell them out: --check-config accepts them, so must the daemon.
  cfg.properties = {{"acks", "all"},
                    {"request.required.acks", "-1"},
                    {"enable.idempotence", "true"},
                    {"partitioner", "murmur2_random"},
                    {"queuing.strategy", "fifo"}};
  CHECK_NOTHROW(publisher(io, cfg, metrics, "127.0.0.1:9"));
  const std::vector<std::pair<std::string, std::string>> cases = {{"acks", "all"},
                                                                  {"acks", "1"},
                                                                  {"enable.idempotence", "false"},
                                                                  {"transactional.id", "t1"},
                                                                  {"client.id", "other"},
                                                                  {"delivery.timeout.ms", "1000"},
                                                                  {"topic.message.timeout.ms", "1"},
                                                                  {"max.in.flight", "6"},
                                                                  {"retries", "0"},
                                                                  {"queuing.strategy", "lifo"},
                                                                  {"linger.ms", "5"},
                                                                  {"partitioner", "random"}};
  for (const auto& property : cases) {
    CAPTURE(property.first);
    CAPTURE(property.second);
    rtm::config::property_checker checker;
    const std::optional<std::string> verdict = checker.check(property.first, property.second);
    cfg.properties = {property};
    if (verdict) {
      const std::string expected = "kafka.properties." + property.first + ": " + *verdict;
      CHECK_THROWS_WITH_AS(publisher(io, cfg, metrics, "127.0.0.1:9"), doctest::Contains(expected.c_str()),
                           std::runtime_error);
    } else {
      CHECK_NOTHROW(publisher(io, cfg, metrics, "127.0.0.1:9"));
    }
  }
}
