#include "upstream/slack/socket_codec.hpp"

#include <array>
#include <new>

#include "upstream/slack/codec.hpp"
#include "util/json_scan.hpp"
#include "util/json_writer.hpp"

namespace rtm::upstream::slack {
namespace {

// The scratch buffers string_value() unescapes into, one per field kept, reused by every decode on the thread
// (frames are decoded on the io_context thread), so steady state allocates nothing.
struct socket_scratch {
  std::string key;
  std::string type;
  std::string reason;
  std::string envelope_id;
  std::string team_id;
  std::string enterprise_top;
  std::string enterprise_context;
  std::string enterprise_authorization;
  std::string inner_key;
  std::string event_type;
  std::string event_subtype;
  std::string event_id;
  std::string payload_type;
};

socket_frame invalid(std::string_view reason) noexcept {
  socket_frame f;
  f.kind = socket_frame_kind::invalid;
  f.reason = reason;
  return f;
}

std::string_view string_or_empty(std::string_view value, std::string& scratch) {
  return !value.empty() && value.front() == '"' ? json::string_value(value, scratch) : std::string_view{};
}

// The first string member `name` of a validated object, or empty.
std::string_view member(std::string_view object_text, std::string_view name, std::string& out, std::string& key) {
  json::reader object(object_text, 0);
  std::string_view key_token;
  std::string_view value;
  while (object.next(value, &key_token)) {
    if (json::string_value(key_token, key) == name) {
      return string_or_empty(value, out);
    }
  }
  return {};
}

// payload: the envelope's payload object (already validated with the frame).
void read_payload(std::string_view payload, socket_frame& f, socket_scratch& s) {
  json::reader object(payload, 0);
  std::string_view key_token;
  std::string_view value;
  std::string_view context_enterprise;
  std::string_view authorization_enterprise;
  std::string_view top_enterprise;
  std::string& team_scratch_key = s.inner_key;
  while (object.next(value, &key_token)) {
    const std::string_view key = json::string_value(key_token, s.key);
    if (key == "team_id") {
      if (f.team_id.empty()) {
        f.team_id = string_or_empty(value, s.team_id);
      }
    } else if (key == "team" && value.front() == '{') {
      f.team_id = member(value, "id", s.team_id, team_scratch_key);  // interactive: payload.team.id
    } else if (key == "enterprise" && value.front() == '{') {
      top_enterprise = member(value, "id", s.enterprise_top, team_scratch_key);
    } else if (key == "enterprise_id") {
      top_enterprise = string_or_empty(value, s.enterprise_top);
    } else if (key == "context_enterprise_id") {
      if (top_enterprise.empty() && value.front() == '"') {
        context_enterprise = string_or_empty(value, s.enterprise_context);
      }
    } else if (key == "authorizations" && value.front() == '[') {
      json::reader list(value, 0);
      std::string_view first;
      if (list.next(first) && first.front() == '{' && top_enterprise.empty() && context_enterprise.empty()) {
        authorization_enterprise = member(first, "enterprise_id", s.enterprise_authorization, team_scratch_key);
      }
    } else if (key == "event" && value.front() == '{') {
      json::reader event(value, 0);
      std::string_view ek;
      std::string_view ev;
      while (event.next(ev, &ek)) {
        const std::string_view k = json::string_value(ek, team_scratch_key);
        if (k == "type") {
          f.event_type = string_or_empty(ev, s.event_type);
        } else if (k == "subtype") {
          f.event_subtype = string_or_empty(ev, s.event_subtype);
        }
      }
    } else if (key == "event_id") {
      f.event_id = string_or_empty(value, s.event_id);
    } else if (key == "type") {
      f.payload_type = string_or_empty(value, s.payload_type);
    }
  }
  f.enterprise_id = !top_enterprise.empty()       ? top_enterprise
                    : !context_enterprise.empty() ? context_enterprise
                                                  : authorization_enterprise;
}

socket_frame decode_object(std::string_view text, std::size_t start, socket_scratch& s) {
  // One pass of the shared validator over the whole frame: the payload is published byte for byte, so the frame
  // must be valid JSON all through.
  json::reader object(text, start);
  socket_frame f;
  std::string_view type;
  bool has_envelope_id = false;
  std::string_view key_token;
  std::string_view value;
  while (object.next(value, &key_token)) {
    const std::string_view key = json::string_value(key_token, s.key);
    if (key == "type") {
      type = string_or_empty(value, s.type);
    } else if (key == "envelope_id") {
      f.envelope_id = string_or_empty(value, s.envelope_id);
      has_envelope_id = true;
    } else if (key == "payload") {
      f.payload = value;
    } else if (key == "retry_attempt") {
      std::uint64_t n = 0;
      if (json::to_uint64(value, n)) {
        f.retry_attempt = n > UINT32_MAX ? UINT32_MAX : static_cast<std::uint32_t>(n);
      }
    } else if (key == "accepts_response_payload") {
      f.accepts_response_payload = value == "true";
    } else if (key == "reason") {
      f.reason = string_or_empty(value, s.reason);
    } else if (key == "num_connections") {
      std::int64_t n = 0;
      if (json::to_int64(value, n)) {
        f.num_connections = n;
      }
    }
  }
  if (object.failed() || json::skip_space(text, object.end()) != text.size()) {
    return invalid("bad_json");
  }
  if (!has_envelope_id) {
    if (type == "hello") {
      f.kind = socket_frame_kind::hello;
      return f;
    }
    if (type == "disconnect") {
      f.kind = socket_frame_kind::disconnect;
      return f;
    }
    return invalid(type.empty() ? "no_type" : "unknown_frame");
  }
  f.kind = socket_frame_kind::envelope;
  f.type_name = type;
  f.type = type == "events_api"       ? envelope_type::events_api
           : type == "interactive"    ? envelope_type::interactive
           : type == "slash_commands" ? envelope_type::slash_commands
                                      : envelope_type::unknown;
  if (!f.payload.empty() && f.payload.front() == '{') {
    read_payload(f.payload, f, s);
  }
  return f;
}

constexpr std::array<std::string_view, 7> socket_token_errors{
    "invalid_auth",  "not_authed",       "not_allowed_token_type", "token_revoked",
    "token_expired", "account_inactive", "missing_scope"};

}  // namespace

socket_frame decode_socket_frame(const char* text_ptr, std::size_t size) noexcept {
  const std::string_view text(text_ptr, size);
  const std::size_t start = json::skip_space(text, 0);
  if (start >= text.size() || text[start] != '{') {
    return invalid(json::valid(text) ? "not_an_object" : "bad_json");
  }
  thread_local socket_scratch scratch;
  try {
    return decode_object(text, start, scratch);
  } catch (const std::bad_alloc&) {
    return invalid("frame_too_large");  // only a scratch buffer growing to a new largest escaped field can throw
  }
}

void envelope_event_name(const socket_frame& f, std::string& out) {
  switch (f.type) {
    case envelope_type::events_api:
      if (!f.event_type.empty()) {
        out.assign(f.event_type);
        if (!f.event_subtype.empty()) {
          out += '.';
          out += f.event_subtype;
        }
      } else {
        // No inner event (app_rate_limited): the payload's own type.
        out.assign(f.payload_type.empty() ? std::string_view("events_api") : f.payload_type);
      }
      return;
    case envelope_type::interactive:
      out.assign("interactive.");
      out += f.payload_type.empty() ? std::string_view("unknown") : f.payload_type;
      return;
    case envelope_type::slash_commands:
      out.assign("slash_commands");
      return;
    case envelope_type::unknown:
      out.assign(f.type_name);
      return;
  }
}

void append_ack_frame(std::string& out, std::string_view envelope_id) {
  out += R"({"envelope_id":)";
  json::append_string(out, envelope_id);
  out += '}';
}

bool is_socket_token_error(std::string_view slack_error) noexcept {
  for (const auto e : socket_token_errors) {
    if (e == slack_error) {
      return true;
    }
  }
  return classify_error(slack_error) == error_class::fatal;
}

}  // namespace rtm::upstream::slack
