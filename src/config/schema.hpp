#pragma once

#include <array>
#include <concepts>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "config/config.hpp"
#include "config/duration.hpp"
#include "config/size.hpp"
#include "config/validate.hpp"

// The config file's schema: every key declared once, as one row of its section's table. A row names the key and
// gives its default (as it is written in the file), its range or allowed values, the connection kinds it applies
// to, a one-line help text and how the summary and the example show it; the member it fills is the row's first
// argument. Everything that knows keys is a visitor walking these tables:
//   - the loader (config/schema_reader.cpp): takes each key, reports unknown keys (with "did you mean"), type, range
//     and check errors with file:line and key path, applies defaults to what the file leaves out;
//   - the constructors of the config structs (config/schema.cpp): a default-constructed section holds the defaults;
//   - `--check-config` (config/summary.cpp), the reference docs/config.md (config/reference.cpp) and the test that
//     the example config shows every key with its default (tests/config/schema_test.cpp).
// Adding a key: a member in config.hpp, a row here, and the code that uses the value. A new section: its struct, a
// visit() below, and a section() row in its parent. A new kind: a choice in kind_choices and the kinds of its rows.
// Rows are visited in table order, which is the order of the reference, the example and every "expected one of"
// list; within a connection, `kind` comes before every key that applies to some kinds only.
namespace rtm::config::schema {

// Which connection kinds a key applies to: one bit per connection_kind.
using kind_set = std::uint32_t;
[[nodiscard]] constexpr kind_set kind_bit(connection_kind kind) noexcept {
  return kind_set{1} << static_cast<unsigned>(kind);
}
inline constexpr kind_set every_kind = ~kind_set{0};
inline constexpr kind_set no_kind = 0;
inline constexpr kind_set acme = kind_bit(connection_kind::acme);
inline constexpr kind_set slack = kind_bit(connection_kind::slack);
inline constexpr kind_set slack_socket = kind_bit(connection_kind::slack_socket);

// One allowed value of a choice key (an enum member, or an int such as the Engine.IO revision).
struct choice {
  template <class E>
  requires std::is_enum_v<E> || std::same_as<E, int>
  constexpr choice(std::string_view name_, E value_, std::string_view help_ = {}) noexcept
      : name(name_), value(static_cast<int>(value_)), help(help_) {}
  std::string_view name;
  int value;
  std::string_view help;
};

inline constexpr std::array kind_choices{choice{"acme", connection_kind::acme, "Socket.IO RTM"},
                                         choice{"slack", connection_kind::slack, "legacy RTM"},
                                         choice{"slack_socket", connection_kind::slack_socket, "Slack Socket Mode"}};
inline constexpr std::array protocol_choices{choice{"4", 4}, choice{"3", 3}};
inline constexpr std::array tier_choices{choice{"user", acme_tier::user}, choice{"app", acme_tier::app}};
inline constexpr std::array level_choices{choice{"trace", log_level::trace}, choice{"debug", log_level::debug},
                                          choice{"info", log_level::info}, choice{"warn", log_level::warn},
                                          choice{"error", log_level::error}};
inline constexpr std::array format_choices{choice{"text", log_format::text, "journald-friendly"},
                                           choice{"json", log_format::json}};
inline constexpr std::array when_full_choices{
    choice{"drop_newest", spool_full_policy::drop_newest, "keep reading upstream, count what is dropped"},
    choice{"block", spool_full_policy::block, "stop reading upstream"}};

// Inclusive, in the key's unit: milliseconds for durations, bytes for sizes, the number itself for fractions and
// counts.
struct bounds {
  std::int64_t min = 0;
  std::int64_t max = 0;
};
inline constexpr std::int64_t unbounded = std::numeric_limits<std::int64_t>::max();
inline constexpr std::int64_t max_delivery_timeout_ms = std::numeric_limits<std::int32_t>::max();  // librdkafka's

// How config/rtm-bridge.example.yaml shows the key: with its default, with another value on purpose (what the
// example illustrates), or not at all on purpose.
enum class in_example : std::uint8_t { shows_default, shows_other_value, absent };

// How `--check-config` shows the key: "label value", the value alone, on the line of the key before it (in a block
// section), or not at all (another key's display covers it).
enum class in_summary : std::uint8_t { shown, value_only, joined, hidden };

// nullopt when the text is acceptable, else what is wrong with it (no key path, no position).
using text_check = std::optional<std::string> (*)(std::string_view text);
// How an accepted text is stored (e.g. one trailing '/').
using text_normalize = std::string (*)(std::string_view text);

// One row. Fields are in designated-initializer order; leave out what does not apply.
struct key_spec {
  std::string_view name{};
  kind_set kinds = every_kind;        // the connection kinds it applies to (other sections: every kind)
  kind_set required_for = no_kind;    // required for these kinds (every_kind: always, whatever the kind)
  std::string_view def{};             // the default as written in the file; empty: no default
  std::string_view unset{};           // without a default: what leaving the key out means
  bool nullable = false;              // null is the same as leaving the key out
  std::optional<bounds> range{};      // durations, sizes, fractions, counts
  std::string_view range_note{};      // appended to the "at most" message
  bool count = false;                 // a std::size_t that counts items: a plain whole number, not bytes
  std::span<const choice> choices{};  // choice keys: the allowed values, in the order messages list them
  std::string_view choices_note{};    // appended to the "expected A or B" message
  text_check check = nullptr;         // strings, and each string of a list
  text_normalize normalize = nullptr;
  std::string_view allowed{};    // what `check` accepts, for the reference
  std::string_view what{};       // how problems name the expected value (lists, special maps)
  std::string_view item_what{};  // lists of maps: how problems name one item
  std::string_view if_empty{};   // lists: an empty one is refused with this message
  std::string_view label{};      // in the summary; empty: the name
  in_summary summary = in_summary::shown;
  bool summary_block = false;  // a section shown as a block of lines, one per key
  in_example example = in_example::shows_default;
  std::string_view help{};

  [[nodiscard]] constexpr bool applies_to(connection_kind kind) const noexcept { return (kinds & kind_bit(kind)) != 0; }
  [[nodiscard]] constexpr bool has_default() const noexcept { return !def.empty(); }
};

// The choice named `name`, or nullptr.
[[nodiscard]] const choice* find_choice(std::span<const choice> choices, std::string_view name) noexcept;
// The name of the choice with `value` ("unknown" when none has it).
[[nodiscard]] std::string_view choice_name(std::span<const choice> choices, int value) noexcept;

// Checks and normalizations the rows use (beyond validate.hpp's).
[[nodiscard]] std::optional<std::string> check_nonempty(std::string_view text);
[[nodiscard]] std::optional<std::string> check_glob(std::string_view text);
[[nodiscard]] std::optional<std::string> check_user_id(std::string_view text);
[[nodiscard]] std::optional<std::string> check_dead_letter_topic(std::string_view text);
[[nodiscard]] std::optional<std::string> check_acme_url(std::string_view text);
[[nodiscard]] std::optional<std::string> check_web_api_url(std::string_view text);
[[nodiscard]] std::optional<std::string> check_team_id(std::string_view text);
[[nodiscard]] std::optional<std::string> check_ca_file_path(std::string_view text);
[[nodiscard]] std::optional<std::string> check_listen(std::string_view text);
[[nodiscard]] std::optional<std::string> check_spool_path(std::string_view text);
[[nodiscard]] std::string without_trailing_slashes(std::string_view text);
[[nodiscard]] std::string with_trailing_slash(std::string_view text);

template <class Object, class Section>
concept object_of = std::same_as<std::remove_const_t<Object>, Section>;

// ------------------------------------------------------------------------------------------------------- the tables
// A visitor V has key(member, spec[, shown]), section(member, spec), list(items, spec[, shown]) and
// properties(values, secrets, spec). `shown` is the summary's text for the key, where its value alone would not say
// enough (nullopt: show the value as usual); only the summary calls it.

template <class V, object_of<kafka_config> K>
void visit(V& v, K& k) {
  v.key(k.brokers,
        {.name = "brokers",
         .required_for = every_kind,
         .check = check_brokers,
         .normalize = normalize_brokers,
         .allowed = "host:port,host:port (IPv6 as [::1]:9092), or embedded",
         .help = "The bootstrap brokers, or `embedded`: an in-process mock cluster for demos and tests only"},
        [&k] { return k.embedded() ? std::string("embedded (in-process mock cluster, demo/tests only)") : k.brokers; });
  v.key(k.client_id, {.name = "client_id",
                      .def = "rtm-bridge",
                      .check = check_nonempty,
                      .allowed = "a non-empty string",
                      .label = "client id",
                      .help = "Kafka client.id (broker logs and quotas)"});
  v.properties(k.properties, k.secret_properties,
               {.name = "properties",
                .def = "{}",
                .nullable = true,
                .allowed = "librdkafka properties; a value may be a secret; those the bridge sets itself are refused",
                .what = "a map of librdkafka properties (name: value)",
                .help = "Passed to librdkafka as-is, each checked by librdkafka at load time"});
  v.key(k.topic, {.name = "topic",
                  .def = "rtm.{namespace}",
                  .check = check_topic_template,
                  .allowed = "a topic name, or a template with {namespace}, {event}, {connection}, {source}",
                  .help = "The default topic; {namespace} is the event name before ':' (\"slack\" for Slack)"});
  v.list(k.routes,
         {.name = "routes",
          .def = "[]",
          .nullable = true,
          .what = "a list of {match: GLOB, topic: TEMPLATE}",
          .item_what = "a route: {match: GLOB, topic: TEMPLATE}",
          .example = in_example::shows_other_value,
          .help = "Topics by event name, first match wins; an event no route matches goes to `topic`"},
         [&k] {
           std::string text;
           for (const route& r : k.routes) {
             text += (text.empty() ? "" : "; ") + r.match + " -> " + r.topic;
           }
           return text.empty() ? std::string("none (every event goes to the topic above)")
                               : text + " (first match wins)";
         });
  v.key(k.dead_letter_topic, {.name = "dead_letter_topic",
                              .def = "rtm.dead-letter",
                              .check = check_dead_letter_topic,
                              .allowed = "a topic name (no placeholders)",
                              .label = "dead-letter topic",
                              .help = "What cannot be normalized: bad JSON, no team id, unknown packet"});
  v.key(k.delivery_timeout,
        {.name = "delivery_timeout",
         .def = "0",
         .range = bounds{0, max_delivery_timeout_ms},
         .range_note = " (about 24 days; librdkafka's message.timeout.ms limit), or 0 to never give up",
         .label = "delivery timeout",
         .help = "How long librdkafka may try to deliver one record (message.timeout.ms); 0: never give up"},
        [&k] {
          return k.delivery_timeout.count() == 0 ? std::string("never give up") : format_duration(k.delivery_timeout);
        });
  v.key(k.shutdown_timeout, {.name = "shutdown_timeout",
                             .def = "30s",
                             .range = bounds{1, unbounded},
                             .label = "shutdown timeout",
                             .summary = in_summary::joined,
                             .help = "How long a stop waits for outstanding deliveries"});
}

template <class V, object_of<spool_config> S>
void visit(V& v, S& s) {
  constexpr std::int64_t mib = std::int64_t{1} << 20;
  v.key(s.path,
        {.name = "path",
         .unset = "no spool (events wait in memory for Kafka)",
         .nullable = true,
         .check = check_spool_path,
         .allowed = "a directory, created if missing; a relative path is relative to the working directory (/ under "
                    "systemd); one process per directory",
         .summary = in_summary::value_only,
         .example = in_example::shows_other_value,
         .help = "Turns the spool on: every event is written there at receipt and sent to Kafka from it, so a crash, "
                 "a restart or a Kafka outage loses nothing written"},
        [&s] {
          return s.enabled() ? s.path + ", max size " + format_size(s.max_size) + ", when full " +
                                   std::string(choice_name(when_full_choices, static_cast<int>(s.when_full)))
                             : std::string("off (events wait in memory for Kafka)");
        });
  v.key(s.max_size, {.name = "max_size",
                     .def = "8GiB",
                     .range = bounds{16 * mib, unbounded},
                     .allowed = "at least 2 x segment_size",
                     .summary = in_summary::hidden,
                     .help = "The disk the spool may use, in whole segments; when it is full, when_full applies"});
  v.key(s.segment_size, {.name = "segment_size",
                         .def = "64MiB",
                         .range = bounds{8 * mib, 1024 * mib},
                         .summary = in_summary::hidden,
                         .help = "The size of one segment file (preallocated)"});
  v.key(s.min_free,
        {.name = "min_free",
         .def = "1GiB",
         .allowed = "any size; 0: no reserve",
         .summary = in_summary::hidden,
         .help = "A segment that would leave less free space than this on the file system is not preallocated"});
  v.key(s.fsync_interval, {.name = "fsync_interval",
                           .def = "200ms",
                           .range = bounds{0, unbounded},
                           .allowed = "0: fdatasync after every write batch",
                           .summary = in_summary::hidden,
                           .help = "The power-loss window: how long a written event may wait for fdatasync"});
  v.key(s.checkpoint_interval,
        {.name = "checkpoint_interval",
         .def = "100ms",
         .range = bounds{10, 10'000},
         .summary = in_summary::hidden,
         .help = "How often the delivery low-water mark is persisted (bounds what is sent again after a crash)"});
  v.key(s.max_in_flight, {.name = "max_in_flight",
                          .def = "20000",
                          .range = bounds{1, 1'000'000},
                          .count = true,
                          .summary = in_summary::hidden,
                          .help = "Records handed to librdkafka beyond the low-water mark"});
  v.key(s.when_full, {.name = "when_full",
                      .def = "drop_newest",
                      .choices = when_full_choices,
                      .summary = in_summary::hidden,
                      .help = "What a new event meets while the spool holds max_size"});
}

template <class V, object_of<commands_config> C>
void visit(V& v, C& c) {
  v.key(c.topic,
        {.name = "topic",
         .unset = "no command consumer",
         .nullable = true,
         .check = check_topic_name,
         .allowed = "a topic name (no placeholders)",
         .summary = in_summary::value_only,
         .example = in_example::shows_other_value,
         .help = "Turns the command consumer on: each record there (key = a connection name) is sent on that "
                 "connection's Slack RTM socket and answered on reply_topic"},
        [&c] {
          return c.enabled() ? c.topic + " (group " + c.group_id + ") -> replies on " + c.reply_topic
                             : std::string("off (no command consumer)");
        });
  v.key(c.group_id, {.name = "group_id",
                     .def = "rtm-bridge-commands",
                     .check = check_nonempty,
                     .allowed = "a non-empty string",
                     .summary = in_summary::hidden,
                     .help = "The consumer group of the command consumer (a new group starts at the earliest offset)"});
  v.key(c.reply_topic, {.name = "reply_topic",
                        .def = "rtm.command-replies",
                        .check = check_topic_name,
                        .allowed = "a topic name (no placeholders), not the command topic",
                        .summary = in_summary::hidden,
                        .help = "Where every command gets exactly one reply record"});
  v.key(c.max_age, {.name = "max_age",
                    .def = "30s",
                    .range = bounds{1, unbounded},
                    .summary = in_summary::hidden,
                    .help = "A command not sent this long after it was produced is answered expired (never sent "
                            "later)"});
}

template <class V, object_of<cluster_config> C>
void visit(V& v, C& c) {
  v.key(c.group_id,
        {.name = "group_id",
         .unset = "one instance: every configured connection is opened",
         .nullable = true,
         .check = check_nonempty,
         .allowed = "a consumer group id; every instance of one fleet uses the same",
         .summary = in_summary::value_only,
         .help = "Turns cluster mode on: the instances in this Kafka consumer group share the connections, each "
                 "opening those of the buckets the group assigns it"},
        [&c] {
          return c.enabled() ? "group " + c.group_id + ", " + std::to_string(c.buckets) + " buckets on " +
                                   c.assignment_topic + ", session " + format_duration(c.session_timeout) +
                                   ", fence margin " + format_duration(c.fence_margin)
                             : std::string("off (one instance: every connection is opened)");
        });
  v.key(c.assignment_topic, {.name = "assignment_topic",
                             .def = "rtm-bridge.assignment",
                             .check = check_topic_name,
                             .allowed = "a topic name (no placeholders) with exactly `buckets` partitions",
                             .summary = in_summary::hidden,
                             .help = "The topic whose partitions are the buckets; it carries no data and must exist"});
  v.key(c.buckets, {.name = "buckets",
                    .def = "64",
                    .range = bounds{1, 10'000},
                    .count = true,
                    .summary = in_summary::hidden,
                    .help = "How many buckets (partitions of assignment_topic) the connections are spread over"});
  v.key(c.instance_id, {.name = "instance_id",
                        .unset = "dynamic membership",
                        .nullable = true,
                        .check = check_nonempty,
                        .allowed = "a non-empty string, unique per live process",
                        .summary = in_summary::hidden,
                        .help = "Static membership (group.instance.id): a restart within session_timeout keeps the "
                                "buckets without a rebalance"});
  v.key(c.session_timeout, {.name = "session_timeout",
                            .def = "10s",
                            .range = bounds{1'000, 3'600'000},
                            .summary = in_summary::hidden,
                            .help = "The group's session timeout (session.timeout.ms), within the brokers' "
                                    "group.min/max.session.timeout.ms"});
  v.key(c.heartbeat_interval, {.name = "heartbeat_interval",
                               .def = "1s",
                               .range = bounds{100, 3'600'000},
                               .allowed = "at most (session_timeout - fence_margin) / 3 and fence_margin / 2",
                               .summary = in_summary::hidden,
                               .help = "heartbeat.interval.ms"});
  v.key(c.rebalance_timeout, {.name = "rebalance_timeout",
                              .def = "10s",
                              .range = bounds{1'000, 86'400'000},
                              .allowed = "at least session_timeout",
                              .summary = in_summary::hidden,
                              .help = "max.poll.interval.ms: how long a rebalance waits for a member"});
  v.key(c.fence_margin, {.name = "fence_margin",
                         .def = "3s",
                         .range = bounds{1, unbounded},
                         .allowed = "at least 2 x heartbeat_interval, at most session_timeout - 3 x heartbeat_interval",
                         .summary = in_summary::hidden,
                         .help = "An instance closes its connections this long before the group could evict it"});
  v.properties(c.properties, c.secret_properties,
               {.name = "properties",
                .def = "{}",
                .nullable = true,
                .allowed = "librdkafka consumer properties, applied after kafka.properties; those the bridge sets "
                           "itself are refused",
                .what = "a map of librdkafka properties (name: value)",
                .summary = in_summary::hidden,
                .help = "For the group consumer only (security.*, sasl.*, ...)"});
}

template <class V, object_of<route> R>
void visit(V& v, R& r) {
  v.key(r.match, {.name = "match",
                  .required_for = every_kind,
                  .check = check_glob,
                  .allowed = "a glob: `*`, `?`, `[a-z]`, `[!x]`, `\\` escapes",
                  .help = "A glob on the event name"});
  v.key(r.topic, {.name = "topic",
                  .required_for = every_kind,
                  .check = check_topic_template,
                  .allowed = "as kafka.topic",
                  .help = "The topic (or template) of the events it matches"});
}

template <class V, object_of<reconnect_policy> R>
void visit(V& v, R& r) {
  v.key(r.initial_delay, {.name = "initial_delay",
                          .def = "1s",
                          .range = bounds{1, unbounded},
                          .help = "The first back-off; it doubles after each failed attempt"});
  v.key(r.max_delay, {.name = "max_delay",
                      .def = "60s",
                      .range = bounds{1, unbounded},
                      .allowed = "at least initial_delay",
                      .help = "The longest back-off (refused credentials wait at least max(max_delay, 60s))"});
  v.key(r.jitter,
        {.name = "jitter", .def = "0.5", .range = bounds{0, 1}, .help = "The randomised fraction of each back-off"});
}

template <class V, object_of<tls_config> T>
void visit(V& v, T& t) {
  v.key(t.ca_file, {.name = "ca_file",
                    .unset = "the system store",
                    .nullable = true,
                    .check = check_ca_file_path,
                    .allowed = "a readable PEM file holding a certificate (checked at load)",
                    .help = "A CA bundle to verify the peer with, instead of the system store"});
  v.key(t.verify, {.name = "verify", .def = "true", .help = "Verify the peer's certificate and host name"}, [&t] {
    return t.verify ? std::optional<std::string>{} : std::optional<std::string>{"false (NO VERIFICATION)"};
  });
}

template <class V, object_of<size_limits> L>
void visit(V& v, L& l) {
  // Below 1 KiB the handshake packets would not fit.
  constexpr bounds sizes{std::int64_t{1} << 10, std::int64_t{1} << 30};
  v.key(l.max_frame_size,
        {.name = "max_frame_size",
         .def = "16MiB",
         .range = sizes,
         .help = "A WebSocket message above it is refused unread: the connection is closed (1009) and reconnected, "
                 "and a frame_too_large dead letter records it"});
  v.key(l.max_event_size,
        {.name = "max_event_size",
         .def = "960KiB",
         .range = sizes,
         .allowed = "at most max_frame_size",
         .help = "A frame above it is dead-lettered as event_too_large with its first 64 KiB; the connection carries "
                 "on (the default leaves room for the envelope in Kafka's default message.max.bytes)"});
}

// A connection's endpoint: where it connects, per kind.
template <class V, object_of<connection_config> C>
void visit_endpoint(V& v, C& c) {
  v.key(c.url,
        {.name = "url",
         .kinds = acme,
         .unset = "discovered with GET {api_url}/{tier}/connect/endpoints",
         .nullable = true,
         .check = check_acme_url,
         .allowed = "a ws:// or wss:// URL; \"\" as when left out",
         .example = in_example::shows_other_value,
         .help = "The RTM endpoint"},
        [&c] { return c.url.empty() ? "discovered via " + c.api_url : c.url; });
  v.key(c.url, {.name = "url",
                .kinds = slack | slack_socket,
                .def = default_slack_url,
                .nullable = true,
                .check = check_web_api_url,
                .normalize = with_trailing_slash,
                .allowed = "an http:// or https:// URL",
                .label = "api",
                .help = "The Web API base (rtm.connect, or for slack_socket apps.connections.open, is called there)"});
  v.key(c.protocol, {.name = "protocol",
                     .kinds = acme,
                     .def = "4",
                     .choices = protocol_choices,
                     .choices_note = "(the Engine.IO revision)",
                     .help = "The Engine.IO revision"});
  v.key(c.api_url, {.name = "api_url",
                    .kinds = acme,
                    .def = default_acme_api_url,
                    .check = check_web_api_url,
                    .normalize = without_trailing_slashes,
                    .allowed = "an http:// or https:// URL",
                    .summary = in_summary::hidden,
                    .help = "The REST base for endpoint discovery when url is left out"});
  v.key(c.tier, {.name = "tier", .kinds = acme, .def = "user", .choices = tier_choices, .help = "The token's tier"});
}

// What a connection holds and asks for: its token and, on Acme, its events and fallback team id.
template <class V, object_of<connection_config> C>
void visit_token(V& v, C& c) {
  v.key(c.identifier, {.name = "identifier", .kinds = acme, .required_for = acme, .help = "The token identifier"});
  v.key(c.key,
        {.name = "key",
         .required_for = every_kind,
         .help = "acme: the token key; slack: the token (xoxb-/xoxp-); slack_socket: the app-level token (xapp-) "
                 "with connections:write"});
  v.key(c.events,
        {.name = "events",
         .kinds = acme,
         .unset = "all events of the tier",
         .nullable = true,
         .check = check_glob,
         .allowed = "a non-empty list of globs",
         .what = "a list of event globs",
         .if_empty = "an empty list would subscribe to nothing: omit events to receive all events of the tier",
         .example = in_example::shows_other_value,
         .help = "The subscribed events; a glob is sent as its matches among the events this build knows"});
  v.key(c.team_id,
        {.name = "team_id",
         .kinds = acme,
         .unset = "from each event",
         .nullable = true,
         .check = check_team_id,
         .allowed = "a non-empty string",
         .help = "The record key of events whose payload has no team_id (without it they are dead-lettered)"},
        [&c] { return c.team_id ? std::optional<std::string>{*c.team_id + " for events without one"} : std::nullopt; });
  v.key(c.presence_sub,
        {.name = "presence_sub",
         .kinds = slack,
         .unset = "nobody",
         .nullable = true,
         .check = check_user_id,
         .allowed = "a non-empty list of Slack user ids",
         .what = "a list of user ids",
         .if_empty = "an empty list would subscribe to nobody: omit presence_sub instead",
         .help = "Users whose presence_change events to subscribe to: rtm.connect asks for batch_presence_aware and "
                 "presence_sub, and the list is sent after every hello"});
  v.key(c.team_id, {.name = "team_id",
                    .kinds = slack,
                    .unset = "from rtm.connect",
                    .nullable = true,
                    .check = check_team_id,
                    .allowed = "a non-empty string",
                    .help = "A fixed team id instead of rtm.connect's team.id"});
}

template <class V, object_of<connection_config> C>
void visit(V& v, C& c) {
  v.key(c.name, {.name = "name",
                 .required_for = every_kind,
                 .check = check_connection_name,
                 .allowed = "[a-z0-9_-], at most 64 characters, unique",
                 .summary = in_summary::value_only,
                 .help = "In record headers, metrics and logs"});
  v.key(c.kind, {.name = "kind",
                 .required_for = every_kind,
                 .choices = kind_choices,
                 .summary = in_summary::value_only,
                 .help = "The upstream dialect"});
  visit_endpoint(v, c);
  visit_token(v, c);
  v.section(c.reconnect, {.name = "reconnect", .help = "The reconnect back-off"});
  v.key(c.ping_timeout, {.name = "ping_timeout",
                         .def = "30s",
                         .range = bounds{1, unbounded},
                         .help = "The dead-connection bound: silence this long drops the connection"});
  v.section(c.tls, {.name = "tls", .help = "TLS for the WebSocket and the REST calls"});
  v.section(c.limits, {.name = "limits", .help = "What one frame and one event may weigh"});
  v.key(c.bucket, {.name = "bucket",
                   .unset = "murmur2(name) % cluster.buckets",
                   .nullable = true,
                   .range = bounds{0, 9'999},
                   .range_note = " and below cluster.buckets",
                   .count = true,
                   .summary = in_summary::hidden,
                   .help = "Cluster mode: the bucket this connection belongs to, instead of its name's hash"});
}

template <class V, object_of<metrics_config> M>
void visit(V& v, M& m) {
  v.key(m.listen,
        {.name = "listen",
         .def = "127.0.0.1:9464",
         .check = check_listen,
         .allowed = "host:port (IPv4, [IPv6] or a name; port 0: the kernel picks one), or \"\" (disabled)",
         .summary = in_summary::value_only,
         .help = "Where the HTTP endpoint listens"},
        [&m] { return m.listen.empty() ? std::string("disabled") : "listen " + m.listen; });
}

template <class V, object_of<log_config> L>
void visit(V& v, L& l) {
  v.key(l.level, {.name = "level", .def = "info", .choices = level_choices, .help = "The least severe level logged"});
  v.key(l.format, {.name = "format", .def = "text", .choices = format_choices, .help = "The log line format"});
}

template <class V, object_of<config> C>
void visit(V& v, C& c) {
  v.section(c.kafka, {.name = "kafka",
                      .required_for = every_kind,
                      .summary_block = true,
                      .help = "The Kafka producer: brokers, topics and librdkafka properties"});
  v.section(c.spool, {.name = "spool",
                      .help = "The durable spool: events on disk from receipt until Kafka confirms them; off unless "
                              "path is set"});
  v.section(c.commands, {.name = "commands",
                         .help = "Commands from Kafka to Slack legacy RTM sockets (messages, typing, presence), each "
                                 "answered on a reply topic; off unless topic is set"});
  v.section(c.cluster, {.name = "cluster",
                        .help = "Several instances sharing the connections through a Kafka consumer group; off "
                                "unless group_id is set"});
  v.list(c.connections, {.name = "connections",
                         .required_for = every_kind,
                         .what = "a list of connections",
                         .item_what = "a connection: a map with name, kind and its keys",
                         .if_empty = "at least one connection is required, got an empty list",
                         .help = "The upstream connections; each holds exactly one upstream connection for its token"});
  v.section(c.metrics,
            {.name = "metrics", .help = "Prometheus text at /metrics, liveness /healthz, readiness /readyz"});
  v.section(c.log, {.name = "log", .help = "Logging to stderr (journald under systemd)"});
}

// What the top level is called in problems: "a map at the top level (kafka, spool, connections, metrics, log)".
inline constexpr std::string_view top_level_what = "a map at the top level";

// "a, b, c": the names of a section's keys in table order, each once (for "expected a map (a, b, c)").
class key_names {
 public:
  template <class S>
  explicit key_names(S& section) {
    visit(*this, section);
  }
  [[nodiscard]] const std::string& text() const noexcept { return text_; }

  template <class T, class... Shown>
  void key(T& /*member*/, const key_spec& spec, const Shown&... /*shown*/) {
    add(spec.name);
  }
  template <class S>
  void section(S& /*member*/, const key_spec& spec) {
    add(spec.name);
  }
  template <class T, class... Shown>
  void list(T& /*items*/, const key_spec& spec, const Shown&... /*shown*/) {
    add(spec.name);
  }
  template <class Values, class Secrets>
  void properties(Values& /*values*/, Secrets& /*secrets*/, const key_spec& spec) {
    add(spec.name);
  }

 private:
  void add(std::string_view name) {
    for (const std::string_view seen : names_) {
      if (seen == name) {
        return;
      }
    }
    names_.push_back(name);
    text_ += (text_.empty() ? "" : ", ") + std::string(name);
  }
  std::vector<std::string_view> names_;
  std::string text_;
};

}  // namespace rtm::config::schema
