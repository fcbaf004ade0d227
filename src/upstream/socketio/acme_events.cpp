#include "upstream/socketio/acme_events.hpp"

#include <algorithm>
#include <array>

#include "util/glob.hpp"

namespace rtm::upstream::socketio {
namespace {

// node-crisp-api DEFAULT_RTM_EVENTS (same set in go-crisp-api), as listed in the research report §1.4.
constexpr auto events = std::to_array<std::string_view>({
    "session:update_availability",
    "session:update_verify",
    "session:request:initiated",
    "session:set_email",
    "session:set_phone",
    "session:set_address",
    "session:set_subject",
    "session:set_avatar",
    "session:set_nickname",
    "session:set_origin",
    "session:set_data",
    "session:sync:pages",
    "session:sync:events",
    "session:sync:capabilities",
    "session:sync:geolocation",
    "session:sync:system",
    "session:sync:network",
    "session:sync:timezone",
    "session:sync:locales",
    "session:sync:rating",
    "session:sync:topic",
    "session:set_state",
    "session:set_block",
    "session:set_segments",
    "session:set_opened",
    "session:set_closed",
    "session:set_participants",
    "session:set_mentions",
    "session:set_routing",
    "session:set_inbox",
    "session:removed",
    "session:error",
    "message:updated",
    "message:send",
    "message:received",
    "message:removed",
    "message:compose:send",
    "message:compose:receive",
    "message:acknowledge:read:send",
    "message:acknowledge:read:received",
    "message:acknowledge:unread:send",
    "message:acknowledge:delivered",
    "message:acknowledge:ignored",
    "message:notify:unread:send",
    "message:notify:unread:received",
    "spam:message",
    "spam:decision",
    "people:profile:created",
    "people:profile:updated",
    "people:profile:removed",
    "people:bind:session",
    "people:sync:profile",
    "people:import:progress",
    "people:import:done",
    "campaign:progress",
    "campaign:dispatched",
    "campaign:running",
    "browsing:request:initiated",
    "browsing:request:rejected",
    "call:request:initiated",
    "call:request:rejected",
    "identity:verify:request",
    "widget:action:processed",
    "status:health:changed",
    "website:update_visitors_count",
    "website:update_operators_availability",
    "website:users:available",
    "bucket:url:upload:generated",
    "bucket:url:avatar:generated",
    "bucket:url:website:generated",
    "bucket:url:campaign:generated",
    "bucket:url:helpdesk:generated",
    "bucket:url:status:generated",
    "bucket:url:processing:generated",
    "media:animation:listed",
    "email:subscribe",
    "email:track:view",
    "plugin:channel",
    "plugin:event",
    "plugin:subscription:updated",
    "plugin:settings:saved",
    "plan:subscription:updated",
});

}  // namespace

std::span<const std::string_view> known_events() noexcept {
  return events;
}

bool is_glob(std::string_view pattern) noexcept {
  return pattern.find_first_of("*?[\\") != std::string_view::npos;
}

std::vector<std::string> subscription(const std::vector<std::string>& globs) {
  std::vector<std::string> out;
  const auto add = [&out](std::string_view name) {
    if (std::find(out.begin(), out.end(), name) == out.end()) {
      out.emplace_back(name);
    }
  };
  if (globs.empty()) {
    for (const auto name : events) {
      add(name);
    }
    return out;
  }
  for (const auto& pattern : globs) {
    if (!is_glob(pattern)) {
      add(pattern);
      continue;
    }
    for (const auto name : events) {
      if (glob_match(pattern, name)) {
        add(name);
      }
    }
  }
  return out;
}

std::vector<std::string> globs_matching_nothing_known(const std::vector<std::string>& globs) {
  std::vector<std::string> out;
  for (const auto& pattern : globs) {
    if (is_glob(pattern) && std::none_of(events.begin(), events.end(),
                                         [&pattern](std::string_view name) { return glob_match(pattern, name); })) {
      out.push_back(pattern);
    }
  }
  return out;
}

}  // namespace rtm::upstream::socketio
