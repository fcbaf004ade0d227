#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kafka/record.hpp"

// A record as the durable spool stores it (the payload of one spool frame, spool/format.hpp): everything
// librdkafka is given (value, key, topic, headers) exactly as the record's builder decided it, so a record read
// back after a restart is produced byte for byte as it would have been, with the same envelope id.
//
//   version u8 (1) | kind u8 | source u8 | truncated_from u32 | field ends u32 × record_field::count_ | bytes
//
// Pure; no I/O.
namespace rtm::kafka {

// Appends the payload of `r` to `out`.
void encode_spooled(const record& r, std::string& out);
// Fills `r` from a payload (its buffer is reused). False when the payload is not one (an unknown version, or ends
// that do not fit): `r` is then left empty.
[[nodiscard]] bool decode_spooled(record& r, std::string_view payload);

// The envelope id of an event record's value (the second member of the envelope), empty if there is none.
[[nodiscard]] std::string_view envelope_id(std::string_view value) noexcept;

}  // namespace rtm::kafka
