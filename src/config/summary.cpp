#include <algorithm>
#include <sstream>
#include <type_traits>

#include "config/kafka_properties.hpp"
#include "config/loader.hpp"
#include "config/schema.hpp"
#include "config/schema_values.hpp"
#include "config/size.hpp"
#include "upstream/socketio/acme_events.hpp"

// `--check-config` output: what the daemon would run, in one screen, walked from the schema tables: a key shows as
// its label and value (a duration or size in its shortest spelling, a choice by name, an absent optional key as what
// that means), or as the text its row gives. Secrets appear only as secret::describe() (their source), and
// properties that hold credentials only as "****".
namespace rtm::config {
namespace {

using schema::in_summary;
using schema::key_spec;

std::string property_text(const std::vector<std::pair<std::string, secret>>& secrets, const std::string& name,
                          const std::string& value) {
  const auto from_secret =
      std::find_if(secrets.begin(), secrets.end(), [&name](const auto& p) { return p.first == name; });
  if (from_secret != secrets.end()) {
    return from_secret->second.describe();
  }
  return is_sensitive_property(name) ? "****" : value;
}

// What the authentication emit will ask for (the globs expanded against the known events), and a warning for each
// glob that matches none of them: it subscribes nothing.
void write_subscription(std::ostringstream& out, const connection_config& c) {
  namespace sio = upstream::socketio;
  const std::vector<std::string> names = sio::subscription(c.events);
  out << "    subscription (" << names.size() << " sent in authentication): ";
  if (c.events.empty()) {
    out << "all " << names.size() << " known events";
  } else {
    for (std::size_t i = 0; i < names.size(); ++i) {
      out << (i == 0 ? "" : ",") << names[i];
    }
  }
  out << "\n";
  for (const std::string& glob : sio::globs_matching_nothing_known(c.events)) {
    out << "    warning: events glob \"" << glob << "\" matches no event this build knows, so it subscribes nothing "
        << "(globs are expanded here, never sent): list the wanted events by their exact names\n";
  }
}

// Lines below an item's own: what the table cannot say about it.
template <class T>
void write_details(std::ostringstream& /*out*/, const T& /*item*/) {}
void write_details(std::ostringstream& out, const connection_config& c) {
  if (c.kind == connection_kind::acme) {
    write_subscription(out, c);
  }
}

std::string show(const std::string& value, const key_spec& /*spec*/) {
  return value.empty() ? "\"\"" : value;
}
std::string show(const std::optional<std::string>& value, const key_spec& spec) {
  return value.value_or(std::string(spec.unset));
}
std::string show(duration value, const key_spec& /*spec*/) {
  return format_duration(value);
}
template <schema::size_member T>
std::string show(T value, const key_spec& spec) {
  return spec.count ? std::to_string(value) : format_size(value);
}
std::string show(const std::optional<std::size_t>& value, const key_spec& spec) {
  return value ? std::to_string(*value) : std::string(spec.unset);
}
std::string show(double value, const key_spec& /*spec*/) {
  std::ostringstream out;
  out << value;
  return out.str();
}
std::string show(bool value, const key_spec& /*spec*/) {
  return value ? "true" : "false";
}
std::string show(const secret& value, const key_spec& /*spec*/) {
  return value.describe();
}
std::string show(const std::vector<std::string>& values, const key_spec& spec) {
  std::string text;
  for (const std::string& v : values) {
    text += (text.empty() ? "" : ",") + v;
  }
  return values.empty() ? std::string(spec.unset) : text;
}
template <class E>
requires std::is_enum_v<E> || std::same_as<E, int> std::string show(E value, const key_spec& spec) {
  return std::string(schema::choice_name(spec.choices, static_cast<int>(value)));
}

class summary_writer {
 public:
  explicit summary_writer(std::ostringstream& out) : out_(out) {}

  template <class T, class... Shown>
  void key(const T& member, const key_spec& spec, const Shown&... shown) {
    group& g = *groups_.back();
    if constexpr (std::is_same_v<T, connection_kind>) {
      g.kind = member;
    }
    if (!applies(g, spec)) {
      return;
    }
    std::optional<std::string> text;
    if constexpr (sizeof...(Shown) > 0) {
      text = (shown(), ...);
    }
    add(g, spec, text ? std::move(*text) : show(member, spec));
  }

  template <class S>
  void section(const S& member, const key_spec& spec) {
    group inner;
    groups_.push_back(&inner);
    schema::visit(*this, member);
    groups_.pop_back();
    if (groups_.size() > 1) {  // inside a line: "name {key value, ...}"
      if (applies(*groups_.back(), spec)) {
        add(*groups_.back(), spec, "{" + inline_text(inner.pieces) + "}");
      }
    } else if (spec.summary_block) {
      out_ << spec.name << ":\n";
      write_block(inner.pieces);
    } else {
      out_ << spec.name << ": " << inline_text(inner.pieces) << "\n";
    }
  }

  template <class T, class... Shown>
  void list(const std::vector<T>& items, const key_spec& spec, const Shown&... shown) {
    if (groups_.size() > 1) {  // inside a section: one entry, "name item; item"
      std::optional<std::string> text;
      if constexpr (sizeof...(Shown) > 0) {
        text = (shown(), ...);
      } else {
        text = std::string();
        for (const T& item : items) {
          *text += (text->empty() ? "" : "; ") + item_text(item);
        }
      }
      add(*groups_.back(), spec, std::move(*text));
      return;
    }
    out_ << spec.name << " (" << items.size() << "):\n";
    for (const T& item : items) {
      out_ << "  " << item_text(item) << "\n";
      write_details(out_, item);
    }
  }

  void properties(const std::vector<std::pair<std::string, std::string>>& values,
                  const std::vector<std::pair<std::string, secret>>& secrets, const key_spec& spec) {
    std::string text;
    for (const auto& [name, value] : values) {
      text += (text.empty() ? "" : " ") + name + "=" + property_text(secrets, name, value);
    }
    if (!text.empty()) {
      add(*groups_.back(), spec, std::move(text));
    }
  }

  // The root: each top-level section writes its own lines.
  void write(const config& cfg) {
    group root;
    groups_.push_back(&root);
    schema::visit(*this, cfg);
    groups_.pop_back();
  }

 private:
  struct piece {
    std::string label;  // empty: the value alone
    std::string value;
    bool joined = false;
  };
  struct group {
    std::vector<piece> pieces;
    std::optional<connection_kind> kind;  // a connection's, once its kind key is passed
  };

  static bool applies(const group& g, const key_spec& spec) {
    return spec.summary != in_summary::hidden && spec.applies_to(g.kind.value_or(connection_kind{}));
  }

  static void add(group& g, const key_spec& spec, std::string value) {
    std::string label;
    if (spec.summary != in_summary::value_only) {
      label = spec.label.empty() ? spec.name : spec.label;
    }
    g.pieces.push_back(piece{std::move(label), std::move(value), spec.summary == in_summary::joined});
  }

  static std::string inline_text(const std::vector<piece>& pieces) {
    std::string text;
    for (const piece& p : pieces) {
      text += text.empty() ? "" : ", ";
      text += p.label.empty() ? p.value : p.label + " " + p.value;
    }
    return text;
  }

  // "first: the rest, ...": an item's first key names it.
  template <class T>
  std::string item_text(const T& item) {
    group g;
    groups_.push_back(&g);
    schema::visit(*this, item);
    groups_.pop_back();
    if (g.pieces.empty()) {
      return {};
    }
    const std::string first = g.pieces.front().value;
    g.pieces.erase(g.pieces.begin());
    return g.pieces.empty() ? first : first + ": " + inline_text(g.pieces);
  }

  void write_block(const std::vector<piece>& pieces) {
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      const piece& p = pieces[i];
      out_ << (p.joined && i > 0 ? ", " : (i > 0 ? "\n  " : "  "));
      out_ << (p.label.empty() ? "" : p.label + ": ") << p.value;
    }
    if (!pieces.empty()) {
      out_ << "\n";
    }
  }

  std::ostringstream& out_;
  std::vector<group*> groups_;
};

}  // namespace

std::string summary(const config& cfg) {
  std::ostringstream out;
  out << "config " << cfg.path << ": valid\n";
  summary_writer(out).write(cfg);
  return out.str();
}

}  // namespace rtm::config
