#include "util/json_scan.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace json = rtm::json;

TEST_CASE("json_scan: every text the RFC 8259 grammar allows is valid, nothing else") {
  for (const std::string_view good :
       {"1", "-0", "0.5e+3", "1E-7", R"("\ud83d")", R"("\udc00\ud83d")", "[]", "{}",
        " [ 1 , {\"a\" : [true,false,null]} ] ", R"({"a":{"b":{}}})", R"("\u0000")", "123456789012345678901234567890",
        "1e999999", "[[[]]]", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"", R"("\"\\\/\b\f\n\r\t")"}) {
    CHECK_MESSAGE(json::valid(good), good);
  }
  for (const std::string_view bad : {"",
                                     "  ",
                                     "01",
                                     "1.",
                                     "-",
                                     "+1",
                                     ".5",
                                     "1e",
                                     "1e+",
                                     "[1,]",
                                     R"({"a":1,})",
                                     R"({"a"})",
                                     "{1:2}",
                                     "[1 2]",
                                     "\"abc",
                                     R"("\x")",
                                     R"("\u12")",
                                     R"("\u12G4")",
                                     "tru",
                                     "nul",
                                     "[",
                                     "]",
                                     R"({"a":1}})",
                                     "1 2",
                                     "[1]x",
                                     "{,}",
                                     "[,]",
                                     "\"a\nb\"",
                                     "\"\xed\xa0\x80\"",
                                     "\"\xf4\x90\x80\x80\"",
                                     "\"\x80\"",
                                     "\"\xc3\"",
                                     "\"\xc0\xaf\"",
                                     "\"\xe0\x80\xaf\"",
                                     "\"\xf0\x80\x80\xaf\"",
                                     "\xef\xbb\xbf{}"}) {
    CHECK_FALSE_MESSAGE(json::valid(bad), bad);
  }
}

TEST_CASE("json_scan: nesting is bounded, without recursion") {
  std::string deep(json::max_depth, '[');
  deep.append(json::max_depth, ']');
  CHECK(json::valid(deep));
  CHECK_FALSE(json::valid("[" + deep + "]"));
  std::string deeper(100000, '[');
  CHECK_FALSE(json::valid(deeper));
  CHECK(json::value_end("[[1]]", 0, 2) == 5);
  CHECK(json::value_end("[[1]]", 0, 1) == json::npos);
}

TEST_CASE("json_scan: string values are unescaped to UTF-8, lone surrogates as U+FFFD, copies only when escaped") {
  std::string scratch;
  const std::string_view plain = R"("plain text")";
  const std::string_view value = json::string_value(plain, scratch);
  CHECK(value == "plain text");
  CHECK(value.data() == plain.data() + 1);
  CHECK(json::string_value(R"("a\n\u00e9\ud83d\ude00\ud83d\/x\udc00")", scratch) ==
        "a\n\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbd/x\xef\xbf\xbd");
  CHECK(json::string_value(R"("\ud83d\u0041")", scratch) ==
        "\xef\xbf\xbd"
        "A");
}

TEST_CASE("json_scan: integers from number tokens") {
  std::int64_t i = 0;
  std::uint64_t u = 0;
  CHECK(json::to_int64("-9223372036854775808", i));
  CHECK(i == std::numeric_limits<std::int64_t>::min());
  CHECK_FALSE(json::to_int64("9223372036854775808", i));
  CHECK(json::to_int64("42", i));
  CHECK(i == 42);
  CHECK_FALSE(json::to_uint64("1.0", u));
  CHECK_FALSE(json::to_uint64("1e3", u));
  CHECK_FALSE(json::to_uint64("-1", u));
  CHECK(json::to_uint64("18446744073709551615", u));
  CHECK(u == std::numeric_limits<std::uint64_t>::max());
  CHECK_FALSE(json::to_uint64("18446744073709551616", u));
}

TEST_CASE("json_scan: the reader walks members and elements, validating each") {
  const std::string_view object_text = R"({"a":1, "b" : [2], "c":{}} )";
  json::reader object(object_text, 0);
  std::string_view key;
  std::string_view value;
  REQUIRE(object.next(value, &key));
  CHECK(key == R"("a")");
  CHECK(value == "1");
  REQUIRE(object.next(value, &key));
  CHECK(key == R"("b")");
  CHECK(value == "[2]");
  REQUIRE(object.next(value, &key));
  CHECK(value == "{}");
  CHECK_FALSE(object.next(value, &key));
  CHECK(object.done());
  CHECK(object.end() == object_text.size() - 1);

  json::reader open_array("[1,2,", 0);
  while (open_array.next(value)) {
  }
  CHECK(open_array.failed());
  json::reader bad_element("[1,tru]", 0);
  while (bad_element.next(value)) {
  }
  CHECK(bad_element.failed());
  json::reader empty("[ ]", 0);
  CHECK_FALSE(empty.next(value));
  CHECK(empty.done());
  CHECK(empty.end() == 3);

  // A caller may validate an element itself (here: a nested reader) and report where it ended.
  const std::string_view nested_text = R"([{"k":"v"},3])";
  json::reader outer(nested_text, 0);
  REQUIRE(outer.advance());
  json::reader inner(nested_text, outer.at(), outer.child_budget());
  while (inner.next(value, &key)) {
  }
  REQUIRE(inner.done());
  CHECK(outer.finish(inner.end()));
  REQUIRE(outer.next(value));
  CHECK(value == "3");
  CHECK_FALSE(outer.next(value));
  CHECK(outer.done());
}
