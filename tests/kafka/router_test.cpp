#include "kafka/router.hpp"

#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

namespace {

rtm::pipeline::event make_event(std::string_view connection, std::string_view name, std::string_view name_space,
                                rtm::pipeline::source from = rtm::pipeline::source::acme) {
  rtm::pipeline::event ev;
  ev.connection = connection;
  ev.name = name;
  ev.name_space = name_space;
  ev.from = from;
  ev.team_id = "T1";
  return ev;
}

}  // namespace

TEST_CASE("router: default template uses the namespace") {
  rtm::config::kafka_config cfg;
  rtm::kafka::router r(cfg);
  CHECK(r.resolve(make_event("acme-main", "message:updated", "message")) == "rtm.message");
  CHECK(r.resolve(make_event("slack-1", "message.message_changed", "slack", rtm::pipeline::source::slack)) ==
        "rtm.slack");
}

TEST_CASE("router: routes are tried in order, first glob match wins, else the default") {
  rtm::config::kafka_config cfg;
  cfg.topic = "rtm.{namespace}";
  cfg.routes = {{"message:*", "rtm.messages"}, {"message:updated", "never.used"}, {"session:*", "rtm.{source}.s"}};
  rtm::kafka::router r(cfg);
  CHECK(r.resolve(make_event("a", "message:updated", "message")) == "rtm.messages");
  CHECK(r.resolve(make_event("a", "session:update_verify", "session")) == "rtm.acme.s");
  CHECK(r.resolve(make_event("a", "presence:x", "presence")) == "rtm.presence");
}

TEST_CASE("router: every placeholder and literal braces") {
  rtm::config::kafka_config cfg;
  cfg.topic = "{source}-{connection}-{namespace}-{event}";
  rtm::kafka::router r(cfg);
  CHECK(r.resolve(make_event("acme-main", "message:updated", "message")) == "acme-acme-main-message-message.updated");
  cfg.topic = "x{{y}}{event}";
  rtm::kafka::router braces(cfg);
  // '{' and '}' are not Kafka topic characters: the literal braces are sanitized like anything else.
  CHECK(braces.resolve(make_event("c", "e", "e")) == "x_y_e");
}

TEST_CASE("router: sanitizing is deterministic and documented") {
  std::string s = "rtm.message:updated/ä b";
  rtm::kafka::sanitize_topic(s);
  CHECK(s == "rtm.message.updated____b");  // '/', the two UTF-8 bytes of 'ä', the space
  std::string empty;
  rtm::kafka::sanitize_topic(empty);
  CHECK(empty == "_");
  std::string dot = ".";
  rtm::kafka::sanitize_topic(dot);
  CHECK(dot == "_");
  std::string dots = "..";
  rtm::kafka::sanitize_topic(dots);
  CHECK(dots == "__");
  std::string long_name(300, 'a');
  rtm::kafka::sanitize_topic(long_name);
  CHECK(long_name.size() == rtm::kafka::max_topic_length);
  std::string fine = "Already-fine_topic.1";
  rtm::kafka::sanitize_topic(fine);
  CHECK(fine == "Already-fine_topic.1");

  rtm::config::kafka_config cfg;
  cfg.topic = "rtm.{event}";
  rtm::kafka::router r(cfg);
  CHECK(r.resolve(make_event("c", "message:updated", "message")) == "rtm.message.updated");
  cfg.topic = "{namespace}";
  rtm::kafka::router bare(cfg);
  CHECK(bare.resolve(make_event("c", ":x", "")) == "_");
}

TEST_CASE("router: invalid templates and globs are reported with their key") {
  rtm::config::kafka_config cfg;
  cfg.topic = "rtm.{team}";
  CHECK_THROWS_WITH_AS(rtm::kafka::router{cfg}, doctest::Contains("kafka.topic: unknown placeholder {team}"),
                       std::runtime_error);
  cfg.topic = "rtm.{event";
  CHECK_THROWS_WITH_AS(rtm::kafka::router{cfg}, doctest::Contains("kafka.topic: unclosed '{'"), std::runtime_error);
  cfg.topic = "rtm.}";
  CHECK_THROWS_AS(rtm::kafka::router{cfg}, std::runtime_error);
  cfg.topic = "ok";
  cfg.routes = {{"a*", "x"}, {"[abc", "y"}};
  CHECK_THROWS_WITH_AS(rtm::kafka::router{cfg}, doctest::Contains("kafka.routes[1].match"), std::runtime_error);
  cfg.routes = {{"a*", "x.{nope}"}};
  CHECK_THROWS_WITH_AS(rtm::kafka::router{cfg}, doctest::Contains("kafka.routes[0].topic"), std::runtime_error);
}

TEST_CASE("router: cache per (source, connection, event), bounded, same answers past the bound") {
  rtm::config::kafka_config cfg;
  cfg.topic = "rtm.{connection}.{event}";
  rtm::kafka::router r(cfg, 3);
  const std::string& first = r.resolve(make_event("a", "e:1", "e"));
  CHECK(first == "rtm.a.e.1");
  // A cached answer is the very same string object: no formatting, no allocation.
  CHECK(&r.resolve(make_event("a", "e:1", "e")) == &first);
  CHECK(r.cache_size() == 1);
  CHECK(r.resolve(make_event("b", "e:1", "e")) == "rtm.b.e.1");
  CHECK(r.resolve(make_event("a", "e:1", "e", rtm::pipeline::source::slack)) == "rtm.a.e.1");
  CHECK(r.cache_size() == 3);
  CHECK(r.uncached_resolutions() == 0);
  // Full: new combinations are still resolved correctly, through the scratch buffer.
  CHECK(r.resolve(make_event("c", "e:2", "e")) == "rtm.c.e.2");
  CHECK(r.resolve(make_event("d", "e:3", "e")) == "rtm.d.e.3");
  CHECK(r.cache_size() == 3);
  CHECK(r.uncached_resolutions() == 2);
  CHECK(r.resolve(make_event("a", "e:1", "e")) == "rtm.a.e.1");
  // Keys cannot collide through separators inside event names.
  rtm::config::kafka_config ns_cfg;
  ns_cfg.topic = "{namespace}.{event}";
  rtm::kafka::router n(ns_cfg);
  CHECK(n.resolve(make_event("a", std::string_view("b\0c", 3), "x")) == "x.b_c");
  CHECK(n.resolve(make_event("a", "c", std::string_view("x\0b", 3))) == "x_b.c");
}
