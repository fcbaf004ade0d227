// Fuzz target: the event envelope writer (src/kafka/envelope.hpp). The input is split into the event's fields: 8
// bytes of receive time (nanoseconds since the epoch, the system clock's own unit), 8 bytes of sequence number, one
// byte choosing the source, then connection, event name, team id and payload separated by 0x1f.
#include "kafka/envelope.hpp"

#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "pipeline/event.hpp"
#include "tests/fuzz/json_oracle.hpp"
#include "tests/fuzz/targets.hpp"

namespace rtm::fuzz {
namespace {

#define CHECK_ENV(condition) RTM_FUZZ_CHECK("envelope", condition)

// A fixed-size field from the front of the input (zero-filled when the input is shorter).
template <typename T>
T take(std::string_view& raw) {
  T value{};
  const std::size_t n = std::min(raw.size(), sizeof value);
  if (n > 0) {
    std::memcpy(&value, raw.data(), n);
  }
  raw.remove_prefix(n);
  return value;
}

// The reference timestamp, from the standard calendar: microseconds truncated towards the past.
std::string expected_timestamp(std::chrono::system_clock::time_point tp) {
  using namespace std::chrono;
  const auto micros = floor<microseconds>(tp.time_since_epoch());
  const auto day = floor<days>(micros);
  const year_month_day ymd{sys_days{day}};
  const hh_mm_ss<microseconds> time{micros - day};
  char buf[64];
  const int n =
      std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02lld:%02lld:%02lld.%06lldZ", static_cast<int>(ymd.year()),
                    static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                    static_cast<long long>(time.hours().count()), static_cast<long long>(time.minutes().count()),
                    static_cast<long long>(time.seconds().count()), static_cast<long long>(time.subseconds().count()));
  return std::string(buf, static_cast<std::size_t>(n));
}

std::string expected_id(std::string_view connection, std::int64_t millis, std::uint64_t seq) {
  std::string seq_text = std::to_string(seq);
  if (seq_text.size() < 6) {
    seq_text.insert(0, 6 - seq_text.size(), '0');
  }
  return std::string(connection) + ":" + std::to_string(millis) + ":" + seq_text;
}

std::string_view dom_string(simdjson::dom::element root, const char* key) {
  std::string_view value;
  CHECK_ENV(root[key].get_string().get(value) == simdjson::SUCCESS);
  return value;
}

}  // namespace

void envelope(const std::uint8_t* data, std::size_t size) {
  std::string_view raw(reinterpret_cast<const char*>(data), size);  // NOLINT(*-reinterpret-cast)
  const auto nanos = take<std::int64_t>(raw);
  const auto seq = take<std::uint64_t>(raw);
  const auto source_byte = take<std::uint8_t>(raw);
  splitter fields(reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size());  // NOLINT(*-reinterpret-cast)

  pipeline::event ev;
  ev.from = (source_byte & 1) != 0 ? pipeline::source::slack : pipeline::source::acme;
  ev.connection = fields.next();
  ev.name = fields.next();
  ev.team_id = fields.next();
  ev.payload = fields.rest();
  ev.name_space = ev.name.substr(0, ev.name.find(':'));
  ev.received_at = std::chrono::system_clock::time_point(std::chrono::nanoseconds(nanos));

  // Timestamps and ids stand alone too.
  std::string stamp;
  kafka::append_timestamp(stamp, ev.received_at);
  CHECK_ENV(stamp.size() <= kafka::timestamp_length);
  CHECK_ENV(stamp == expected_timestamp(ev.received_at));
  const std::int64_t millis = kafka::unix_millis(ev.received_at);
  CHECK_ENV(millis == std::chrono::floor<std::chrono::milliseconds>(ev.received_at.time_since_epoch()).count());

  std::string id = "id:";  // append semantics: what the caller had stays
  kafka::append_event_id(id, ev.connection, ev.received_at, seq);
  CHECK_ENV(id == "id:" + expected_id(ev.connection, millis, seq));
  const std::string_view id_view = std::string_view(id).substr(3);

  std::string out = "prefix";
  kafka::append_envelope(out, ev, id_view);
  CHECK_ENV(out.substr(0, 6) == "prefix");
  const std::string_view envelope = std::string_view(out).substr(6);
  CHECK_ENV(envelope.size() <= kafka::envelope_size_hint(ev, id_view.size()));

  // `data` is the payload byte for byte, at the end, right after its key.
  const std::string_view data_text = ev.payload.empty() ? std::string_view("null") : ev.payload;
  const std::string tail = R"(,"data":)" + std::string(data_text) + "}";
  CHECK_ENV(envelope.size() >= tail.size() && envelope.substr(envelope.size() - tail.size()) == tail);

  // Sessions hand over UTF-8 strings (simdjson-decoded names and ids, validated config names) and payloads that
  // passed validation: then the envelope must be valid JSON that says exactly what went in.
  const bool strings_ok = valid_utf8(ev.connection) && valid_utf8(ev.name) && valid_utf8(ev.team_id);
  if (!strings_ok || !valid_json(data_text)) {
    return;
  }
  const simdjson::padded_string copy(envelope);
  // Parsers reused across inputs (their buffers only grow); this thread is the only user.
  thread_local simdjson::dom::parser parser;
  thread_local simdjson::dom::parser payload_parser;
  simdjson::dom::element root;
  const auto parsed = parser.parse(copy).get(root);
  if (parsed != simdjson::SUCCESS) {
    // A payload the DOM parser cannot take (an integer beyond 64 bits, a lone surrogate escape): the grammar checker
    // has the last word, and it must refuse nothing the payload alone passed with.
    CHECK_ENV(valid_json(envelope));
    return;
  }
  simdjson::dom::object object;
  CHECK_ENV(root.get_object().get(object) == simdjson::SUCCESS);
  CHECK_ENV(object.size() == 8);
  CHECK_ENV(dom_string(root, "schema") == kafka::envelope_schema);
  CHECK_ENV(dom_string(root, "id") == id_view);
  CHECK_ENV(dom_string(root, "source") == pipeline::to_string(ev.from));
  CHECK_ENV(dom_string(root, "connection") == ev.connection);
  CHECK_ENV(dom_string(root, "event") == ev.name);
  CHECK_ENV(dom_string(root, "team_id") == ev.team_id);
  CHECK_ENV(dom_string(root, "received_at") == stamp);
  // The last key is "data" and its value is what the payload parses to on its own.
  std::string_view last_key;
  for (const auto field : object) {
    last_key = field.key;
  }
  CHECK_ENV(last_key == "data");
  simdjson::dom::element in_envelope;
  CHECK_ENV(root["data"].get(in_envelope) == simdjson::SUCCESS);
  const std::string minified_in_envelope = simdjson::minify(in_envelope);
  const simdjson::padded_string payload_copy(data_text);
  simdjson::dom::element alone;
  CHECK_ENV(payload_parser.parse(payload_copy).get(alone) == simdjson::SUCCESS);
  CHECK_ENV(simdjson::minify(alone) == minified_in_envelope);
}

}  // namespace rtm::fuzz

#ifdef RTM_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  rtm::fuzz::envelope(data, size);
  return 0;
}
#endif
