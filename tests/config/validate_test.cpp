#include "config/validate.hpp"

#include <doctest/doctest.h>

#include <string>

#include "config/kafka_properties.hpp"
#include "config/secret.hpp"

using namespace rtm::config;

namespace {

// The error text, or "" when the check passed (so CHECK(... == "") shows the unexpected message on failure).
std::string err(const std::optional<std::string>& result) {
  return result.value_or("");
}

}  // namespace

TEST_CASE("connection names are [a-z0-9_-]{1,64}") {
  CHECK(err(check_connection_name("acme-main_2")) == "");
  CHECK(err(check_connection_name(std::string(64, 'a'))) == "");
  CHECK(err(check_connection_name(std::string(65, 'a'))).find("at most 64 characters, got 65") != std::string::npos);
  CHECK(err(check_connection_name("")).find("empty") != std::string::npos);
  CHECK(err(check_connection_name("Acme")).find("'A' is not allowed") != std::string::npos);
  CHECK(err(check_connection_name("a b")).find("a space is not allowed") != std::string::npos);
  CHECK(err(check_connection_name("a.b")).find("'.' is not allowed") != std::string::npos);
}

TEST_CASE("topic names and templates") {
  CHECK(err(check_topic_name("rtm.dead-letter_1")) == "");
  CHECK(err(check_topic_name(".")) != "");
  CHECK(err(check_topic_name("..")) != "");
  CHECK(err(check_topic_name(std::string(249, 't'))) == "");
  CHECK(err(check_topic_name(std::string(250, 't'))).find("at most 249") != std::string::npos);
  CHECK(err(check_topic_name("rtm:x")).find("':' is not allowed") != std::string::npos);

  CHECK(err(check_topic_template("rtm.{namespace}")) == "");
  CHECK(err(check_topic_template("{source}.{connection}.{event}")) == "");
  CHECK(err(check_topic_template("rtm.{team}")) ==
        "unknown placeholder {team} in \"rtm.{team}\": expected {namespace}, {event}, {connection} or {source}");
  CHECK(err(check_topic_template("rtm.{}")).find("unknown placeholder {}") != std::string::npos);
  CHECK(err(check_topic_template("rtm.{namespace")) == "unbalanced '{' at offset 4 in \"rtm.{namespace\"");
  CHECK(err(check_topic_template("rtm.{na{event}")).find("unbalanced '{' at offset 4") != std::string::npos);
  CHECK(err(check_topic_template("rtm.namespace}")) == "unbalanced '}' at offset 13 in \"rtm.namespace}\"");
  CHECK(err(check_topic_template("rtm {event}")).find("invalid character a space") != std::string::npos);
  CHECK(err(check_topic_template("..")) != "");
  CHECK(err(check_topic_template("")) != "");
  CHECK(has_placeholder("a.{event}"));
  CHECK_FALSE(has_placeholder("a.b"));
}

TEST_CASE("host:port forms") {
  CHECK(err(check_host_port("127.0.0.1:9464")) == "");
  CHECK(err(check_host_port("[::1]:9464")) == "");
  CHECK(err(check_host_port("kafka-1.internal:9092")) == "");
  CHECK(err(check_host_port("localhost:0")) != "");
  CHECK(err(check_host_port("localhost:0", {.min = 0, .max = 65535})) == "");
  CHECK(err(check_host_port("localhost")).find("the port is missing") != std::string::npos);
  CHECK(err(check_host_port(":9092")).find("the host is missing") != std::string::npos);
  CHECK(err(check_host_port("localhost:65536")).find("numeric port 1-65535") != std::string::npos);
  CHECK(err(check_host_port("localhost:http")).find("got \"http\"") != std::string::npos);
  CHECK(err(check_host_port("::1:9092")).find("needs brackets") != std::string::npos);
  CHECK(err(check_host_port("[::1:9092")).find("unterminated") != std::string::npos);
  CHECK(err(check_host_port("[zz::1]:9092")).find("invalid IPv6") != std::string::npos);
  CHECK(err(check_host_port("300.1.1.1:9092")).find("invalid IPv4") != std::string::npos);
  CHECK(err(check_host_port("bad host:9092")).find("invalid character a space") != std::string::npos);
  CHECK(err(check_host_port("a..b:9092")).find("empty label") != std::string::npos);
}

TEST_CASE("broker lists") {
  CHECK(err(check_brokers("embedded")) == "");
  CHECK(err(check_brokers("k1:9092,k2:9092")) == "");
  CHECK(err(check_brokers(" k1:9092 , [::1]:9093 ")) == "");
  CHECK(err(check_brokers("")).find("got an empty string") != std::string::npos);
  CHECK(err(check_brokers("k1:9092,,k2:9092")).find("empty entry") != std::string::npos);
  CHECK(err(check_brokers("k1:9092,k2")).find("the port is missing in \"k2\"") != std::string::npos);
  CHECK(err(check_brokers("SSL://k1:9093")).find("security.protocol") != std::string::npos);
}

TEST_CASE("URLs") {
  CHECK(err(check_url("wss://rtm.acme.com/", {"wss", "ws"})) == "");
  CHECK(err(check_url("ws://127.0.0.1:8080/socket.io/?x=1", {"wss", "ws"})) == "");
  CHECK(err(check_url("wss://[::1]:8443/", {"wss", "ws"})) == "");
  CHECK(err(check_url("https://slack.com/api", {"https", "http"})) == "");
  CHECK(err(check_url("https://rtm.acme.com/", {"wss", "ws"})) ==
        "expected a wss:// or ws:// URL, got \"https://rtm.acme.com/\"");
  CHECK(err(check_url("rtm.acme.com", {"wss", "ws"})).find("expected a wss:// or ws:// URL") != std::string::npos);
  CHECK(err(check_url("wss:///path", {"wss"})).find("has no host") != std::string::npos);
  CHECK(err(check_url("wss://u:p@host/", {"wss"})).find("credentials") != std::string::npos);
  CHECK(err(check_url("wss://host:99999/", {"wss"})).find("numeric port") != std::string::npos);
  CHECK(err(check_url("wss://host/a b", {"wss"})).find("a space") != std::string::npos);
  CHECK(err(check_url("wss://host/#frag", {"wss"})).find("fragment") != std::string::npos);
}

TEST_CASE("secret references and newline stripping") {
  CHECK(err(check_secret_reference(secret::source::env, "ACME_KEY_2")) == "");
  CHECK(err(check_secret_reference(secret::source::env, "2KEY")) != "");
  CHECK(err(check_secret_reference(secret::source::env, "ACME-KEY")) != "");
  CHECK(err(check_secret_reference(secret::source::credential, "acme-key")) == "");
  CHECK(err(check_secret_reference(secret::source::credential, "../etc/shadow")) != "");
  CHECK(err(check_secret_reference(secret::source::credential, "..")) != "");
  CHECK(err(check_secret_reference(secret::source::file, "")) != "");
  CHECK(strip_trailing_newlines("abc\n") == "abc");
  CHECK(strip_trailing_newlines("abc\r\n\n") == "abc");
  CHECK(strip_trailing_newlines("a\nb\n") == "a\nb");
  CHECK(strip_trailing_newlines("\n") == "");
}

TEST_CASE("secret::describe never shows the value") {
  secret s;
  s.from = secret::source::value;
  s.value = "hunter2-inline";
  CHECK(s.describe() == "value:****");
  s.from = secret::source::env;
  s.reference = "ACME_KEY";
  CHECK(s.describe() == "env:ACME_KEY");
  s.from = secret::source::file;
  s.reference = "/run/secrets/k";
  CHECK(s.describe() == "file:/run/secrets/k");
  s.from = secret::source::credential;
  s.reference = "acme-key";
  CHECK(s.describe() == "credential:acme-key");
}

TEST_CASE("librdkafka property checker") {
  property_checker checker;
  CHECK(err(checker.check("linger.ms", "20")) == "");
  CHECK(err(checker.check("compression.type", "zstd")) == "");
  CHECK(err(checker.check("acks", "all")) == "");
  CHECK(err(checker.check("acks", "-1")) == "");
  CHECK(err(checker.check("enable.idempotence", "true")) == "");
  CHECK(err(checker.check("partitioner", "murmur2_random")) == "");
  CHECK(err(checker.check("max.in.flight", "5")) == "");

  CHECK(err(checker.check("linger.ms", "abc")) ==
        "librdkafka: Invalid value for configuration property \"queue.buffering.max.ms\"");
  CHECK(err(checker.check("linger.ms", "99999999")).find("outside allowed range 0..900000") != std::string::npos);
  CHECK(err(checker.check("no.such.thing", "1")) == "librdkafka: No such configuration property: \"no.such.thing\"");
  CHECK(err(checker.check("bootstrap.servers", "k:9092")) == "set by rtm-bridge itself: use kafka.brokers instead");
  CHECK(err(checker.check("metadata.broker.list", "k:9092")) == "set by rtm-bridge itself: use kafka.brokers instead");
  CHECK(err(checker.check("client.id", "x")) == "set by rtm-bridge itself: use kafka.client_id instead");
  CHECK(err(checker.check("message.timeout.ms", "1")) ==
        "set by rtm-bridge itself: use kafka.delivery_timeout instead");
  CHECK(err(checker.check("topic.message.timeout.ms", "1")).find("kafka.delivery_timeout") != std::string::npos);
  CHECK(err(checker.check("delivery.timeout.ms", "1")).find("kafka.delivery_timeout") != std::string::npos);
  CHECK(err(checker.check("enable.idempotence", "false")).find("idempotent") != std::string::npos);
  CHECK(err(checker.check("enable.idempotence", "0")).find("idempotent") != std::string::npos);
  CHECK(err(checker.check("acks", "1")).find("acks=all") != std::string::npos);
  CHECK(err(checker.check("request.required.acks", "0")).find("acks=all") != std::string::npos);
  CHECK(err(checker.check("partitioner", "consistent_random")).find("murmur2_random") != std::string::npos);
  CHECK(err(checker.check("max.in.flight.requests.per.connection", "6")).find("at most 5") != std::string::npos);
  CHECK(err(checker.check("retries", "0")).find("at least 1") != std::string::npos);
  CHECK(err(checker.check("transactional.id", "t1")).find("transactional") != std::string::npos);
  CHECK(err(checker.check("dr_cb", "x")).find("librdkafka: Property \"dr_cb\"") != std::string::npos);

  CHECK(is_sensitive_property("sasl.password"));
  CHECK(is_sensitive_property("ssl.key.password"));
  CHECK(is_sensitive_property("sasl.oauthbearer.client.secret"));
  CHECK_FALSE(is_sensitive_property("linger.ms"));
}

TEST_CASE("kafka.properties: one list of the bridge's properties, one rule for sensitive ones") {
  property_checker checker;
  // A value equal to the bridge's own changes nothing: accepted, in every spelling librdkafka takes.
  CHECK(err(checker.check("topic.acks", "all")) == "");
  CHECK(err(checker.check("request.required.acks", "-1")) == "");
  CHECK(err(checker.check("enable.idempotence", "1")) == "");
  CHECK(err(checker.check("queuing.strategy", "fifo")) == "");
  CHECK(err(checker.check("queuing.strategy", "lifo")).find("set by rtm-bridge itself") != std::string::npos);
  CHECK(err(checker.check("enable.idempotence", "false")) ==
        "set by rtm-bridge itself: the contract requires an idempotent producer, so enable.idempotence cannot be "
        "false (got \"false\"): remove the key or set it to true");
  for (const char* name : {"bootstrap.servers", "metadata.broker.list", "client.id", "message.timeout.ms",
                           "delivery.timeout.ms", "enable.idempotence", "acks", "request.required.acks", "partitioner",
                           "queuing.strategy", "transactional.id", "topic.message.timeout.ms"}) {
    CAPTURE(name);
    CHECK(is_bridge_property(name));
  }
  CHECK_FALSE(is_bridge_property("linger.ms"));
  CHECK_FALSE(is_bridge_property("queue.buffering.max.kbytes"));

  // Credentials and key material, plus anything named like a password or secret.
  for (const char* name : {"sasl.password", "ssl.key.password", "ssl.key.pem", "ssl_key", "ssl.keystore.password",
                           "sasl.oauthbearer.config", "sasl.oauthbearer.client.secret"}) {
    CAPTURE(name);
    CHECK(is_sensitive_property(name));
  }
  // User names, paths and public material stay readable in summaries and error messages.
  for (const char* name : {"sasl.username", "ssl.key.location", "ssl.certificate.location", "ssl.ca.location",
                           "sasl.mechanism", "security.protocol"}) {
    CAPTURE(name);
    CHECK_FALSE(is_sensitive_property(name));
  }
}
