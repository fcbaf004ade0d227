// Socket Mode's pure half (src/upstream/slack/socket_codec.hpp): frames, envelopes, what a record takes from them.
#include "upstream/slack/socket_codec.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>

using namespace rtm::upstream::slack;

namespace {

socket_frame decode(std::string_view text) {
  return decode_socket_frame(text.data(), text.size());
}

}  // namespace

TEST_CASE("socket mode: hello and disconnect") {
  const socket_frame hello = decode(
      R"({"type":"hello","num_connections":2,"connection_info":{"app_id":"A1"},"debug_info":{"host":"applink-1"}})");
  CHECK(hello.kind == socket_frame_kind::hello);
  CHECK(hello.num_connections == 2);
  const socket_frame bye = decode(R"({"type":"disconnect","reason":"refresh_requested","debug_info":{"host":"h"}})");
  CHECK(bye.kind == socket_frame_kind::disconnect);
  CHECK(bye.reason == "refresh_requested");
}

TEST_CASE("socket mode: an events_api envelope gives team, event name, event id and the payload byte for byte") {
  const std::string payload =
      R"({"type":"event_callback","team_id":"T1","api_app_id":"A1","event":{"type":"message","subtype":"message_changed","n":123456789012345678901234567890},"event_id":"Ev9","authorizations":[{"team_id":"T1","enterprise_id":null}]})";
  const std::string frame = R"({"envelope_id":"0b1c-uuid","type":"events_api","accepts_response_payload":false,)"
                            R"("retry_attempt":2,"retry_reason":"timeout","payload":)" +
                            payload + "}";
  const socket_frame f = decode(frame);
  REQUIRE(f.kind == socket_frame_kind::envelope);
  CHECK(f.type == envelope_type::events_api);
  CHECK(f.envelope_id == "0b1c-uuid");
  CHECK(f.payload == payload);
  CHECK(f.retry_attempt == 2);
  CHECK(f.team_id == "T1");
  CHECK(f.enterprise_id.empty());
  CHECK(f.event_id == "Ev9");
  std::string name;
  envelope_event_name(f, name);
  CHECK(name == "message.message_changed");
}

TEST_CASE("socket mode: interactive, slash_commands, app_rate_limited and Enterprise Grid") {
  std::string name;
  const socket_frame i = decode(
      R"({"envelope_id":"e1","type":"interactive","accepts_response_payload":true,"payload":{"type":"block_actions","team":{"id":"T7","domain":"x"},"enterprise":{"id":"E7"}}})");
  REQUIRE(i.kind == socket_frame_kind::envelope);
  CHECK(i.team_id == "T7");
  CHECK(i.enterprise_id == "E7");
  CHECK(i.accepts_response_payload);
  envelope_event_name(i, name);
  CHECK(name == "interactive.block_actions");
  const socket_frame s = decode(
      R"({"envelope_id":"e2","type":"slash_commands","payload":{"team_id":"T8","command":"/x","enterprise_id":"E8"}})");
  CHECK(s.team_id == "T8");
  CHECK(s.enterprise_id == "E8");
  envelope_event_name(s, name);
  CHECK(name == "slash_commands");
  const socket_frame r = decode(
      R"({"envelope_id":"e3","type":"events_api","payload":{"type":"app_rate_limited","team_id":"T9","minute_rate_limited":1518467820,"api_app_id":"A1"}})");
  envelope_event_name(r, name);
  CHECK(name == "app_rate_limited");
  CHECK(r.event_id.empty());
  const socket_frame org = decode(
      R"({"envelope_id":"e4","type":"events_api","payload":{"team_id":null,"context_enterprise_id":"E1","event":{"type":"team_join"},"event_id":"Ev1","authorizations":[{"enterprise_id":"E1","team_id":null}]}})");
  CHECK(org.team_id.empty());
  CHECK(org.enterprise_id == "E1");
}

TEST_CASE("socket mode: escaped ids are unescaped, and the ack frame escapes them again") {
  const socket_frame f = decode(R"({"envelope_id":"a\"b","type":"events_api","payload":{"team_id":"T\u0031"}})");
  CHECK(f.envelope_id == "a\"b");
  CHECK(f.team_id == "T1");
  std::string ack;
  append_ack_frame(ack, f.envelope_id);
  CHECK(ack == R"({"envelope_id":"a\"b"})");
}

TEST_CASE("socket mode: what is not a frame is invalid, with a reason") {
  CHECK(decode("not json").reason == "bad_json");
  CHECK(decode("[1,2]").reason == "not_an_object");
  CHECK(decode(R"({"type":"hello",)").reason == "bad_json");
  CHECK(decode(R"({"no":"type"})").reason == "no_type");
  CHECK(decode(R"({"type":"brand_new_frame"})").reason == "unknown_frame");
  const socket_frame unknown = decode(R"({"envelope_id":"e","type":"future_type","payload":{}})");
  CHECK(unknown.kind == socket_frame_kind::envelope);
  CHECK(unknown.type == envelope_type::unknown);
}

TEST_CASE("socket mode: token errors of apps.connections.open") {
  CHECK(is_socket_token_error("invalid_auth"));
  CHECK(is_socket_token_error("not_allowed_token_type"));
  CHECK(is_socket_token_error("token_revoked"));
  CHECK_FALSE(is_socket_token_error("internal_error"));
  CHECK_FALSE(is_socket_token_error("ratelimited"));
}
