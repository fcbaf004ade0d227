#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Slack legacy RTM, the pure half: what a WebSocket frame is, what rtm.connect answered and how to treat its errors.
// No I/O; unit-tested alone and fuzzed.
namespace rtm::upstream::slack {

enum class frame_kind {
  hello,                   // {"type":"hello"}: the socket is live
  pong,                    // {"type":"pong","reply_to":N}
  reply,                   // an acknowledgement: no "type", has "reply_to"
  goodbye,                 // the server will close soon: reconnect through rtm.connect
  team_migration_started,  // the server closes right after: reconnect
  error,                   // {"type":"error","error":{"code":N,"msg":...}}; code 1 = the URL expired
  reconnect_url,           // experimental, ignored
  event,                   // everything else with a "type": published
  invalid,                 // not a JSON object, or an object with neither "type" nor "reply_to"
};

struct frame {
  frame_kind kind = frame_kind::invalid;
  std::string_view type;     // views into the decoded buffer
  std::string_view subtype;  // empty when absent
  std::optional<std::int64_t> reply_to;
  std::int64_t error_code = 0;  // for frame_kind::error
  std::string_view reason;      // for frame_kind::invalid: a snake_case dead-letter reason
};

// Decodes one text frame of `size` bytes at `text` (nothing past them is read, so no padding is needed). Any valid
// JSON object is accepted (util/json_scan.hpp); the
// views in the result point into the frame or into per-thread scratch, valid until the next decode on this thread.
// Never throws.
[[nodiscard]] frame decode_frame(const char* text, std::size_t size) noexcept;

// The published event name: type, with ".subtype" appended when present (message.message_changed). Writes into
// `out` (reused by the caller, so steady state allocates nothing).
void event_name(const frame& f, std::string& out);

// What rtm.connect answered.
struct connect_response {
  bool ok = false;
  std::string url;            // single-use wss:// URL, valid 30 s
  std::string team_id;        // team.id: the record key
  std::string enterprise_id;  // team.enterprise_id on Enterprise Grid, else empty
  std::string self_id;
  std::string error;  // Slack's error code when !ok, or what was wrong with the body
};

// Also what apps.connections.open answers (ok, url, error): `method` names it in the error texts.
[[nodiscard]] connect_response parse_connect_response(std::string_view body, std::string_view method = "rtm.connect");

// How to react to an rtm.connect error.
enum class error_class {
  fatal,      // the token cannot work (revoked, wrong type, missing scope...): long back-off, loud error
  transient,  // Slack or the network is having a moment: normal back-off
};

[[nodiscard]] error_class classify_error(std::string_view slack_error) noexcept;

// Retry-After (seconds, as Slack sends it) → a delay; nullopt when absent or unparsable.
[[nodiscard]] std::optional<std::uint32_t> parse_retry_after(std::string_view header) noexcept;

// {"type":"presence_sub","ids":[...]}: the users whose presence_change events the socket should get.
[[nodiscard]] std::string presence_sub_frame(const std::vector<std::string>& ids);

// The client's ping frame: {"id":N,"type":"ping"}.
[[nodiscard]] std::string ping_frame(std::int64_t id);

}  // namespace rtm::upstream::slack
