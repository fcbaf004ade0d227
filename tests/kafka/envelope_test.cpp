#include "kafka/envelope.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "kafka/record.hpp"

namespace {

using std::chrono::microseconds;
using std::chrono::system_clock;

system_clock::time_point at_micros(std::int64_t micros) {
  return system_clock::time_point(microseconds(micros));
}

std::string timestamp(std::int64_t micros) {
  std::string out;
  rtm::kafka::append_timestamp(out, at_micros(micros));
  return out;
}

rtm::pipeline::event sample_event() {
  rtm::pipeline::event ev;
  ev.connection = "acme-main";
  ev.from = rtm::pipeline::source::acme;
  ev.name = "message:updated";
  ev.name_space = "message";
  ev.team_id = "42286ab3-b29a-4fde-8538-da0ae501d825";
  // 2026-11-23T07:36:49.123456Z
  ev.received_at = at_micros(1795419409LL * 1000000 + 123456);
  // An integer above 2^53 (a double would round it), non-ASCII text, odd spacing: all must pass byte for byte.
  ev.payload = R"({"team_id": "42286ab3", "fingerprint": 163240180126629123, "content":"h\u00e9 ✓ 🎉",  "x":[1.50e3]})";
  return ev;
}

// A frame above limits.max_event_size as the session dead-letters it: a prefix, the original size and a detail.
rtm::pipeline::dead_letter oversized_frame() {
  rtm::pipeline::dead_letter big;
  big.connection = "slack-main";
  big.reason = "event_too_large";
  big.raw = "{\"type\":\"message\",\"text\":\"xx";
  big.detail = "a frame of 100000 bytes exceeds limits.max_event_size (32768 bytes)";
  big.original_size = 100000;
  return big;
}

// A record's headers as "name=value", in order.
std::vector<std::string> headers_of(const rtm::kafka::record& r) {
  rtm::kafka::header_list list{};
  std::vector<std::string> out;
  for (const auto& h : r.headers(list)) {
    out.push_back(std::string(h.name) + "=" + std::string(h.value));
  }
  return out;
}

}  // namespace

TEST_CASE("envelope: exact bytes for a known event, data verbatim") {
  const auto ev = sample_event();
  std::string id;
  rtm::kafka::append_event_id(id, ev.connection, ev.received_at, 42);
  CHECK(id == "acme-main:1795419409123:000042");

  std::string out = "garbage-before:";  // append semantics: the caller's buffer is extended, not replaced
  rtm::kafka::append_envelope(out, ev, id);
  const std::string expected =
      std::string("garbage-before:") +
      R"({"schema":"rtm-bridge.event/v1","id":"acme-main:1795419409123:000042","source":"acme",)"
      R"("connection":"acme-main","event":"message:updated","team_id":"42286ab3-b29a-4fde-8538-da0ae501d825",)"
      R"("received_at":"2026-11-23T07:36:49.123456Z","data":)" +
      std::string(ev.payload) + "}";
  CHECK(out == expected);
  CHECK(out.find("163240180126629123") != std::string::npos);
  CHECK(out.find("✓ 🎉") != std::string::npos);
  CHECK(out.size() - std::string("garbage-before:").size() <= rtm::kafka::envelope_size_hint(ev, id.size()));
}

TEST_CASE("envelope: names are JSON-escaped, slack source, empty payload stays valid JSON") {
  rtm::pipeline::event ev;
  ev.connection = "slack-1";
  ev.from = rtm::pipeline::source::slack;
  ev.name = "we\"ird\\name\n\x01";
  ev.team_id = "T\tEAM";
  ev.received_at = at_micros(0);
  ev.payload = "";
  std::string out;
  rtm::kafka::append_envelope(out, ev, "slack-1:0:000001");
  CHECK(out == R"({"schema":"rtm-bridge.event/v1","id":"slack-1:0:000001","source":"slack","connection":"slack-1",)"
               R"("event":"we\"ird\\name\n\u0001","team_id":"T\tEAM","received_at":"1970-01-01T00:00:00.000000Z",)"
               R"("data":null})");
}

TEST_CASE("envelope: the arguments after an event's first travel byte for byte in args, before data") {
  auto ev = sample_event();
  ev.extra_args = R"(2 ,"x\ud83d",{"k":[1, 2]})";
  std::string out;
  rtm::kafka::append_envelope(out, ev, "acme-main:1:000001");
  CHECK(out.find(R"("received_at":"2026-11-23T07:36:49.123456Z","args":[2 ,"x\ud83d",{"k":[1, 2]}],"data":)" +
                 std::string(ev.payload) + "}") != std::string::npos);
  CHECK(out.size() <= rtm::kafka::envelope_size_hint(ev, 18));
  ev.extra_args = {};
  out.clear();
  rtm::kafka::append_envelope(out, ev, "acme-main:1:000001");
  CHECK(out.find("\"args\"") == std::string::npos);
}

TEST_CASE("envelope: RFC 3339 microsecond timestamps incl. epoch edge cases") {
  CHECK(timestamp(0) == "1970-01-01T00:00:00.000000Z");
  CHECK(timestamp(1) == "1970-01-01T00:00:00.000001Z");
  CHECK(timestamp(-1) == "1969-12-31T23:59:59.999999Z");
  CHECK(timestamp(-1000000) == "1969-12-31T23:59:59.000000Z");
  CHECK(timestamp(999999) == "1970-01-01T00:00:00.999999Z");
  CHECK(timestamp(951868799LL * 1000000 + 999999) == "2000-02-29T23:59:59.999999Z");
  CHECK(timestamp(1795419409LL * 1000000 + 123456) == "2026-11-23T07:36:49.123456Z");
  // 2^31 seconds: past the 32-bit time_t limit.
  CHECK(timestamp(2147483648LL * 1000000) == "2038-01-19T03:14:08.000000Z");
  // The extremes of system_clock (nanoseconds in 64 bits: years 1677..2262).
  std::string extreme;
  rtm::kafka::append_timestamp(extreme, system_clock::time_point::max());
  CHECK(extreme == "2262-04-11T23:47:16.854775Z");
  extreme.clear();
  rtm::kafka::append_timestamp(extreme, system_clock::time_point::min());
  CHECK(extreme == "1677-09-21T00:12:43.145224Z");
  // Nanoseconds are truncated towards the past, not rounded.
  std::string out;
  rtm::kafka::append_timestamp(
      out, system_clock::time_point(std::chrono::duration_cast<system_clock::duration>(std::chrono::nanoseconds(-1))));
  CHECK(out == "1969-12-31T23:59:59.999999Z");
}

TEST_CASE("envelope: timestamps stay right when consecutive events cross seconds, days and back") {
  // The date-and-time text is reused within a second: alternate within and across seconds in both directions.
  CHECK(timestamp(1795419409LL * 1000000 + 1) == "2026-11-23T07:36:49.000001Z");
  CHECK(timestamp(1795419409LL * 1000000 + 999999) == "2026-11-23T07:36:49.999999Z");
  CHECK(timestamp(1795419410LL * 1000000) == "2026-11-23T07:36:50.000000Z");
  CHECK(timestamp(1795419409LL * 1000000 + 5) == "2026-11-23T07:36:49.000005Z");
  CHECK(timestamp(1795478399LL * 1000000 + 999999) == "2026-11-23T23:59:59.999999Z");
  CHECK(timestamp(1795478400LL * 1000000) == "2026-11-24T00:00:00.000000Z");
  CHECK(timestamp(0) == "1970-01-01T00:00:00.000000Z");
  CHECK(timestamp(0) == "1970-01-01T00:00:00.000000Z");
  CHECK(timestamp(-1) == "1969-12-31T23:59:59.999999Z");
}

TEST_CASE("envelope: ids are zero-padded to at least 6 digits, ms floored, sequence process-wide") {
  std::string id;
  rtm::kafka::append_event_id(id, "c", at_micros(1999), 7);
  CHECK(id == "c:1:000007");
  id.clear();
  rtm::kafka::append_event_id(id, "c", at_micros(-1), 1234567);
  CHECK(id == "c:-1:1234567");
  id.clear();
  rtm::kafka::append_event_id(id, "c", at_micros(0), 0);
  CHECK(id == "c:0:000000");
  const auto a = rtm::kafka::next_event_sequence();
  const auto b = rtm::kafka::next_event_sequence();
  CHECK(b == a + 1);
}

TEST_CASE("record: an event record holds every field in one buffer, id built once") {
  const auto ev = sample_event();
  rtm::kafka::record r;
  std::string scratch;
  rtm::kafka::build_event_record(r, ev, "rtm.message", 42, scratch);
  using f = rtm::kafka::record_field;
  CHECK(r.field(f::key) == ev.team_id);
  CHECK(r.field(f::event) == "message:updated");
  CHECK(r.field(f::connection) == "acme-main");
  CHECK(r.field(f::enterprise).empty());
  CHECK(r.field(f::topic) == "rtm.message");
  CHECK(std::string(r.topic_c_str()) == "rtm.message");
  std::string expected;
  rtm::kafka::append_envelope(expected, ev, "acme-main:1795419409123:000042");
  CHECK(r.field(f::value) == expected);

  rtm::kafka::record dl;
  rtm::kafka::build_failed_delivery_record(dl, r, "rtm.dead-letter", "msg_size_too_large", "too big", 20);
  CHECK(dl.kind == rtm::kafka::record_kind::dead_letter);
  CHECK(dl.field(f::value) == expected.substr(0, 20));
  CHECK(dl.truncated_from == expected.size());
  CHECK(dl.field(f::key) == "acme-main");
  CHECK(dl.field(f::error) == "msg_size_too_large");
  CHECK(dl.field(f::error_detail) == "too big");
  CHECK(dl.field(f::original_topic) == "rtm.message");
  CHECK(std::string(dl.topic_c_str()) == "rtm.dead-letter");

  rtm::pipeline::dead_letter raw;
  raw.connection = "acme-main";
  raw.reason = "bad_json";
  raw.raw = "42[\"x\",{";
  rtm::kafka::record d2;
  rtm::kafka::build_dead_letter_record(d2, raw, "rtm.dead-letter", 1024);
  CHECK(d2.field(f::value) == raw.raw);
  CHECK(d2.truncated_from == 0);
  CHECK(d2.field(f::error) == "bad_json");
  CHECK(d2.field(f::event).empty());
  CHECK(d2.field(f::error_detail).empty());

  // Size limits: the session passes a prefix (or nothing) with the original size and a detail.
  rtm::pipeline::dead_letter big = oversized_frame();
  rtm::kafka::record d3;
  rtm::kafka::build_dead_letter_record(d3, big, "rtm.dead-letter", 1024);
  CHECK(d3.field(f::value) == big.raw);
  CHECK(d3.truncated_from == 100000);
  CHECK(d3.field(f::error_detail) == big.detail);
  big.raw = {};
  big.original_size = 0;
  big.reason = "frame_too_large";
  rtm::kafka::build_dead_letter_record(d3, big, "rtm.dead-letter", 1024);
  CHECK(d3.field(f::value).empty());
  CHECK(d3.truncated_from == 0);
  CHECK(d3.field(f::error) == "frame_too_large");
  const auto released = d2.release_bytes();
  CHECK(!released.empty());
  CHECK(d2.field(f::value).empty());
}

TEST_CASE("record: the headers are built with the record, in the contract's order") {
  using headers = std::vector<std::string>;
  auto ev = sample_event();
  rtm::kafka::record r;
  std::string scratch;
  rtm::kafka::build_event_record(r, ev, "rtm.message", 1, scratch);
  CHECK(headers_of(r) == headers{"rtm-event=message:updated", "rtm-connection=acme-main", "rtm-source=acme",
                                 "content-type=application/json"});
  ev.from = rtm::pipeline::source::slack;
  ev.enterprise_id = "E0123";
  rtm::kafka::build_event_record(r, ev, "rtm.message", 2, scratch);
  CHECK(headers_of(r) == headers{"rtm-event=message:updated", "rtm-connection=acme-main", "rtm-source=slack",
                                 "content-type=application/json", "rtm-enterprise=E0123"});

  // An upstream dead letter: the raw frame (here a prefix the session cut, with its detail).
  rtm::kafka::record d;
  rtm::kafka::build_dead_letter_record(d, oversized_frame(), "rtm.dead-letter", 1024);
  CHECK(headers_of(d) == headers{"rtm-error=event_too_large", "rtm-connection=slack-main", "rtm-source=acme",
                                 "content-type=application/octet-stream",
                                 "rtm-error-detail=a frame of 100000 bytes exceeds limits.max_event_size (32768 bytes)",
                                 "rtm-truncated=100000"});

  // A failed delivery's dead letter: the whole envelope is JSON, a cut one is not.
  rtm::kafka::build_failed_delivery_record(d, r, "rtm.dead-letter", "msg_size_too_large", "too big", SIZE_MAX);
  CHECK(headers_of(d) == headers{"rtm-error=msg_size_too_large", "rtm-connection=acme-main", "rtm-source=slack",
                                 "content-type=application/json", "rtm-event=message:updated", "rtm-enterprise=E0123",
                                 "rtm-original-topic=rtm.message", "rtm-error-detail=too big"});
  const std::string envelope_size = std::to_string(r.field(rtm::kafka::record_field::value).size());
  // Every optional header at once: the most a record carries.
  rtm::kafka::build_failed_delivery_record(d, r, "rtm.dead-letter", "record_too_large", "sizes", 20);
  CHECK(headers_of(d) == headers{"rtm-error=record_too_large", "rtm-connection=acme-main", "rtm-source=slack",
                                 "content-type=application/octet-stream", "rtm-event=message:updated",
                                 "rtm-enterprise=E0123", "rtm-original-topic=rtm.message", "rtm-error-detail=sizes",
                                 "rtm-truncated=" + envelope_size});
}
