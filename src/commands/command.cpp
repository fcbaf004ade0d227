#include "commands/command.hpp"

#include <array>
#include <charconv>

#include "util/json_scan.hpp"
#include "util/json_writer.hpp"

namespace rtm::commands {
namespace {

struct type_name {
  std::string_view name;
  command_type type;
};
constexpr std::array<type_name, 4> type_names{{{"message", command_type::message},
                                               {"typing", command_type::typing},
                                               {"presence_sub", command_type::presence_sub},
                                               {"presence_query", command_type::presence_query}}};

// A JSON string for text that may not be UTF-8 (a header's bytes): bytes that would make it invalid become U+FFFD.
void append_any_string(std::string& out, std::string_view text) {
  const std::size_t at = out.size();
  json::append_string(out, text);
  if (json::valid(std::string_view(out).substr(at))) {
    return;
  }
  out.resize(at);
  std::string ascii;
  ascii.reserve(text.size());
  for (const char c : text) {
    if (static_cast<unsigned char>(c) < 0x80) {
      ascii += c;
    } else {
      ascii += "\xEF\xBF\xBD";  // U+FFFD
    }
  }
  json::append_string(out, ascii);
}

}  // namespace

std::string_view to_string(command_type t) noexcept {
  for (const type_name& n : type_names) {
    if (n.type == t) {
      return n.name;
    }
  }
  return "unknown";
}

std::string_view to_string(reply_error e) noexcept {
  switch (e) {
    case reply_error::none:
      return "ok";
    case reply_error::slack_error:
      return "slack_error";
    case reply_error::expired:
      return "expired";
    case reply_error::unknown_connection:
      return "unknown_connection";
    case reply_error::unsupported:
      return "unsupported";
    case reply_error::unsupported_type:
      return "unsupported_type";
    case reply_error::bad_command:
      return "bad_command";
    case reply_error::no_reply:
      return "no_reply";
  }
  return "unknown";
}

std::variant<command, refusal> parse_command(std::string_view value) {
  if (value.size() > max_command_size) {
    return refusal{reply_error::bad_command, "the command is " + std::to_string(value.size()) + " bytes; at most " +
                                                 std::to_string(max_command_size) + " are accepted"};
  }
  const std::size_t start = json::skip_space(value, 0);
  if (start >= value.size() || value[start] != '{') {
    return refusal{reply_error::bad_command, "the command is not a JSON object"};
  }
  json::reader members(value, start);
  std::string_view key;
  std::string_view member;
  std::string scratch;
  std::string_view type_text;
  bool has_type = false;
  bool type_is_string = false;
  while (members.next(member, &key)) {
    const std::string_view name = json::string_value(key, scratch);
    if (name == "id") {
      return refusal{reply_error::bad_command, "the command carries an \"id\": the bridge assigns it"};
    }
    if (name == "type") {
      has_type = true;
      type_is_string = !member.empty() && member.front() == '"';
      if (type_is_string) {
        type_text = member;
      }
    }
  }
  if (members.failed() || json::skip_space(value, members.end()) != value.size()) {
    return refusal{reply_error::bad_command, "the command is not valid JSON (one object, nothing after it)"};
  }
  if (!has_type || !type_is_string) {
    return refusal{reply_error::bad_command, "the command has no string \"type\""};
  }
  const std::string_view type = json::string_value(type_text, scratch);
  for (const type_name& n : type_names) {
    if (n.name == type) {
      return command{n.type, value.substr(start, members.end() - start)};
    }
  }
  std::string detail = "type ";
  json::append_string(detail, type.substr(0, 64));
  detail += " is not one the bridge sends (message, typing, presence_sub, presence_query)";
  return refusal{reply_error::unsupported_type, std::move(detail)};
}

std::string frame_with_id(std::string_view object, std::uint64_t id) {
  std::array<char, 24> digits{};
  const auto end = std::to_chars(digits.data(), digits.data() + digits.size(), id).ptr;
  std::string out;
  out.reserve(object.size() + 32);
  out += "{\"id\":";
  out.append(digits.data(), end);
  // `object` is a validated JSON object: '{', then its members or '}'.
  const std::string_view rest = object.substr(1);
  const std::size_t first = json::skip_space(rest, 0);
  if (first < rest.size() && rest[first] != '}') {
    out += ',';
  }
  out += rest;
  return out;
}

std::string default_command_id(std::string_view topic, std::int32_t partition, std::int64_t offset) {
  std::string out(topic);
  out += ':';
  out += std::to_string(partition);
  out += ':';
  out += std::to_string(offset);
  return out;
}

std::string reply_value(std::string_view command_id, std::string_view connection, reply_error error,
                        std::string_view detail, std::string_view reply_frame) {
  std::string out;
  out.reserve(128 + command_id.size() + connection.size() + detail.size() + reply_frame.size());
  out += R"({"schema":"rtm-bridge.reply/v1","command_id":)";
  append_any_string(out, command_id);
  out += R"(,"connection":)";
  append_any_string(out, connection);  // a record key of any bytes (unknown_connection)
  out += error == reply_error::none ? R"(,"ok":true,"error":null)" : R"(,"ok":false,"error":")";
  if (error != reply_error::none) {
    out += to_string(error);
    out += '"';
  }
  out += R"(,"detail":)";
  if (detail.empty()) {
    out += "null";
  } else {
    append_any_string(out, detail);
  }
  out += R"(,"reply":)";
  // Slack's frame byte for byte; it was validated as JSON by the session before it got here.
  out += reply_frame.empty() ? std::string_view("null") : reply_frame;
  out += '}';
  return out;
}

bool reply_ok(std::string_view reply_frame) noexcept {
  const std::size_t start = json::skip_space(reply_frame, 0);
  if (start >= reply_frame.size() || reply_frame[start] != '{') {
    return false;
  }
  // The whole frame is read: a frame that is not valid JSON is no answer at all, whatever its first members say.
  json::reader members(reply_frame, start);
  std::string_view key;
  std::string_view member;
  bool ok = false;
  while (members.next(member, &key)) {
    if (key == "\"ok\"") {
      ok = member == "true";
    }
  }
  return ok && !members.failed() && json::skip_space(reply_frame, members.end()) == reply_frame.size();
}

}  // namespace rtm::commands
