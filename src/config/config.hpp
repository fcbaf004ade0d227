#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

// The validated configuration: plain values, secrets already resolved. Produced by config::load(), read-only after.
// Defaults here are the contract's (docs/CONTRACT.md "Config"); the loader and the example file follow them.
namespace rtm::config {

using duration = std::chrono::milliseconds;

struct secret {
  enum class source { value, env, file, credential };
  source from = source::value;
  std::string reference;  // env var name, file path or credential name; empty for `value`
  std::string value;      // the resolved secret: never log or print it

  // For summaries: where it comes from, never what it is (e.g. "env:ACME_KEY", "value:****").
  [[nodiscard]] std::string describe() const;
  bool operator==(const secret&) const = default;
};

struct route {
  std::string match;  // glob on the event name
  std::string topic;  // template, same placeholders as kafka.topic
  bool operator==(const route&) const = default;
};

struct kafka_config {
  std::string brokers;  // "host:port,..." or "embedded"
  std::string client_id = "rtm-bridge";
  std::vector<std::pair<std::string, std::string>> properties;  // librdkafka properties, in file order
  // The properties given as a secret ({env: NAME}, ...): resolved into `properties` like the others, and listed here
  // so that summaries can say where each comes from instead of printing it.
  std::vector<std::pair<std::string, secret>> secret_properties;
  std::string topic = "rtm.{namespace}";
  std::vector<route> routes;
  std::string dead_letter_topic = "rtm.dead-letter";
  duration delivery_timeout{0};  // librdkafka message.timeout.ms; 0 = never give up
  duration shutdown_timeout{std::chrono::seconds{30}};

  [[nodiscard]] bool embedded() const noexcept { return brokers == "embedded"; }
  bool operator==(const kafka_config&) const = default;
};

enum class connection_kind { acme, slack };
enum class acme_tier { user, app };

struct reconnect_policy {
  duration initial_delay{std::chrono::seconds{1}};
  duration max_delay{std::chrono::seconds{60}};
  double jitter = 0.5;
  bool operator==(const reconnect_policy&) const = default;
};

struct tls_config {
  std::optional<std::string> ca_file;  // PEM bundle; default: the system store
  bool verify = true;
  bool operator==(const tls_config&) const = default;
};

// What one upstream frame and one event may weigh. Frames are refused by the WebSocket transport before their payload
// is read (the connection is then closed with 1009 and reconnected: websocketpp cannot skip a frame); events (a
// frame that fits) above max_event_size are dead-lettered with a prefix and the connection lives on. The event
// default leaves 16 KiB of Kafka's default message.max.bytes (1,000,000) for the envelope, key and headers.
struct size_limits {
  std::size_t max_frame_size = std::size_t{16} << 20;   // 16 MiB
  std::size_t max_event_size = std::size_t{960} << 10;  // 960 KiB = 983,040 bytes
  bool operator==(const size_limits&) const = default;
};

inline constexpr std::size_t min_size_limit = std::size_t{1} << 10;  // below, handshake packets would not fit
inline constexpr std::size_t max_frame_size_limit = std::size_t{1} << 30;

inline constexpr const char* default_acme_api_url = "https://api.acme.com/v1";
inline constexpr const char* default_slack_url = "https://slack.com/api/";

struct connection_config {
  std::string name;  // unique, [a-z0-9_-]+
  connection_kind kind = connection_kind::acme;
  // acme: the RTM endpoint, empty = discover it over REST; slack: the Web API base (default_slack_url).
  std::string url;
  int protocol = 4;                            // acme: Engine.IO revision (4 or 3)
  std::string api_url = default_acme_api_url;  // acme: REST base for endpoint discovery
  acme_tier tier = acme_tier::user;            // acme
  secret identifier;                           // acme: token identifier
  secret key;                                  // acme: token key; slack: the token
  std::vector<std::string> events;             // acme: subscribed event globs; empty = all events of the tier
  std::optional<std::string> team_id;          // fixed team id (slack default: team.id from rtm.connect)
  reconnect_policy reconnect;
  duration ping_timeout{std::chrono::seconds{30}};
  tls_config tls;
  size_limits limits;

  bool operator==(const connection_config&) const = default;
};

struct metrics_config {
  std::string listen = "127.0.0.1:9464";  // "" disables the HTTP endpoint
  bool operator==(const metrics_config&) const = default;
};

enum class log_level { trace, debug, info, warn, error };
enum class log_format { text, json };

struct log_config {
  log_level level = log_level::info;
  log_format format = log_format::text;
  bool operator==(const log_config&) const = default;
};

struct config {
  std::string path;  // the file it was loaded from
  kafka_config kafka;
  std::vector<connection_config> connections;
  metrics_config metrics;
  log_config log;
};

// Which upstream token a connection holds, whatever URL it reaches it by: the vendors cap connections per token, so
// two entries (or an old and a new entry across a reload) with the same identity must never be live together. The
// credential is what counts (Acme: the token identifier; Slack: the token), not the endpoint: a URL with or without
// a trailing slash, another host spelling or discovery instead of a fixed URL all reach the same account. A SHA-256
// digest of kind and credential, so the identity can be kept and compared without holding another copy of the secret.
[[nodiscard]] std::string token_identity(const connection_config& c);

[[nodiscard]] const char* to_string(connection_kind kind) noexcept;
[[nodiscard]] const char* to_string(acme_tier tier) noexcept;

}  // namespace rtm::config
