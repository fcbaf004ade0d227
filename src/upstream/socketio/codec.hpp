#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/json_scan.hpp"

// Engine.IO (v3/v4) and Socket.IO (v4/v5) text packets as they travel in WebSocket text frames, one packet per frame
// (the Engine.IO v3/v4 and Socket.IO v2/v5 wire formats). Pure: no I/O, no clock, never throws on input, and no byte
// string can make it misbehave. A fuzzer and the unit tests drive it directly.
namespace rtm::upstream::socketio {

enum class packet_type {
  invalid,  // malformed: see packet::reason
  // Engine.IO
  open,
  close,
  ping,
  pong,
  upgrade,
  noop,
  // Socket.IO, inside an Engine.IO message (`4`)
  connect,
  disconnect,
  event,
  ack,
  connect_error,
  binary,  // BINARY_EVENT / BINARY_ACK: refused (reason binary_event / binary_ack); `attachments` frames follow
};

// The JSON type of an event's first argument.
enum class json_kind { none, object, array, string, number, true_value, false_value, null_value };

// Whether an event payload object carries the record key.
enum class team_id_state { present, missing, not_a_string };

struct open_info {
  std::string_view sid;
  std::chrono::milliseconds ping_interval{0};
  std::chrono::milliseconds ping_timeout{0};
  std::uint64_t max_payload = 0;  // 0: not announced (EIO3)
};

// One decoded frame. Every view points into the decoder that produced it and stays valid until its next decode().
struct packet {
  packet_type type = packet_type::invalid;
  // invalid: a short snake_case word (bad_packet, bad_json, not_an_event, unknown_packet, bad_open, ...);
  // binary: binary_event or binary_ack. Used as the dead-letter reason.
  std::string_view reason;

  std::string_view data;  // ping/pong: the optional probe text after the type digit
  open_info open;         // open

  std::string_view name_space = "/";    // Socket.IO packets
  std::optional<std::uint64_t> ack_id;  // event, ack
  std::size_t attachments = 0;          // binary
  std::string_view sid;                 // connect reply `40{"sid":...}`; empty for the EIO3 bare `40`
  // connect_error: the v5 `message` or the v4 string; event: the payload object's top-level "message" string.
  std::string_view message;

  // event
  std::string_view event_name;  // unescaped
  json_kind payload_kind = json_kind::none;
  std::string_view payload;        // raw JSON text of the first argument, byte for byte (whitespace trimmed)
  std::size_t argument_count = 0;  // arguments after the name
  // The arguments after the first, as received (from the second's first byte to the last one's last, commas and
  // whitespace between them included); empty when there are fewer than two. Published as the envelope's "args".
  std::string_view extra_arguments;
  team_id_state team = team_id_state::missing;  // object payloads only
  std::string_view team_id;                     // unescaped, when team == present

  // ack: the raw JSON argument array
  std::string_view arguments;
};

// Decodes frames with the shared JSON scanner (util/json_scan.hpp: any valid JSON is accepted, lone surrogate
// escapes and numbers of any size included) from a reusable buffer, in one pass, so a steady stream of frames
// allocates nothing once the buffers have grown to the largest frame (and string). Not thread-safe: one per session.
class decoder {
 public:
  decoder();
  decoder(const decoder&) = delete;
  decoder& operator=(const decoder&) = delete;
  decoder(decoder&&) = delete;
  decoder& operator=(decoder&&) = delete;
  ~decoder() = default;

  // Decodes one WebSocket text frame. Never throws.
  const packet& decode(std::string_view frame) noexcept;

 private:
  bool load(std::string_view frame) noexcept;
  // These may only throw std::bad_alloc (a scratch buffer growing), which decode() turns into a dead letter.
  void decode_open(std::string_view json);
  void decode_socketio(std::string_view body);
  void decode_connect(std::string_view json);
  void decode_connect_error(std::string_view json);
  void decode_event(std::string_view json);
  void decode_ack(std::string_view json);
  // Reads an event's payload object member by member (the reader validates each): picks up team_id and message.
  void inspect_payload_object(json::reader& object);
  void fail(std::string_view reason) noexcept;

  std::unique_ptr<char[]> buffer_;  // the frame: every view of packet_ points into it or into a scratch below
  std::size_t capacity_ = 0;
  std::size_t length_ = 0;
  // Unescaped strings that had escapes (those without are views into buffer_), one per field so they coexist.
  std::string key_scratch_;
  std::string name_scratch_;
  std::string team_scratch_;
  std::string message_scratch_;
  std::string sid_scratch_;
  packet packet_;
};

// Dead-letter reason when an event cannot be published as an RTM event ("" when it can): the payload must be an
// object with a non-empty string team_id, or without one when the connection has a `team_id` configured (a team_id
// that is not a string stays bad_team_id: the payload claims a team, wrongly).
[[nodiscard]] std::string_view publish_problem(const packet& event, std::string_view configured_team_id = {}) noexcept;

// The record key of a publishable event: the payload's team_id, else the connection's configured `team_id`.
[[nodiscard]] std::string_view record_key(const packet& event, std::string_view configured_team_id) noexcept;

// The topic namespace of an event name: the part before the first ':' (the whole name when there is none).
[[nodiscard]] std::string_view name_space_of(std::string_view event_name) noexcept;

// What the client sends. Engine.IO v4: the client only ever answers pings; v3: the client pings.
inline constexpr std::string_view ping_frame = "2";
inline constexpr std::string_view pong_frame = "3";
inline constexpr std::string_view connect_frame = "40";
inline constexpr std::string_view disconnect_frame = "41";

// `43[/nsp,]<id>[]`: an empty acknowledgement.
[[nodiscard]] std::string encode_ack(std::string_view name_space, std::uint64_t id);

// `42["authentication",{"tier":..,"username":..,"password":..,"events":[..]}]`, every string JSON-escaped.
[[nodiscard]] std::string encode_authentication(std::string_view tier, std::string_view username,
                                                std::string_view password, const std::vector<std::string>& events);

}  // namespace rtm::upstream::socketio
