#include "config/loader.hpp"

#include <sys/stat.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <sstream>
#include <utility>
#include <variant>

#include "config/ca_file.hpp"
#include "config/duration.hpp"
#include "config/file.hpp"
#include "config/kafka_properties.hpp"
#include "config/secret.hpp"
#include "config/size.hpp"
#include "config/validate.hpp"
#include "config/yaml_reader.hpp"
#include "util/glob.hpp"
#include "util/log.hpp"

// The schema: one function per section, each taking every key it knows and leaving the rest to map_reader::finish()
// (unknown keys). Reads go through yaml_reader, which records problems instead of throwing, so a file's every
// problem is reported in one run.
namespace rtm::config {

std::string problem::format() const {
  std::string out = file;
  if (line > 0) {
    out += ":" + std::to_string(line) + ":" + std::to_string(column);
  }
  out += ": ";
  if (!key_path.empty()) {
    out += key_path;
    out += ": ";
  }
  out += message;
  return out;
}

namespace {

std::string join_problems(const std::vector<problem>& problems) {
  std::string text;
  for (const problem& p : problems) {
    if (!text.empty()) {
      text += '\n';
    }
    text += p.format();
  }
  return text;
}

}  // namespace

load_error::load_error(std::vector<problem> problems)
    : std::runtime_error(join_problems(problems)), problems_(std::move(problems)) {}

namespace {

using detail::field;
using detail::map_reader;
using detail::problem_list;

constexpr std::size_t max_config_bytes = std::size_t{4} * 1024 * 1024;

constexpr const char* secret_forms = R"({env: NAME}, {file: PATH}, {credential: NAME} or {value: "..."})";

std::string quoted(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

int line_of(const field& f) noexcept {
  return f.mark.line + 1;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// "kafka1:9092 , kafka2:9092" → "kafka1:9092,kafka2:9092"; only called on a list check_brokers() accepted.
std::string normalize_brokers(std::string_view brokers) {
  std::string out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = brokers.find(',', start);
    const std::string_view entry =
        trim(brokers.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (!out.empty()) {
      out += ',';
    }
    out += entry;
    if (comma == std::string_view::npos) {
      return out;
    }
    start = comma + 1;
  }
}

// What the loader remembers about a connection to check it against the others (names, tokens are unique).
struct connection_places {
  std::optional<field> name;
  std::optional<field> token;  // acme: identifier, slack: key
  std::string token_identity;  // config::token_identity(): compared, never printed
};

class schema_reader {
 public:
  explicit schema_reader(const std::string& path) : out_(path) {}

  void read(const field& root, config& cfg);
  problem_list& problems() noexcept { return out_; }
  [[nodiscard]] bool has_inline_secret() const noexcept { return inline_secret_; }

 private:
  void read_kafka(const field& f, kafka_config& k);
  void read_properties(const field& f, kafka_config& k);
  void read_routes(const field& f, std::vector<route>& routes);
  void read_connections(const field& f, std::vector<connection_config>& connections);
  connection_places read_connection(const field& f, connection_config& c);
  void read_reconnect(const field& f, reconnect_policy& r);
  void read_tls(const field& f, tls_config& t);
  void read_limits(const field& f, size_limits& l);
  std::optional<std::size_t> read_size(const field& f, std::size_t min, std::size_t max);
  void read_metrics(const field& f, metrics_config& m);
  void read_log(const field& f, log_config& l);
  std::optional<secret> read_secret(const field& f);
  std::optional<std::string> read_topic_template(const field& f);
  std::optional<duration> read_positive_duration(const field& f);

  void check_queue_holds_events(const std::vector<connection_config>& connections);

  problem_list out_;
  bool inline_secret_ = false;  // an inline {value: ...} secret or a sensitive property given in clear
  // kafka.properties.queue.buffering.max.kbytes where it was set, and the queue and message sizes as librdkafka
  // reads them back from kafka.properties: checked against the connections' max_event_size once they are read.
  std::optional<field> queue_kbytes_field_;
  std::size_t queue_kbytes_ = 0;
  std::size_t message_max_bytes_ = 0;
};

void schema_reader::read(const field& root, config& cfg) {
  map_reader m(out_, root, "a map at the top level (kafka, connections, metrics, log)", map_reader::null_is::error);
  if (!m.valid()) {
    return;
  }
  if (auto f = m.require("kafka")) {
    read_kafka(*f, cfg.kafka);
  }
  if (auto f = m.require("connections")) {
    read_connections(*f, cfg.connections);
  }
  if (auto f = m.take("metrics")) {
    read_metrics(*f, cfg.metrics);
  }
  if (auto f = m.take("log")) {
    read_log(*f, cfg.log);
  }
  m.finish();
  check_queue_holds_events(cfg.connections);
}

void schema_reader::check_queue_holds_events(const std::vector<connection_config>& connections) {
  if (!queue_kbytes_field_ || connections.empty()) {
    return;  // librdkafka's default (1 GiB) holds any record message.max.bytes (at most 10^9) lets through
  }
  const auto largest = std::max_element(connections.begin(), connections.end(), [](const auto& a, const auto& b) {
    return a.limits.max_event_size < b.limits.max_event_size;
  });
  if (auto error = check_queue_size(queue_kbytes_, message_max_bytes_, largest->limits.max_event_size, largest->name)) {
    out_.add(queue_kbytes_field_->mark, queue_kbytes_field_->path, *error);
  }
}

void schema_reader::read_kafka(const field& f, kafka_config& k) {
  map_reader m(out_, f,
               "a map (brokers, client_id, properties, topic, routes, dead_letter_topic, delivery_timeout, "
               "shutdown_timeout)");
  if (!m.valid()) {
    return;
  }
  if (auto b = m.require("brokers")) {
    if (auto s = detail::read_string(out_, *b)) {
      if (auto error = check_brokers(*s)) {
        out_.add(b->mark, b->path, *error);
      } else {
        k.brokers = *s == "embedded" ? *s : normalize_brokers(*s);
      }
    }
  }
  if (auto c = m.take("client_id")) {
    if (auto s = detail::read_nonempty_string(out_, *c)) {
      k.client_id = *s;
    }
  }
  if (auto p = m.take("properties"); p && !p->node.IsNull()) {
    read_properties(*p, k);
  }
  if (auto t = m.take("topic")) {
    if (auto s = read_topic_template(*t)) {
      k.topic = *s;
    }
  }
  if (auto r = m.take("routes"); r && !r->node.IsNull()) {
    read_routes(*r, k.routes);
  }
  if (auto d = m.take("dead_letter_topic")) {
    if (auto s = detail::read_string(out_, *d)) {
      if (has_placeholder(*s)) {
        out_.add(
            d->mark, d->path,
            "the dead-letter topic takes no placeholders (it receives what could not be named), got " + quoted(*s));
      } else if (auto error = check_topic_name(*s)) {
        out_.add(d->mark, d->path, *error);
      } else {
        k.dead_letter_topic = *s;
      }
    }
  }
  if (auto d = m.take("delivery_timeout")) {
    if (auto value = detail::read_duration(out_, *d, /*allow_bare_zero=*/true)) {
      if (auto error = check_delivery_timeout(*value)) {
        out_.add(d->mark, d->path, *error);
      } else {
        k.delivery_timeout = *value;
      }
    }
  }
  if (auto d = m.take("shutdown_timeout")) {
    if (auto value = read_positive_duration(*d)) {
      k.shutdown_timeout = *value;
    }
  }
  m.finish();
}

void schema_reader::read_properties(const field& f, kafka_config& k) {
  map_reader m(out_, f, "a map of librdkafka properties (name: value)");
  if (!m.valid()) {
    return;
  }
  property_checker checker;
  for (auto& [name, value_field] : m.take_rest()) {
    std::string value;
    if (value_field.node.IsMap()) {
      std::optional<secret> s = read_secret(value_field);
      if (!s) {
        continue;
      }
      value = s->value;
      k.secret_properties.emplace_back(name, std::move(*s));
    } else if (value_field.node.IsScalar()) {
      value = value_field.node.Scalar();
      inline_secret_ = inline_secret_ || is_sensitive_property(name);
    } else {
      out_.add(value_field.mark, value_field.path,
               "expected a value (a string, number or true/false) or a secret (" + std::string(secret_forms) +
                   "), got " + detail::describe_node(value_field.node));
      continue;
    }
    if (auto error = checker.check(name, value)) {
      out_.add(value_field.mark, value_field.path, *error);
      continue;
    }
    if (name == "queue.buffering.max.kbytes") {
      queue_kbytes_field_ = value_field;
    }
    k.properties.emplace_back(name, std::move(value));
  }
  const auto read_number = [&checker](const char* property) -> std::size_t {
    const std::optional<std::string> text = checker.get(property);
    std::size_t n = 0;
    if (text) {
      std::from_chars(text->data(), text->data() + text->size(), n);
    }
    return n;
  };
  queue_kbytes_ = read_number("queue.buffering.max.kbytes");
  message_max_bytes_ = read_number("message.max.bytes");
}

void schema_reader::read_routes(const field& f, std::vector<route>& routes) {
  auto items = detail::read_list(out_, f, "a list of {match: GLOB, topic: TEMPLATE}");
  if (!items) {
    return;
  }
  for (const field& item : *items) {
    map_reader m(out_, item, "a route: {match: GLOB, topic: TEMPLATE}", map_reader::null_is::error);
    if (!m.valid()) {
      continue;
    }
    route r;
    bool ok = true;
    if (auto match = m.require("match")) {
      if (auto s = detail::read_string(out_, *match)) {
        if (auto error = validate_glob(*s)) {
          out_.add(match->mark, match->path, "invalid glob " + quoted(*s) + ": " + *error);
          ok = false;
        } else {
          r.match = *s;
        }
      } else {
        ok = false;
      }
    } else {
      ok = false;
    }
    if (auto topic = m.require("topic")) {
      if (auto s = read_topic_template(*topic)) {
        r.topic = *s;
      } else {
        ok = false;
      }
    } else {
      ok = false;
    }
    m.finish();
    if (ok) {
      routes.push_back(std::move(r));
    }
  }
}

void schema_reader::read_connections(const field& f, std::vector<connection_config>& connections) {
  auto items = detail::read_list(out_, f, "a list of connections");
  if (!items) {
    return;
  }
  if (items->empty()) {
    out_.add(f.mark, f.path, "at least one connection is required, got an empty list");
    return;
  }
  std::vector<connection_places> seen;
  for (const field& item : *items) {
    connection_config c;
    connection_places places = read_connection(item, c);
    if (places.name) {
      for (const connection_places& other : seen) {
        if (other.name && other.name->node.Scalar() == places.name->node.Scalar()) {
          out_.add(places.name->mark, places.name->path,
                   "duplicate connection name " + quoted(places.name->node.Scalar()) + " (first used at line " +
                       std::to_string(line_of(*other.name)) + "): names must be unique");
          break;
        }
      }
    }
    if (places.token && !places.token_identity.empty()) {
      for (const connection_places& other : seen) {
        if (other.token && other.token_identity == places.token_identity) {
          out_.add(places.token->mark, places.token->path,
                   "the same token as the connection at line " + std::to_string(line_of(*other.token)) +
                       ": one upstream connection per token (the upstream would drop one of the two)");
          break;
        }
      }
    }
    seen.push_back(std::move(places));
    connections.push_back(std::move(c));
  }
}

connection_places schema_reader::read_connection(const field& f, connection_config& c) {
  connection_places places;
  map_reader m(out_, f, "a connection: a map with name, kind and its keys", map_reader::null_is::error);
  if (!m.valid()) {
    return places;
  }

  if (auto n = m.require("name")) {
    if (auto s = detail::read_string(out_, *n)) {
      if (auto error = check_connection_name(*s)) {
        out_.add(n->mark, n->path, *error);
      } else {
        c.name = *s;
        places.name = *n;
      }
    }
  }

  std::optional<connection_kind> kind;
  if (auto k = m.require("kind")) {
    if (auto s = detail::read_string(out_, *k)) {
      if (*s == "acme") {
        kind = connection_kind::acme;
      } else if (*s == "slack") {
        kind = connection_kind::slack;
      } else {
        out_.add(k->mark, k->path, "expected acme or slack, got " + quoted(*s));
      }
    }
  }
  if (kind) {
    c.kind = *kind;
  }
  // With no usable kind, the acme-only keys are still checked as acme's: that is the only kind they can belong to.
  const bool slack = kind == connection_kind::slack;
  const bool acme = kind == connection_kind::acme;

  if (slack) {
    for (const char* key : {"protocol", "api_url", "tier", "identifier", "events"}) {
      m.reject(key, "only valid for kind: acme (this connection is kind: slack)");
    }
  } else {
    if (auto p = m.take("protocol")) {
      if (auto s = detail::read_string(out_, *p)) {
        if (*s == "4" || *s == "3") {
          c.protocol = *s == "4" ? 4 : 3;
        } else {
          out_.add(p->mark, p->path, "expected 4 or 3 (the Engine.IO revision), got " + quoted(*s));
        }
      }
    }
    if (auto a = m.take("api_url")) {
      if (auto s = detail::read_string(out_, *a)) {
        if (auto error = check_url(*s, {"https", "http"})) {
          out_.add(a->mark, a->path, *error);
        } else {
          // Paths are appended as "{api_url}/{tier}/...": one slash, whatever the user wrote.
          while (s->ends_with('/')) {
            s->pop_back();
          }
          c.api_url = *s;
        }
      }
    }
    if (auto t = m.take("tier")) {
      if (auto s = detail::read_string(out_, *t)) {
        if (*s == "user") {
          c.tier = acme_tier::user;
        } else if (*s == "app") {
          c.tier = acme_tier::app;
        } else {
          out_.add(t->mark, t->path, "expected user or app, got " + quoted(*s));
        }
      }
    }
    if (auto id = acme ? m.require("identifier") : m.take("identifier")) {
      if (auto s = read_secret(*id)) {
        c.identifier = std::move(*s);
        places.token = *id;
      }
    }
    if (auto e = m.take("events"); e && !e->node.IsNull()) {
      if (auto items = detail::read_list(out_, *e, "a list of event globs")) {
        if (items->empty()) {
          out_.add(e->mark, e->path,
                   "an empty list would subscribe to nothing: omit events to receive all events of the tier");
        }
        for (const field& item : *items) {
          if (auto s = detail::read_string(out_, item)) {
            if (auto error = validate_glob(*s)) {
              out_.add(item.mark, item.path, "invalid glob " + quoted(*s) + ": " + *error);
            } else {
              c.events.push_back(*s);
            }
          }
        }
      }
    }
  }

  if (auto u = m.take("url"); u && !u->node.IsNull()) {
    if (auto s = detail::read_string(out_, *u)) {
      if (slack) {
        if (auto error = check_url(*s, {"https", "http"})) {
          out_.add(u->mark, u->path, *error);
        } else {
          c.url = s->ends_with('/') ? *s : *s + "/";
        }
      } else if (!s->empty()) {  // acme: an empty url means "discover it over api_url"
        if (auto error = check_url(*s, {"wss", "ws"})) {
          out_.add(u->mark, u->path, *error);
        } else {
          c.url = *s;
        }
      }
    }
  } else if (slack) {
    c.url = default_slack_url;
  }

  if (auto k = m.require("key")) {
    if (auto s = read_secret(*k)) {
      if (slack && !s->value.starts_with("xox")) {
        out_.add(k->mark, k->path,
                 "the secret from " + s->describe() +
                     " is not a Slack token (they start with xoxb- or xoxp-): is it the right secret?");
      }
      c.key = std::move(*s);
      if (slack) {
        places.token = *k;
      }
    }
  }

  if (auto t = m.take("team_id"); t && !t->node.IsNull()) {
    if (auto s = detail::read_string(out_, *t)) {
      if (s->empty()) {
        out_.add(t->mark, t->path, "expected a team id, got \"\" (omit the key or set null to use the default)");
      } else {
        c.team_id = *s;
      }
    }
  }
  if (auto r = m.take("reconnect")) {
    read_reconnect(*r, c.reconnect);
  }
  if (auto p = m.take("ping_timeout")) {
    if (auto d = read_positive_duration(*p)) {
      c.ping_timeout = *d;
    }
  }
  if (auto t = m.take("tls")) {
    read_tls(*t, c.tls);
  }
  if (auto l = m.take("limits")) {
    read_limits(*l, c.limits);
  }
  m.finish();

  if (places.token && (acme || slack)) {
    places.token_identity = token_identity(c);
  }
  return places;
}

void schema_reader::read_reconnect(const field& f, reconnect_policy& r) {
  map_reader m(out_, f, "a map (initial_delay, max_delay, jitter)");
  if (!m.valid()) {
    return;
  }
  const std::optional<field> initial = m.take("initial_delay");
  const std::optional<field> max = m.take("max_delay");
  const std::optional<field> jitter = m.take("jitter");
  m.finish();

  bool delays_ok = true;
  if (initial) {
    auto d = read_positive_duration(*initial);
    delays_ok = d.has_value();
    r.initial_delay = d.value_or(r.initial_delay);
  }
  if (max) {
    auto d = read_positive_duration(*max);
    delays_ok = delays_ok && d.has_value();
    r.max_delay = d.value_or(r.max_delay);
  }
  if (delays_ok && r.max_delay < r.initial_delay) {
    if (max) {
      out_.add(max->mark, max->path,
               "must be at least initial_delay (" + format_duration(r.initial_delay) + "), got " +
                   format_duration(r.max_delay));
    } else {
      out_.add(initial->mark, initial->path,
               "is longer than max_delay (" + format_duration(r.max_delay) + " by default): set max_delay too");
    }
  }
  if (jitter) {
    if (auto value = detail::read_number(out_, *jitter)) {
      if (*value < 0.0 || *value > 1.0) {
        out_.add(jitter->mark, jitter->path, "expected a fraction from 0 to 1, got " + jitter->node.Scalar());
      } else {
        r.jitter = *value;
      }
    }
  }
}

void schema_reader::read_tls(const field& f, tls_config& t) {
  map_reader m(out_, f, "a map (ca_file, verify)");
  if (!m.valid()) {
    return;
  }
  if (auto ca = m.take("ca_file"); ca && !ca->node.IsNull()) {
    if (auto s = detail::read_nonempty_string(out_, *ca)) {
      if (auto error = check_ca_file(*s)) {
        out_.add(ca->mark, ca->path, *error);
      } else {
        t.ca_file = *s;
      }
    }
  }
  if (auto v = m.take("verify")) {
    if (auto b = detail::read_bool(out_, *v)) {
      t.verify = *b;
    }
  }
  m.finish();
}

void schema_reader::read_limits(const field& f, size_limits& l) {
  map_reader m(out_, f, "a map (max_frame_size, max_event_size)");
  if (!m.valid()) {
    return;
  }
  const std::optional<field> frame = m.take("max_frame_size");
  const std::optional<field> event = m.take("max_event_size");
  m.finish();

  bool sizes_ok = true;
  if (frame) {
    auto bytes = read_size(*frame, min_size_limit, max_frame_size_limit);
    sizes_ok = bytes.has_value();
    l.max_frame_size = bytes.value_or(l.max_frame_size);
  }
  if (event) {
    auto bytes = read_size(*event, min_size_limit, max_frame_size_limit);
    sizes_ok = sizes_ok && bytes.has_value();
    l.max_event_size = bytes.value_or(l.max_event_size);
  }
  // An event is one frame: a larger event limit would never be reached, the transport would refuse such frames.
  if (sizes_ok && l.max_event_size > l.max_frame_size) {
    if (event) {
      out_.add(event->mark, event->path,
               "must not exceed max_frame_size (" + format_size(l.max_frame_size) + "), got " +
                   format_size(l.max_event_size));
    } else {
      out_.add(
          frame->mark, frame->path,
          "is smaller than max_event_size (" + format_size(l.max_event_size) + " by default): set max_event_size too");
    }
  }
}

std::optional<std::size_t> schema_reader::read_size(const field& f, std::size_t min, std::size_t max) {
  const std::optional<std::string> text = detail::read_string(out_, f);
  if (!text) {
    return std::nullopt;
  }
  const size_result parsed = parse_size(*text);
  if (const auto* error = std::get_if<std::string>(&parsed)) {
    out_.add(f.mark, f.path, *error);
    return std::nullopt;
  }
  const std::uint64_t bytes = std::get<std::uint64_t>(parsed);
  if (bytes < min || bytes > max) {
    out_.add(f.mark, f.path,
             "expected from " + format_size(min) + " to " + format_size(max) + ", got " + quoted(*text));
    return std::nullopt;
  }
  return static_cast<std::size_t>(bytes);
}

void schema_reader::read_metrics(const field& f, metrics_config& metrics) {
  map_reader m(out_, f, "a map (listen)");
  if (!m.valid()) {
    return;
  }
  if (auto l = m.take("listen")) {
    if (auto s = detail::read_string(out_, *l)) {
      // Port 0 lets the kernel pick one (tests, several instances on one host); the daemon logs the one it got.
      if (auto error = s->empty() ? std::nullopt : check_host_port(*s, port_range{.min = 0, .max = 65535})) {
        out_.add(l->mark, l->path, *error + " (\"\" disables the metrics endpoint)");
      } else {
        metrics.listen = *s;
      }
    }
  }
  m.finish();
}

void schema_reader::read_log(const field& f, log_config& l) {
  map_reader m(out_, f, "a map (level, format)");
  if (!m.valid()) {
    return;
  }
  if (auto level = m.take("level")) {
    if (auto s = detail::read_string(out_, *level)) {
      constexpr std::array<std::pair<std::string_view, log_level>, 5> levels{{{"trace", log_level::trace},
                                                                              {"debug", log_level::debug},
                                                                              {"info", log_level::info},
                                                                              {"warn", log_level::warn},
                                                                              {"error", log_level::error}}};
      bool found = false;
      for (const auto& [name, value] : levels) {
        if (*s == name) {
          l.level = value;
          found = true;
        }
      }
      if (!found) {
        out_.add(level->mark, level->path, "expected trace, debug, info, warn or error, got " + quoted(*s));
      }
    }
  }
  if (auto format = m.take("format")) {
    if (auto s = detail::read_string(out_, *format)) {
      if (*s == "text") {
        l.format = log_format::text;
      } else if (*s == "json") {
        l.format = log_format::json;
      } else {
        out_.add(format->mark, format->path, "expected text or json, got " + quoted(*s));
      }
    }
  }
  m.finish();
}

std::optional<secret> schema_reader::read_secret(const field& f) {
  if (f.node.IsScalar()) {
    out_.add(f.mark, f.path,
             "a secret names where it comes from, a plain string is not accepted: use " + std::string(secret_forms));
    return std::nullopt;
  }
  map_reader m(out_, f, "a secret: " + std::string(secret_forms), map_reader::null_is::error);
  if (!m.valid()) {
    return std::nullopt;
  }
  std::vector<std::pair<secret::source, field>> given;
  for (const secret::source from :
       {secret::source::env, secret::source::file, secret::source::credential, secret::source::value}) {
    if (auto v = m.take(secret_key(from))) {
      given.emplace_back(from, std::move(*v));
    }
  }
  m.finish();
  if (given.empty()) {
    if (f.node.size() == 0) {
      out_.add(f.mark, f.path, "a secret needs exactly one source: " + std::string(secret_forms) + ", got {}");
    }
    return std::nullopt;
  }
  if (given.size() > 1) {
    out_.add(given[1].second.mark, f.path,
             "a secret takes exactly one source, got both " + std::string(secret_key(given[0].first)) + " and " +
                 secret_key(given[1].first));
    return std::nullopt;
  }
  const auto& [from, source_field] = given.front();
  if (!source_field.node.IsScalar()) {
    out_.add(source_field.mark, source_field.path,
             "expected a string, got " + detail::describe_node(source_field.node));
    return std::nullopt;
  }
  secret s;
  s.from = from;
  if (from == secret::source::value) {
    s.value = source_field.node.Scalar();
    inline_secret_ = true;
  } else {
    s.reference = source_field.node.Scalar();
    if (auto error = check_secret_reference(from, s.reference)) {
      out_.add(source_field.mark, source_field.path, *error);
      return std::nullopt;
    }
  }
  if (auto error = resolve_secret(s)) {
    out_.add(source_field.mark, source_field.path, *error);
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> schema_reader::read_topic_template(const field& f) {
  std::optional<std::string> s = detail::read_string(out_, f);
  if (!s) {
    return std::nullopt;
  }
  if (auto error = check_topic_template(*s)) {
    out_.add(f.mark, f.path, *error);
    return std::nullopt;
  }
  return s;
}

std::optional<duration> schema_reader::read_positive_duration(const field& f) {
  std::optional<duration> d = detail::read_duration(out_, f);
  if (d && d->count() <= 0) {
    out_.add(f.mark, f.path, "must be longer than 0, got " + f.node.Scalar());
    return std::nullopt;
  }
  return d;
}

// yaml-cpp 0.7's LoadAll() never returns on some malformed files (a stray ',' at the top, e.g. ", x\n- "): its parser
// reports an empty document again and again without consuming anything, and LoadAll() keeps each one until memory
// runs out (jbeder/yaml-cpp#1319, fixed in 0.8.0). Found by tests/fuzz/config_loader. A first pass that keeps nothing
// counts the documents and gives up past a bound no real config file reaches.
class document_counter final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& /*mark*/) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& /*mark*/, YAML::anchor_t /*anchor*/) override {}
  void OnAlias(const YAML::Mark& /*mark*/, YAML::anchor_t /*anchor*/) override {}
  void OnScalar(const YAML::Mark& /*mark*/, const std::string& /*tag*/, YAML::anchor_t /*anchor*/,
                const std::string& /*value*/) override {}
  void OnSequenceStart(const YAML::Mark& /*mark*/, const std::string& /*tag*/, YAML::anchor_t /*anchor*/,
                       YAML::EmitterStyle::value /*style*/) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& /*mark*/, const std::string& /*tag*/, YAML::anchor_t /*anchor*/,
                  YAML::EmitterStyle::value /*style*/) override {}
  void OnMapEnd() override {}
};

constexpr std::size_t max_yaml_documents = 64;

// Throws what LoadAll() would throw for a syntax error.
bool too_many_documents(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  document_counter counter;
  std::size_t documents = 0;
  while (parser.HandleNextDocument(counter)) {
    if (++documents > max_yaml_documents) {
      return true;
    }
  }
  return false;
}

struct loaded {
  config cfg;
  bool inline_secret = false;
};

loaded load_text(std::string_view yaml, const std::string& path) {
  problem_list out(path);
  std::vector<YAML::Node> documents;
  try {
    const std::string text(yaml);
    if (too_many_documents(text)) {
      out.add_unplaced("", "YAML syntax error: more than " + std::to_string(max_yaml_documents) +
                               " documents, or a stray ',' or '-' at the top level that the parser cannot get past");
      throw load_error(out.take());
    }
    documents = YAML::LoadAll(text);
  } catch (const YAML::DeepRecursion& e) {
    out.add(e.mark, "", "YAML nesting is too deep (more than " + std::to_string(e.depth()) + " levels)");
    throw load_error(out.take());
  } catch (const YAML::Exception& e) {
    // A syntax error: the tree is unusable, so this is the one problem reported.
    out.add(e.mark, "", "YAML syntax error: " + e.msg);
    throw load_error(out.take());
  }

  if (documents.empty() || (documents.size() == 1 && documents.front().IsNull())) {
    out.add_unplaced("", "the file is empty: expected a map with at least kafka.brokers and connections");
    throw load_error(out.take());
  }
  if (documents.size() > 1) {
    out.add(documents[1].Mark(), "",
            "the file holds " + std::to_string(documents.size()) + " YAML documents ('---'): expected one");
  }

  loaded result;
  result.cfg.path = path;
  schema_reader reader(path);
  try {
    reader.read(field{documents.front(), documents.front().Mark(), ""}, result.cfg);
  } catch (const YAML::Exception& e) {
    // The reader never converts with as<>(), so this is a yaml-cpp surprise; still a message, never a crash.
    reader.problems().add(e.mark, "", std::string("unexpected YAML error: ") + e.what());
  }
  std::vector<problem> problems = out.take();
  std::vector<problem> schema_problems = reader.problems().take();
  problems.insert(problems.end(), std::make_move_iterator(schema_problems.begin()),
                  std::make_move_iterator(schema_problems.end()));
  if (!problems.empty()) {
    throw load_error(std::move(problems));
  }
  result.inline_secret = reader.has_inline_secret();
  return result;
}

}  // namespace

config load_string(std::string_view yaml, const std::string& path) {
  return load_text(yaml, path).cfg;
}

config load_file(const std::string& path) {
  file_result read = read_small_file(path, max_config_bytes);
  if (const auto* error = std::get_if<std::string>(&read)) {
    throw load_error({problem{path, 0, 0, "", "cannot read the config file: " + *error}});
  }
  const file_content& file = std::get<file_content>(read);
  loaded result = load_text(file.data, path);
  if (result.inline_secret && (file.mode & (S_IRGRP | S_IROTH)) != 0) {
    log::warn("", "config ", path, " holds inline secrets ({value: ...} or a password property) and is readable by ",
              (file.mode & S_IROTH) != 0 ? "everyone" : "its group", ": chmod 600 it, or use {env: NAME}, ",
              "{file: PATH} or {credential: NAME}");
  }
  return std::move(result.cfg);
}

}  // namespace rtm::config
