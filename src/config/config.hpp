#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

// The validated configuration: plain values, secrets already resolved. Produced by config::load(), read-only after.
// The defaults are the schema table's (config/schema.hpp, rendered in docs/config.md): each constructor below applies
// them, so a default-constructed section equals what the loader makes of a file that leaves every key out.
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
  kafka_config();
  std::string brokers;  // "host:port,..." or "embedded"
  std::string client_id;
  std::vector<std::pair<std::string, std::string>> properties;  // librdkafka properties, in file order
  // The properties given as a secret ({env: NAME}, ...): resolved into `properties` like the others, and listed here
  // so that summaries can say where each comes from instead of printing it.
  std::vector<std::pair<std::string, secret>> secret_properties;
  std::string topic;
  std::vector<route> routes;
  std::string dead_letter_topic;
  duration delivery_timeout{};  // librdkafka message.timeout.ms; 0 = never give up
  duration shutdown_timeout{};

  [[nodiscard]] bool embedded() const noexcept { return brokers == "embedded"; }
  bool operator==(const kafka_config&) const = default;
};

enum class connection_kind { acme, slack };
enum class acme_tier { user, app };

struct reconnect_policy {
  reconnect_policy();
  duration initial_delay{};
  duration max_delay{};
  double jitter = 0;
  bool operator==(const reconnect_policy&) const = default;
};

struct tls_config {
  tls_config();
  std::optional<std::string> ca_file;  // PEM bundle; default: the system store
  bool verify = false;
  bool operator==(const tls_config&) const = default;
};

// What one upstream frame and one event may weigh. Frames are refused by the WebSocket transport before their payload
// is read (the connection is then closed with 1009 and reconnected: websocketpp cannot skip a frame); events (a
// frame that fits) above max_event_size are dead-lettered with a prefix and the connection lives on. The event
// default (960 KiB) leaves 16 KiB of Kafka's default message.max.bytes (1,000,000) for the envelope, key and headers.
struct size_limits {
  size_limits();
  std::size_t max_frame_size = 0;
  std::size_t max_event_size = 0;
  bool operator==(const size_limits&) const = default;
};

inline constexpr const char* default_acme_api_url = "https://api.acme.com/v1";
inline constexpr const char* default_slack_url = "https://slack.com/api/";

// Default-constructed: the defaults of kind acme (the first kind); the loader applies those of the kind it reads.
struct connection_config {
  connection_config();
  std::string name;        // unique, [a-z0-9_-]+
  connection_kind kind{};  // required in the file; acme until read
  // acme: the RTM endpoint, empty = discover it over REST; slack: the Web API base (default_slack_url).
  std::string url;
  int protocol = 0;                    // acme: Engine.IO revision (4 or 3)
  std::string api_url;                 // acme: REST base for endpoint discovery
  acme_tier tier{};                    // acme
  secret identifier;                   // acme: token identifier
  secret key;                          // acme: token key; slack: the token
  std::vector<std::string> events;     // acme: subscribed event globs; empty = all events of the tier
  std::optional<std::string> team_id;  // fixed team id (slack default: team.id from rtm.connect)
  reconnect_policy reconnect;
  duration ping_timeout{};
  tls_config tls;
  size_limits limits;

  bool operator==(const connection_config&) const = default;
};

struct metrics_config {
  metrics_config();
  std::string listen;  // "" disables the HTTP endpoint
  bool operator==(const metrics_config&) const = default;
};

enum class log_level { trace, debug, info, warn, error };
enum class log_format { text, json };

struct log_config {
  log_config();
  log_level level{};
  log_format format{};
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
