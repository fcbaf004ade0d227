#include "kafka/record.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <charconv>
#include <cstdint>
#include <limits>

#include "kafka/envelope.hpp"

namespace rtm::kafka {
namespace {

constexpr std::string_view json_content = "application/json";
constexpr std::string_view raw_content = "application/octet-stream";
// Room for the header values a builder adds beyond the record's own fields (source, content-type, a size).
constexpr std::size_t header_reserve = 48;

struct header_spec {
  const char* name;
  record_field field;
  bool always;  // else only when the field is set
};

using rf = record_field;
constexpr std::array<header_spec, 6> event_headers{{
    {"rtm-event", rf::event, true},
    {"rtm-connection", rf::connection, true},
    {"rtm-source", rf::source, true},
    {"content-type", rf::content_type, true},
    {"rtm-enterprise", rf::enterprise, false},
    {"rtm-retry-attempt", rf::retry_attempt, false},
}};
constexpr std::array<header_spec, 3> reply_headers{{
    {"rtm-command-id", rf::event, true},
    {"rtm-connection", rf::connection, true},
    {"content-type", rf::content_type, true},
}};
constexpr std::array<header_spec, max_headers> dead_letter_headers{{
    {"rtm-error", rf::error, true},
    {"rtm-connection", rf::connection, true},
    {"rtm-source", rf::source, true},
    {"content-type", rf::content_type, true},
    {"rtm-event", rf::event, false},
    {"rtm-enterprise", rf::enterprise, false},
    {"rtm-original-topic", rf::original_topic, false},
    {"rtm-error-detail", rf::error_detail, false},
    {"rtm-truncated", rf::truncated, false},
}};

std::uint32_t clamp_size(std::size_t n) noexcept {
  return static_cast<std::uint32_t>(std::min<std::size_t>(n, std::numeric_limits<std::uint32_t>::max()));
}

}  // namespace

std::span<const header_view> record::headers(header_list& out) const noexcept {
  const std::span<const header_spec> specs = kind == record_kind::event   ? std::span<const header_spec>(event_headers)
                                             : kind == record_kind::reply ? std::span<const header_spec>(reply_headers)
                                                                          : dead_letter_headers;
  std::size_t n = 0;
  for (const header_spec& spec : specs) {
    const std::string_view value = field(spec.field);
    if (spec.always || !value.empty()) {
      out[n++] = {spec.name, value};
    }
  }
  return {out.data(), n};
}

std::string record::release_bytes() noexcept {
  std::string out;
  out.swap(bytes_);
  offsets_.fill(0);
  return out;
}

record_builder::record_builder(record& r, std::size_t reserve) : r_(r) {
  r_.bytes_.clear();
  // Powers of two from 1 KiB: a recycled buffer then fits the next record of a similar size as it is, instead of
  // growing (one allocation) whenever the next event is a few bytes longer than the one before.
  r_.bytes_.reserve(std::bit_ceil(std::max<std::size_t>(reserve + 1, 1024)));
  r_.offsets_.fill(0);
}

void record_builder::end_field(record_field f) noexcept {
  const auto i = static_cast<std::size_t>(f);
  assert(i == next_ && "record fields must be written in record_field order");
  r_.offsets_[i + 1] = static_cast<std::uint32_t>(r_.bytes_.size());
  next_ = i + 1;
}

void record_builder::add(record_field f, std::string_view text) {
  r_.bytes_ += text;
  end_field(f);
}

void record_builder::add_size(record_field f, std::uint32_t n) {
  if (n != 0) {
    std::array<char, 16> digits{};
    const auto res = std::to_chars(digits.data(), digits.data() + digits.size(), n);
    r_.bytes_.append(digits.data(), res.ptr);
  }
  end_field(f);
}

void record_builder::finish() {
  assert(next_ == static_cast<std::size_t>(record_field::count_) && "every record field must be set");
  r_.bytes_ += '\0';
}

void build_event_record(record& r, const pipeline::event& ev, std::string_view topic, std::uint64_t event_seq,
                        std::string& scratch) {
  // The id is built once, here: a re-production sends these very bytes again, so the id is stable.
  std::string& id = scratch;
  id.clear();
  if (ev.stable_id.empty()) {
    append_event_id(id, ev.connection, ev.received_at, event_seq);
  } else {
    id += ev.connection;
    id += ':';
    id += ev.stable_id;
  }

  const std::size_t reserve = envelope_size_hint(ev, id.size()) + ev.team_id.size() + ev.name.size() +
                              ev.connection.size() + ev.enterprise_id.size() + topic.size() + header_reserve;
  record_builder b(r, reserve);
  append_envelope(b.buffer(), ev, id);
  b.end_field(record_field::value);
  b.add(record_field::key, ev.team_id);
  b.add(record_field::event, ev.name);
  b.add(record_field::connection, ev.connection);
  b.add(record_field::enterprise, ev.enterprise_id);
  b.add(record_field::error, {});
  b.add(record_field::error_detail, {});
  b.add(record_field::original_topic, {});
  b.add(record_field::source, pipeline::to_string(ev.from));
  b.add(record_field::content_type, json_content);
  b.add(record_field::truncated, {});
  b.add_size(record_field::retry_attempt, ev.retry_attempt);
  b.add(record_field::topic, topic);
  b.finish();
  r.kind = record_kind::event;
  r.from = ev.from;
  r.received_steady = ev.received_steady;
  r.truncated_from = 0;
}

void build_dead_letter_record(record& r, const pipeline::dead_letter& dl, std::string_view topic,
                              std::size_t max_value) {
  const std::string_view value = dl.raw.substr(0, std::min(dl.raw.size(), max_value));
  // The session may have cut the frame already (size limits): the original size is then its own.
  const std::size_t original = std::max(dl.original_size, dl.raw.size());
  const std::uint32_t truncated_from = value.size() < original ? clamp_size(original) : 0;
  record_builder b(
      r, value.size() + 2 * dl.connection.size() + dl.reason.size() + dl.detail.size() + topic.size() + header_reserve);
  b.add(record_field::value, value);
  b.add(record_field::key, dl.connection);
  b.add(record_field::event, {});
  b.add(record_field::connection, dl.connection);
  b.add(record_field::enterprise, {});
  b.add(record_field::error, dl.reason);
  b.add(record_field::error_detail, dl.detail);
  b.add(record_field::original_topic, {});
  b.add(record_field::source, pipeline::to_string(dl.from));
  b.add(record_field::content_type, raw_content);  // the raw frame, whatever it holds
  b.add_size(record_field::truncated, truncated_from);
  b.add(record_field::retry_attempt, {});
  b.add(record_field::topic, topic);
  b.finish();
  r.kind = record_kind::dead_letter;
  r.from = dl.from;
  r.received_steady = std::chrono::steady_clock::now();
  r.truncated_from = truncated_from;
}

void build_reply_record(record& r, std::string_view topic, std::string_view connection, std::string_view command_id,
                        std::string_view value) {
  record_builder b(r, value.size() + 2 * connection.size() + command_id.size() + topic.size() + header_reserve);
  b.add(record_field::value, value);
  b.add(record_field::key, connection);
  b.add(record_field::event, command_id);
  b.add(record_field::connection, connection);
  b.add(record_field::enterprise, {});
  b.add(record_field::error, {});
  b.add(record_field::error_detail, {});
  b.add(record_field::original_topic, {});
  b.add(record_field::source, pipeline::to_string(pipeline::source::slack));
  b.add(record_field::content_type, json_content);
  b.add(record_field::truncated, {});
  b.add(record_field::retry_attempt, {});
  b.add(record_field::topic, topic);
  b.finish();
  r.kind = record_kind::reply;
  r.from = pipeline::source::slack;
  r.received_steady = std::chrono::steady_clock::now();
  r.truncated_from = 0;
}

void build_failed_delivery_record(record& r, const record& failed, std::string_view topic, std::string_view reason,
                                  std::string_view detail, std::size_t max_value) {
  const std::string_view envelope = failed.field(record_field::value);
  const std::string_view value = envelope.substr(0, std::min(envelope.size(), max_value));
  const std::uint32_t truncated_from = value.size() < envelope.size() ? clamp_size(envelope.size()) : 0;
  const std::string_view connection = failed.field(record_field::connection);
  const std::string_view original = failed.field(record_field::topic);
  record_builder b(r, value.size() + 2 * connection.size() + failed.field(record_field::event).size() +
                          failed.field(record_field::enterprise).size() + reason.size() + detail.size() +
                          original.size() + topic.size() + header_reserve);
  b.add(record_field::value, value);
  b.add(record_field::key, connection);
  b.add(record_field::event, failed.field(record_field::event));
  b.add(record_field::connection, connection);
  b.add(record_field::enterprise, failed.field(record_field::enterprise));
  b.add(record_field::error, reason);
  b.add(record_field::error_detail, detail);
  b.add(record_field::original_topic, original);
  b.add(record_field::source, pipeline::to_string(failed.from));
  // The envelope is JSON only while it is whole.
  b.add(record_field::content_type, truncated_from == 0 ? json_content : raw_content);
  b.add_size(record_field::truncated, truncated_from);
  b.add(record_field::retry_attempt, {});
  b.add(record_field::topic, topic);
  b.finish();
  r.kind = record_kind::dead_letter;
  r.from = failed.from;
  r.received_steady = failed.received_steady;
  r.truncated_from = truncated_from;
}

}  // namespace rtm::kafka
