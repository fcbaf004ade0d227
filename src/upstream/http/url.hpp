#pragma once

#include <optional>
#include <string>
#include <string_view>

// Absolute http(s)/ws(s) URLs as the upstreams use them, plus the Basic authorization header. Pure.
namespace rtm::upstream::http {

struct url {
  std::string scheme;  // lower case: http, https, ws or wss
  std::string host;    // IPv6 literals without the brackets
  std::string port;    // as written, or the scheme's default
  std::string path;    // at least "/"
  std::string query;   // without the '?'; the fragment is dropped

  [[nodiscard]] bool secure() const noexcept { return scheme == "https" || scheme == "wss"; }
  [[nodiscard]] bool default_port() const noexcept;
  // The request target: path, plus "?query" when there is one.
  [[nodiscard]] std::string target() const;
  // The Host header value: host, plus ":port" unless it is the scheme's default.
  [[nodiscard]] std::string host_header() const;
  [[nodiscard]] std::string to_string() const;
};

// nullopt (with `error` set, when given) unless `text` is an absolute http, https, ws or wss URL with a host.
// User info (`user:pass@`) is refused: credentials never travel in URLs here.
[[nodiscard]] std::optional<url> parse_url(std::string_view text, std::string* error = nullptr);

[[nodiscard]] std::string base64_encode(std::string_view bytes);

// "Basic base64(user:password)".
[[nodiscard]] std::string basic_authorization(std::string_view user, std::string_view password);

}  // namespace rtm::upstream::http
