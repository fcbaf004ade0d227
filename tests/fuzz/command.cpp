// Fuzz target: the command codec (src/commands/command.hpp). Every input is a command record's value, a reply
// frame from Slack and a command id / connection name pair at once.
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "commands/command.hpp"
#include "tests/fuzz/json_oracle.hpp"
#include "tests/fuzz/targets.hpp"

namespace rtm::fuzz {
namespace {

#define CHECK_COMMAND(condition) RTM_FUZZ_CHECK("command", condition)

void check_parse(std::string_view value) {
  const auto parsed = commands::parse_command(value);
  if (const auto* refused = std::get_if<commands::refusal>(&parsed)) {
    CHECK_COMMAND(refused->error == commands::reply_error::bad_command ||
                  refused->error == commands::reply_error::unsupported_type);
    CHECK_COMMAND(!refused->detail.empty());
    // An unsupported type is a valid object with a string type: only its value is wrong.
    if (refused->error == commands::reply_error::unsupported_type) {
      CHECK_COMMAND(valid_json(value));
    }
    return;
  }
  const commands::command& c = std::get<commands::command>(parsed);
  // Accepted: one valid JSON object, within the limit, which the frame keeps whole behind the bridge's id.
  CHECK_COMMAND(value.size() <= commands::max_command_size);
  CHECK_COMMAND(valid_json(value));
  CHECK_COMMAND(!c.object.empty() && c.object.front() == '{' && c.object.back() == '}');
  CHECK_COMMAND(value.find(c.object) != std::string_view::npos);
  const std::string frame = commands::frame_with_id(c.object, 12345);
  CHECK_COMMAND(valid_json(frame));
  CHECK_COMMAND(frame.rfind("{\"id\":12345", 0) == 0);
  // The frame is a command again, of the same type, once its id is left out: parse it back without the prefix.
  const std::string without_id = "{" + frame.substr(frame.find(c.object.substr(1)));
  const auto again = commands::parse_command(without_id);
  CHECK_COMMAND(std::holds_alternative<commands::command>(again));
  CHECK_COMMAND(std::get<commands::command>(again).type == c.type);
}

void check_reply(std::string_view id, std::string_view connection, std::string_view frame) {
  const bool ok = commands::reply_ok(frame);
  if (ok) {
    CHECK_COMMAND(valid_json(frame));
  }
  // The reply value is valid JSON whatever bytes the id, the connection and the detail hold; Slack's frame is only
  // ever put in once validated (the session decodes it first).
  const std::string_view reply_frame = valid_json(frame) ? frame : std::string_view{};
  for (const auto error : {commands::reply_error::none, commands::reply_error::slack_error,
                           commands::reply_error::unknown_connection, commands::reply_error::no_reply}) {
    const std::string value = commands::reply_value(id, connection, error, id, reply_frame);
    CHECK_COMMAND(valid_json(value));
    CHECK_COMMAND(valid_utf8(value));
  }
}

}  // namespace

void command(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);  // NOLINT(*-reinterpret-cast)
  check_parse(input);
  splitter fields(data, size);
  const std::string_view id = fields.next();
  const std::string_view connection = fields.next();
  const std::string_view frame = fields.next();
  check_parse(frame);
  check_reply(id, connection, frame);
}

}  // namespace rtm::fuzz

#ifdef RTM_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  rtm::fuzz::command(data, size);
  return 0;
}
#endif
