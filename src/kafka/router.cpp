#include "kafka/router.hpp"

#include <stdexcept>

#include "util/glob.hpp"

namespace rtm::kafka {
namespace {

bool kafka_topic_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

// Four raw bytes: only ever compared for equality, never read back.
void append_length(std::string& out, std::size_t size) {
  const auto n = static_cast<std::uint32_t>(size);
  out += static_cast<char>(n & 0xffU);
  out += static_cast<char>((n >> 8U) & 0xffU);
  out += static_cast<char>((n >> 16U) & 0xffU);
  out += static_cast<char>((n >> 24U) & 0xffU);
}

}  // namespace

void sanitize_topic(std::string& name) {
  for (char& c : name) {
    if (c == ':') {
      c = '.';
    } else if (!kafka_topic_char(c)) {
      c = '_';
    }
  }
  if (name.size() > max_topic_length) {
    name.resize(max_topic_length);
  }
  if (name.empty() || name == ".") {
    name = "_";
  } else if (name == "..") {
    name = "__";
  }
}

router::compiled router::compile(std::string_view text, std::string_view key) {
  compiled out;
  std::string literal;
  const auto flush = [&out, &literal] {
    if (!literal.empty()) {
      out.parts.push_back(part{part_kind::literal, literal});
      literal.clear();
    }
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '{' && i + 1 < text.size() && text[i + 1] == '{') {
      literal += '{';
      ++i;
    } else if (c == '}' && i + 1 < text.size() && text[i + 1] == '}') {
      literal += '}';
      ++i;
    } else if (c == '{') {
      const std::size_t close = text.find('}', i);
      if (close == std::string_view::npos) {
        throw std::runtime_error(std::string(key) + ": unclosed '{' in topic template \"" + std::string(text) +
                                 "\" (write {{ for a literal brace)");
      }
      const std::string_view name = text.substr(i + 1, close - i - 1);
      part p;
      if (name == "namespace") {
        p.kind = part_kind::name_space;
      } else if (name == "event") {
        p.kind = part_kind::event;
      } else if (name == "connection") {
        p.kind = part_kind::connection;
      } else if (name == "source") {
        p.kind = part_kind::source;
      } else {
        throw std::runtime_error(std::string(key) + ": unknown placeholder {" + std::string(name) +
                                 "} in topic template \"" + std::string(text) +
                                 "\" (known: {namespace}, {event}, {connection}, {source})");
      }
      flush();
      out.parts.push_back(std::move(p));
      i = close;
    } else if (c == '}') {
      throw std::runtime_error(std::string(key) + ": unmatched '}' in topic template \"" + std::string(text) +
                               "\" (write }} for a literal brace)");
    } else {
      literal += c;
    }
  }
  flush();
  return out;
}

router::router(const config::kafka_config& cfg, std::size_t cache_limit)
    : default_(compile(cfg.topic, "kafka.topic")), cache_limit_(cache_limit) {
  routes_.reserve(cfg.routes.size());
  for (std::size_t i = 0; i < cfg.routes.size(); ++i) {
    const auto& r = cfg.routes[i];
    const std::string key = "kafka.routes[" + std::to_string(i) + "]";
    if (auto problem = validate_glob(r.match)) {
      throw std::runtime_error(key + ".match: " + *problem);
    }
    routes_.push_back(compiled_route{r.match, compile(r.topic, key + ".topic")});
  }
  cache_.reserve(std::min<std::size_t>(cache_limit_, 1024));
}

void router::format(const compiled& tpl, pipeline::source from, std::string_view connection,
                    std::string_view name_space, std::string_view event_name, std::string& out) const {
  out.clear();
  for (const auto& p : tpl.parts) {
    switch (p.kind) {
      case part_kind::literal:
        out += p.text;
        break;
      case part_kind::name_space:
        out += name_space;
        break;
      case part_kind::event:
        out += event_name;
        break;
      case part_kind::connection:
        out += connection;
        break;
      case part_kind::source:
        out += pipeline::to_string(from);
        break;
    }
  }
  sanitize_topic(out);
}

const std::string& router::resolve(const pipeline::event& ev) {
  return resolve(ev.from, ev.connection, ev.name_space, ev.name);
}

const std::string& router::resolve(pipeline::source from, std::string_view connection, std::string_view name_space,
                                   std::string_view event_name) {
  // The key holds every input of the template, the variable-length ones but the last prefixed with their length, so
  // that no two different inputs share a key whatever bytes an event name carries.
  key_.clear();
  key_ += from == pipeline::source::acme ? 'a' : 's';
  append_length(key_, connection.size());
  key_ += connection;
  append_length(key_, name_space.size());
  key_ += name_space;
  key_ += event_name;
  if (const auto it = cache_.find(std::string_view(key_)); it != cache_.end()) {
    return it->second;
  }
  const compiled* tpl = &default_;
  for (const auto& r : routes_) {
    if (glob_match(r.match, event_name)) {
      tpl = &r.topic;
      break;
    }
  }
  if (cache_.size() < cache_limit_) {
    std::string topic;
    format(*tpl, from, connection, name_space, event_name, topic);
    return cache_.emplace(key_, std::move(topic)).first->second;
  }
  ++uncached_;
  format(*tpl, from, connection, name_space, event_name, scratch_);
  return scratch_;
}

}  // namespace rtm::kafka
