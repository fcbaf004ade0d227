// Fuzz target: the Engine.IO/Socket.IO frame decoder (src/upstream/socketio/codec.hpp), the first code that sees
// what an upstream sends. The decoder has no version switch: EIO3 and EIO4 frames differ in what arrives (a bare
// `40`, a string CONNECT_ERROR, ...), not in how they are read, so every input is decoded as a whole Engine.IO frame
// (covering both revisions' packets), as a Socket.IO packet inside a message (`4` + input), and as an event
// (`42` + input), all on one decoder so that its reused buffers are exercised too.
#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/fuzz/json_oracle.hpp"
#include "tests/fuzz/targets.hpp"
#include "upstream/socketio/codec.hpp"

namespace rtm::fuzz {
namespace {

namespace sio = upstream::socketio;

#define CHECK_SIO(condition) RTM_FUZZ_CHECK("socketio_codec", condition)

// A raw view must be a piece of the frame as received: same bytes (reading them also lets AddressSanitizer catch a
// view that points outside the decoder's buffer).
bool part_of(std::string_view view, std::string_view frame) {
  return view.empty() || frame.find(view) != std::string_view::npos;
}

bool json_space_trimmed(std::string_view text) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  return text.empty() || (!space(text.front()) && !space(text.back()));
}

void check_event(const sio::packet& p, std::string_view frame) {
  CHECK_SIO(!p.event_name.empty());
  CHECK_SIO(valid_utf8(p.event_name));
  CHECK_SIO(sio::name_space_of(p.event_name) == p.event_name.substr(0, sio::name_space_of(p.event_name).size()));
  CHECK_SIO((p.payload_kind == sio::json_kind::none) == (p.argument_count == 0));
  CHECK_SIO((p.payload_kind == sio::json_kind::none) == p.payload.empty());
  // Arguments after the first are kept, as received: never dropped, and valid JSON values once bracketed.
  CHECK_SIO((p.argument_count > 1) == !p.extra_arguments.empty());
  if (!p.extra_arguments.empty()) {
    CHECK_SIO(part_of(p.extra_arguments, frame));
    CHECK_SIO(json_space_trimmed(p.extra_arguments));
    CHECK_SIO(valid_json("[" + std::string(p.extra_arguments) + "]"));
  }
  if (p.payload.empty()) {
    CHECK_SIO(!sio::publish_problem(p).empty());
    return;
  }
  CHECK_SIO(part_of(p.payload, frame));
  CHECK_SIO(json_space_trimmed(p.payload));
  // The payload is published byte for byte as the envelope's data: it must be valid JSON on its own.
  CHECK_SIO(valid_json(p.payload));
  const char first = p.payload.front();
  switch (p.payload_kind) {
    case sio::json_kind::object:
      CHECK_SIO(first == '{');
      break;
    case sio::json_kind::array:
      CHECK_SIO(first == '[');
      break;
    case sio::json_kind::string:
      CHECK_SIO(first == '"');
      break;
    case sio::json_kind::number:
      CHECK_SIO(first == '-' || (first >= '0' && first <= '9'));
      break;
    case sio::json_kind::true_value:
      CHECK_SIO(p.payload == "true");
      break;
    case sio::json_kind::false_value:
      CHECK_SIO(p.payload == "false");
      break;
    case sio::json_kind::null_value:
      CHECK_SIO(p.payload == "null");
      break;
    case sio::json_kind::none:
      CHECK_SIO(false);
      break;
  }
  if (p.payload_kind != sio::json_kind::object) {
    CHECK_SIO(p.team == sio::team_id_state::missing);
  }
  if (p.team == sio::team_id_state::present) {
    CHECK_SIO(valid_utf8(p.team_id));
  }
  CHECK_SIO(valid_utf8(p.message));
  // Publishable means exactly: an object payload with a non-empty string team_id.
  const bool publishable =
      p.payload_kind == sio::json_kind::object && p.team == sio::team_id_state::present && !p.team_id.empty();
  CHECK_SIO(sio::publish_problem(p).empty() == publishable);

  // The team id must be the one the DOM parser sees first under "team_id" (simdjson's DOM lookup returns the first
  // of duplicate keys, as the decoder does).
  if (p.payload_kind == sio::json_kind::object) {
    const simdjson::padded_string copy(p.payload);
    simdjson::dom::element root;
    std::string_view dom_team;
    if (oracle_parser().parse(copy).get(root) == simdjson::SUCCESS) {
      simdjson::dom::element team;
      const auto lookup = root["team_id"].get(team);
      if (lookup == simdjson::NO_SUCH_FIELD) {
        CHECK_SIO(p.team == sio::team_id_state::missing);
      } else if (lookup == simdjson::SUCCESS) {
        if (team.get_string().get(dom_team) == simdjson::SUCCESS) {
          CHECK_SIO(p.team == sio::team_id_state::present);
          CHECK_SIO(p.team_id == dom_team);
        } else {
          CHECK_SIO(p.team == sio::team_id_state::not_a_string);
        }
      }
    }
  }
}

void check_packet(const sio::packet& p, std::string_view frame) {
  switch (p.type) {
    case sio::packet_type::invalid:
      CHECK_SIO(!p.reason.empty());
      return;
    case sio::packet_type::binary:
      CHECK_SIO(p.reason == "binary_event" || p.reason == "binary_ack");
      CHECK_SIO(p.attachments <= 1024);
      return;
    case sio::packet_type::open:
      CHECK_SIO(p.open.ping_interval.count() > 0);
      CHECK_SIO(p.open.ping_timeout.count() >= 0);
      CHECK_SIO(p.open.ping_interval.count() <= 24LL * 3600 * 1000);
      CHECK_SIO(p.open.ping_timeout.count() <= 24LL * 3600 * 1000);
      CHECK_SIO(valid_utf8(p.open.sid));
      break;
    case sio::packet_type::ping:
    case sio::packet_type::pong:
      CHECK_SIO(part_of(p.data, frame));
      CHECK_SIO(p.data.size() + 1 == frame.size());
      break;
    case sio::packet_type::connect:
    case sio::packet_type::disconnect:
    case sio::packet_type::connect_error:
    case sio::packet_type::ack:
    case sio::packet_type::event:
      // Socket.IO packets: a namespace, never empty, always starting with '/', never holding the ',' that ends it.
      CHECK_SIO(!p.name_space.empty());
      CHECK_SIO(p.name_space.front() == '/');
      CHECK_SIO(p.name_space.find(',') == std::string_view::npos);
      CHECK_SIO(p.name_space == "/" || part_of(p.name_space, frame));
      CHECK_SIO(valid_utf8(p.sid));
      CHECK_SIO(valid_utf8(p.message));
      break;
    case sio::packet_type::close:
    case sio::packet_type::upgrade:
    case sio::packet_type::noop:
      break;
  }
  CHECK_SIO(p.reason.empty());
  if (p.type == sio::packet_type::ack) {
    CHECK_SIO(!p.arguments.empty());
    // Raw text: leading JSON whitespace is kept (`39 []`), trailing whitespace is trimmed.
    const auto start = p.arguments.find_first_not_of(" \t\n\r");
    CHECK_SIO(start != std::string_view::npos && p.arguments[start] == '[');
    CHECK_SIO(part_of(p.arguments, frame));
    CHECK_SIO(valid_json(p.arguments));
  }
  if (p.type == sio::packet_type::event) {
    check_event(p, frame);
  }
}

// What the session answers to an event or ack with an id must decode back to an ack with that id and namespace.
void check_ack_round_trip(sio::decoder& dec, std::string_view name_space, std::uint64_t id) {
  const std::string frame = sio::encode_ack(name_space, id);
  CHECK_SIO(frame.size() > 2 && frame.substr(0, 2) == "43");
  const sio::packet& p = dec.decode(frame);
  CHECK_SIO(p.type == sio::packet_type::ack);
  CHECK_SIO(p.ack_id == std::optional<std::uint64_t>(id));
  CHECK_SIO(p.name_space == name_space);
  CHECK_SIO(p.arguments == "[]");
}

// What the session sends to authenticate must itself be a well-formed event (the upstream closes on anything else).
void check_authentication(sio::decoder& dec, std::string_view input) {
  splitter fields(reinterpret_cast<const std::uint8_t*>(input.data()),  // NOLINT(*-reinterpret-cast)
                  input.size());
  const std::string_view tier = fields.next();
  const std::string_view username = fields.next();
  const std::string_view password = fields.next();
  std::vector<std::string> events;
  for (int i = 0; i < 8 && !fields.rest().empty(); ++i) {
    events.emplace_back(fields.next());
  }
  bool utf8 = valid_utf8(tier) && valid_utf8(username) && valid_utf8(password);
  for (const auto& e : events) {
    utf8 = utf8 && valid_utf8(e);
  }
  const std::string frame = sio::encode_authentication(tier, username, password, events);
  if (!utf8) {
    return;  // the session only ever sends config strings, which yaml-cpp and the loader hand over as UTF-8
  }
  const sio::packet& p = dec.decode(frame);
  CHECK_SIO(p.type == sio::packet_type::event);
  CHECK_SIO(p.event_name == "authentication");
  CHECK_SIO(p.payload_kind == sio::json_kind::object);
  CHECK_SIO(p.argument_count == 1);
  check_packet(p, frame);
}

}  // namespace

void socketio_codec(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);  // NOLINT(*-reinterpret-cast)
  // One decoder for all the variants of this input: its buffer is reused as the session reuses it.
  sio::decoder dec;
  const std::string as_message = "4" + std::string(input);
  const std::string as_event = "42" + std::string(input);
  for (const std::string_view frame : {input, std::string_view(as_message), std::string_view(as_event)}) {
    const sio::packet& p = dec.decode(frame);
    check_packet(p, frame);
    if ((p.type == sio::packet_type::event || p.type == sio::packet_type::ack) && p.ack_id) {
      // The namespace and id are copied: the round trip reuses the decoder, which invalidates `p`'s views.
      const std::string name_space(p.name_space);
      const std::uint64_t id = *p.ack_id;
      check_ack_round_trip(dec, name_space, id);
    }
  }
  check_authentication(dec, input);
}

}  // namespace rtm::fuzz

#ifdef RTM_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  rtm::fuzz::socketio_codec(data, size);
  return 0;
}
#endif
