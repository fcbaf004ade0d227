#pragma once

#include <sstream>
#include <string>
#include <string_view>
#include <utility>

// Process-wide logger. Lines go to stderr, which systemd hands to journald (JOURNAL_STREAM set: each text line gets
// a "<N>" syslog priority prefix) and which a container runtime collects. Safe to call from any thread, librdkafka's
// included: one line is one write(2) under a mutex, so lines never interleave.
//
// Never pass a secret here: messages name the connection, never a token, key or password.
namespace rtm::log {

enum class level { trace = 0, debug = 1, info = 2, warn = 3, error = 4 };
enum class format { text, json };

// Called once at start-up and again on reload; cheap atomics, so it may race with writers.
void configure(level min_level, format fmt) noexcept;
[[nodiscard]] bool enabled(level lvl) noexcept;

// `connection` may be empty for process-wide lines; it is printed as `connection=NAME` (text) or a JSON field.
void write(level lvl, std::string_view connection, std::string_view message) noexcept;

[[nodiscard]] std::string_view level_name(level lvl) noexcept;

// Text format: messages carry server-supplied text (error bodies, refusal messages, event names), and a raw newline
// followed by "<0>" would forge a journald entry of any priority. So every control byte (below 0x20, and DEL) is
// written as an escape: \n, \r, \t, else \xHH; a line on stderr is always exactly one entry. Other bytes, UTF-8
// included, pass as they are. (The JSON format escapes every byte below 0x20, per RFC 8259.)
void append_escaped(std::string& out, std::string_view text);

// Builds a message from streamable parts only when the level is enabled.
template <typename... Parts>
void emit(level lvl, std::string_view connection, Parts&&... parts) noexcept {
  if (!enabled(lvl)) {
    return;
  }
  try {
    std::ostringstream out;
    (out << ... << std::forward<Parts>(parts));
    write(lvl, connection, out.str());
  } catch (const std::exception& e) {
    write(level::error, connection, e.what());
  }
}

template <typename... Parts>
void trace(std::string_view connection, Parts&&... parts) noexcept {
  emit(level::trace, connection, std::forward<Parts>(parts)...);
}
template <typename... Parts>
void debug(std::string_view connection, Parts&&... parts) noexcept {
  emit(level::debug, connection, std::forward<Parts>(parts)...);
}
template <typename... Parts>
void info(std::string_view connection, Parts&&... parts) noexcept {
  emit(level::info, connection, std::forward<Parts>(parts)...);
}
template <typename... Parts>
void warn(std::string_view connection, Parts&&... parts) noexcept {
  emit(level::warn, connection, std::forward<Parts>(parts)...);
}
template <typename... Parts>
void error(std::string_view connection, Parts&&... parts) noexcept {
  emit(level::error, connection, std::forward<Parts>(parts)...);
}

}  // namespace rtm::log
