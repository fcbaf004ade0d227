#include "config/schema.hpp"

#include <charconv>
#include <cmath>
#include <stdexcept>
#include <system_error>

#include "config/ca_file.hpp"
#include "config/schema_values.hpp"
#include "config/size.hpp"
#include "util/glob.hpp"

namespace rtm::config::schema {

const choice* find_choice(std::span<const choice> choices, std::string_view name) noexcept {
  for (const choice& c : choices) {
    if (c.name == name) {
      return &c;
    }
  }
  return nullptr;
}

std::string_view choice_name(std::span<const choice> choices, int value) noexcept {
  for (const choice& c : choices) {
    if (c.value == value) {
      return c.name;
    }
  }
  return "unknown";
}

// ------------------------------------------------------------------------------------------ checks of the rows

std::optional<std::string> check_nonempty(std::string_view text) {
  if (text.empty()) {
    return std::string("expected a non-empty string, got \"\"");
  }
  return std::nullopt;
}

std::optional<std::string> check_glob(std::string_view text) {
  if (auto error = validate_glob(text)) {
    return "invalid glob " + quoted(text) + ": " + *error;
  }
  return std::nullopt;
}

std::optional<std::string> check_user_id(std::string_view text) {
  if (text.empty() || text.find_first_of(" \t\r\n\"") != std::string_view::npos) {
    return "expected a Slack user id (e.g. U061F7AUR), got " + quoted(text);
  }
  return std::nullopt;
}

std::optional<std::string> check_dead_letter_topic(std::string_view text) {
  if (has_placeholder(text)) {
    return "the dead-letter topic takes no placeholders (it receives what could not be named), got " + quoted(text);
  }
  return check_topic_name(text);
}

std::optional<std::string> check_acme_url(std::string_view text) {
  // Empty: discover the endpoint over api_url, as when the key is left out.
  return text.empty() ? std::nullopt : check_url(text, {"wss", "ws"});
}

std::optional<std::string> check_web_api_url(std::string_view text) {
  return check_url(text, {"https", "http"});
}

std::optional<std::string> check_team_id(std::string_view text) {
  if (text.empty()) {
    return std::string("expected a team id, got \"\" (omit the key or set null to use the default)");
  }
  return std::nullopt;
}

std::optional<std::string> check_ca_file_path(std::string_view text) {
  if (auto error = check_nonempty(text)) {
    return error;
  }
  return check_ca_file(std::string(text));
}

std::optional<std::string> check_listen(std::string_view text) {
  // Port 0 lets the kernel pick one (tests, several instances on one host); the daemon logs the one it got.
  if (text.empty()) {
    return std::nullopt;
  }
  if (auto error = check_host_port(text, port_range{.min = 0, .max = 65535})) {
    return *error + " (\"\" disables the metrics endpoint)";
  }
  return std::nullopt;
}

std::optional<std::string> check_spool_path(std::string_view text) {
  if (text.empty()) {
    return std::string("expected a directory, got \"\" (null or leaving the key out turns the spool off)");
  }
  return std::nullopt;
}

// Paths are appended as "{api_url}/{tier}/...": one slash, whatever the user wrote.
std::string without_trailing_slashes(std::string_view text) {
  while (text.ends_with('/')) {
    text.remove_suffix(1);
  }
  return std::string(text);
}

// Method names are appended to the Web API base: "https://slack.com/api/" + "rtm.connect".
std::string with_trailing_slash(std::string_view text) {
  std::string out(text);
  if (!out.ends_with('/')) {
    out += '/';
  }
  return out;
}

// -------------------------------------------------------------------------------------------------- judging text

judged<std::string> judge_text(const key_spec& spec, std::string_view text) {
  if (spec.check != nullptr) {
    if (auto error = spec.check(text)) {
      return refusal{std::move(*error)};
    }
  }
  return spec.normalize != nullptr ? spec.normalize(text) : std::string(text);
}

judged<duration> judge_duration(const key_spec& spec, std::string_view text) {
  // A bare 0 only where 0 is allowed (delivery_timeout: "never give up"); elsewhere it would hide a missing unit.
  const bool bare_zero = spec.range && spec.range->min == 0;
  duration_result parsed = parse_duration(text, duration_rules{.allow_bare_zero = bare_zero});
  if (auto* error = std::get_if<std::string>(&parsed)) {
    return refusal{std::move(*error)};
  }
  const duration d = std::get<duration>(parsed);
  if (spec.range && d.count() < spec.range->min) {
    if (spec.range->min == 1) {
      return refusal{"must be longer than 0, got " + std::string(text)};
    }
    return refusal{"must be at least " + format_duration(duration{spec.range->min}) + ", got " + std::string(text)};
  }
  if (spec.range && d.count() > spec.range->max) {
    return refusal{"must be at most " + format_duration(duration{spec.range->max}) + std::string(spec.range_note) +
                   ", got " + std::string(text)};
  }
  return d;
}

namespace {

// A count: digits only (a unit would say bytes).
judged<std::uint64_t> judge_count(const key_spec& spec, std::string_view text) {
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec == std::errc::invalid_argument || end != text.data() + text.size()) {
    return refusal{"expected a whole number (no unit), got " + quoted(text)};
  }
  const bounds range = spec.range.value_or(bounds{0, unbounded});
  if (ec == std::errc::result_out_of_range || n < static_cast<std::uint64_t>(range.min) ||
      n > static_cast<std::uint64_t>(range.max)) {
    return refusal{"expected from " + std::to_string(range.min) + " to " + std::to_string(range.max) + ", got " +
                   std::string(text)};
  }
  return n;
}

}  // namespace

judged<std::uint64_t> judge_size(const key_spec& spec, std::string_view text) {
  if (spec.count) {
    return judge_count(spec, text);
  }
  size_result parsed = parse_size(text);
  if (auto* error = std::get_if<std::string>(&parsed)) {
    return refusal{std::move(*error)};
  }
  const std::uint64_t bytes = std::get<std::uint64_t>(parsed);
  if (!spec.range) {
    return bytes;
  }
  const auto min = static_cast<std::uint64_t>(spec.range->min);
  if (spec.range->max == unbounded) {
    if (bytes < min) {
      return refusal{"expected at least " + format_size(min) + ", got " + quoted(text)};
    }
    return bytes;
  }
  const auto max = static_cast<std::uint64_t>(spec.range->max);
  if (bytes < min || bytes > max) {
    return refusal{"expected from " + format_size(min) + " to " + format_size(max) + ", got " + quoted(text)};
  }
  return bytes;
}

judged<double> judge_fraction(const key_spec& spec, std::string_view text) {
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(value)) {
    return refusal{"expected a number, got " + quoted(text)};
  }
  if (spec.range && (value < static_cast<double>(spec.range->min) || value > static_cast<double>(spec.range->max))) {
    return refusal{"expected a fraction from " + std::to_string(spec.range->min) + " to " +
                   std::to_string(spec.range->max) + ", got " + std::string(text)};
  }
  return value;
}

judged<bool> judge_bool(std::string_view text) {
  // YAML 1.2 core schema booleans only: "yes"/"on" are strings there, and guessing would hide typos.
  if (text == "true" || text == "True" || text == "TRUE") {
    return true;
  }
  if (text == "false" || text == "False" || text == "FALSE") {
    return false;
  }
  return refusal{"expected true or false, got " + quoted(text)};
}

judged<int> judge_choice(const key_spec& spec, std::string_view text) {
  if (const choice* c = find_choice(spec.choices, text)) {
    return c->value;
  }
  std::string expected;
  for (std::size_t i = 0; i < spec.choices.size(); ++i) {
    expected += i == 0 ? "" : (i + 1 == spec.choices.size() ? " or " : ", ");
    expected += spec.choices[i].name;
  }
  if (!spec.choices_note.empty()) {
    expected += ' ';
    expected += spec.choices_note;
  }
  return refusal{"expected " + expected + ", got " + quoted(text)};
}

namespace {

template <class T>
bool take(judged<T> result, T& out) {
  if (auto* value = std::get_if<0>(&result)) {
    out = std::move(*value);
    return true;
  }
  return false;
}

}  // namespace

bool parse_value(std::string_view text, const key_spec& spec, std::string& out) {
  return take(judge_text(spec, text), out);
}
bool parse_value(std::string_view text, const key_spec& spec, std::optional<std::string>& out) {
  std::string value;
  if (!take(judge_text(spec, text), value)) {
    return false;
  }
  out = std::move(value);
  return true;
}
bool parse_value(std::string_view text, const key_spec& spec, duration& out) {
  return take(judge_duration(spec, text), out);
}
bool parse_value(std::string_view text, const key_spec& spec, double& out) {
  return take(judge_fraction(spec, text), out);
}
bool parse_value(std::string_view text, const key_spec& /*spec*/, bool& out) {
  return take(judge_bool(text), out);
}
bool parse_value(std::string_view text, const key_spec& spec, int& out) {
  return take(judge_choice(spec, text), out);
}

// ---------------------------------------------------------------------------------------------------- defaults

namespace {

// Sets every key of a section that has a default and applies to `kind` (other sections: every key). Nested
// sections are left alone: their own constructors applied theirs.
class defaults_applier {
 public:
  explicit defaults_applier(connection_kind kind) noexcept : kind_(kind) {}

  template <class T, class... Shown>
  void key(T& member, const key_spec& spec, const Shown&... /*shown*/) {
    if (!spec.applies_to(kind_) || !spec.has_default()) {
      return;
    }
    if constexpr (requires { parse_value(spec.def, spec, member); }) {
      if (parse_value(spec.def, spec, member)) {
        return;
      }
    }
    throw std::logic_error("config schema: the default of " + std::string(spec.name) + " (" + std::string(spec.def) +
                           ") is not a valid value of the key");
  }
  template <class S>
  void section(S& /*member*/, const key_spec& /*spec*/) {}
  template <class T, class... Shown>
  void list(std::vector<T>& items, const key_spec& spec, const Shown&... /*shown*/) {
    key(items, spec);
  }
  template <class Values, class Secrets>
  void properties(Values& values, Secrets& secrets, const key_spec& spec) {
    key(values, spec);
    secrets.clear();
  }

 private:
  connection_kind kind_;
};

template <class S>
void apply_defaults(S& section) {
  defaults_applier applier(connection_kind{});
  visit(applier, section);
}

}  // namespace

}  // namespace rtm::config::schema

namespace rtm::config {

kafka_config::kafka_config() {
  schema::apply_defaults(*this);
}
spool_config::spool_config() {
  schema::apply_defaults(*this);
}
commands_config::commands_config() {
  schema::apply_defaults(*this);
}
cluster_config::cluster_config() {
  schema::apply_defaults(*this);
}
reconnect_policy::reconnect_policy() {
  schema::apply_defaults(*this);
}
tls_config::tls_config() {
  schema::apply_defaults(*this);
}
size_limits::size_limits() {
  schema::apply_defaults(*this);
}
connection_config::connection_config() {
  schema::apply_defaults(*this);
}
metrics_config::metrics_config() {
  schema::apply_defaults(*this);
}
log_config::log_config() {
  schema::apply_defaults(*this);
}

}  // namespace rtm::config
