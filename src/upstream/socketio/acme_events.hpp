#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

// The Acme RTM event names the vendor SDKs subscribe to by default (research rtm-socketio.md §1.4), and the
// subscription list sent in `authentication`. Pure.
namespace rtm::upstream::socketio {

// Every known event, in the SDKs' order.
[[nodiscard]] std::span<const std::string_view> known_events() noexcept;

// The `events` array of the authentication emit for the configured patterns. No patterns: every known event (the
// contract's default). Otherwise, in the configured order without repeats: an exact name as it is (so an event this
// build does not know can still be subscribed); a glob, the known events it matches. The server subscribes exact
// names (research rtm-socketio.md §1.3) and has no documented pattern syntax, so a glob itself is never sent: a
// server that checks names could refuse it. A glob that matches nothing known contributes nothing (--check-config
// and the session's start warn about it). See docs/CONTRACT.md.
[[nodiscard]] std::vector<std::string> subscription(const std::vector<std::string>& globs);

// The configured globs that match no known event: on a server taking exact names only they subscribe nothing, so
// --check-config warns about them.
[[nodiscard]] std::vector<std::string> globs_matching_nothing_known(const std::vector<std::string>& globs);

// Whether a configured pattern contains glob syntax.
[[nodiscard]] bool is_glob(std::string_view pattern) noexcept;

}  // namespace rtm::upstream::socketio
