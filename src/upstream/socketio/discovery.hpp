#pragma once

#include <optional>
#include <string>
#include <string_view>

// The Acme handshake's addresses (docs/CONTRACT.md "Acme RTM handshake"): the REST endpoint discovery and the
// Engine.IO WebSocket URL. Pure.
namespace rtm::upstream::socketio {

// `GET {api_url}/{tier}/connect/endpoints` (a trailing '/' on api_url is not doubled).
[[nodiscard]] std::string discovery_url(std::string_view api_url, std::string_view tier);

// `data.socket.app` from the discovery response body, or nullopt with `error` saying what is wrong.
[[nodiscard]] std::optional<std::string> parse_discovery(std::string_view body, std::string& error);

// The WebSocket URL for an RTM endpoint: the Engine.IO path is the URL's own path, `EIO=<protocol>&transport=
// websocket` is appended to any existing query, http(s) becomes ws(s), the fragment is dropped.
[[nodiscard]] std::optional<std::string> engine_url(std::string_view endpoint, int protocol, std::string& error);

}  // namespace rtm::upstream::socketio
