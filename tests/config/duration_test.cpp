#include "config/duration.hpp"

#include <doctest/doctest.h>

#include <string>
#include <variant>

namespace {

using rtm::config::duration;
using rtm::config::parse_duration;

std::string error_of(std::string_view text, bool allow_bare_zero = false) {
  auto r = parse_duration(text, {.allow_bare_zero = allow_bare_zero});
  REQUIRE(std::holds_alternative<std::string>(r));
  return std::get<std::string>(r);
}

duration value_of(std::string_view text, bool allow_bare_zero = false) {
  auto r = parse_duration(text, {.allow_bare_zero = allow_bare_zero});
  REQUIRE(std::holds_alternative<duration>(r));
  return std::get<duration>(r);
}

}  // namespace

TEST_CASE("durations parse with every unit") {
  CHECK(value_of("250ms") == duration{250});
  CHECK(value_of("5s") == duration{5000});
  CHECK(value_of("2m") == duration{120000});
  CHECK(value_of("1h") == duration{3600000});
  CHECK(value_of("0s") == duration{0});
  CHECK(value_of("0", true) == duration{0});
}

TEST_CASE("durations reject what is not a whole number with a unit") {
  CHECK(error_of("5") == "expected a duration with a unit (250ms, 5s, 2m, 1h), got \"5\"");
  CHECK(error_of("0") == "expected a duration with a unit (250ms, 5s, 2m, 1h), got \"0\"");
  CHECK(error_of("5", true) == "expected a duration with a unit (250ms, 5s, 2m, 1h), got \"5\"");
  CHECK(error_of("-5s") == "a duration must not be negative, got \"-5s\"");
  CHECK(error_of("1.5s").find("whole number") != std::string::npos);
  CHECK(error_of("5d") == "unknown duration unit \"d\" in \"5d\": expected ms, s, m or h");
  CHECK(error_of("5 s").find("unknown duration unit \" s\"") != std::string::npos);
  CHECK(error_of("s").find("expected a duration with a unit") != std::string::npos);
  CHECK(error_of("").find("expected a duration with a unit") != std::string::npos);
  CHECK(error_of("soon").find("expected a duration with a unit") != std::string::npos);
}

TEST_CASE("durations reject overflow instead of wrapping") {
  CHECK(error_of("99999999999999999999s").find("too large") != std::string::npos);
  CHECK(error_of("9223372036854775807h").find("too large") != std::string::npos);
  CHECK(value_of("9223372036854775807ms") == duration{9223372036854775807LL});
  CHECK(error_of("9223372036854776s").find("too large") != std::string::npos);
}

TEST_CASE("durations format in the largest exact unit") {
  using rtm::config::format_duration;
  CHECK(format_duration(duration{0}) == "0");
  CHECK(format_duration(duration{250}) == "250ms");
  CHECK(format_duration(duration{1500}) == "1500ms");
  CHECK(format_duration(duration{90000}) == "90s");
  CHECK(format_duration(duration{120000}) == "2m");
  CHECK(format_duration(duration{7200000}) == "2h");
}
