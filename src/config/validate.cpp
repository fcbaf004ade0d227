#include "config/validate.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <array>
#include <charconv>
#include <system_error>

namespace rtm::config {
namespace {

constexpr std::array<std::string_view, 4> placeholders{"namespace", "event", "connection", "source"};

bool is_lower_alnum(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
bool is_alnum(char c) noexcept {
  return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}
bool is_topic_char(char c) noexcept {
  return is_alnum(c) || c == '.' || c == '_' || c == '-';
}

std::string describe_char(char c) {
  if (c == ' ') {
    return "a space";
  }
  if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
    return "a non-printable or non-ASCII byte";
  }
  return std::string("'") + c + "'";
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

std::optional<std::string> check_port(std::string_view port, std::string_view whole, port_range ports) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || value < ports.min || value > ports.max) {
    return "expected a numeric port " + std::to_string(ports.min) + "-" + std::to_string(ports.max) + " in " +
           quoted(whole) + ", got " + quoted(port);
  }
  return std::nullopt;
}

bool looks_numeric(std::string_view host) noexcept {
  for (const char c : host) {
    if (!((c >= '0' && c <= '9') || c == '.')) {
      return false;
    }
  }
  return true;
}

std::optional<std::string> check_host(std::string_view host, std::string_view whole) {
  if (host.empty()) {
    return "expected host:port, the host is missing in " + quoted(whole);
  }
  if (host.front() == '[') {
    if (host.back() != ']') {
      return "unterminated IPv6 address in " + quoted(whole);
    }
    const std::string addr(host.substr(1, host.size() - 2));
    in6_addr parsed{};
    if (::inet_pton(AF_INET6, addr.c_str(), &parsed) != 1) {
      return "invalid IPv6 address " + quoted(addr) + " in " + quoted(whole);
    }
    return std::nullopt;
  }
  if (looks_numeric(host)) {
    const std::string addr(host);
    in_addr parsed{};
    if (::inet_pton(AF_INET, addr.c_str(), &parsed) != 1) {
      return "invalid IPv4 address " + quoted(host) + " in " + quoted(whole);
    }
    return std::nullopt;
  }
  // A DNS name: labels of letters, digits, '-' and '_' (seen in container and SRV-style names), dot-separated.
  if (host.size() > 253) {
    return "host name longer than 253 characters in " + quoted(whole);
  }
  std::size_t label = 0;
  for (const char c : host) {
    if (c == '.') {
      if (label == 0) {
        return "empty label in host name " + quoted(host);
      }
      label = 0;
      continue;
    }
    if (!(is_alnum(c) || c == '-' || c == '_')) {
      return "invalid character " + describe_char(c) + " in host name " + quoted(host);
    }
    if (++label > 63) {
      return "a label of host name " + quoted(host) + " is longer than 63 characters";
    }
  }
  if (label == 0) {
    return "host name " + quoted(host) + " ends with '.'";
  }
  return std::nullopt;
}

}  // namespace

std::string quoted(std::string_view text) {
  // Appended piecewise: `"\"" + std::string(...)` trips g++ 12's -Wrestrict false positive at -O3.
  std::string out;
  out.reserve(text.size() + 2);
  out += '"';
  out += text;
  out += '"';
  return out;
}

std::optional<std::string> check_connection_name(std::string_view name) {
  if (name.empty()) {
    return std::string("expected a name of [a-z0-9_-], got an empty string");
  }
  if (name.size() > max_connection_name) {
    return "a connection name has at most " + std::to_string(max_connection_name) + " characters, got " +
           std::to_string(name.size());
  }
  for (const char c : name) {
    if (!(is_lower_alnum(c) || c == '_' || c == '-')) {
      return "expected a name of lower-case letters, digits, '_' and '-', got " + quoted(name) + " (" +
             describe_char(c) + " is not allowed)";
    }
  }
  return std::nullopt;
}

std::optional<std::string> check_topic_name(std::string_view name) {
  if (name.empty()) {
    return std::string("expected a Kafka topic name, got an empty string");
  }
  if (name == "." || name == "..") {
    return quoted(name) + " is not a valid Kafka topic name";
  }
  if (name.size() > max_topic_name) {
    return "a Kafka topic name has at most " + std::to_string(max_topic_name) + " characters, got " +
           std::to_string(name.size());
  }
  for (const char c : name) {
    if (!is_topic_char(c)) {
      return "invalid Kafka topic name " + quoted(name) + ": " + describe_char(c) +
             " is not allowed (letters, digits, '.', '_', '-')";
    }
  }
  return std::nullopt;
}

bool has_placeholder(std::string_view tmpl) noexcept {
  return tmpl.find('{') != std::string_view::npos;
}

std::optional<std::string> check_topic_template(std::string_view tmpl) {
  if (tmpl.empty()) {
    return std::string("expected a topic or topic template, got an empty string");
  }
  std::size_t literal = 0;
  for (std::size_t i = 0; i < tmpl.size(); ++i) {
    const char c = tmpl[i];
    if (c == '{') {
      const std::size_t close = tmpl.find_first_of("{}", i + 1);
      if (close == std::string_view::npos || tmpl[close] == '{') {
        return "unbalanced '{' at offset " + std::to_string(i) + " in " + quoted(tmpl);
      }
      const std::string_view name = tmpl.substr(i + 1, close - i - 1);
      bool known = false;
      for (const std::string_view p : placeholders) {
        known = known || p == name;
      }
      if (!known) {
        return "unknown placeholder {" + std::string(name) + "} in " + quoted(tmpl) +
               ": expected {namespace}, {event}, {connection} or {source}";
      }
      i = close;
    } else if (c == '}') {
      return "unbalanced '}' at offset " + std::to_string(i) + " in " + quoted(tmpl);
    } else if (!is_topic_char(c)) {
      return "invalid character " + describe_char(c) + " in topic template " + quoted(tmpl) +
             " (letters, digits, '.', '_', '-' and placeholders)";
    } else {
      ++literal;
    }
  }
  if (!has_placeholder(tmpl)) {
    return check_topic_name(tmpl);
  }
  if (literal > max_topic_name) {
    return "topic template " + quoted(tmpl) + " is longer than a Kafka topic name can be (" +
           std::to_string(max_topic_name) + ")";
  }
  return std::nullopt;
}

std::optional<std::string> check_host_port(std::string_view text, port_range ports) {
  if (text.empty()) {
    return std::string("expected host:port, got an empty string");
  }
  std::size_t colon = std::string_view::npos;
  if (text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return "unterminated IPv6 address in " + quoted(text);
    }
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      return "expected [IPv6]:port, the port is missing in " + quoted(text);
    }
    colon = close + 1;
  } else {
    colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return "expected host:port, the port is missing in " + quoted(text);
    }
    if (text.find(':') != colon) {
      return "expected host:port, got " + quoted(text) + " (an IPv6 address needs brackets: [::1]:9092)";
    }
  }
  if (auto error = check_host(text.substr(0, colon), text)) {
    return error;
  }
  return check_port(text.substr(colon + 1), text, ports);
}

std::optional<std::string> check_brokers(std::string_view brokers) {
  if (trim(brokers).empty()) {
    return std::string("expected \"embedded\" or a host:port list, got an empty string");
  }
  if (brokers == "embedded") {
    return std::nullopt;
  }
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = brokers.find(',', start);
    const std::string_view entry =
        trim(brokers.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (entry.empty()) {
      return "empty entry in broker list " + quoted(brokers);
    }
    if (entry.find("://") != std::string_view::npos) {
      return "broker " + quoted(entry) +
             ": give host:port without a protocol prefix and set kafka.properties.security.protocol instead";
    }
    if (auto error = check_host_port(entry)) {
      return "broker list " + quoted(brokers) + ": " + *error;
    }
    if (comma == std::string_view::npos) {
      return std::nullopt;
    }
    start = comma + 1;
  }
}

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

std::optional<std::string> check_url(std::string_view url, std::initializer_list<std::string_view> schemes) {
  std::string expected;
  for (const std::string_view s : schemes) {
    expected += (expected.empty() ? "" : " or ") + std::string(s) + "://";
  }
  const std::size_t sep = url.find("://");
  const std::string_view scheme = sep == std::string_view::npos ? std::string_view{} : url.substr(0, sep);
  bool known = false;
  for (const std::string_view s : schemes) {
    known = known || s == scheme;
  }
  if (!known) {
    return "expected a " + expected + " URL, got " + quoted(url);
  }
  for (const char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return "URL " + quoted(url) + " contains " + describe_char(c);
    }
  }
  const std::string_view rest = url.substr(sep + 3);
  const std::size_t end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, end);
  if (end != std::string_view::npos && rest.find('#', end) != std::string_view::npos) {
    return "URL " + quoted(url) + " has a fragment ('#'), which is never sent to a server";
  }
  if (authority.find('@') != std::string_view::npos) {
    return "URL " + quoted(url) + " carries credentials (user@host): put them in the connection's secrets instead";
  }
  if (authority.empty()) {
    return "URL " + quoted(url) + " has no host";
  }
  // The port is optional in a URL; check_host_port wants one, so check host and port separately.
  const bool bracketed = authority.front() == '[';
  const std::size_t close = bracketed ? authority.find(']') : 0;
  if (bracketed && close == std::string_view::npos) {
    return "unterminated IPv6 address in " + quoted(url);
  }
  const std::size_t colon = authority.find(':', bracketed ? close : 0);
  if (colon == std::string_view::npos) {
    if (auto error = check_host(authority, url)) {
      return error;
    }
    return std::nullopt;
  }
  if (auto error = check_host(authority.substr(0, colon), url)) {
    return error;
  }
  return check_port(authority.substr(colon + 1), url, {});
}

}  // namespace rtm::config
