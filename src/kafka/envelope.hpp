#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "pipeline/event.hpp"

// The contract's event envelope (CONTRACT.md "Kafka record"), written straight into a caller-owned buffer: no DOM, no
// re-serialization, `data` copied byte for byte. Pure functions, no I/O; they only allocate when `out` must grow.
namespace rtm::kafka {

inline constexpr std::string_view envelope_schema = "rtm-bridge.event/v1";

// Upper bound of what append_timestamp() writes ("YYYY-MM-DDTHH:MM:SS.ffffffZ").
inline constexpr std::size_t timestamp_length = 27;

// Appends `tp` as RFC 3339 UTC with microseconds, e.g. "2026-11-23T07:36:49.123456Z". Sub-microsecond parts are
// truncated towards the past (so 1969-12-31T23:59:59.999999Z precedes the epoch). Instants outside the years
// 0000..9999, which RFC 3339 cannot express, are clamped to the first/last representable microsecond.
void append_timestamp(std::string& out, std::chrono::system_clock::time_point tp);

// Milliseconds since the Unix epoch, floored (negative before 1970).
[[nodiscard]] std::int64_t unix_millis(std::chrono::system_clock::time_point tp) noexcept;

// Appends the event id `CONNECTION:RECEIVED_UNIX_MS:SEQ`, SEQ zero-padded to at least 6 digits.
void append_event_id(std::string& out, std::string_view connection, std::chrono::system_clock::time_point received_at,
                     std::uint64_t seq);

// Appends the envelope of `ev` with the given id. `ev.payload` must be the JSON text as received: it is copied
// verbatim (an empty payload, which no session produces, is written as `null` so the envelope stays valid JSON).
void append_envelope(std::string& out, const pipeline::event& ev, std::string_view id);

// A size that append_envelope() will not exceed for `ev` with an id of `id_size` bytes, assuming no string needs
// escaping beyond 6 bytes per byte: used to reserve once.
[[nodiscard]] std::size_t envelope_size_hint(const pipeline::event& ev, std::size_t id_size) noexcept;

// The next event sequence number. Process-wide (an atomic, safe from any thread) rather than per publisher, so ids
// stay unique when the daemon replaces its publisher on a config reload within the same millisecond.
[[nodiscard]] std::uint64_t next_event_sequence() noexcept;

}  // namespace rtm::kafka
