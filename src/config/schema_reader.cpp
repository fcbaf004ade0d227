#include "config/schema_reader.hpp"

#include <algorithm>
#include <charconv>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config/cluster_rules.hpp"
#include "config/kafka_properties.hpp"
#include "config/schema.hpp"
#include "config/schema_reader_frame.hpp"
#include "config/schema_values.hpp"
#include "config/secret.hpp"
#include "config/size.hpp"

namespace rtm::config::detail {
namespace {

using schema::key_spec;

constexpr const char* secret_forms = R"({env: NAME}, {file: PATH}, {credential: NAME} or {value: "..."})";

int line_of(const field& f) noexcept {
  return f.mark.line + 1;
}

class schema_reader {
 public:
  explicit schema_reader(problem_list& out) : out_(out) {}

  void read(const field& root, config& cfg) {
    const std::string what = std::string(schema::top_level_what) + " (" + schema::key_names(cfg).text() + ")";
    kafka_properties_ = &cfg.kafka.properties;
    read_section(root, cfg, what, map_reader::null_is::error);
    check_queue_holds_events(cfg.connections);
    check_cluster(cfg);
    check_spool_delivery_timeout(cfg);
  }
  [[nodiscard]] bool has_inline_secret() const noexcept { return inline_secret_; }

  // ------------------------------------------------------------------------- the visitor interface (schema.hpp)

  template <class T, class... Shown>
  void key(T& member, const key_spec& spec, const Shown&... /*shown: the summary's*/) {
    section_frame& fr = *frames_.back();
    taken_key* k = take_key(fr, spec, &member);
    if (k == nullptr) {
      return;
    }
    if (!k->given) {
      apply_default(member, spec);
      return;
    }
    k->ok = read_value(*k->given, spec, member);
    if constexpr (std::is_same_v<T, connection_kind>) {
      if (k->ok) {
        fr.kind = member;
      }
    }
  }

  template <class S>
  void section(S& member, const key_spec& spec) {
    section_frame& fr = *frames_.back();
    const taken_key* k = take_key(fr, spec, &member);
    if (k == nullptr || !k->given) {
      return;
    }
    const field f = *k->given;
    const std::string what =
        spec.what.empty() ? "a map (" + schema::key_names(member).text() + ")" : std::string(spec.what);
    read_section(f, member, what, map_reader::null_is::empty_map);
  }

  template <class T, class... Shown>
  void list(std::vector<T>& items, const key_spec& spec, const Shown&... /*shown*/) {
    section_frame& fr = *frames_.back();
    const taken_key* k = take_key(fr, spec, &items);
    if (k == nullptr) {
      return;
    }
    if (!k->given) {
      apply_default(items, spec);
      return;
    }
    const field f = *k->given;
    const auto fields = read_list(out_, f, spec.what);
    if (!fields) {
      return;
    }
    if (fields->empty() && !spec.if_empty.empty()) {
      out_.add(f.mark, f.path, std::string(spec.if_empty));
      return;
    }
    for (const field& item : *fields) {
      read_section(item, items.emplace_back(), spec.item_what, map_reader::null_is::error);
    }
  }

  void properties(std::vector<std::pair<std::string, std::string>>& values,
                  std::vector<std::pair<std::string, secret>>& secrets, const key_spec& spec);

 private:
  template <class S>
  void read_section(const field& f, S& object, std::string_view what, map_reader::null_is rule) {
    section_frame fr(out_, f, what, rule);
    if (!fr.m.valid()) {
      return;
    }
    frames_.push_back(&fr);
    schema::visit(*this, object);
    frames_.pop_back();
    judge_other_kinds(fr);
    fr.m.finish();
    check_section(object, fr);
  }

  taken_key* take_key(section_frame& fr, const key_spec& spec, const void* member);
  void judge_other_kinds(section_frame& fr);

  template <class T>
  void apply_default(T& member, const key_spec& spec) {
    // The constructors applied the defaults of the first kind; a kind's own rows (slack's url) are applied here.
    if constexpr (requires { schema::parse_value(spec.def, spec, member); }) {
      if (spec.has_default()) {
        (void)schema::parse_value(spec.def, spec, member);
      }
    }
  }

  template <class T>
  bool store(const field& f, schema::judged<T> result, T& out) {
    if (auto* refused = std::get_if<schema::refusal>(&result)) {
      out_.add(f.mark, f.path, std::move(refused->message));
      return false;
    }
    out = std::move(std::get<0>(result));
    return true;
  }

  // One overload per member type: the node's shape is checked here, its text by the row (schema_values.hpp).
  bool read_value(const field& f, const key_spec& spec, std::string& out) {
    const std::optional<std::string> s = read_string(out_, f);
    return s && store(f, schema::judge_text(spec, *s), out);
  }
  bool read_value(const field& f, const key_spec& spec, std::optional<std::string>& out) {
    std::string value;
    if (!read_value(f, spec, value)) {
      return false;
    }
    out = std::move(value);
    return true;
  }
  bool read_value(const field& f, const key_spec& spec, duration& out) {
    if (!f.node.IsScalar()) {
      out_.add(f.mark, f.path, "expected a duration with a unit (250ms, 5s, 2m, 1h), got " + describe_node(f.node));
      return false;
    }
    return store(f, schema::judge_duration(spec, f.node.Scalar()), out);
  }
  template <schema::size_member T>
  bool read_value(const field& f, const key_spec& spec, T& out) {
    const std::optional<std::string> s = read_string(out_, f);
    return s && store(f, schema::judge_size_as<T>(spec, *s), out);
  }
  bool read_value(const field& f, const key_spec& spec, double& out) {
    if (!f.node.IsScalar()) {
      out_.add(f.mark, f.path, "expected a number, got " + describe_node(f.node));
      return false;
    }
    return store(f, schema::judge_fraction(spec, f.node.Scalar()), out);
  }
  bool read_value(const field& f, const key_spec& /*spec*/, bool& out) {
    if (!f.node.IsScalar()) {
      out_.add(f.mark, f.path, "expected true or false, got " + describe_node(f.node));
      return false;
    }
    return store(f, schema::judge_bool(f.node.Scalar()), out);
  }
  bool read_value(const field& f, const key_spec& spec, int& out) {
    const std::optional<std::string> s = read_string(out_, f);
    return s && store(f, schema::judge_choice(spec, *s), out);
  }
  template <class E>
  requires std::is_enum_v<E>
  bool read_value(const field& f, const key_spec& spec, E& out) {
    int value = 0;
    if (!read_value(f, spec, value)) {
      return false;
    }
    out = static_cast<E>(value);
    return true;
  }
  bool read_value(const field& f, const key_spec& spec, std::optional<std::size_t>& out) {
    std::size_t value = 0;
    if (!read_value(f, spec, value)) {
      return false;
    }
    out = value;
    return true;
  }
  bool read_value(const field& f, const key_spec& spec, std::vector<std::string>& out);
  bool read_value(const field& f, const key_spec& spec, secret& out);

  std::optional<secret> read_secret(const field& f);

  // Rules between the keys of one section, once they are read. Sections without any: nothing to check.
  template <class S>
  void check_section(S& /*object*/, const section_frame& /*fr*/) {}
  void check_section(kafka_config& k, const section_frame& fr);
  void check_section(spool_config& s, const section_frame& fr);
  void check_section(commands_config& c, const section_frame& fr);
  void check_section(cluster_config& c, const section_frame& fr);
  void check_section(reconnect_policy& r, const section_frame& fr);
  void check_section(size_limits& l, const section_frame& fr);
  void check_section(connection_config& c, const section_frame& fr);
  void check_queue_holds_events(const std::vector<connection_config>& connections);
  void check_spool_delivery_timeout(const config& cfg);
  void check_cluster(const config& cfg);

  problem_list& out_;
  std::vector<section_frame*> frames_;  // the sections being read, innermost last
  std::vector<connection_places> seen_connections_;
  // Indexes into seen_connections_ by name and by token identity: the duplicate checks stay linear in the number of
  // connections (a scan per connection took a minute for the 10,000 the README promises).
  std::unordered_map<std::string, std::size_t> connection_by_name_;
  std::unordered_map<std::string, std::size_t> connection_by_token_;
  bool inline_secret_ = false;  // an inline {value: ...} secret or a sensitive property given in clear
  // kafka.properties.queue.buffering.max.kbytes where it was set, and the queue and message sizes as librdkafka
  // reads them back from kafka.properties: checked against the connections' max_event_size once they are read.
  std::optional<field> queue_kbytes_field_;
  std::size_t queue_kbytes_ = 0;
  std::size_t message_max_bytes_ = 0;
  // Where kafka.delivery_timeout and spool.path were given (and accepted): a spool refuses a delivery timeout.
  std::optional<field> delivery_timeout_field_;
  std::optional<field> spool_path_field_;
  // kafka.properties (the queue size checks read it) and where cluster.group_id was given.
  const std::vector<std::pair<std::string, std::string>>* kafka_properties_ = nullptr;
  std::optional<field> group_id_field_;
};

// nullptr when the row is not for this connection's kind (judged at the end of the section); else the key's entry.
taken_key* schema_reader::take_key(section_frame& fr, const key_spec& spec, const void* member) {
  // With no usable kind (yet), the rows are judged as the first kind's: a missing or wrong kind is reported already.
  if (!spec.applies_to(fr.kind.value_or(connection_kind{}))) {
    fr.elsewhere.push_back(spec);
    return nullptr;
  }
  // Required for some kinds only: when the kind is not known, the key is not asked for.
  const bool required =
      spec.required_for == schema::every_kind || (fr.kind && (spec.required_for & schema::kind_bit(*fr.kind)) != 0);
  std::optional<field> f = required ? fr.m.require(spec.name) : fr.m.take(spec.name);
  if (f && spec.nullable && f->node.IsNull()) {
    f.reset();
  }
  if (std::find(fr.names.begin(), fr.names.end(), spec.name) == fr.names.end()) {
    fr.names.push_back(spec.name);
  }
  fr.keys.push_back(taken_key{member, std::move(f), true});
  return &fr.keys.back();
}

// The keys of rows for other kinds than this connection's, that no row of its kind takes: refused, naming the kinds
// they belong to. Without a usable kind they are left alone (taken without a judgement).
void schema_reader::judge_other_kinds(section_frame& fr) {
  std::vector<std::string_view> judged;
  for (const key_spec& spec : fr.elsewhere) {
    const auto is = [&spec](std::string_view name) { return name == spec.name; };
    if (std::any_of(fr.names.begin(), fr.names.end(), is) || std::any_of(judged.begin(), judged.end(), is)) {
      continue;
    }
    judged.push_back(spec.name);
    if (fr.kind) {
      fr.m.reject(spec.name, "only valid for kind: " + kinds_text(spec.kinds) +
                                 " (this connection is kind: " + to_string(*fr.kind) + ")");
    } else {
      (void)fr.m.take(spec.name);
    }
  }
}

bool schema_reader::read_value(const field& f, const key_spec& spec, std::vector<std::string>& out) {
  const auto items = read_list(out_, f, spec.what);
  if (!items) {
    return false;
  }
  bool ok = true;
  if (items->empty() && !spec.if_empty.empty()) {
    out_.add(f.mark, f.path, std::string(spec.if_empty));
    ok = false;
  }
  out.clear();
  for (const field& item : *items) {
    std::string value;
    if (read_value(item, spec, value)) {
      out.push_back(std::move(value));
    } else {
      ok = false;
    }
  }
  return ok;
}

bool schema_reader::read_value(const field& f, const key_spec& /*spec*/, secret& out) {
  std::optional<secret> s = read_secret(f);
  if (!s) {
    return false;
  }
  out = std::move(*s);
  return true;
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
    out_.add(source_field.mark, source_field.path, "expected a string, got " + describe_node(source_field.node));
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

void schema_reader::properties(std::vector<std::pair<std::string, std::string>>& values,
                               std::vector<std::pair<std::string, secret>>& secrets, const key_spec& spec) {
  section_frame& fr = *frames_.back();
  const taken_key* k = take_key(fr, spec, &values);
  if (k == nullptr || !k->given) {
    return;
  }
  map_reader m(out_, *k->given, spec.what);
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
      secrets.emplace_back(name, std::move(*s));
    } else if (value_field.node.IsScalar()) {
      value = value_field.node.Scalar();
      inline_secret_ = inline_secret_ || is_sensitive_property(name);
    } else {
      out_.add(value_field.mark, value_field.path,
               "expected a value (a string, number or true/false) or a secret (" + std::string(secret_forms) +
                   "), got " + describe_node(value_field.node));
      continue;
    }
    if (&values != kafka_properties_) {
      if (const auto key = cluster_owned_property(name)) {
        out_.add(value_field.mark, value_field.path, "set by rtm-bridge itself: use " + std::string(*key) + " instead");
        continue;
      }
    }
    if (auto error = checker.check(name, value)) {
      out_.add(value_field.mark, value_field.path, *error);
      continue;
    }
    if (name == "queue.buffering.max.kbytes") {
      queue_kbytes_field_ = value_field;
    }
    values.emplace_back(name, std::move(value));
  }
  if (&values != kafka_properties_) {
    return;  // the queue sizes are the producer's
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

void schema_reader::check_section(kafka_config& k, const section_frame& fr) {
  if (const field* timeout = fr.accepted(&k.delivery_timeout)) {
    delivery_timeout_field_ = *timeout;
  }
}

// The spool writes into one segment while the oldest still waits for Kafka: fewer than two leave no room to write.
// Only a given max_size can be too small: the default (8GiB) holds two of the largest segment_size (1GiB).
void schema_reader::check_section(spool_config& s, const section_frame& fr) {
  if (const field* path = fr.accepted(&s.path)) {
    spool_path_field_ = *path;
  }
  const field* max = fr.accepted(&s.max_size);
  if (max == nullptr || !fr.ok(&s.segment_size) || s.max_size / 2 >= s.segment_size) {
    return;
  }
  out_.add(max->mark, max->path,
           "must be at least 2 x segment_size (" + format_size(s.segment_size) +
               "): one segment is written while another waits for Kafka; got " + format_size(s.max_size));
}

// Replies on the command topic would be read back as commands (each answered again, without end).
void schema_reader::check_section(commands_config& c, const section_frame& fr) {
  if (!fr.ok(&c.topic) || !fr.ok(&c.reply_topic) || !c.enabled() || c.topic != c.reply_topic) {
    return;
  }
  const field* at = fr.given(&c.reply_topic) != nullptr ? fr.given(&c.reply_topic) : fr.given(&c.topic);
  if (at != nullptr) {
    out_.add(at->mark, at->path,
             "the reply topic must differ from the command topic (" + c.topic +
                 "): replies read back as commands would be answered again without end");
  }
}

void schema_reader::check_section(cluster_config& c, const section_frame& fr) {
  if (const field* group = fr.accepted(&c.group_id)) {
    group_id_field_ = *group;
  }
  const cluster_timing timing{c.session_timeout, c.heartbeat_interval, c.rebalance_timeout, c.fence_margin};
  if (!fr.ok(&c.session_timeout) || !fr.ok(&c.heartbeat_interval) || !fr.ok(&c.rebalance_timeout) ||
      !fr.ok(&c.fence_margin)) {
    return;
  }
  const auto problem = check_cluster_timing(timing);
  if (!problem) {
    return;
  }
  // At the key the rule names when the file gives it, else at the first timing the file gives, else the section.
  const field* at =
      fr.given(problem->key == "rebalance_timeout" ? static_cast<const void*>(&c.rebalance_timeout) : &c.fence_margin);
  for (const void* member :
       {static_cast<const void*>(&c.heartbeat_interval), static_cast<const void*>(&c.session_timeout)}) {
    at = at != nullptr ? at : fr.given(member);
  }
  const field& where = at != nullptr ? *at : fr.m.self();
  out_.add(where.mark, at != nullptr ? where.path : where.path + "." + std::string(problem->key), problem->message);
}

void schema_reader::check_section(reconnect_policy& r, const section_frame& fr) {
  if (!fr.ok(&r.initial_delay) || !fr.ok(&r.max_delay) || r.max_delay >= r.initial_delay) {
    return;
  }
  if (const field* max = fr.given(&r.max_delay)) {
    out_.add(max->mark, max->path,
             "must be at least initial_delay (" + format_duration(r.initial_delay) + "), got " +
                 format_duration(r.max_delay));
  } else if (const field* initial = fr.given(&r.initial_delay)) {
    out_.add(initial->mark, initial->path,
             "is longer than max_delay (" + format_duration(r.max_delay) + " by default): set max_delay too");
  }
}

// An event is one frame: a larger event limit would never be reached, the transport would refuse such frames.
void schema_reader::check_section(size_limits& l, const section_frame& fr) {
  if (!fr.ok(&l.max_frame_size) || !fr.ok(&l.max_event_size) || l.max_event_size <= l.max_frame_size) {
    return;
  }
  if (const field* event = fr.given(&l.max_event_size)) {
    out_.add(
        event->mark, event->path,
        "must not exceed max_frame_size (" + format_size(l.max_frame_size) + "), got " + format_size(l.max_event_size));
  } else if (const field* frame = fr.given(&l.max_frame_size)) {
    out_.add(
        frame->mark, frame->path,
        "is smaller than max_event_size (" + format_size(l.max_event_size) + " by default): set max_event_size too");
  }
}

void schema_reader::check_section(connection_config& c, const section_frame& fr) {
  const bool slack = fr.kind == connection_kind::slack || fr.kind == connection_kind::slack_socket;
  if (const field* key = fr.accepted(&c.key);
      key != nullptr && fr.kind == connection_kind::slack && !c.key.value.starts_with("xox")) {
    out_.add(key->mark, key->path,
             "the secret from " + c.key.describe() +
                 " is not a Slack token (they start with xoxb- or xoxp-): is it the right secret?");
  }
  if (const field* key = fr.accepted(&c.key);
      key != nullptr && fr.kind == connection_kind::slack_socket && !c.key.value.starts_with("xapp-")) {
    out_.add(key->mark, key->path,
             "the secret from " + c.key.describe() +
                 " is not a Slack app-level token (Socket Mode needs one: xapp-..., with connections:write); "
                 "a bot or user token (xoxb-/xoxp-) belongs to kind: slack");
  }
  connection_places places;
  if (const field* bucket = fr.accepted(&c.bucket)) {
    places.bucket = *bucket;
  }
  if (const field* name = fr.accepted(&c.name)) {
    places.name = *name;
  }
  if (const field* token = fr.accepted(slack ? static_cast<const void*>(&c.key) : &c.identifier)) {
    places.token = *token;
    if (fr.kind) {
      places.token_identity = token_identity(c);
    }
  }
  const std::size_t index = seen_connections_.size();
  if (places.name) {
    const auto [it, fresh] = connection_by_name_.emplace(places.name->node.Scalar(), index);
    if (!fresh) {
      out_.add(places.name->mark, places.name->path,
               "duplicate connection name " + quoted(places.name->node.Scalar()) + " (first used at line " +
                   std::to_string(line_of(*seen_connections_[it->second].name)) + "): names must be unique");
    }
  }
  if (places.token && !places.token_identity.empty()) {
    const auto [it, fresh] = connection_by_token_.emplace(places.token_identity, index);
    if (!fresh) {
      out_.add(places.token->mark, places.token->path,
               "the same token as the connection at line " +
                   std::to_string(line_of(*seen_connections_[it->second].token)) +
                   ": one upstream connection per token (the upstream would drop one of the two)");
    }
  }
  seen_connections_.push_back(std::move(places));
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

// librdkafka gives up on a record at message.timeout.ms and reports it failed; the spool could only send it again
// behind records of its team that were sent after it, breaking the per-team order.
void schema_reader::check_spool_delivery_timeout(const config& cfg) {
  if (!cfg.spool.enabled() || cfg.kafka.delivery_timeout.count() == 0 || !delivery_timeout_field_) {
    return;
  }
  const std::string spool_at =
      spool_path_field_ ? " (spool.path at line " + std::to_string(line_of(*spool_path_field_)) + ")" : "";
  out_.add(delivery_timeout_field_->mark, delivery_timeout_field_->path,
           "must be 0 while the spool is on" + spool_at +
               ": librdkafka gives up on a record at this timeout, and sending it again from the spool would put it "
               "behind later events of its team; set delivery_timeout: 0, or turn the spool off (spool.path: null)");
}

// Instances must share one cluster (the embedded one is private to its process), and an explicit bucket must be a
// partition of the assignment topic.
void schema_reader::check_cluster(const config& cfg) {
  if (cfg.cluster.enabled() && cfg.kafka.embedded() && group_id_field_) {
    out_.add(group_id_field_->mark, group_id_field_->path,
             "cluster mode needs a Kafka cluster the instances share, but kafka.brokers is embedded (a mock cluster "
             "private to this process): set kafka.brokers, or cluster.group_id: null");
  }
  if (cfg.cluster.enabled() && cfg.commands.enabled() && group_id_field_) {
    out_.add(group_id_field_->mark, group_id_field_->path,
             "cluster mode does not carry commands yet (an instance reads commands for connections another instance "
             "holds): set commands.topic: null, or run commands on a bridge without cluster.group_id");
  }
  for (const connection_places& places : seen_connections_) {
    if (!places.bucket) {
      continue;
    }
    std::size_t bucket = 0;
    const std::string& text = places.bucket->node.Scalar();
    std::from_chars(text.data(), text.data() + text.size(), bucket);
    if (bucket >= cfg.cluster.buckets) {
      out_.add(places.bucket->mark, places.bucket->path,
               "must be below cluster.buckets (" + std::to_string(cfg.cluster.buckets) + "), got " + text);
    }
  }
}

}  // namespace

bool read_document(const field& root, config& cfg, problem_list& out) {
  schema_reader reader(out);
  reader.read(root, cfg);
  return reader.has_inline_secret();
}

}  // namespace rtm::config::detail
