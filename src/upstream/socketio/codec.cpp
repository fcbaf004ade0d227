#include "upstream/socketio/codec.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>

#include "util/json_writer.hpp"

namespace rtm::upstream::socketio {
namespace {

namespace od = simdjson::ondemand;

// Deeper payloads are refused rather than walked: the validation below recurses once per level.
constexpr int max_json_depth = 256;

[[nodiscard]] bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

[[nodiscard]] std::string_view trim_json_space(std::string_view text) noexcept {
  while (!text.empty()) {
    const char c = text.back();
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
      break;
    }
    text.remove_suffix(1);
  }
  return text;
}

// RFC 8259 number grammar, checked on the raw token so integers of any size stay valid (simdjson's own number parser
// refuses integers beyond 64 bits, which are still valid JSON that we pass through untouched).
[[nodiscard]] bool valid_number(std::string_view token) noexcept {
  std::size_t i = 0;
  const std::size_t n = token.size();
  if (i < n && token[i] == '-') {
    ++i;
  }
  if (i >= n) {
    return false;
  }
  if (token[i] == '0') {
    ++i;
  } else if (is_digit(token[i])) {
    while (i < n && is_digit(token[i])) {
      ++i;
    }
  } else {
    return false;
  }
  if (i < n && token[i] == '.') {
    ++i;
    if (i >= n || !is_digit(token[i])) {
      return false;
    }
    while (i < n && is_digit(token[i])) {
      ++i;
    }
  }
  if (i < n && (token[i] == 'e' || token[i] == 'E')) {
    ++i;
    if (i < n && (token[i] == '+' || token[i] == '-')) {
      ++i;
    }
    if (i >= n || !is_digit(token[i])) {
      return false;
    }
    while (i < n && is_digit(token[i])) {
      ++i;
    }
  }
  return i == n;
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

// Walks a value completely, so every literal, number, string escape and bracket of it has been checked: on-demand
// parsing alone only looks at what is asked for.
simdjson::error_code validate(od::value value, int depth) noexcept {
  if (depth > max_json_depth) {
    return simdjson::DEPTH_ERROR;
  }
  od::json_type type{};
  if (auto error = value.type().get(type)) {
    return error;
  }
  switch (type) {
    case od::json_type::array: {
      od::array array;
      if (auto error = value.get_array().get(array)) {
        return error;
      }
      for (auto element : array) {
        od::value child;
        if (auto error = element.get(child)) {
          return error;
        }
        if (auto error = validate(child, depth + 1)) {
          return error;
        }
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::object: {
      od::object object;
      if (auto error = value.get_object().get(object)) {
        return error;
      }
      for (auto field : object) {
        std::string_view key;
        if (auto error = field.unescaped_key().get(key)) {
          return error;
        }
        od::value child;
        if (auto error = field.value().get(child)) {
          return error;
        }
        if (auto error = validate(child, depth + 1)) {
          return error;
        }
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::string: {
      std::string_view text;
      return value.get_string().get(text);
    }
    case od::json_type::number: {
      const std::string_view token = value.raw_json_token();
      return valid_number(trim_json_space(token)) ? simdjson::SUCCESS : simdjson::NUMBER_ERROR;
    }
    case od::json_type::boolean: {
      bool flag = false;
      return value.get_bool().get(flag);
    }
    case od::json_type::null: {
      bool null = false;
      if (auto error = value.is_null().get(null)) {
        return error;
      }
      return null ? simdjson::SUCCESS : simdjson::N_ATOM_ERROR;
    }
  }
  return simdjson::INCORRECT_TYPE;
}

// True once the whole document has been consumed: anything left (`[...]]`, `{} x`) makes the frame bad JSON.
[[nodiscard]] bool at_end(od::document& doc) noexcept {
  const char* location = nullptr;
  return doc.current_location().get(location) == simdjson::OUT_OF_BOUNDS;
}

// Walks an object member by member, validating every value, and reads the first member named `wanted` that holds a
// string into `out`. With `must_be_string`, a `wanted` member of another type makes the object malformed; without,
// it is validated and passed over like any other. True on malformed JSON.
[[nodiscard]] bool read_string_member(od::object& object, std::string_view wanted, bool must_be_string,
                                      std::string_view& out) noexcept {
  for (auto field : object) {
    std::string_view key;
    od::value value;
    if (field.unescaped_key().get(key) || field.value().get(value)) {
      return true;
    }
    if (key == wanted && out.empty()) {
      od::json_type type{};
      if (must_be_string || (!value.type().get(type) && type == od::json_type::string)) {
        if (value.get_string().get(out)) {
          return true;
        }
        continue;
      }
    }
    if (validate(value, 1)) {
      return true;
    }
  }
  return false;
}

// Validates a whole document whatever its root type.
simdjson::error_code validate_document(od::document& doc) noexcept {
  od::json_type type{};
  if (auto error = doc.type().get(type)) {
    return error;
  }
  simdjson::error_code error = simdjson::SUCCESS;
  switch (type) {
    case od::json_type::array: {
      od::array array;
      if ((error = doc.get_array().get(array))) {
        return error;
      }
      for (auto element : array) {
        od::value child;
        if ((error = element.get(child)) || (error = validate(child, 1))) {
          return error;
        }
      }
      break;
    }
    case od::json_type::object: {
      od::object object;
      if ((error = doc.get_object().get(object))) {
        return error;
      }
      for (auto field : object) {
        std::string_view key;
        od::value child;
        if ((error = field.unescaped_key().get(key)) || (error = field.value().get(child)) ||
            (error = validate(child, 1))) {
          return error;
        }
      }
      break;
    }
    case od::json_type::string: {
      std::string_view text;
      error = doc.get_string().get(text);
      break;
    }
    case od::json_type::number: {
      std::string_view token;
      if ((error = doc.raw_json_token().get(token))) {
        return error;
      }
      error = valid_number(trim_json_space(token)) ? simdjson::SUCCESS : simdjson::NUMBER_ERROR;
      break;
    }
    case od::json_type::boolean: {
      bool flag = false;
      error = doc.get_bool().get(flag);
      break;
    }
    case od::json_type::null: {
      bool null = false;
      if ((error = doc.is_null().get(null))) {
        return error;
      }
      error = null ? simdjson::SUCCESS : simdjson::N_ATOM_ERROR;
      break;
    }
  }
  if (error) {
    return error;
  }
  return at_end(doc) ? simdjson::SUCCESS : simdjson::TRAILING_CONTENT;
}

}  // namespace

decoder::decoder() = default;

void decoder::fail(std::string_view reason) noexcept {
  packet_ = packet{};
  packet_.type = packet_type::invalid;
  packet_.reason = reason;
}

bool decoder::load(std::string_view frame) noexcept {
  const std::size_t needed = frame.size() + simdjson::SIMDJSON_PADDING;
  if (needed > capacity_) {
    // Grows geometrically and never shrinks: the buffer settles at the largest frame seen (bounded by the
    // transport's max message size).
    const std::size_t grown = std::max(needed, capacity_ + capacity_ / 2);
    std::unique_ptr<char[]> bigger(new (std::nothrow) char[grown]());
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

simdjson::padded_string_view decoder::padded(std::string_view inside_buffer) const noexcept {
  const auto offset = static_cast<std::size_t>(inside_buffer.data() - buffer_.get());
  return simdjson::padded_string_view(inside_buffer.data(), inside_buffer.size(), capacity_ - offset);
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
  return packet_;
}

void decoder::decode_open(std::string_view json) noexcept {
  od::document doc;
  od::object object;
  if (json.empty() || parser_.iterate(padded(json)).get(doc) || doc.get_object().get(object)) {
    fail("bad_open");
    return;
  }
  open_info info;
  bool have_sid = false;
  bool have_interval = false;
  bool have_timeout = false;
  for (auto field : object) {
    std::string_view key;
    if (field.unescaped_key().get(key)) {
      fail("bad_open");
      return;
    }
    std::uint64_t number = 0;
    if (key == "sid") {
      if (field.value().get_string().get(info.sid)) {
        fail("bad_open");
        return;
      }
      have_sid = true;
    } else if (key == "pingInterval" || key == "pingTimeout" || key == "maxPayload") {
      if (field.value().get_uint64().get(number)) {
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
    } else {
      od::value value;
      if (field.value().get(value) || validate(value, 1)) {
        fail("bad_open");
        return;
      }
    }
  }
  if (!at_end(doc) || !have_sid || !have_interval || !have_timeout || info.ping_interval.count() == 0) {
    fail("bad_open");
    return;
  }
  packet_.type = packet_type::open;
  packet_.open = info;
}

void decoder::decode_socketio(std::string_view body) noexcept {
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

void decoder::decode_connect(std::string_view json) noexcept {
  packet_.type = packet_type::connect;
  if (json.empty()) {
    return;  // EIO3: the server's unprompted bare `40`
  }
  od::document doc;
  od::object object;
  if (parser_.iterate(padded(json)).get(doc) || doc.get_object().get(object)) {
    fail("bad_json");
    return;
  }
  std::string_view sid;
  if (read_string_member(object, "sid", true, sid) || !at_end(doc)) {
    fail("bad_json");
    return;
  }
  packet_.sid = sid;
}

void decoder::decode_connect_error(std::string_view json) noexcept {
  packet_.type = packet_type::connect_error;
  if (json.empty()) {
    return;
  }
  od::document doc;
  od::json_type type{};
  if (parser_.iterate(padded(json)).get(doc) || doc.type().get(type)) {
    fail("bad_json");
    return;
  }
  std::string_view message;
  if (type == od::json_type::string) {
    // Socket.IO v4 (EIO3) servers send a plain string.
    if (doc.get_string().get(message) || !at_end(doc)) {
      fail("bad_json");
      return;
    }
  } else if (type == od::json_type::object) {
    od::object object;
    if (doc.get_object().get(object)) {
      fail("bad_json");
      return;
    }
    if (read_string_member(object, "message", false, message) || !at_end(doc)) {
      fail("bad_json");
      return;
    }
  } else if (validate_document(doc)) {
    fail("bad_json");
    return;
  }
  packet_.message = message;
}

void decoder::decode_ack(std::string_view json) noexcept {
  od::document doc;
  od::json_type type{};
  if (json.empty() || parser_.iterate(padded(json)).get(doc) || doc.type().get(type)) {
    fail("bad_json");
    return;
  }
  if (type != od::json_type::array) {
    fail("bad_packet");
    return;
  }
  if (validate_document(doc)) {
    fail("bad_json");
    return;
  }
  packet_.type = packet_type::ack;
  packet_.arguments = trim_json_space(json);
}

void decoder::decode_event(std::string_view json) noexcept {
  od::document doc;
  od::json_type type{};
  if (json.empty()) {
    fail("not_an_event");
    return;
  }
  if (parser_.iterate(padded(json)).get(doc) || doc.type().get(type)) {
    fail("bad_json");
    return;
  }
  if (type != od::json_type::array) {
    // Tell broken JSON from a well-formed non-array; the dead letter's reason should say which.
    fail(validate_document(doc) ? "bad_json" : "not_an_event");
    return;
  }
  od::array array;
  if (doc.get_array().get(array)) {
    fail("bad_json");
    return;
  }
  std::size_t index = 0;
  std::string_view name;
  json_kind kind = json_kind::none;
  std::string_view payload;
  for (auto element : array) {
    od::value value;
    if (element.get(value)) {
      fail("bad_json");
      return;
    }
    if (index == 0) {
      const auto error = value.get_string().get(name);
      if (error == simdjson::INCORRECT_TYPE) {
        fail("not_an_event");
        return;
      }
      if (error) {
        fail("bad_json");
        return;
      }
    } else if (index == 1) {
      od::json_type payload_type{};
      if (value.type().get(payload_type)) {
        fail("bad_json");
        return;
      }
      if (payload_type == od::json_type::object || payload_type == od::json_type::array) {
        simdjson::error_code error = simdjson::SUCCESS;
        if (payload_type == od::json_type::object) {
          // The usual case, done in this one pass: every field is validated as it is read (team_id and message are
          // picked up on the way), and the raw text runs from the '{' to the token after the matching '}'.
          const char* start = value.raw_json_token().data();
          const char* end = nullptr;
          od::object object;
          error = value.get_object().get(object);
          if (!error && !inspect_payload_object(object)) {
            error = simdjson::TAPE_ERROR;
          }
          if (!error) {
            error = value.current_location().get(end);
          }
          if (!error) {
            payload = std::string_view(start, static_cast<std::size_t>(end - start));
          }
          kind = json_kind::object;
        } else {
          // The raw text is taken here and validated by a second, complete pass below.
          od::array inner;
          error = value.get_array().get(inner);
          if (!error) {
            error = inner.raw_json().get(payload);
          }
          kind = json_kind::array;
        }
        if (error) {
          fail("bad_json");
          return;
        }
        payload = trim_json_space(payload);
      } else {
        payload = trim_json_space(value.raw_json_token());
        switch (payload_type) {
          case od::json_type::string:
            kind = json_kind::string;
            break;
          case od::json_type::number:
            kind = json_kind::number;
            break;
          case od::json_type::boolean:
            kind = payload == "true" ? json_kind::true_value : json_kind::false_value;
            break;
          default:
            kind = json_kind::null_value;
            break;
        }
        if (validate(value, 1)) {
          fail("bad_json");
          return;
        }
      }
    } else if (validate(value, 1)) {
      fail("bad_json");
      return;
    }
    ++index;
  }
  if (!at_end(doc)) {
    fail("bad_json");
    return;
  }
  if (index == 0 || name.empty()) {
    fail("not_an_event");
    return;
  }
  packet_.type = packet_type::event;
  packet_.event_name = name;
  packet_.payload_kind = kind;
  packet_.payload = payload;
  packet_.argument_count = index - 1;
  if (kind == json_kind::array) {
    od::document inner;
    if (payload_parser_.iterate(padded(payload)).get(inner) || validate_document(inner)) {
      fail("bad_json");
      return;
    }
  }
}

bool decoder::inspect_payload_object(od::object& object) noexcept {
  bool seen_team = false;
  bool seen_message = false;
  for (auto field : object) {
    std::string_view key;
    od::value value;
    od::json_type type{};
    if (field.unescaped_key().get(key) || field.value().get(value) || value.type().get(type)) {
      return false;
    }
    if (key == "team_id" && !seen_team) {
      seen_team = true;
      if (type == od::json_type::string) {
        if (value.get_string().get(packet_.team_id)) {
          return false;
        }
        packet_.team = team_id_state::present;
        continue;
      }
      packet_.team = team_id_state::not_a_string;
    } else if (key == "message" && !seen_message && type == od::json_type::string) {
      seen_message = true;
      if (value.get_string().get(packet_.message)) {
        return false;
      }
      continue;
    }
    if (validate(value, 1)) {
      return false;
    }
  }
  return true;
}

std::string_view publish_problem(const packet& event) noexcept {
  if (event.payload_kind != json_kind::object) {
    return "not_an_object";
  }
  switch (event.team) {
    case team_id_state::present:
      return event.team_id.empty() ? "no_team_id" : "";
    case team_id_state::missing:
      return "no_team_id";
    case team_id_state::not_a_string:
      return "bad_team_id";
  }
  return "no_team_id";
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
