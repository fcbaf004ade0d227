#pragma once

#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "upstream/slack/codec.hpp"

// What both Slack dialects do the same way with the Web API before a socket: the method's URL under the configured
// base (https://slack.com/api/ when left out), and how long an HTTP 429 makes them wait. Header-only, no I/O.
namespace rtm::upstream::slack {

// Slack's Retry-After is obeyed up to this: a server (or a proxy) asking for hours would silently stop the stream.
inline constexpr std::chrono::minutes retry_after_cap{15};
// HTTP 429 without a usable Retry-After: the SDKs' default.
inline constexpr std::chrono::seconds retry_after_default{30};

[[nodiscard]] inline std::string web_api_url(const std::string& base, std::string_view method) {
  std::string url = base;
  if (url.empty() || url.back() != '/') {
    url += '/';
  }
  url += method;
  return url;
}

[[nodiscard]] inline config::connection_config with_default_web_api(config::connection_config cfg) {
  if (cfg.url.empty()) {
    cfg.url = config::default_slack_url;
  }
  return cfg;
}

// The wait an HTTP 429 asks for: its Retry-After (seconds), the default without one, never above the cap. `capped`
// tells whether the cap cut it.
[[nodiscard]] inline std::chrono::milliseconds rate_limit_wait(std::string_view retry_after_header, bool& capped) {
  const auto seconds = parse_retry_after(retry_after_header);
  const std::chrono::milliseconds asked = seconds ? std::chrono::milliseconds(std::chrono::seconds(*seconds))
                                                  : std::chrono::milliseconds(retry_after_default);
  capped = asked > retry_after_cap;
  return std::min<std::chrono::milliseconds>(asked, retry_after_cap);
}

}  // namespace rtm::upstream::slack
