#include "kafka/envelope.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <ctime>

#include "util/json_writer.hpp"

namespace rtm::kafka {
namespace {

using std::chrono::microseconds;

// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z in microseconds since the epoch.
constexpr std::int64_t min_micros = -62167219200LL * 1000000LL;
constexpr std::int64_t max_micros = 253402300799LL * 1000000LL + 999999LL;

constexpr std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept {
  const std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// Writes `value` as exactly `width` decimal digits ending at `end` (value must fit).
void put_digits(char* end, std::uint64_t value, int width) noexcept {
  for (int i = 0; i < width; ++i) {
    *--end = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

void append_unsigned(std::string& out, std::uint64_t value, int min_width) {
  std::array<char, 24> digits{};
  const auto res = std::to_chars(digits.data(), digits.data() + digits.size(), value);  // cannot fail: 20 digits max
  const auto width = static_cast<int>(res.ptr - digits.data());
  if (width < min_width) {
    out.append(static_cast<std::size_t>(min_width - width), '0');
  }
  out.append(digits.data(), static_cast<std::size_t>(width));
}

void append_signed(std::string& out, std::int64_t value) {
  if (value < 0) {
    out += '-';
    // Negate in unsigned arithmetic: well defined for INT64_MIN too.
    append_unsigned(out, 0 - static_cast<std::uint64_t>(value), 1);
  } else {
    append_unsigned(out, static_cast<std::uint64_t>(value), 1);
  }
}

}  // namespace

std::int64_t unix_millis(std::chrono::system_clock::time_point tp) noexcept {
  return std::chrono::floor<std::chrono::milliseconds>(tp.time_since_epoch()).count();
}

void append_timestamp(std::string& out, std::chrono::system_clock::time_point tp) {
  std::int64_t micros = std::chrono::floor<microseconds>(tp.time_since_epoch()).count();
  if (micros < min_micros) {
    micros = min_micros;
  } else if (micros > max_micros) {
    micros = max_micros;
  }
  const std::int64_t seconds = floor_div(micros, 1000000);
  const auto fraction = static_cast<std::uint64_t>(micros - seconds * 1000000);
  // "YYYY-MM-DDTHH:MM:SS" changes once a second while events arrive by the thousand: each thread keeps the text of
  // the last second it formatted, so gmtime_r() runs once per second and thread rather than once per event.
  struct second_text {
    std::int64_t seconds = 0;
    bool valid = false;
    std::array<char, 19> text{};
  };
  thread_local second_text cache;
  if (!cache.valid || cache.seconds != seconds) {
    const auto t = static_cast<std::time_t>(seconds);
    std::tm tm{};
    if (gmtime_r(&t, &tm) == nullptr) {
      // Cannot happen for the clamped range on a 64-bit time_t; keep the output well-formed anyway.
      tm = std::tm{};
      tm.tm_year = 70;
      tm.tm_mday = 1;
    }
    std::array<char, 19> buf{'0', '0', '0', '0', '-', '0', '0', '-', '0', '0',
                             'T', '0', '0', ':', '0', '0', ':', '0', '0'};
    const int year = tm.tm_year + 1900;  // 0..9999 after the clamping above
    const int month = tm.tm_mon + 1;
    put_digits(buf.data() + 4, static_cast<std::uint64_t>(year), 4);
    put_digits(buf.data() + 7, static_cast<std::uint64_t>(month), 2);
    put_digits(buf.data() + 10, static_cast<std::uint64_t>(tm.tm_mday), 2);
    put_digits(buf.data() + 13, static_cast<std::uint64_t>(tm.tm_hour), 2);
    put_digits(buf.data() + 16, static_cast<std::uint64_t>(tm.tm_min), 2);
    put_digits(buf.data() + 19, static_cast<std::uint64_t>(tm.tm_sec), 2);
    cache.text = buf;
    cache.seconds = seconds;
    cache.valid = true;
  }
  // "YYYY-MM-DDTHH:MM:SS.ffffffZ", the fraction filled right to left: no allocation beyond `out` growing.
  std::array<char, timestamp_length> buf{};
  std::copy(cache.text.begin(), cache.text.end(), buf.begin());
  buf[19] = '.';
  put_digits(buf.data() + 26, fraction, 6);
  buf[26] = 'Z';
  out.append(buf.data(), buf.size());
}

void append_event_id(std::string& out, std::string_view connection, std::chrono::system_clock::time_point received_at,
                     std::uint64_t seq) {
  out += connection;
  out += ':';
  append_signed(out, unix_millis(received_at));
  out += ':';
  append_unsigned(out, seq, 6);
}

std::size_t envelope_size_hint(const pipeline::event& ev, std::size_t id_size) noexcept {
  // Fixed text and keys are ~110 bytes; every escaped string may grow up to 6x (\u00XX).
  const std::size_t strings =
      ev.connection.size() + ev.name.size() + ev.team_id.size() + id_size + pipeline::to_string(ev.from).size();
  return 128 + timestamp_length + 6 * strings + (ev.payload.empty() ? 4 : ev.payload.size()) +
         (ev.extra_args.empty() ? 0 : ev.extra_args.size() + 10);
}

void append_envelope(std::string& out, const pipeline::event& ev, std::string_view id) {
  out += R"({"schema":")";
  out += envelope_schema;
  out += R"(","id":)";
  json::append_string(out, id);
  out += R"(,"source":)";
  json::append_string(out, pipeline::to_string(ev.from));
  out += R"(,"connection":)";
  json::append_string(out, ev.connection);
  out += R"(,"event":)";
  json::append_string(out, ev.name);
  out += R"(,"team_id":)";
  json::append_string(out, ev.team_id);
  out += R"(,"received_at":")";
  append_timestamp(out, ev.received_at);
  out += '"';
  if (!ev.extra_args.empty()) {
    // Socket.IO events with more than one argument: the first is `data`, the others follow byte for byte.
    out += R"(,"args":[)";
    out += ev.extra_args;
    out += ']';
  }
  out += R"(,"data":)";
  if (ev.payload.empty()) {
    out += "null";
  } else {
    out += ev.payload;
  }
  out += '}';
}

std::uint64_t next_event_sequence() noexcept {
  static std::atomic<std::uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

}  // namespace rtm::kafka
