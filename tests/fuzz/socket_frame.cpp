// Fuzz target: Slack Socket Mode frames (src/upstream/slack/socket_codec.hpp), as a server or anything between it
// and the bridge may send them. Invariants: decoding never throws or reads past the input; an envelope's payload is
// a piece of the input that is valid JSON on its own; the ack frame of any envelope id is valid JSON; event names
// are never empty for a known envelope type.
#include <cstdint>
#include <string>
#include <string_view>

#include "tests/fuzz/targets.hpp"
#include "upstream/slack/socket_codec.hpp"
#include "util/json_scan.hpp"

namespace rtm::fuzz {

#define CHECK_SOCKET(condition) RTM_FUZZ_CHECK("socket_frame", condition)

void socket_frame(const std::uint8_t* data, std::size_t size) {
  // An exact-size copy: reading one byte past it is a sanitizer report.
  const std::string text(reinterpret_cast<const char*>(data),
                         size);  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast)
  const upstream::slack::socket_frame f = upstream::slack::decode_socket_frame(text.data(), text.size());
  if (f.kind == upstream::slack::socket_frame_kind::invalid) {
    CHECK_SOCKET(!f.reason.empty());
    return;
  }
  CHECK_SOCKET(json::valid(text));
  if (f.kind != upstream::slack::socket_frame_kind::envelope) {
    return;
  }
  if (!f.payload.empty()) {
    CHECK_SOCKET(f.payload.data() >= text.data() && f.payload.data() + f.payload.size() <= text.data() + text.size());
    CHECK_SOCKET(json::valid(f.payload));
  }
  std::string ack;
  upstream::slack::append_ack_frame(ack, f.envelope_id);
  CHECK_SOCKET(json::valid(ack));
  std::string name;
  upstream::slack::envelope_event_name(f, name);
  CHECK_SOCKET(f.type == upstream::slack::envelope_type::unknown || !name.empty());
}

}  // namespace rtm::fuzz

#ifdef RTM_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  rtm::fuzz::socket_frame(data, size);
  return 0;
}
#endif
