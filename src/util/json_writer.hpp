#pragma once

#include <string>
#include <string_view>

// Minimal JSON text writing for the envelope, logs and metrics: appends to a caller-owned buffer, no DOM.
namespace rtm::json {

// Appends `text` as a quoted JSON string (RFC 8259 escaping; bytes >= 0x80 are copied as they are, so UTF-8 passes
// through untouched).
void append_string(std::string& out, std::string_view text);

}  // namespace rtm::json
