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

// The `events` array of the authentication emit for the configured globs. The server subscribes exact names, so a
// glob is expanded against the known events; a literal name is sent as it is (so an event this build does not know
// yet can still be subscribed). No globs configured: every known event (the contract's default). If the globs match
// nothing known, they are sent verbatim and the server decides.
[[nodiscard]] std::vector<std::string> subscription(const std::vector<std::string>& globs);

// Whether a configured pattern contains glob syntax.
[[nodiscard]] bool is_glob(std::string_view pattern) noexcept;

}  // namespace rtm::upstream::socketio
