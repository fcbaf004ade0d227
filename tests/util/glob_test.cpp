#include "util/glob.hpp"

#include <doctest/doctest.h>

using rtm::glob_match;
using rtm::validate_glob;

TEST_CASE("glob: literals, stars and question marks") {
  CHECK(glob_match("message:updated", "message:updated"));
  CHECK_FALSE(glob_match("message:updated", "message:update"));
  CHECK(glob_match("message:*", "message:updated"));
  CHECK(glob_match("message:*", "message:"));
  CHECK_FALSE(glob_match("message:*", "session:update_verify"));
  CHECK(glob_match("*", "anything:at:all"));
  CHECK(glob_match("session:update_?????", "session:update_avail"));
  CHECK_FALSE(glob_match("session:update_?????", "session:update_verify"));
  CHECK(glob_match("session:update_??????", "session:update_verify"));
  CHECK_FALSE(glob_match("session:update_??????", "session:update_verify_"));
  CHECK(glob_match("session:update_?erify", "session:update_verify"));
  CHECK(glob_match("*:updated", "message:updated"));
  CHECK(glob_match("*a*b*c", "xxaxxbxxc"));
  CHECK_FALSE(glob_match("*a*b*c", "xxaxxcxxb"));
}

TEST_CASE("glob: character classes and escapes") {
  CHECK(glob_match("[ms]*", "message:updated"));
  CHECK(glob_match("[ms]*", "session:update_verify"));
  CHECK_FALSE(glob_match("[!ms]*", "session:update_verify"));
  CHECK(glob_match("[a-c]x", "bx"));
  CHECK_FALSE(glob_match("[a-c]x", "dx"));
  CHECK(glob_match("a\\*b", "a*b"));
  CHECK_FALSE(glob_match("a\\*b", "axb"));
}

TEST_CASE("glob: validation names what is wrong") {
  CHECK_FALSE(validate_glob("message:*").has_value());
  CHECK_FALSE(validate_glob("[abc]").has_value());
  REQUIRE(validate_glob("").has_value());
  REQUIRE(validate_glob("[abc").has_value());
  CHECK(validate_glob("[abc")->find("unterminated") != std::string::npos);
  REQUIRE(validate_glob("abc\\").has_value());
  REQUIRE(validate_glob("x[]").has_value());
}

TEST_CASE("glob: pathological patterns finish quickly") {
  const std::string text(2000, 'a');
  CHECK_FALSE(glob_match("*a*a*a*a*a*a*a*a*a*b", text));
}
