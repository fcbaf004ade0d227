#include "upstream/socketio/codec.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>

#include "util/json_scan.hpp"
#include "util/json_writer.hpp"

namespace rtm::upstream::socketio {
namespace {

[[nodiscard]] bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

// Parses a run of decimal digits at `pos` into `out`; false on overflow. Advances `pos` past the digits.
[[nodiscard]] bool parse_digits(std::string_view text, std::size_t& pos, std::uint64_t& out) noexcept {
  out = 0;
  while (pos < text.size() && is_digit(text[pos])) {
    const auto digit = static_cast<std::uint64_t>(text[pos] - '0');
    if (out > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) {
      return false;
    }
    out = out * 10 + digit;
    ++pos;
  }
  return true;
}

[[nodiscard]] json_kind kind_of(char first) noexcept {
  switch (first) {
    case '{':
      return json_kind::object;
    case '[':
      return json_kind::array;
    case '"':
      return json_kind::string;
    case 't':
      return json_kind::true_value;
    case 'f':
      return json_kind::false_value;
    case 'n':
      return json_kind::null_value;
    default:
      return json_kind::number;
  }
}

// The position of the first value of `json` (after leading whitespace), or npos when there is none.
[[nodiscard]] std::size_t first_value(std::string_view json) noexcept {
  const std::size_t pos = json::skip_space(json, 0);
  return pos < json.size() ? pos : json::npos;
}

// True when only whitespace follows `pos` (the end of the one value a packet carries).
[[nodiscard]] bool only_space_after(std::string_view json, std::size_t pos) noexcept {
  return pos != json::npos && json::skip_space(json, pos) == json.size();
}

}  // namespace

decoder::decoder() = default;

void decoder::fail(std::string_view reason) noexcept {
  packet_ = packet{};
  packet_.type = packet_type::invalid;
  packet_.reason = reason;
}

bool decoder::load(std::string_view frame) noexcept {
  if (frame.size() > capacity_) {
    // Grows geometrically and never shrinks: the buffer settles at the largest frame seen (bounded by the
    // transport's max message size).
    const std::size_t grown = std::max(frame.size(), capacity_ + capacity_ / 2);
    std::unique_ptr<char[]> bigger(new (std::nothrow) char[grown]);
    if (!bigger) {
      return false;
    }
    buffer_ = std::move(bigger);
    capacity_ = grown;
  }
  if (!frame.empty()) {
    std::memcpy(buffer_.get(), frame.data(), frame.size());
  }
  length_ = frame.size();
  return true;
}

const packet& decoder::decode(std::string_view frame) noexcept {
  packet_ = packet{};
  if (frame.empty()) {
    fail("bad_packet");
    return packet_;
  }
  if (!load(frame)) {
    fail("frame_too_large");
    return packet_;
  }
  const std::string_view text(buffer_.get(), length_);
  const std::string_view rest = text.substr(1);
  // Only the unescaping scratch buffers can throw (bad_alloc while growing to a new largest string).
  try {
    switch (text.front()) {
      case '0':
        decode_open(rest);
        break;
      case '1':
        packet_.type = packet_type::close;
        break;
      case '2':
        packet_.type = packet_type::ping;
        packet_.data = rest;
        break;
      case '3':
        packet_.type = packet_type::pong;
        packet_.data = rest;
        break;
      case '4':
        decode_socketio(rest);
        break;
      case '5':
        packet_.type = packet_type::upgrade;
        break;
      case '6':
        packet_.type = packet_type::noop;
        break;
      default:
        fail("unknown_packet");
        break;
    }
  } catch (const std::bad_alloc&) {
    fail("frame_too_large");
  }
  return packet_;
}

void decoder::decode_open(std::string_view json) {
  const std::size_t start = first_value(json);
  if (start == json::npos || json[start] != '{') {
    fail("bad_open");
    return;
  }
  open_info info;
  bool have_sid = false;
  bool have_interval = false;
  bool have_timeout = false;
  json::reader object(json, start);
  std::string_view key_token;
  std::string_view value;
  while (object.next(value, &key_token)) {
    const std::string_view key = json::string_value(key_token, key_scratch_);
    std::uint64_t number = 0;
    if (key == "sid") {
      if (value.front() != '"') {
        fail("bad_open");
        return;
      }
      info.sid = json::string_value(value, sid_scratch_);
      have_sid = true;
    } else if (key == "pingInterval" || key == "pingTimeout" || key == "maxPayload") {
      if (!json::to_uint64(value, number)) {
        fail("bad_open");
        return;
      }
      // Bounded so a hostile value cannot overflow the duration arithmetic of the heartbeat timers.
      constexpr std::uint64_t max_ms = 24ULL * 3600 * 1000;
      if (key == "pingInterval") {
        info.ping_interval = std::chrono::milliseconds{std::min(number, max_ms)};
        have_interval = true;
      } else if (key == "pingTimeout") {
        info.ping_timeout = std::chrono::milliseconds{std::min(number, max_ms)};
        have_timeout = true;
      } else {
        info.max_payload = number;
      }
    }
  }
  if (object.failed() || !only_space_after(json, object.end()) || !have_sid || !have_interval || !have_timeout ||
      info.ping_interval.count() == 0) {
    fail("bad_open");
    return;
  }
  packet_.type = packet_type::open;
  packet_.open = info;
}

void decoder::decode_socketio(std::string_view body) {
  if (body.empty()) {
    fail("bad_packet");
    return;
  }
  const char type = body.front();
  if (type < '0' || type > '6') {
    fail("unknown_packet");
    return;
  }
  std::size_t pos = 1;
  if (type == '5' || type == '6') {
    std::uint64_t attachments = 0;
    const std::size_t start = pos;
    if (!parse_digits(body, pos, attachments) || pos == start || pos >= body.size() || body[pos] != '-') {
      fail("bad_packet");
      return;
    }
    packet_.type = packet_type::binary;
    packet_.reason = type == '5' ? "binary_event" : "binary_ack";
    // Capped: the session skips that many binary frames, a silly count must not make it skip forever.
    packet_.attachments = static_cast<std::size_t>(std::min<std::uint64_t>(attachments, 1024));
    return;
  }
  // The namespace runs to the next ',' (or the end, as socket.io-parser reads it).
  if (pos < body.size() && body[pos] == '/') {
    const std::size_t comma = body.find(',', pos);
    if (comma == std::string_view::npos) {
      packet_.name_space = body.substr(pos);
      pos = body.size();
    } else {
      packet_.name_space = body.substr(pos, comma - pos);
      pos = comma + 1;
    }
  }
  if (pos < body.size() && is_digit(body[pos])) {
    std::uint64_t id = 0;
    if (!parse_digits(body, pos, id)) {
      fail("bad_packet");
      return;
    }
    packet_.ack_id = id;
  }
  const std::string_view json = body.substr(pos);
  switch (type) {
    case '0':
      decode_connect(json);
      break;
    case '1':
      packet_.type = packet_type::disconnect;
      break;
    case '2':
      decode_event(json);
      break;
    case '3':
      decode_ack(json);
      break;
    default:  // '4'
      decode_connect_error(json);
      break;
  }
}

void decoder::decode_connect(std::string_view json) {
  packet_.type = packet_type::connect;
  if (json.empty()) {
    return;  // EIO3: the server's unprompted bare `40`
  }
  const std::size_t start = first_value(json);
  if (start == json::npos || json[start] != '{') {
    fail("bad_json");
    return;
  }
  // The first "sid" must be a string; any later one is validated and passed over like any other member.
  json::reader object(json, start);
  std::string_view key_token;
  std::string_view value;
  std::string_view sid;
  bool have_sid = false;
  while (object.next(value, &key_token)) {
    if (!have_sid && json::string_value(key_token, key_scratch_) == "sid") {
      if (value.front() != '"') {
        fail("bad_json");
        return;
      }
      sid = json::string_value(value, sid_scratch_);
      have_sid = true;
    }
  }
  if (object.failed() || !only_space_after(json, object.end())) {
    fail("bad_json");
    return;
  }
  packet_.sid = sid;
}

void decoder::decode_connect_error(std::string_view json) {
  packet_.type = packet_type::connect_error;
  if (json.empty()) {
    return;
  }
  const std::size_t start = first_value(json);
  if (start == json::npos) {
    fail("bad_json");
    return;
  }
  std::string_view message;
  if (json[start] == '{') {
    // Socket.IO v5: {"message": ...}; the first "message" that is a string counts.
    json::reader object(json, start);
    std::string_view key_token;
    std::string_view value;
    while (object.next(value, &key_token)) {
      if (message.empty() && value.front() == '"' && json::string_value(key_token, key_scratch_) == "message") {
        message = json::string_value(value, message_scratch_);
      }
    }
    if (object.failed() || !only_space_after(json, object.end())) {
      fail("bad_json");
      return;
    }
  } else {
    const std::size_t end = json::value_end(json, start);
    if (!only_space_after(json, end)) {
      fail("bad_json");
      return;
    }
    if (json[start] == '"') {
      // Socket.IO v4 (EIO3) servers send a plain string.
      message = json::string_value(json.substr(start, end - start), message_scratch_);
    }
  }
  packet_.message = message;
}

void decoder::decode_ack(std::string_view json) {
  const std::size_t start = first_value(json);
  if (start == json::npos) {
    fail("bad_json");
    return;
  }
  if (json[start] != '[') {
    fail("bad_packet");
    return;
  }
  const std::size_t end = json::value_end(json, start);
  if (!only_space_after(json, end)) {
    fail("bad_json");
    return;
  }
  packet_.type = packet_type::ack;
  packet_.arguments = json.substr(0, end);  // leading whitespace kept, trailing trimmed
}

void decoder::decode_event(std::string_view json) {
  if (json.empty()) {
    fail("not_an_event");
    return;
  }
  const std::size_t start = first_value(json);
  if (start == json::npos) {
    fail("bad_json");
    return;
  }
  if (json[start] != '[') {
    // Tell broken JSON from a well-formed non-array; the dead letter's reason should say which.
    fail(json::valid(json) ? "not_an_event" : "bad_json");
    return;
  }
  // One pass over the frame: every argument is validated as it is read; the payload object's members on the way
  // (team_id and message are picked up), so that no byte is scanned twice.
  json::reader array(json, start);
  std::size_t index = 0;
  bool named = true;
  std::string_view name;
  json_kind kind = json_kind::none;
  std::string_view payload;
  std::size_t extra_start = 0;
  std::size_t extra_end = 0;
  while (array.advance()) {
    const std::size_t at = array.at();
    std::size_t end = json::npos;
    if (index == 1 && json[at] == '{') {
      json::reader object(json, at, array.child_budget());
      inspect_payload_object(object);
      end = object.failed() ? json::npos : object.end();
    } else {
      end = json::value_end(json, at, array.child_budget());
    }
    if (!array.finish(end)) {
      break;
    }
    const std::string_view value = json.substr(at, end - at);
    if (index == 0) {
      named = value.front() == '"';
      if (named) {
        name = json::string_value(value, name_scratch_);
      }
    } else if (index == 1) {
      kind = kind_of(value.front());
      payload = value;
    } else {
      extra_start = index == 2 ? at : extra_start;
      extra_end = end;
    }
    ++index;
  }
  if (array.failed() || !only_space_after(json, array.end())) {
    fail("bad_json");
    return;
  }
  if (index == 0 || !named || name.empty()) {
    fail("not_an_event");
    return;
  }
  packet_.type = packet_type::event;
  packet_.event_name = name;
  packet_.payload_kind = kind;
  packet_.payload = payload;
  packet_.argument_count = index - 1;
  if (index > 2) {
    packet_.extra_arguments = json.substr(extra_start, extra_end - extra_start);
  }
}

void decoder::inspect_payload_object(json::reader& object) {
  bool seen_team = false;
  bool seen_message = false;
  std::string_view key_token;
  std::string_view value;
  while (object.next(value, &key_token)) {
    const std::string_view key = json::string_value(key_token, key_scratch_);
    if (key == "team_id" && !seen_team) {
      seen_team = true;
      if (value.front() == '"') {
        packet_.team_id = json::string_value(value, team_scratch_);
        packet_.team = team_id_state::present;
      } else {
        packet_.team = team_id_state::not_a_string;
      }
    } else if (key == "message" && !seen_message && value.front() == '"') {
      seen_message = true;
      packet_.message = json::string_value(value, message_scratch_);
    }
  }
}

std::string_view publish_problem(const packet& event, std::string_view configured_team_id) noexcept {
  if (event.payload_kind != json_kind::object) {
    return "not_an_object";
  }
  switch (event.team) {
    case team_id_state::present:
      return !event.team_id.empty() || !configured_team_id.empty() ? "" : "no_team_id";
    case team_id_state::missing:
      return configured_team_id.empty() ? "no_team_id" : "";
    case team_id_state::not_a_string:
      return "bad_team_id";
  }
  return "no_team_id";
}

std::string_view record_key(const packet& event, std::string_view configured_team_id) noexcept {
  return event.team == team_id_state::present && !event.team_id.empty() ? event.team_id : configured_team_id;
}

std::string_view name_space_of(std::string_view event_name) noexcept {
  const auto colon = event_name.find(':');
  return colon == std::string_view::npos ? event_name : event_name.substr(0, colon);
}

std::string encode_ack(std::string_view name_space, std::uint64_t id) {
  std::string out = "43";
  if (!name_space.empty() && name_space != "/") {
    out += name_space;
    out += ',';
  }
  out += std::to_string(id);
  out += "[]";
  return out;
}

std::string encode_authentication(std::string_view tier, std::string_view username, std::string_view password,
                                  const std::vector<std::string>& events) {
  std::string out;
  out.reserve(96 + username.size() + password.size() + events.size() * 24);
  out += R"(42["authentication",{"tier":)";
  json::append_string(out, tier);
  out += R"(,"username":)";
  json::append_string(out, username);
  out += R"(,"password":)";
  json::append_string(out, password);
  out += R"(,"events":[)";
  bool first = true;
  for (const auto& event : events) {
    if (!first) {
      out += ',';
    }
    first = false;
    json::append_string(out, event);
  }
  out += "]}]";
  return out;
}

}  // namespace rtm::upstream::socketio
