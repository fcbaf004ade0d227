#include "upstream/http/url.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace rtm::upstream::http {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view default_port_of(std::string_view scheme) noexcept {
  return scheme == "https" || scheme == "wss" ? "443" : "80";
}

bool set_error(std::string* error, const char* text) {
  if (error != nullptr) {
    *error = text;
  }
  return false;
}

bool valid_port(std::string_view port) noexcept {
  if (port.empty() || port.size() > 5) {
    return false;
  }
  unsigned value = 0;
  for (const char c : port) {
    if (c < '0' || c > '9') {
      return false;
    }
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return value >= 1 && value <= 65535;
}

}  // namespace

bool url::default_port() const noexcept {
  return port == default_port_of(scheme);
}

std::string url::target() const {
  return query.empty() ? path : path + "?" + query;
}

std::string url::host_header() const {
  std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (!default_port()) {
    out += ':';
    out += port;
  }
  return out;
}

std::string url::to_string() const {
  return scheme + "://" + host_header() + target();
}

std::optional<url> parse_url(std::string_view text, std::string* error) {
  const auto scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) {
    set_error(error, "not an absolute URL (expected scheme://host/...)");
    return std::nullopt;
  }
  url out;
  out.scheme = lower(text.substr(0, scheme_end));
  if (out.scheme != "http" && out.scheme != "https" && out.scheme != "ws" && out.scheme != "wss") {
    set_error(error, "unsupported URL scheme (expected http, https, ws or wss)");
    return std::nullopt;
  }
  std::string_view rest = text.substr(scheme_end + 3);
  if (const auto hash = rest.find('#'); hash != std::string_view::npos) {
    rest = rest.substr(0, hash);
  }
  const auto authority_end = rest.find_first_of("/?");
  const std::string_view authority = rest.substr(0, authority_end);
  const std::string_view tail =
      authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) {
    set_error(error, "user info in URLs is not supported (credentials belong in the config's secrets)");
    return std::nullopt;
  }
  std::string_view host;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      set_error(error, "unterminated IPv6 address in URL");
      return std::nullopt;
    }
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        set_error(error, "bad characters after the IPv6 address in URL");
        return std::nullopt;
      }
      port = after.substr(1);
    }
  } else {
    const auto colon = authority.rfind(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
    }
  }
  if (host.empty()) {
    set_error(error, "URL has no host");
    return std::nullopt;
  }
  if (host.find_first_of(" \t\r\n/\\") != std::string_view::npos) {
    set_error(error, "URL host contains invalid characters");
    return std::nullopt;
  }
  out.host = lower(host);
  if (port.empty()) {
    out.port = std::string(default_port_of(out.scheme));
  } else if (!valid_port(port)) {
    set_error(error, "URL port is not a number between 1 and 65535");
    return std::nullopt;
  } else {
    out.port = std::string(port);
  }
  const auto question = tail.find('?');
  out.path = std::string(tail.substr(0, question));
  if (question != std::string_view::npos) {
    out.query = std::string(tail.substr(question + 1));
  }
  if (out.path.empty()) {
    out.path = "/";
  }
  if (out.path.find_first_of(" \t\r\n") != std::string::npos ||
      out.query.find_first_of(" \t\r\n") != std::string::npos) {
    set_error(error, "URL contains whitespace");
    return std::nullopt;
  }
  return out;
}

std::string base64_encode(std::string_view bytes) {
  static constexpr std::array<char, 64> alphabet{
      'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', 'P', 'Q', 'R', 'S', 'T', 'U', 'V',
      'W', 'X', 'Y', 'Z', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r',
      's', 't', 'u', 'v', 'w', 'x', 'y', 'z', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '+', '/'};
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const auto n = (static_cast<unsigned>(static_cast<unsigned char>(bytes[i])) << 16U) |
                   (static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 1])) << 8U) |
                   static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 2]));
    out += alphabet[(n >> 18U) & 63U];
    out += alphabet[(n >> 12U) & 63U];
    out += alphabet[(n >> 6U) & 63U];
    out += alphabet[n & 63U];
  }
  const std::size_t left = bytes.size() - i;
  if (left > 0) {
    unsigned n = static_cast<unsigned>(static_cast<unsigned char>(bytes[i])) << 16U;
    if (left == 2) {
      n |= static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 1])) << 8U;
    }
    out += alphabet[(n >> 18U) & 63U];
    out += alphabet[(n >> 12U) & 63U];
    out += left == 2 ? alphabet[(n >> 6U) & 63U] : '=';
    out += '=';
  }
  return out;
}

std::string basic_authorization(std::string_view user, std::string_view password) {
  std::string credentials;
  credentials.reserve(user.size() + 1 + password.size());
  credentials += user;
  credentials += ':';
  credentials += password;
  return "Basic " + base64_encode(credentials);
}

}  // namespace rtm::upstream::http
