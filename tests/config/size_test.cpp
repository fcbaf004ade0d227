#include "config/size.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <variant>

namespace {

using rtm::config::parse_size;

std::string error_of(std::string_view text) {
  auto r = parse_size(text);
  REQUIRE(std::holds_alternative<std::string>(r));
  return std::get<std::string>(r);
}

std::uint64_t value_of(std::string_view text) {
  auto r = parse_size(text);
  REQUIRE(std::holds_alternative<std::uint64_t>(r));
  return std::get<std::uint64_t>(r);
}

}  // namespace

TEST_CASE("sizes parse as plain bytes and with every unit") {
  CHECK(value_of("1000000") == 1000000);
  CHECK(value_of("0") == 0);
  CHECK(value_of("512B") == 512);
  CHECK(value_of("4kB") == 4000);
  CHECK(value_of("4KiB") == 4096);
  CHECK(value_of("1MB") == 1000000);
  CHECK(value_of("16MiB") == 16777216);
  CHECK(value_of("2GB") == 2000000000);
  CHECK(value_of("1GiB") == 1073741824);
}

TEST_CASE("sizes reject what is not a whole number with a known unit") {
  CHECK(error_of("-1") == "a size must not be negative, got \"-1\"");
  CHECK(error_of("1.5MiB").find("whole number") != std::string::npos);
  CHECK(error_of("1M") == "unknown size unit \"M\" in \"1M\": expected B, kB, KiB, MB, MiB, GB or GiB");
  CHECK(error_of("1mib").find("unknown size unit \"mib\"") != std::string::npos);
  CHECK(error_of("1 MiB").find("unknown size unit \" MiB\"") != std::string::npos);
  CHECK(error_of("MiB").find("expected a size in bytes") != std::string::npos);
  CHECK(error_of("").find("expected a size in bytes") != std::string::npos);
  CHECK(error_of("big").find("expected a size in bytes") != std::string::npos);
}

TEST_CASE("sizes reject overflow instead of wrapping") {
  CHECK(error_of("99999999999999999999").find("too large") != std::string::npos);
  CHECK(error_of("17179869184GiB").find("too large") != std::string::npos);
  CHECK(value_of("18446744073709551615") == UINT64_MAX);
}

TEST_CASE("sizes format in the largest exact binary unit") {
  using rtm::config::format_size;
  CHECK(format_size(0) == "0");
  CHECK(format_size(1000000) == "1000000");
  CHECK(format_size(983040) == "960KiB");
  CHECK(format_size(16777216) == "16MiB");
  CHECK(format_size(1073741824) == "1GiB");
  CHECK(format_size(1536) == "1536");
}
