#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
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

// What an append does when the spool holds max_size: drop the new event (counted) and keep reading upstream, or stop
// reading upstream until deliveries free a segment (the in-memory backpressure of a bridge without a spool).
enum class spool_full_policy { drop_newest, block };

// The durable spool (docs/CONTRACT.md, "spool"): with a path, every event is written to disk at receipt and sent to
// Kafka from there. Sizes in bytes.
struct spool_config {
  spool_config();
  std::string path;                // a directory turns the spool on; "" = off (null or absent in the file)
  std::uint64_t max_size = 0;      // the disk it may use, whole segments; at least 2 x segment_size
  std::uint64_t segment_size = 0;  // one preallocated file
  std::uint64_t min_free = 0;      // no segment is preallocated that would leave less free space than this
  duration fsync_interval{};       // the power-loss window; 0 = fdatasync after every write batch
  duration checkpoint_interval{};  // how often the delivery low-water mark is persisted
  std::size_t max_in_flight = 0;   // records handed to librdkafka beyond the low-water mark
  spool_full_policy when_full{};

  [[nodiscard]] bool enabled() const noexcept { return !path.empty(); }
  bool operator==(const spool_config&) const = default;
};

// The command consumer (docs/CONTRACT.md, "Commands"): records on `topic` are sent on a Slack legacy RTM socket, and
// every one is answered by one record on `reply_topic`.
struct commands_config {
  commands_config();
  std::string topic;        // "" = off (null or absent in the file)
  std::string group_id;     // the consumer group
  std::string reply_topic;  // where every command's reply goes
  duration max_age{};       // a command not sent this long after it was produced is answered "expired"

  [[nodiscard]] bool enabled() const noexcept { return !topic.empty(); }
  bool operator==(const commands_config&) const = default;
};

// Several instances (docs/CONTRACT.md, "Several instances"): with a group id, the instances of one consumer group
// share the connections, each opening those of the assignment topic's partitions (buckets) the group gives it.
struct cluster_config {
  cluster_config();
  std::string group_id;                    // "" = off (null or absent in the file): every connection is opened
  std::string assignment_topic;            // exactly `buckets` partitions; carries no data
  std::size_t buckets = 0;                 // connection -> bucket = murmur2(name) % buckets, or its `bucket:`
  std::optional<std::string> instance_id;  // static membership (group.instance.id)
  duration session_timeout{};              // S
  duration heartbeat_interval{};           // H
  duration rebalance_timeout{};            // R (max.poll.interval.ms)
  duration fence_margin{};                 // M: connections close this long before the group can evict this member
  std::vector<std::pair<std::string, std::string>> properties;  // for the group consumer, after kafka.properties
  std::vector<std::pair<std::string, secret>> secret_properties;

  [[nodiscard]] bool enabled() const noexcept { return !group_id.empty(); }
  bool operator==(const cluster_config&) const = default;
};

enum class connection_kind { acme, slack, slack_socket };
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
  int protocol = 0;                       // acme: Engine.IO revision (4 or 3)
  std::string api_url;                    // acme: REST base for endpoint discovery
  acme_tier tier{};                       // acme
  secret identifier;                      // acme: token identifier
  secret key;                             // acme: token key; slack: the token
  std::vector<std::string> events;        // acme: subscribed event globs; empty = all events of the tier
  std::vector<std::string> presence_sub;  // slack: users whose presence_change to subscribe after every hello
  std::optional<std::string> team_id;     // fixed team id (slack default: team.id from rtm.connect)
  reconnect_policy reconnect;
  duration ping_timeout{};
  tls_config tls;
  size_limits limits;
  std::optional<std::size_t> bucket;  // cluster mode: an explicit bucket (0..cluster.buckets-1), else murmur2(name)

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
  spool_config spool;
  commands_config commands;
  cluster_config cluster;
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
