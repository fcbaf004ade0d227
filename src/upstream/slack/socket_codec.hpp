#pragma once

#include <cstdint>
#include <string>
#include <string_view>

// Slack Socket Mode, the pure half: what a frame on the socket is (hello, disconnect, an envelope), what the
// envelope's payload says about its record (team, enterprise, event name, event id), and the acknowledgement frame.
// No I/O; unit-tested alone and fuzzed. Protocol: /work/shared/research/rtm-currency-2026.md §1.4.
namespace rtm::upstream::slack {

enum class socket_frame_kind {
  hello,       // {"type":"hello",...}: the socket is live
  disconnect,  // {"type":"disconnect","reason":...}: refresh_requested, warning, link_disabled, too_many_websockets
  envelope,    // {"envelope_id":...,"type":"events_api"|"interactive"|"slash_commands"|other,"payload":{...}}
  invalid,     // not a JSON object, or an object that is none of these (reason says why)
};

enum class envelope_type { events_api, interactive, slash_commands, unknown };

struct socket_frame {
  socket_frame_kind kind = socket_frame_kind::invalid;
  // invalid: a snake_case dead-letter reason; disconnect: Slack's reason.
  std::string_view reason;
  std::int64_t num_connections = 0;  // hello: how many sockets the app holds, this one included (0: not said)

  // envelope (views into the frame or per-thread scratch, valid until the next decode on this thread)
  envelope_type type = envelope_type::unknown;
  std::string_view type_name;    // the envelope's "type" as sent
  std::string_view envelope_id;  // what the acknowledgement names; empty: none (the envelope cannot be acked)
  std::string_view payload;      // the raw JSON text of "payload", byte for byte; empty when absent
  std::uint32_t retry_attempt = 0;
  bool accepts_response_payload = false;
  // from the payload
  std::string_view team_id;        // events_api, slash_commands: payload.team_id; interactive: payload.team.id
  std::string_view enterprise_id;  // enterprise_id, authorizations[0].enterprise_id or context_enterprise_id
  std::string_view event_type;     // events_api: payload.event.type
  std::string_view event_subtype;  // events_api: payload.event.subtype
  std::string_view event_id;       // events_api: payload.event_id (stable across Slack's retries)
  std::string_view payload_type;   // the payload's own "type" (interactive: block_actions, view_submission, ...)
};

// Decodes one text frame (nothing past `size` is read). The whole frame is validated as JSON in one pass.
[[nodiscard]] socket_frame decode_socket_frame(const char* text, std::size_t size) noexcept;

// The record's event name (contract): events_api → event.type[.subtype] (an envelope without an inner event, such
// as app_rate_limited, → the payload's type); interactive → interactive.<payload.type>; slash_commands →
// slash_commands. Written into `out` (reused: steady state allocates nothing).
void envelope_event_name(const socket_frame& f, std::string& out);

// {"envelope_id":"..."} for `envelope_id` (an id as Slack sends it: JSON-escaped as needed), appended to `out`.
void append_ack_frame(std::string& out, std::string_view envelope_id);

// Token errors of apps.connections.open that no retry fixes (the token is wrong, revoked, of the wrong type).
[[nodiscard]] bool is_socket_token_error(std::string_view slack_error) noexcept;

}  // namespace rtm::upstream::slack
