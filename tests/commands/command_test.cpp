// The command codec alone: what a command record may hold, the frame sent, the reply record's value.
#include "commands/command.hpp"

#include <doctest/doctest.h>

#include <string>
#include <variant>

#include "util/json_scan.hpp"

using namespace rtm::commands;

namespace {

refusal refused(const std::string& value) {
  auto parsed = parse_command(value);
  REQUIRE_MESSAGE(std::holds_alternative<refusal>(parsed), value);
  return std::get<refusal>(parsed);
}

command accepted(const std::string& value) {
  auto parsed = parse_command(value);
  REQUIRE_MESSAGE(std::holds_alternative<command>(parsed), value);
  return std::get<command>(parsed);
}

}  // namespace

TEST_CASE("commands: the four types are accepted, the object kept without the whitespace around it") {
  CHECK(accepted(R"({"type":"message","channel":"C1","text":"hi"})").type == command_type::message);
  CHECK(accepted(R"({"channel":"C1","type":"typing"})").type == command_type::typing);
  CHECK(accepted(R"({"type":"presence_sub","ids":["U1"]})").type == command_type::presence_sub);
  CHECK(accepted(R"({"type":"presence_query","ids":["U1"]})").type == command_type::presence_query);
  CHECK(accepted(" \n{\"type\":\"typing\",\"channel\":\"C1\"}\r\n ").object == R"({"type":"typing","channel":"C1"})");
  // An escaped type is still its type.
  CHECK(accepted(R"({"type":"mess\u0061ge","channel":"C1","text":"x"})").type == command_type::message);
  CHECK(expects_reply(command_type::message));
  CHECK_FALSE(expects_reply(command_type::typing));
  CHECK_FALSE(expects_reply(command_type::presence_sub));
}

TEST_CASE("commands: what is not a command is bad_command or unsupported_type, with a reason") {
  CHECK(refused("").error == reply_error::bad_command);
  CHECK(refused("[1,2]").error == reply_error::bad_command);
  CHECK(refused(R"("message")").error == reply_error::bad_command);
  CHECK(refused(R"({"type":"message",)").error == reply_error::bad_command);
  CHECK(refused(R"({"type":"message"} {"type":"typing"})").detail.find("nothing after it") != std::string::npos);
  CHECK(refused(R"({"channel":"C1"})").detail == "the command has no string \"type\"");
  CHECK(refused(R"({"type":7})").error == reply_error::bad_command);
  CHECK(refused(R"({"id":1,"type":"message"})").detail.find("the bridge assigns it") != std::string::npos);
  CHECK(refused(R"({"type":"message","\u0069d":1})").error == reply_error::bad_command);  // an escaped "id" too
  const refusal other = refused(R"({"type":"reactions.add"})");
  CHECK(other.error == reply_error::unsupported_type);
  CHECK(other.detail.find("\"reactions.add\"") != std::string::npos);
  // Nested "id" and "type" keys are the command's business.
  CHECK(accepted(R"({"type":"message","blocks":[{"type":"section","id":"x"}]})").type == command_type::message);
  const std::string big = R"({"type":"message","text":")" + std::string(max_command_size, 'x') + R"("})";
  CHECK(refused(big).detail.find("at most 16384") != std::string::npos);
}

TEST_CASE("commands: the frame carries the bridge's id first") {
  CHECK(frame_with_id(R"({"type":"typing","channel":"C1"})", 7) == R"({"id":7,"type":"typing","channel":"C1"})");
  CHECK(frame_with_id(R"({ "type":"typing"})", 18446744073709551615ULL) ==
        R"({"id":18446744073709551615, "type":"typing"})");
  CHECK(frame_with_id("{}", 1) == R"({"id":1})");
  CHECK(frame_with_id("{ }", 1) == R"({"id":1 })");
  CHECK(rtm::json::valid(frame_with_id(R"({"type":"message","text":"a"})", 42)));
}

TEST_CASE("commands: the reply value, for a success with Slack's frame and for every error word") {
  const std::string frame = R"({"ok":true,"reply_to":3,"ts":"1.000001","text":"hi"})";
  const std::string ok = reply_value("c-1", "slack-main", reply_error::none, {}, frame);
  CHECK(ok == R"({"schema":"rtm-bridge.reply/v1","command_id":"c-1","connection":"slack-main","ok":true,)"
              R"("error":null,"detail":null,"reply":{"ok":true,"reply_to":3,"ts":"1.000001","text":"hi"}})");
  for (const reply_error e :
       {reply_error::slack_error, reply_error::expired, reply_error::unknown_connection, reply_error::unsupported,
        reply_error::unsupported_type, reply_error::bad_command, reply_error::no_reply}) {
    const std::string v = reply_value("c\"2", "x", e, "why \"quoted\"", {});
    CHECK(rtm::json::valid(v));
    CHECK(v.find(std::string(R"("ok":false,"error":")") + std::string(to_string(e)) + "\"") != std::string::npos);
    CHECK(v.find(R"("command_id":"c\"2")") != std::string::npos);
    CHECK(v.find(R"("reply":null)") != std::string::npos);
  }
  // A header or key of any bytes still gives valid JSON.
  CHECK(rtm::json::valid(reply_value("\xff\xfe id", "\xc3", reply_error::unknown_connection, {}, {})));
  CHECK(default_command_id("rtm.commands", 3, 1234) == "rtm.commands:3:1234");
}

TEST_CASE("commands: Slack's reply frame is ok only with ok:true") {
  CHECK(reply_ok(R"({"ok":true,"reply_to":1})"));
  CHECK(reply_ok(R"( {"reply_to":1,"ok":true})"));
  CHECK_FALSE(reply_ok(R"({"ok":false,"reply_to":1,"error":{"code":2}})"));
  CHECK_FALSE(reply_ok(R"({"reply_to":1})"));
  CHECK_FALSE(reply_ok(R"({"ok":"true","reply_to":1})"));
  CHECK_FALSE(reply_ok("not json"));
  // ok:true first, but not JSON after it (found by the fuzzer): no answer.
  CHECK_FALSE(reply_ok(R"({"ok":true,","reply_":0,"ts":"1.2"})"));
  CHECK_FALSE(reply_ok(R"({"ok":true} trailing)"));
}
