#include "upstream/socketio/codec.hpp"

#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using rtm::upstream::socketio::decoder;
using rtm::upstream::socketio::json_kind;
using rtm::upstream::socketio::packet;
using rtm::upstream::socketio::packet_type;
using rtm::upstream::socketio::team_id_state;
namespace sio = rtm::upstream::socketio;

namespace {

// Decodes a copy that is freed right after, so a view into the input instead of the decoder's own buffer would be
// caught by AddressSanitizer.
const packet& decode(decoder& d, const std::string& frame) {
  const std::string copy = frame;
  const packet& p = d.decode(copy);
  return p;
}

std::string invalid_reason(const std::string& frame) {
  decoder d;
  const packet& p = decode(d, frame);
  if (p.type != packet_type::invalid) {
    return "valid";
  }
  return std::string(p.reason);
}

}  // namespace

TEST_CASE("engine.io open packet (v4 and v3 forms)") {
  decoder d;
  const packet& p = decode(
      d,
      R"(0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000})");
  REQUIRE(p.type == packet_type::open);
  CHECK(p.open.sid == "lv_VI97HAXpY6yYWAAAC");
  CHECK(p.open.ping_interval == 25000ms);
  CHECK(p.open.ping_timeout == 20000ms);
  CHECK(p.open.max_payload == 1000000);

  const packet& v3 = decode(d, R"(0{"sid":"abc","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200})");
  REQUIRE(v3.type == packet_type::open);
  CHECK(v3.open.sid == "abc");
  CHECK(v3.open.ping_interval == 300ms);
  CHECK(v3.open.max_payload == 0);
}

TEST_CASE("engine.io open packet: missing or wrong fields are bad_open") {
  CHECK(invalid_reason("0") == "bad_open");
  CHECK(invalid_reason("0{}") == "bad_open");
  CHECK(invalid_reason(R"(0{"sid":"a","pingInterval":1})") == "bad_open");
  CHECK(invalid_reason(R"(0{"sid":1,"pingInterval":1,"pingTimeout":1})") == "bad_open");
  CHECK(invalid_reason(R"(0{"sid":"a","pingInterval":-1,"pingTimeout":1})") == "bad_open");
  CHECK(invalid_reason(R"(0{"sid":"a","pingInterval":0,"pingTimeout":1})") == "bad_open");
  CHECK(invalid_reason(R"(0{"sid":"a","pingInterval":1,"pingTimeout":1}x)") == "bad_open");
  CHECK(invalid_reason(R"(0{"sid":"a","pingInterval":1,"pingTimeout":1,"x":tru})") == "bad_open");
  CHECK(invalid_reason(R"(0["sid"])") == "bad_open");
}

TEST_CASE("engine.io control packets") {
  decoder d;
  CHECK(decode(d, "1").type == packet_type::close);
  CHECK(decode(d, "2").type == packet_type::ping);
  const packet& probe = decode(d, "2probe");
  CHECK(probe.type == packet_type::ping);
  CHECK(probe.data == "probe");
  CHECK(decode(d, "3").type == packet_type::pong);
  CHECK(decode(d, "3probe").data == "probe");
  CHECK(decode(d, "5").type == packet_type::upgrade);
  CHECK(decode(d, "6").type == packet_type::noop);
}

TEST_CASE("unknown and empty packets") {
  CHECK(invalid_reason("") == "bad_packet");
  CHECK(invalid_reason("4") == "bad_packet");
  CHECK(invalid_reason("7") == "unknown_packet");
  CHECK(invalid_reason("99") == "unknown_packet");
  CHECK(invalid_reason("x") == "unknown_packet");
  CHECK(invalid_reason("47") == "unknown_packet");
  CHECK(invalid_reason("4x") == "unknown_packet");
  CHECK(invalid_reason(std::string("\0", 1)) == "unknown_packet");
}

TEST_CASE("socket.io connect: v5 reply with sid, EIO3 bare 40, namespaces") {
  decoder d;
  const packet& v5 = decode(d, R"(40{"sid":"a1LhHDRz5oFiaiajAAAA"})");
  REQUIRE(v5.type == packet_type::connect);
  CHECK(v5.sid == "a1LhHDRz5oFiaiajAAAA");
  CHECK(v5.name_space == "/");

  const packet& bare = decode(d, "40");
  REQUIRE(bare.type == packet_type::connect);
  CHECK(bare.sid.empty());

  const packet& nsp = decode(d, R"(40/admin,{"sid":"x","pid":"y"})");
  REQUIRE(nsp.type == packet_type::connect);
  CHECK(nsp.name_space == "/admin");
  CHECK(nsp.sid == "x");

  const packet& nsp_only = decode(d, "40/admin");
  REQUIRE(nsp_only.type == packet_type::connect);
  CHECK(nsp_only.name_space == "/admin");

  CHECK(invalid_reason("40{") == "bad_json");
  CHECK(invalid_reason(R"(40{"sid":5})") == "bad_json");
  CHECK(invalid_reason(R"(40"x")") == "bad_json");
}

TEST_CASE("socket.io disconnect") {
  decoder d;
  const packet& p = decode(d, "41");
  CHECK(p.type == packet_type::disconnect);
  CHECK(p.name_space == "/");
  const packet& n = decode(d, "41/admin,");
  CHECK(n.type == packet_type::disconnect);
  CHECK(n.name_space == "/admin");
}

TEST_CASE("socket.io event: name, raw payload, team_id") {
  decoder d;
  const packet& p = decode(
      d,
      R"(42["message:updated",{"team_id":"42286ab3-b29a-4fde-8538-da0ae501d825","session_id":"s1","fingerprint":163240180126629,"content":"hi"}])");
  REQUIRE(p.type == packet_type::event);
  CHECK(p.event_name == "message:updated");
  CHECK(p.payload_kind == json_kind::object);
  CHECK(
      p.payload ==
      R"({"team_id":"42286ab3-b29a-4fde-8538-da0ae501d825","session_id":"s1","fingerprint":163240180126629,"content":"hi"})");
  CHECK(p.team == team_id_state::present);
  CHECK(p.team_id == "42286ab3-b29a-4fde-8538-da0ae501d825");
  CHECK(p.argument_count == 1);
  CHECK_FALSE(p.ack_id.has_value());
  CHECK(sio::publish_problem(p).empty());
}

TEST_CASE("socket.io event: big integers and non-ASCII text stay byte-exact") {
  decoder d;
  const std::string payload =
      "{\"team_id\":\"t\xc3\xa9\",\"fingerprint\":123456789012345678901234567890,\"n\":9007199254740993,"
      "\"f\":-1.5e+300,\"content\":\"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80\",\"esc\":\"\\u00e9\\n\\\"\"}";
  const packet& p = decode(d, "42[\"message:updated\"," + payload + "]");
  REQUIRE(p.type == packet_type::event);
  CHECK(p.payload == payload);
  CHECK(p.team_id == "t\xc3\xa9");
}

TEST_CASE("socket.io event: whitespace around the payload is trimmed, not the payload itself") {
  decoder d;
  const packet& p = decode(d, "42[ \"session:update_verify\" ,\n { \"team_id\" : \"t\" , \"a\" : [ 1 , 2 ] }\n ]");
  REQUIRE(p.type == packet_type::event);
  CHECK(p.event_name == "session:update_verify");
  CHECK(p.payload == R"({ "team_id" : "t" , "a" : [ 1 , 2 ] })");
  CHECK(p.team_id == "t");
}

TEST_CASE("socket.io event: namespaces and ack ids") {
  decoder d;
  const packet& ack = decode(d, R"(421["withack","x"])");
  REQUIRE(ack.type == packet_type::event);
  CHECK(ack.ack_id == 1);
  CHECK(ack.event_name == "withack");
  CHECK(ack.payload_kind == json_kind::string);
  CHECK(ack.payload == R"("x")");

  const packet& nsp = decode(d, R"(42/admin,13["bar",{"team_id":"t"}])");
  REQUIRE(nsp.type == packet_type::event);
  CHECK(nsp.name_space == "/admin");
  CHECK(nsp.ack_id == 13);
  CHECK(nsp.event_name == "bar");
  CHECK(nsp.team_id == "t");

  CHECK(invalid_reason(R"(4299999999999999999999999["x",{}])") == "bad_packet");
}

TEST_CASE("socket.io event: argument kinds and explicit false") {
  decoder d;
  const packet& none = decode(d, R"(42["authenticated"])");
  REQUIRE(none.type == packet_type::event);
  CHECK(none.payload_kind == json_kind::none);
  CHECK(none.argument_count == 0);
  CHECK(decode(d, R"(42["authenticated",true])").payload_kind == json_kind::true_value);
  CHECK(decode(d, R"(42["authenticated",false])").payload_kind == json_kind::false_value);
  CHECK(decode(d, R"(42["authenticated",null])").payload_kind == json_kind::null_value);
  CHECK(decode(d, R"(42["authenticated",{}])").payload_kind == json_kind::object);
  CHECK(decode(d, R"(42["x",[1,{"a":2}]])").payload_kind == json_kind::array);
  CHECK(decode(d, R"(42["x",[1,{"a":2}]])").payload == R"([1,{"a":2}])");
  const packet& num = decode(d, R"(42["x",-12.5e3,"extra",{"more":[true]}])");
  CHECK(num.payload_kind == json_kind::number);
  CHECK(num.payload == "-12.5e3");
  CHECK(num.argument_count == 3);

  const packet& refused = decode(d, R"(42["unauthorized",{"message":"invalid_session"}])");
  REQUIRE(refused.type == packet_type::event);
  CHECK(refused.message == "invalid_session");
}

TEST_CASE("publishable events need an object payload with a string team_id") {
  decoder d;
  CHECK(sio::publish_problem(decode(d, R"(42["x",5])")) == "not_an_object");
  CHECK(sio::publish_problem(decode(d, R"(42["x"])")) == "not_an_object");
  CHECK(sio::publish_problem(decode(d, R"(42["x",[{"team_id":"t"}]])")) == "not_an_object");
  CHECK(sio::publish_problem(decode(d, R"(42["x",{"a":1}])")) == "no_team_id");
  CHECK(decode(d, R"(42["x",{"a":1}])").team == team_id_state::missing);
  CHECK(sio::publish_problem(decode(d, R"(42["x",{"team_id":42}])")) == "bad_team_id");
  CHECK(decode(d, R"(42["x",{"team_id":null}])").team == team_id_state::not_a_string);
  CHECK(sio::publish_problem(decode(d, R"(42["x",{"team_id":""}])")) == "no_team_id");
  // Only the top level counts.
  CHECK(sio::publish_problem(decode(d, R"(42["x",{"inner":{"team_id":"t"}}])")) == "no_team_id");
  // An escaped key is still the key.
  const packet& escaped = decode(d, R"(42["x",{"team\u005fid":"t\u0031"}])");
  CHECK(escaped.team_id == "t1");
}

TEST_CASE("garbage events are refused with a reason") {
  CHECK(invalid_reason("42[broken") == "bad_json");
  CHECK(invalid_reason(R"(42["x")") == "bad_json");
  CHECK(invalid_reason(R"(42["x",{"a":1})") == "bad_json");
  CHECK(invalid_reason(R"(42["x",{"a":tru}])") == "bad_json");
  CHECK(invalid_reason(R"(42["x",{"a":[1,2}])") == "bad_json");
  CHECK(invalid_reason(R"(42["x",{"a":01}])") == "bad_json");
  CHECK(invalid_reason(R"(42["x",{"a":1.}])") == "bad_json");
  CHECK(invalid_reason(R"(42["x",{"a":-}])") == "bad_json");
  CHECK(invalid_reason(R"(42["x",{"a":"\q"}])") == "bad_json");
  CHECK(invalid_reason("42[\"x\",{\"a\":\"b\nc\"}]") == "bad_json");
  CHECK(invalid_reason("42[\"x\",{\"a\":\"\xff\"}]") == "bad_json");
  CHECK(invalid_reason(R"(42["x",{}]])") == "bad_json");
  CHECK(invalid_reason(R"(42["x",{}] x)") == "bad_json");
  CHECK(invalid_reason(R"(42["x",{},tru])") == "bad_json");
  CHECK(invalid_reason(R"(42["x",{"a":1,}])") == "bad_json");
  CHECK(invalid_reason("42") == "not_an_event");
  CHECK(invalid_reason("42[]") == "not_an_event");
  CHECK(invalid_reason("42[1,2]") == "not_an_event");
  CHECK(invalid_reason(R"(42[""])") == "not_an_event");
  CHECK(invalid_reason(R"(42{"a":1})") == "not_an_event");
  CHECK(invalid_reason(R"(42"x")") == "not_an_event");
  CHECK(invalid_reason(R"(42{"a":)") == "bad_json");
  CHECK(invalid_reason("42zzz") == "bad_json");
}

TEST_CASE("deeply nested payloads are refused, not recursed into without bound") {
  std::string deep = R"(42["x",{"team_id":"t","a":)";
  for (int i = 0; i < 5000; ++i) {
    deep += '[';
  }
  for (int i = 0; i < 5000; ++i) {
    deep += ']';
  }
  deep += "}]";
  CHECK(invalid_reason(deep) == "bad_json");
  std::string fine = R"(42["x",{"team_id":"t","a":)";
  for (int i = 0; i < 100; ++i) {
    fine += '[';
  }
  for (int i = 0; i < 100; ++i) {
    fine += ']';
  }
  fine += "}]";
  CHECK(invalid_reason(fine) == "valid");
}

TEST_CASE("socket.io ack") {
  decoder d;
  const packet& p = decode(d, R"(431[{"ok":"x"}])");
  REQUIRE(p.type == packet_type::ack);
  CHECK(p.ack_id == 1);
  CHECK(p.arguments == R"([{"ok":"x"}])");
  const packet& n = decode(d, R"(43/admin,13["bar"])");
  REQUIRE(n.type == packet_type::ack);
  CHECK(n.name_space == "/admin");
  CHECK(n.ack_id == 13);
  CHECK(invalid_reason("431[") == "bad_json");
  CHECK(invalid_reason(R"(431{"a":1})") == "bad_packet");
}

TEST_CASE("socket.io connect_error: v5 object and v4 string") {
  decoder d;
  const packet& v5 = decode(d, R"(44{"message":"not authorized","data":{"code":401}})");
  REQUIRE(v5.type == packet_type::connect_error);
  CHECK(v5.message == "not authorized");
  const packet& v5nsp = decode(d, R"(44/guarded,{"message":"nope"})");
  REQUIRE(v5nsp.type == packet_type::connect_error);
  CHECK(v5nsp.name_space == "/guarded");
  CHECK(v5nsp.message == "nope");
  const packet& v4 = decode(d, R"(44/admin,"Not authorized")");
  REQUIRE(v4.type == packet_type::connect_error);
  CHECK(v4.name_space == "/admin");
  CHECK(v4.message == "Not authorized");
  CHECK(decode(d, "44").type == packet_type::connect_error);
  CHECK(decode(d, R"(44{"data":1})").message.empty());
  CHECK(invalid_reason(R"(44{"message":)") == "bad_json");
}

TEST_CASE("socket.io binary packets are refused with their attachment count") {
  decoder d;
  const packet& p = decode(d, R"(451-["bin",{"_placeholder":true,"num":0}])");
  REQUIRE(p.type == packet_type::binary);
  CHECK(p.reason == "binary_event");
  CHECK(p.attachments == 1);
  const packet& a = decode(d, R"(462-/admin,3[{"_placeholder":true,"num":0}])");
  REQUIRE(a.type == packet_type::binary);
  CHECK(a.reason == "binary_ack");
  CHECK(a.attachments == 2);
  CHECK(decode(d, "4599999999999999-[]").attachments == 1024);
  CHECK(invalid_reason("45") == "bad_packet");
  CHECK(invalid_reason("45[") == "bad_packet");
  CHECK(invalid_reason("45-[]") == "bad_packet");
  CHECK(invalid_reason("451") == "bad_packet");
  CHECK(invalid_reason("4599999999999999999999999-[]") == "bad_packet");
}

TEST_CASE("the decoder's buffer is reused across frames of different sizes") {
  decoder d;
  const std::string big = R"(42["x",{"team_id":"t","pad":")" + std::string(100000, 'a') + "\"}]";
  for (int i = 0; i < 3; ++i) {
    CHECK(decode(d, big).type == packet_type::event);
    const packet& small = decode(d, R"(42["y",{"team_id":"u"}])");
    CHECK(small.event_name == "y");
    CHECK(small.team_id == "u");
    CHECK(decode(d, "2").type == packet_type::ping);
  }
}

TEST_CASE("random and mutated bytes never crash the decoder") {
  decoder d;
  std::mt19937 rng(12345);
  const std::vector<std::string> seeds = {
      R"(42["message:updated",{"team_id":"t","n":163240180126629,"s":"\u00e9"}])",
      R"(0{"sid":"a","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000})",
      R"(44{"message":"x","data":{"code":401}})",
      R"(451-["bin",{"_placeholder":true,"num":0}])",
      R"(43/admin,13["bar"])",
      R"(40{"sid":"x"})",
  };
  std::size_t valid = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string frame;
    if (round % 2 == 0) {
      const std::size_t len = rng() % 64;
      for (std::size_t i = 0; i < len; ++i) {
        frame += static_cast<char>(rng() % 256);
      }
      if (!frame.empty() && round % 4 == 0) {
        frame[0] = static_cast<char>('0' + rng() % 7);
      }
    } else {
      frame = seeds[rng() % seeds.size()];
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits && !frame.empty(); ++e) {
        const std::size_t at = rng() % frame.size();
        switch (rng() % 3) {
          case 0:
            frame[at] = static_cast<char>(rng() % 256);
            break;
          case 1:
            frame.erase(at, 1);
            break;
          default:
            frame.insert(at, 1, "[]{}\",:0\\"[rng() % 9]);
            break;
        }
      }
    }
    const packet& p = decode(d, frame);
    if (p.type == packet_type::invalid) {
      CHECK_FALSE(p.reason.empty());
    } else {
      ++valid;
    }
  }
  CHECK(valid > 0);
}

TEST_CASE("encoders") {
  CHECK(sio::encode_ack("/", 7) == "437[]");
  CHECK(sio::encode_ack("/admin", 13) == "43/admin,13[]");
  CHECK(
      sio::encode_authentication("user", "id-1", "k\"e\\y\n", {"session:update_verify", "message:updated"}) ==
      R"(42["authentication",{"tier":"user","username":"id-1","password":"k\"e\\y\n","events":["session:update_verify","message:updated"]}])");
  CHECK(sio::encode_authentication("app", "", "", {}) ==
        R"(42["authentication",{"tier":"app","username":"","password":"","events":[]}])");
  // What we send decodes as an event with the same fields.
  decoder d;
  const packet& p = decode(d, sio::encode_authentication("user", "\xc3\xa9", "p", {"a"}));
  REQUIRE(p.type == packet_type::event);
  CHECK(p.event_name == "authentication");
  CHECK(sio::connect_frame == "40");
  CHECK(sio::pong_frame == "3");
  CHECK(sio::ping_frame == "2");
  CHECK(sio::disconnect_frame == "41");
}

TEST_CASE("topic namespace of an event name") {
  CHECK(sio::name_space_of("message:updated") == "message");
  CHECK(sio::name_space_of("session:sync:pages") == "session");
  CHECK(sio::name_space_of("plain") == "plain");
  CHECK(sio::name_space_of(":x").empty());
}

TEST_CASE("socket.io event: every valid JSON text is accepted byte for byte (lone surrogate escapes, huge numbers)") {
  decoder d;
  // What a JavaScript server sends after slicing an emoji in two: valid JSON (RFC 8259 §8.2), refused by simdjson.
  const std::string lone = R"({"team_id":"t1","text":"cut \ud83d","low":"\udc00x","n":123456789012345678901234567890})";
  const packet& p = decode(d, R"(42["message:updated",)" + lone + "]");
  REQUIRE(p.type == packet_type::event);
  CHECK(p.payload == lone);
  CHECK(p.team_id == "t1");
  CHECK(sio::publish_problem(p).empty());
  // In the strings the decoder hands out (names, team ids) a lone surrogate becomes U+FFFD: they must be UTF-8.
  const packet& named = decode(d, R"(42["ev\ud83d",{"team_id":"t\udbff","message":"m\ud83d\ude00"}])");
  REQUIRE(named.type == packet_type::event);
  CHECK(named.event_name == "ev\xEF\xBF\xBD");
  CHECK(named.team_id == "t\xEF\xBF\xBD");
  CHECK(named.message == "m\xF0\x9F\x98\x80");
  // The same in every argument position and in the other packets.
  CHECK(decode(d, R"(42["x","\ud83d"])").payload == R"("\ud83d")");
  CHECK(decode(d, R"(42["x",["\ud83d",1e999999]])").payload == R"(["\ud83d",1e999999])");
  CHECK(decode(d, R"(42["x",{"team_id":"t"},"\ud83d"])").type == packet_type::event);
  CHECK(decode(d, R"(43["\ud83d"])").type == packet_type::ack);
  CHECK(decode(d, R"(44{"message":"no \ud83d"})").message == "no \xEF\xBF\xBD");
  // Still refused: what the grammar does not allow.
  CHECK(invalid_reason(R"(42["x",{"a":"\ud83"}])") == "bad_json");
  CHECK(invalid_reason(R"(42["x",{"a":"\u12G4"}])") == "bad_json");
  CHECK(invalid_reason("42[\"x\",{\"a\":\"\xed\xa0\xbd\"}]") == "bad_json");  // a surrogate encoded raw: not UTF-8
  CHECK(invalid_reason("42[\"x\",{\"a\":\"\xc0\xaf\"}]") == "bad_json");      // overlong
  CHECK(invalid_reason(R"(42["x",{"a":+1}])") == "bad_json");
}

TEST_CASE("socket.io event: arguments after the first are kept byte for byte, never dropped") {
  decoder d;
  const packet& p = decode(d, R"(42["message:send",{"team_id":"t"}, 2 ,"x\ud83d",{"k":[1, 2]}] )");
  REQUIRE(p.type == packet_type::event);
  CHECK(p.argument_count == 4);
  CHECK(p.payload == R"({"team_id":"t"})");
  CHECK(p.extra_arguments == R"(2 ,"x\ud83d",{"k":[1, 2]})");
  CHECK(decode(d, R"(42["x",{"team_id":"t"},null])").extra_arguments == "null");
  CHECK(decode(d, R"(42["x",{"team_id":"t"}])").extra_arguments.empty());
  CHECK(decode(d, R"(42["x"])").extra_arguments.empty());
}

TEST_CASE("a configured team_id keys the events that carry none") {
  decoder d;
  const packet& missing = decode(d, R"(42["x",{"a":1}])");
  CHECK(sio::publish_problem(missing, "T-fixed").empty());
  CHECK(sio::record_key(missing, "T-fixed") == "T-fixed");
  const packet& empty = decode(d, R"(42["x",{"team_id":""}])");
  CHECK(sio::publish_problem(empty, "T-fixed").empty());
  CHECK(sio::record_key(empty, "T-fixed") == "T-fixed");
  // The payload's own team id wins.
  const packet& own = decode(d, R"(42["x",{"team_id":"t-own"}])");
  CHECK(sio::publish_problem(own, "T-fixed").empty());
  CHECK(sio::record_key(own, "T-fixed") == "t-own");
  CHECK(sio::record_key(own, "") == "t-own");
  // A payload that claims a team wrongly, or is no object, stays a dead letter.
  CHECK(sio::publish_problem(decode(d, R"(42["x",{"team_id":7}])"), "T-fixed") == "bad_team_id");
  CHECK(sio::publish_problem(decode(d, R"(42["x",5])"), "T-fixed") == "not_an_object");
  // Without one configured, nothing changes.
  CHECK(sio::publish_problem(decode(d, R"(42["x",{"a":1}])"), "") == "no_team_id");
}
