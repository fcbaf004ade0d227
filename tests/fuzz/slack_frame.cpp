// Fuzz target: the pure half of the Slack RTM client (src/upstream/slack/codec.hpp). Every input is a WebSocket text
// frame, an rtm.connect response body and a Retry-After header value at once.
#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "tests/fuzz/json_oracle.hpp"
#include "tests/fuzz/targets.hpp"
#include "upstream/slack/codec.hpp"

namespace rtm::fuzz {
namespace {

namespace slack = upstream::slack;

#define CHECK_SLACK(condition) RTM_FUZZ_CHECK("slack_frame", condition)

// decode_frame() reads up to SIMDJSON_PADDING bytes past the frame. The copy has exactly that much after it, in its
// own heap block, so AddressSanitizer reports any read beyond the documented padding.
slack::frame decode_padded(std::string_view text, std::unique_ptr<char[]>& storage) {
  storage = std::make_unique<char[]>(text.size() + simdjson::SIMDJSON_PADDING);
  if (!text.empty()) {
    std::memcpy(storage.get(), text.data(), text.size());
  }
  return slack::decode_frame(storage.get(), text.size());
}

void check_frame(const slack::frame& f, std::string_view text) {
  CHECK_SLACK((f.kind == slack::frame_kind::invalid) == !f.reason.empty());
  if (f.kind == slack::frame_kind::invalid) {
    return;
  }
  // Anything but invalid is published (events) or trusted (control frames): the whole frame is valid JSON.
  CHECK_SLACK(valid_json(text));
  CHECK_SLACK(valid_utf8(f.type));
  CHECK_SLACK(valid_utf8(f.subtype));
  if (f.kind == slack::frame_kind::reply) {
    CHECK_SLACK(f.reply_to.has_value());
    CHECK_SLACK(f.type.empty());
    return;
  }
  CHECK_SLACK(!f.type.empty());
  const auto expected = [&f]() {
    if (f.type == "hello") {
      return slack::frame_kind::hello;
    }
    if (f.type == "pong") {
      return slack::frame_kind::pong;
    }
    if (f.type == "goodbye") {
      return slack::frame_kind::goodbye;
    }
    if (f.type == "team_migration_started") {
      return slack::frame_kind::team_migration_started;
    }
    if (f.type == "error") {
      return slack::frame_kind::error;
    }
    if (f.type == "reconnect_url") {
      return slack::frame_kind::reconnect_url;
    }
    return slack::frame_kind::event;
  }();
  CHECK_SLACK(f.kind == expected);

  std::string name = "left over from a previous frame";
  slack::event_name(f, name);
  CHECK_SLACK(!name.empty());
  CHECK_SLACK(name.substr(0, f.type.size()) == f.type);
  if (f.subtype.empty()) {
    CHECK_SLACK(name == f.type);
  } else {
    CHECK_SLACK(name.size() == f.type.size() + 1 + f.subtype.size());
    CHECK_SLACK(name[f.type.size()] == '.');
    CHECK_SLACK(std::string_view(name).substr(f.type.size() + 1) == f.subtype);
  }
}

void check_connect_response(std::string_view body) {
  const slack::connect_response r = slack::parse_connect_response(body);
  if (r.ok) {
    CHECK_SLACK(!r.url.empty());
  } else {
    CHECK_SLACK(!r.error.empty());
  }
  for (const std::string* s : {&r.url, &r.team_id, &r.enterprise_id, &r.self_id, &r.error}) {
    CHECK_SLACK(valid_utf8(*s));
  }
  (void)slack::classify_error(r.error);
  (void)slack::classify_error(body);
}

void check_retry_after(std::string_view header) {
  const std::optional<std::uint32_t> delay = slack::parse_retry_after(header);
  std::string_view trimmed = header;
  while (!trimmed.empty() && (trimmed.front() == ' ' || trimmed.front() == '\t')) {
    trimmed.remove_prefix(1);
  }
  while (!trimmed.empty() && (trimmed.back() == ' ' || trimmed.back() == '\t')) {
    trimmed.remove_suffix(1);
  }
  // The reference: decimal digits only, at most 2^32-1.
  bool digits = !trimmed.empty();
  std::uint64_t value = 0;
  for (const char c : trimmed) {
    if (c < '0' || c > '9') {
      digits = false;
      break;
    }
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
    if (value > UINT32_MAX) {
      digits = false;
      break;
    }
  }
  CHECK_SLACK(delay.has_value() == digits);
  if (delay) {
    CHECK_SLACK(*delay == value);
  }
}

}  // namespace

void slack_frame(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);  // NOLINT(*-reinterpret-cast)
  std::unique_ptr<char[]> storage;
  const slack::frame f = decode_padded(input, storage);
  check_frame(f, input);

  check_connect_response(input);
  check_retry_after(input);
  check_retry_after(input.substr(0, input.find('\n')));

  // The client's own ping must decode as an event frame named "ping" (the liveness check sends it, Slack answers).
  std::int64_t id = 0;
  if (size > 0) {
    std::memcpy(&id, data, std::min(size, sizeof id));
  }
  const std::string ping = slack::ping_frame(id);
  const slack::frame p = decode_padded(ping, storage);
  CHECK_SLACK(p.kind == slack::frame_kind::event);
  CHECK_SLACK(p.type == "ping");
  check_frame(p, ping);
}

}  // namespace rtm::fuzz

#ifdef RTM_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  rtm::fuzz::slack_frame(data, size);
  return 0;
}
#endif
