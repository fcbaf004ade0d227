#include "util/log.hpp"

#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

#include "util/json_writer.hpp"

namespace rtm::log {
namespace {

std::atomic<level> min_level_{level::info};
std::atomic<format> format_{format::text};
std::mutex write_mutex_;

// journald reads "<N>" at the start of a line as the syslog priority when the stream is its own.
int syslog_priority(level lvl) noexcept {
  switch (lvl) {
    case level::trace:
    case level::debug:
      return 7;
    case level::info:
      return 6;
    case level::warn:
      return 4;
    case level::error:
      return 3;
  }
  return 6;
}

bool under_journald() noexcept {
  static const bool value = std::getenv("JOURNAL_STREAM") != nullptr;
  return value;
}

void append_timestamp(std::string& out) {
  const auto now = std::chrono::system_clock::now();
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(micros / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::array<char, 40> buf{};
  const int n =
      std::snprintf(buf.data(), buf.size(), "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(micros % 1000000));
  out.append(buf.data(), static_cast<std::size_t>(n));
}

void write_all(const std::string& line) noexcept {
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n <= 0) {
      return;  // stderr is gone: nothing else to report to
    }
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

void append_escaped(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  std::size_t clean = 0;  // start of the run of bytes that need no escaping, copied in one append
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte >= 0x20 && byte != 0x7f) {
      continue;
    }
    out.append(text.data() + clean, i - clean);
    clean = i + 1;
    out += '\\';
    if (byte == '\n') {
      out += 'n';
    } else if (byte == '\r') {
      out += 'r';
    } else if (byte == '\t') {
      out += 't';
    } else {
      out += 'x';
      out += hex[byte >> 4];
      out += hex[byte & 0xf];
    }
  }
  out.append(text.data() + clean, text.size() - clean);
}

void configure(level min_level, format fmt) noexcept {
  min_level_.store(min_level);
  format_.store(fmt);
}

bool enabled(level lvl) noexcept {
  return static_cast<int>(lvl) >= static_cast<int>(min_level_.load(std::memory_order_relaxed));
}

std::string_view level_name(level lvl) noexcept {
  switch (lvl) {
    case level::trace:
      return "trace";
    case level::debug:
      return "debug";
    case level::info:
      return "info";
    case level::warn:
      return "warn";
    case level::error:
      return "error";
  }
  return "info";
}

void write(level lvl, std::string_view connection, std::string_view message) noexcept {
  if (!enabled(lvl)) {
    return;
  }
  try {
    std::string line;
    line.reserve(message.size() + connection.size() + 96);
    if (format_.load() == format::json) {
      line += "{\"ts\":\"";
      append_timestamp(line);
      line += "\",\"level\":\"";
      line += level_name(lvl);
      line += '"';
      if (!connection.empty()) {
        line += ",\"connection\":";
        json::append_string(line, connection);
      }
      line += ",\"msg\":";
      json::append_string(line, message);
      line += "}\n";
    } else {
      if (under_journald()) {
        line += '<';
        line += static_cast<char>('0' + syslog_priority(lvl));
        line += '>';
      } else {
        append_timestamp(line);
        line += ' ';
      }
      line += level_name(lvl);
      line += ' ';
      if (!connection.empty()) {
        line += "connection=";
        append_escaped(line, connection);
        line += ' ';
      }
      append_escaped(line, message);
      line += '\n';
    }
    const std::lock_guard<std::mutex> lock(write_mutex_);
    write_all(line);
  } catch (const std::bad_alloc&) {
    const std::lock_guard<std::mutex> lock(write_mutex_);
    write_all("error out of memory while logging\n");
  }
}

}  // namespace rtm::log
