#include "util/json_writer.hpp"

#include <doctest/doctest.h>

TEST_CASE("json strings are escaped per RFC 8259 and UTF-8 passes through") {
  std::string out;
  rtm::json::append_string(out, "a\"b\\c\nd\te\x01 é");
  CHECK(out == "\"a\\\"b\\\\c\\nd\\te\\u0001 é\"");
}
