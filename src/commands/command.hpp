#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

// Commands (docs/CONTRACT.md, "Commands"), the pure half: what a command record's value may be, and the reply
// record's value. No I/O, no clock; unit-tested alone and fuzzed.
namespace rtm::commands {

enum class command_type : std::uint8_t { message, typing, presence_sub, presence_query };

// The contract's error words of a reply (`none`: ok).
enum class reply_error : std::uint8_t {
  none,
  slack_error,         // Slack answered ok:false
  expired,             // not sent within commands.max_age of being produced
  unknown_connection,  // the record's key names no configured connection
  unsupported,         // the connection's kind has no outbound (acme, slack_socket)
  unsupported_type,    // a JSON object whose type is not one the bridge sends
  bad_command,         // not a JSON object, too large, no type, or it carries its own id
  no_reply,            // sent, but no reply_to within the reply timeout (or the socket closed first)
};

[[nodiscard]] std::string_view to_string(command_type t) noexcept;
// The error word ("slack_error", ...); "ok" for none (the metrics label of a success).
[[nodiscard]] std::string_view to_string(reply_error e) noexcept;

// The largest command value accepted (the contract's 16 KiB): a message this long is already past what Slack accepts
// on an RTM socket (4,000 characters).
inline constexpr std::size_t max_command_size = std::size_t{16} * 1024;
// How long a sent message waits for Slack's reply_to before it is answered no_reply.
inline constexpr std::chrono::seconds reply_timeout{10};

struct command {
  command_type type = command_type::message;
  // The JSON object as received, without the whitespace around it: the frame sent is this with the bridge's id.
  std::string_view object;
};

struct refusal {
  reply_error error = reply_error::bad_command;
  std::string detail;  // for the reply's detail and the log: what is wrong, never the command's text
};

// Validates a command record's value: one JSON object of at most max_command_size bytes with a string "type" that is
// message, typing, presence_sub or presence_query, and no "id" (the bridge assigns it). Never throws but for
// std::bad_alloc.
[[nodiscard]] std::variant<command, refusal> parse_command(std::string_view value);

// Whether Slack answers the frame with a reply_to (only message does): the others are done once written.
[[nodiscard]] constexpr bool expects_reply(command_type t) noexcept {
  return t == command_type::message;
}

// The frame sent on the socket: `object` with "id":N first, e.g. {"id":7,"type":"message",...}.
[[nodiscard]] std::string frame_with_id(std::string_view object, std::uint64_t id);

// The command id of a record without an rtm-command-id header: TOPIC:PARTITION:OFFSET.
[[nodiscard]] std::string default_command_id(std::string_view topic, std::int32_t partition, std::int64_t offset);

// The reply record's value (schema rtm-bridge.reply/v1, docs/schema/reply.schema.json):
// {"schema":"rtm-bridge.reply/v1","command_id":...,"connection":...,"ok":...,"error":null|"...",
//  "detail":null|"...","reply":null|{...}} where `reply_frame` (Slack's reply, byte for byte) is null when empty.
// `ok` is true exactly when `error` is none. Strings are escaped; the command id may be any bytes (a header).
[[nodiscard]] std::string reply_value(std::string_view command_id, std::string_view connection, reply_error error,
                                      std::string_view detail, std::string_view reply_frame);

// Slack's reply frame said ok:true (a reply without "ok", or with anything but false, is not a success either).
[[nodiscard]] bool reply_ok(std::string_view reply_frame) noexcept;

}  // namespace rtm::commands
