#include "upstream/slack/codec.hpp"

#include <doctest/doctest.h>
#include <simdjson.h>

#include <string>

namespace slack = rtm::upstream::slack;

namespace {

// decode_frame wants simdjson's padding after the data, as the session's receive buffer provides.
slack::frame decode(std::string& storage, std::string_view text) {
  storage.assign(text);
  storage.append(simdjson::SIMDJSON_PADDING, '\0');
  return slack::decode_frame(storage.data(), text.size());
}

}  // namespace

TEST_CASE("slack frames: lifecycle frames are recognised") {
  std::string buf;
  CHECK(decode(buf, R"({"type":"hello"})").kind == slack::frame_kind::hello);
  CHECK(decode(buf, R"({"type":"hello","start":true})").kind == slack::frame_kind::hello);
  CHECK(decode(buf, R"({"type":"goodbye"})").kind == slack::frame_kind::goodbye);
  CHECK(decode(buf, R"({"type":"team_migration_started"})").kind == slack::frame_kind::team_migration_started);
  CHECK(decode(buf, R"({"type":"reconnect_url","url":"wss://x"})").kind == slack::frame_kind::reconnect_url);
  const auto pong = decode(buf, R"({"reply_to":1234,"type":"pong","time":1403299273342})");
  CHECK(pong.kind == slack::frame_kind::pong);
  REQUIRE(pong.reply_to.has_value());
  CHECK(*pong.reply_to == 1234);
  const auto err = decode(buf, R"({"type":"error","error":{"code":1,"msg":"Socket URL has expired"}})");
  CHECK(err.kind == slack::frame_kind::error);
  CHECK(err.error_code == 1);
}

TEST_CASE("slack frames: acknowledgements have reply_to and no type") {
  std::string buf;
  const auto ack = decode(buf, R"({"ok":true,"reply_to":7,"ts":"1355517523.000005","text":"Hello world"})");
  CHECK(ack.kind == slack::frame_kind::reply);
  CHECK(*ack.reply_to == 7);
  const auto nack = decode(buf, R"({"ok":false,"reply_to":8,"error":{"code":2,"msg":"message text is missing"}})");
  CHECK(nack.kind == slack::frame_kind::reply);
}

TEST_CASE("slack frames: events get type.subtype names") {
  std::string buf;
  std::string name;
  const auto msg = decode(buf, R"({"type":"message","channel":"C1","text":"hi","ts":"1582838099.000600"})");
  CHECK(msg.kind == slack::frame_kind::event);
  slack::event_name(msg, name);
  CHECK(name == "message");
  const auto changed = decode(buf, R"({"type":"message","subtype":"message_changed","message":{"text":"x"}})");
  slack::event_name(changed, name);
  CHECK(name == "message.message_changed");
  const auto presence = decode(buf, R"({"type":"presence_change","user":"U1","presence":"away"})");
  slack::event_name(presence, name);
  CHECK(name == "presence_change");
  const auto nullsub = decode(buf, R"({"type":"message","subtype":null})");
  slack::event_name(nullsub, name);
  CHECK(name == "message");
}

TEST_CASE("slack frames: malformed input is invalid with a reason, never a crash") {
  std::string buf;
  CHECK(decode(buf, "").reason == "bad_json");
  CHECK(decode(buf, "{").reason == "bad_json");
  CHECK(decode(buf, R"({"type":"message","x":tru})").reason == "bad_json");
  CHECK(decode(buf, R"({"type":"message"} trailing)").reason == "bad_json");
  CHECK(decode(buf, "[1,2]").reason == "not_an_object");
  CHECK(decode(buf, "\"hello\"").reason == "not_an_object");
  CHECK(decode(buf, R"({"text":"no type"})").reason == "no_type");
  CHECK(decode(buf, R"({"type":42})").reason == "bad_type");
  CHECK(decode(buf, R"({"type":""})").reason == "bad_type");
  CHECK(decode(buf, "{\"type\":\"message\",\"text\":\"\xff\xfe\"}").reason == "bad_json");
  for (int b = 0; b < 256; ++b) {
    const std::string one(1, static_cast<char>(b));
    CHECK(decode(buf, one).kind == slack::frame_kind::invalid);
  }
}

TEST_CASE("rtm.connect responses") {
  const auto ok = slack::parse_connect_response(
      R"({"ok":true,"url":"wss://ms9.slack-msgs.com/websocket/2I5yBpcvk","team":{"id":"T654321","name":"Librarian Society","domain":"libsocos","enterprise_id":"E234567"},"self":{"id":"W123456","name":"brautigan"}})");
  CHECK(ok.ok);
  CHECK(ok.url == "wss://ms9.slack-msgs.com/websocket/2I5yBpcvk");
  CHECK(ok.team_id == "T654321");
  CHECK(ok.enterprise_id == "E234567");
  CHECK(ok.self_id == "W123456");

  const auto bad = slack::parse_connect_response(R"({"ok":false,"error":"invalid_auth"})");
  CHECK_FALSE(bad.ok);
  CHECK(bad.error == "invalid_auth");

  CHECK_FALSE(slack::parse_connect_response("<html>502 Bad Gateway</html>").ok);
  CHECK_FALSE(slack::parse_connect_response(R"({"ok":true})").ok);
  CHECK_FALSE(slack::parse_connect_response(R"({"ok":false})").error.empty());
}

TEST_CASE("rtm.connect: a body that turns malformed after \"ok\":true is not ok (found by fuzz_slack_frame)") {
  // The reader stopped at the bad key and returned what it had so far: ok with no url, so the session would open
  // a socket to "".
  for (const char* body : {R"({"ok":true,"reply_to":5,"'s":ext"reply_to":5,""})",
                           R"({"ok":true,"url":"wss://x/","team":{"id":"T1"},"self":{"id":"U1"},"x":1 "y":2})"}) {
    CAPTURE(body);
    const auto r = slack::parse_connect_response(body);
    CHECK_FALSE(r.ok);
    CHECK_FALSE(r.error.empty());
  }
}

TEST_CASE("rtm.connect errors are classified") {
  using slack::classify_error;
  using slack::error_class;
  for (const char* e : {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
                        "not_allowed_token_type", "missing_scope", "no_permission", "team_disabled"}) {
    CHECK(classify_error(e) == error_class::fatal);
  }
  for (const char* e : {"internal_error", "service_unavailable", "request_timeout", "migration_in_progress",
                        "ratelimited", "fatal_error", "something_new"}) {
    CHECK(classify_error(e) == error_class::transient);
  }
}

TEST_CASE("Retry-After parsing and the ping frame") {
  CHECK(slack::parse_retry_after("2") == 2U);
  CHECK(slack::parse_retry_after(" 30 ") == 30U);
  CHECK_FALSE(slack::parse_retry_after("").has_value());
  CHECK_FALSE(slack::parse_retry_after("soon").has_value());
  CHECK_FALSE(slack::parse_retry_after("-1").has_value());
  CHECK(slack::ping_frame(12) == R"({"id":12,"type":"ping"})");
}

TEST_CASE("slack frames: every valid JSON object is an event (lone surrogate escapes, integers beyond 64 bits)") {
  std::string buf;
  std::string name;
  const auto lone = decode(buf, R"({"type":"message","text":"cut \ud83d","ts":"1.2"})");
  CHECK(lone.kind == slack::frame_kind::event);
  slack::event_name(lone, name);
  CHECK(name == "message");
  const auto big = decode(buf, R"({"type":"message","n":123456789012345678901234567890,"f":1e99999})");
  CHECK(big.kind == slack::frame_kind::event);
  const auto escaped = decode(buf, R"({"type":"mess\u0061ge","subtype":"x\ud83d"})");
  CHECK(escaped.kind == slack::frame_kind::event);
  CHECK(escaped.type == "message");
  CHECK(escaped.subtype == "x\xEF\xBF\xBD");
  // A reply_to beyond 64 bits is no reply id; the frame is still valid.
  const auto huge_reply = decode(buf, R"({"type":"pong","reply_to":123456789012345678901234567890})");
  CHECK(huge_reply.kind == slack::frame_kind::pong);
  CHECK_FALSE(huge_reply.reply_to.has_value());
  // What the grammar refuses stays refused.
  CHECK(decode(buf, R"({"type":"message","text":"\ud8"})").reason == "bad_json");
  CHECK(decode(buf, R"({"type":"message","n":1.})").reason == "bad_json");
  CHECK(decode(buf, R"({"type":"message"}{})").reason == "bad_json");
}
