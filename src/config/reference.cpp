#include "config/reference.hpp"

#include <functional>
#include <memory>
#include <sstream>
#include <type_traits>
#include <vector>

#include "config/schema.hpp"
#include "config/schema_values.hpp"
#include "config/size.hpp"

namespace rtm::config::schema {
namespace {

constexpr const char* intro = R"(# Configuration reference

<!-- Generated from the schema tables in src/config/schema.hpp; do not edit. Regenerate with
     `ninja -C build/test config-reference` (tests/config/schema_test.cpp fails while this file is stale). -->

The config file is YAML (`rtm-bridge --config PATH`, default `/etc/rtm-bridge/rtm-bridge.yaml`);
`rtm-bridge --check-config --config PATH` validates it and prints a summary. `config/rtm-bridge.example.yaml`
shows every key with its default.

- Unknown keys are errors, at every level: a typo never silently falls back to a default.
- Durations are whole numbers with a unit: `250ms`, `5s`, `2m`, `1h`.
- Sizes are plain bytes (`1000000`) or whole numbers with a unit: `B`, `kB`/`MB`/`GB` (powers of 1000),
  `KiB`/`MiB`/`GiB` (powers of 1024).
- Secrets are maps naming their source, exactly one of `{env: NAME}` (an environment variable), `{file: PATH}` (a
  file, trailing newlines stripped), `{credential: NAME}` (`$CREDENTIALS_DIRECTORY/NAME`, systemd's
  `LoadCredential=`) or `{value: "..."}` (inline; the bridge warns when such a file is readable by group or others).
- A key marked with kinds applies to connections of those kinds only; on another kind it is an error.
)";

std::string escape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '|') {
      out += '\\';
    }
    out += c;
  }
  return out;
}

std::string code(std::string_view text) {
  return "`" + std::string(text) + "`";
}

std::string kinds_text(kind_set kinds) {
  if (kinds == every_kind) {
    return "all";
  }
  std::string text;
  for (const choice& c : kind_choices) {
    if ((kinds & kind_bit(static_cast<connection_kind>(c.value))) != 0) {
      text += (text.empty() ? "" : ", ") + std::string(c.name);
    }
  }
  return text;
}

template <class T>
constexpr const char* type_name(const key_spec& spec) {
  if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::optional<std::string>>) {
    return "string";
  } else if constexpr (std::is_same_v<T, duration>) {
    return "duration";
  } else if constexpr (size_member<T>) {
    return spec.count ? "integer" : "size";
  } else if constexpr (std::is_same_v<T, std::optional<std::size_t>>) {
    return "integer";
  } else if constexpr (std::is_same_v<T, double>) {
    return "number";
  } else if constexpr (std::is_same_v<T, bool>) {
    return "boolean";
  } else if constexpr (std::is_same_v<T, secret>) {
    return "secret";
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    return "list of strings";
  } else {
    static_assert(std::is_enum_v<T> || std::is_same_v<T, int>, "a member type the reference cannot name");
    return "choice";
  }
}

// What the range says, in the key's unit (a count's is the number itself).
template <class T>
std::string range_text(const bounds& r, bool count) {
  if constexpr (std::is_same_v<T, duration>) {
    if (r.max == unbounded) {
      return r.min == 1 ? "> 0" : "at least " + format_duration(duration{r.min});
    }
    return format_duration(duration{r.min}) + " to " + format_duration(duration{r.max});
  }
  if constexpr (size_member<T>) {
    if (!count) {
      const std::string min = format_size(static_cast<std::uint64_t>(r.min));
      return r.max == unbounded ? "at least " + min : min + " to " + format_size(static_cast<std::uint64_t>(r.max));
    }
  }
  return r.max == unbounded ? "at least " + std::to_string(r.min)
                            : std::to_string(r.min) + " to " + std::to_string(r.max);
}

// What any value of the type may be, when the row says nothing narrower.
template <class T>
constexpr std::string_view values_of_type() noexcept {
  if constexpr (std::is_same_v<T, bool>) {
    return "`true`, `false`";
  } else if constexpr (std::is_same_v<T, secret>) {
    return "a secret";
  } else {
    return "";
  }
}

template <class T>
std::string allowed_text(const key_spec& spec) {
  std::string text;
  if (!spec.choices.empty()) {
    for (const choice& c : spec.choices) {
      text += (text.empty() ? "" : ", ") + code(c.name) + (c.help.empty() ? "" : " (" + std::string(c.help) + ")");
    }
  } else if (spec.range) {
    text = range_text<T>(*spec.range, spec.count);
  } else {
    text = values_of_type<T>();
  }
  if (!spec.allowed.empty()) {
    text += (text.empty() ? "" : "; ") + std::string(spec.allowed);
  }
  return text;
}

std::string default_text(const key_spec& spec) {
  if (spec.required_for != no_kind) {
    return "required";
  }
  if (spec.has_default()) {
    return code(spec.def);
  }
  if (!spec.unset.empty()) {
    return "none: " + std::string(spec.unset);
  }
  return "";
}

class reference_writer {
 public:
  explicit reference_writer(std::ostringstream& out) : out_(out) {}

  template <class S>
  void write_section(const std::string& path, std::string_view help, const S& object) {
    std::vector<row> rows;
    std::vector<std::function<void()>> nested;
    rows.swap(rows_);
    nested.swap(nested_);
    path_ = path;
    visit(*this, object);
    rows.swap(rows_);
    nested.swap(nested_);
    write_table(path, help, rows);
    for (const auto& write_nested : nested) {
      write_nested();
    }
  }

  template <class T, class... Shown>
  void key(const T& /*member*/, const key_spec& spec, const Shown&... /*shown*/) {
    rows_.push_back(row{spec, type_name<T>(spec), default_text(spec), allowed_text<T>(spec)});
  }

  template <class S>
  void section(const S& member, const key_spec& spec) {
    const std::string path = child(spec.name);
    rows_.push_back(
        row{spec, "map", spec.required_for != no_kind ? "required" : "its keys' defaults", "see " + code(path)});
    // The row is a temporary of visit(); its help is a literal, kept as a view.
    nested_.emplace_back([this, path, &member, help = spec.help] { write_section(path, help, member); });
  }

  template <class T, class... Shown>
  void list(const std::vector<T>& /*items*/, const key_spec& spec, const Shown&... /*shown*/) {
    const std::string path = child(spec.name) + "[]";
    std::string allowed = "each item: see " + code(path);
    if (!spec.if_empty.empty()) {
      allowed = "at least one; " + allowed;
    }
    rows_.push_back(row{spec, "list of maps", default_text(spec), allowed});
    auto item = std::make_shared<T>();
    nested_.emplace_back([this, path, item, help = spec.help] { write_section(path, help, *item); });
  }

  template <class Values, class Secrets>
  void properties(const Values& /*values*/, const Secrets& /*secrets*/, const key_spec& spec) {
    rows_.push_back(row{spec, "map", default_text(spec), std::string(spec.allowed)});
  }

 private:
  struct row {
    key_spec spec;
    std::string type;
    std::string default_value;
    std::string allowed;
  };

  [[nodiscard]] std::string child(std::string_view name) const {
    return path_.empty() ? std::string(name) : path_ + "." + std::string(name);
  }

  void write_table(const std::string& path, std::string_view help, const std::vector<row>& rows) {
    bool by_kind = false;
    for (const row& r : rows) {
      by_kind = by_kind || r.spec.kinds != every_kind;
    }
    out_ << "\n## " << (path.empty() ? "Top level" : code(path)) << "\n\n";
    if (!help.empty()) {
      out_ << escape(help) << ".\n\n";
    }
    out_ << "| key |" << (by_kind ? " kinds |" : "") << " type | default | allowed | description |\n";
    out_ << "|---|" << (by_kind ? "---|" : "") << "---|---|---|---|\n";
    for (const row& r : rows) {
      out_ << "| " << code(r.spec.name) << " |";
      if (by_kind) {
        out_ << " " << kinds_text(r.spec.kinds) << " |";
      }
      out_ << " " << r.type << " | " << escape(r.default_value) << " | " << escape(r.allowed) << " | "
           << escape(r.spec.help) << " |\n";
    }
  }

  std::ostringstream& out_;
  std::string path_;
  std::vector<row> rows_;
  std::vector<std::function<void()>> nested_;
};

}  // namespace

std::string reference_markdown() {
  std::ostringstream out;
  out << intro;
  const config prototype;
  reference_writer(out).write_section("", {}, prototype);
  return out.str();
}

}  // namespace rtm::config::schema
