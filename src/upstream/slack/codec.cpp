#include "upstream/slack/codec.hpp"

#include <simdjson.h>

#include <array>
#include <charconv>
#include <new>

#include "util/json_scan.hpp"
#include "util/json_writer.hpp"

namespace rtm::upstream::slack {
namespace {

constexpr std::array<std::string_view, 23> fatal_errors{
    "not_authed",
    "invalid_auth",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "not_allowed_token_type",
    "missing_scope",
    "no_permission",
    "team_access_not_granted",
    "enterprise_is_restricted",
    "access_denied",
    "accesslimited",
    "ekm_access_denied",
    "two_factor_setup_required",
    "invalid_arg_name",
    "invalid_array_arg",
    "invalid_arguments",
    "invalid_charset",
    "invalid_form_data",
    "invalid_post_type",
    "missing_post_type",
    "method_deprecated",
    "deprecated_endpoint",
};
constexpr std::array<std::string_view, 2> fatal_errors_more{"user_removed_from_team", "team_disabled"};

frame invalid(std::string_view reason) noexcept {
  frame f;
  f.kind = frame_kind::invalid;
  f.reason = reason;
  return f;
}

}  // namespace

namespace {

// The scratch buffers string_value() unescapes into, one per field kept in the frame, reused by every decode on the
// thread (frames are decoded on the io_context thread), so steady state allocates nothing.
struct frame_scratch {
  std::string key;
  std::string type;
  std::string subtype;
};

// {"code": N, ...}: the first integer "code" of a validated object.
std::int64_t error_code_of(std::string_view error_object, std::string& key_scratch) {
  json::reader object(error_object, 0);
  std::string_view key;
  std::string_view value;
  std::int64_t code = 0;
  while (object.next(value, &key)) {
    if (json::string_value(key, key_scratch) == "code" && json::to_int64(value, code)) {
      return code;
    }
  }
  return 0;
}

frame decode_object(std::string_view text, std::size_t start, frame_scratch& scratch) {
  // One pass of the shared validator over the whole frame, reading the few fields we need as it goes: the frame is
  // published byte for byte as the envelope's `data`, so it must be valid JSON all through, and any valid JSON (a
  // lone surrogate escape, an integer beyond 64 bits) must be accepted.
  json::reader object(text, start);
  frame f;
  bool has_type = false;
  bool bad_type = false;
  std::string_view key_token;
  std::string_view value;
  while (object.next(value, &key_token)) {
    const std::string_view key = json::string_value(key_token, scratch.key);
    if (key == "type") {
      if (value.front() == '"') {
        f.type = json::string_value(value, scratch.type);
        has_type = true;
      } else {
        bad_type = true;
      }
    } else if (key == "subtype") {
      if (value.front() == '"') {
        f.subtype = json::string_value(value, scratch.subtype);
      }
    } else if (key == "reply_to") {
      std::int64_t id = 0;
      if (json::to_int64(value, id)) {
        f.reply_to = id;
      }
    } else if (key == "error" && value.front() == '{') {
      f.error_code = error_code_of(value, scratch.key);
    }
  }
  if (object.failed() || json::skip_space(text, object.end()) != text.size()) {
    return invalid("bad_json");
  }
  if (bad_type) {
    return invalid("bad_type");
  }
  if (!has_type) {
    if (f.reply_to) {
      f.kind = frame_kind::reply;
      return f;
    }
    return invalid("no_type");
  }
  if (f.type.empty()) {
    return invalid("bad_type");
  }
  if (f.type == "hello") {
    f.kind = frame_kind::hello;
  } else if (f.type == "pong") {
    f.kind = frame_kind::pong;
  } else if (f.type == "goodbye") {
    f.kind = frame_kind::goodbye;
  } else if (f.type == "team_migration_started") {
    f.kind = frame_kind::team_migration_started;
  } else if (f.type == "error") {
    f.kind = frame_kind::error;
  } else if (f.type == "reconnect_url") {
    f.kind = frame_kind::reconnect_url;
  } else {
    f.kind = frame_kind::event;
  }
  return f;
}

}  // namespace

frame decode_frame(const char* padded, std::size_t size) noexcept {
  const std::string_view text(padded, size);
  const std::size_t start = json::skip_space(text, 0);
  if (start >= text.size() || text[start] != '{') {
    return invalid(json::valid(text) ? "not_an_object" : "bad_json");
  }
  thread_local frame_scratch scratch;
  try {
    return decode_object(text, start, scratch);
  } catch (const std::bad_alloc&) {
    // Only a scratch buffer growing to a new largest escaped type can throw.
    return invalid("frame_too_large");
  }
}

void event_name(const frame& f, std::string& out) {
  out.assign(f.type);
  if (!f.subtype.empty()) {
    out += '.';
    out += f.subtype;
  }
}

connect_response parse_connect_response(std::string_view body, std::string_view method) {
  connect_response r;
  simdjson::ondemand::parser parser;
  const simdjson::padded_string padded(body);
  simdjson::ondemand::document doc;
  if (parser.iterate(padded).get(doc) != simdjson::SUCCESS) {
    r.error = std::string(method) + " answered something that is not JSON";
    return r;
  }
  simdjson::ondemand::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS) {
    r.error = std::string(method) + " answered JSON that is not an object";
    return r;
  }
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) {
      // Whatever was read before the bad part (an "ok":true, maybe no url yet) must not count.
      r.ok = false;
      r.error = std::string(method) + " answered malformed JSON";
      return r;
    }
    auto value = field.value();
    std::string_view text;
    if (key == "ok") {
      bool ok = false;
      if (value.get_bool().get(ok) == simdjson::SUCCESS) {
        r.ok = ok;
      }
    } else if (key == "url") {
      if (value.get_string().get(text) == simdjson::SUCCESS) {
        r.url = text;
      }
    } else if (key == "error") {
      if (value.get_string().get(text) == simdjson::SUCCESS) {
        r.error = text;
      }
    } else if (key == "team" || key == "self") {
      simdjson::ondemand::object inner;
      if (value.get_object().get(inner) != simdjson::SUCCESS) {
        continue;
      }
      for (auto sub : inner) {
        std::string_view sub_key;
        if (sub.unescaped_key().get(sub_key) != simdjson::SUCCESS) {
          break;
        }
        if (sub_key != "id" && sub_key != "enterprise_id") {
          continue;
        }
        if (sub.value().get_string().get(text) != simdjson::SUCCESS) {
          continue;
        }
        if (key == "self" && sub_key == "id") {
          r.self_id = text;
        } else if (key == "team" && sub_key == "id") {
          r.team_id = text;
        } else if (key == "team" && sub_key == "enterprise_id") {
          r.enterprise_id = text;
        }
      }
    }
  }
  if (r.ok && r.url.empty()) {
    r.ok = false;
    r.error = std::string(method) + " answered ok without a url";
  } else if (!r.ok && r.error.empty()) {
    r.error = std::string(method) + " answered ok:false without an error code";
  }
  return r;
}

error_class classify_error(std::string_view slack_error) noexcept {
  for (const auto e : fatal_errors) {
    if (e == slack_error) {
      return error_class::fatal;
    }
  }
  for (const auto e : fatal_errors_more) {
    if (e == slack_error) {
      return error_class::fatal;
    }
  }
  return error_class::transient;
}

std::optional<std::uint32_t> parse_retry_after(std::string_view header) noexcept {
  while (!header.empty() && (header.front() == ' ' || header.front() == '\t')) {
    header.remove_prefix(1);
  }
  while (!header.empty() && (header.back() == ' ' || header.back() == '\t')) {
    header.remove_suffix(1);
  }
  std::uint32_t seconds = 0;
  const auto [ptr, ec] = std::from_chars(header.data(), header.data() + header.size(), seconds);
  if (ec != std::errc{} || ptr != header.data() + header.size() || header.empty()) {
    return std::nullopt;
  }
  return seconds;
}

std::string presence_sub_frame(const std::vector<std::string>& ids) {
  std::string out = R"({"type":"presence_sub","ids":[)";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    json::append_string(out, ids[i]);
  }
  out += "]}";
  return out;
}

std::string ping_frame(std::int64_t id) {
  return "{\"id\":" + std::to_string(id) + ",\"type\":\"ping\"}";
}

}  // namespace rtm::upstream::slack
