#include <doctest/doctest.h>

#include <string>

#include <cstring>
#include "spool/crc32c.hpp"
#include "spool/format.hpp"

using namespace rtm::spool;

TEST_CASE("crc32c gives the Castagnoli check value, in one go or in pieces") {
  CHECK(crc32c("123456789") == 0xE3069283U);
  CHECK(crc32c("") == 0U);
  const std::string long_text(1000, 'x');
  CHECK(crc32c(long_text.substr(500), crc32c(long_text.substr(0, 500))) == crc32c(long_text));
  // 32 bytes of zeros, RFC 3720 B.4.
  CHECK(crc32c(std::string(32, '\0')) == 0x8A9136AAU);
}

TEST_CASE("a frame decodes to what was encoded, and every single-byte flip is caught") {
  std::string buf;
  encode_frame(buf, 42, 1700000000123456789, 0, R"({"hello":"world"})");
  frame_view f;
  REQUIRE(decode_frame(buf, f) == decode_status::ok);
  CHECK(f.seq == 42);
  CHECK(f.received_at_ns == 1700000000123456789);
  CHECK(f.payload == R"({"hello":"world"})");
  CHECK(f.size == buf.size());
  for (std::size_t i = 0; i < buf.size(); ++i) {
    std::string bad = buf;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    frame_view g;
    const decode_status st = decode_frame(bad, g);
    CAPTURE(i);
    CHECK(st != decode_status::ok);
  }
}

TEST_CASE("a cut frame is incomplete, not corrupt") {
  std::string buf;
  encode_frame(buf, 7, 1, 0, std::string(100, 'a'));
  for (std::size_t n = 0; n < buf.size(); ++n) {
    frame_view f;
    CAPTURE(n);
    CHECK(decode_frame(std::string_view(buf).substr(0, n), f) == decode_status::incomplete);
  }
}

TEST_CASE("a length beyond max_payload is refused without reading on") {
  std::string buf;
  encode_frame(buf, 1, 1, 0, "x");
  const std::uint32_t huge = 0xFFFFFFF0U;
  std::memcpy(buf.data() + 4, &huge, 4);
  frame_view f;
  CHECK(decode_frame(buf, f) == decode_status::bad_length);
}

TEST_CASE("find_next_frame skips garbage and a magic inside a payload") {
  std::string buf = "garbage";
  std::string fake;
  encode_frame(fake, 1, 1, 0, "fake");
  buf += fake.substr(0, 10);  // a magic and a prefix that do not check
  const std::size_t real_at = buf.size();
  encode_frame(buf, 2, 2, 0, "real");
  CHECK(find_next_frame(buf, 0) == real_at);
  CHECK(find_next_frame(buf, real_at + 1) == std::string_view::npos);
}

TEST_CASE("segment file names sort by their first sequence number and parse back") {
  CHECK(segment_file_name(1) == "00000000000000000001.seg");
  std::uint64_t first = 0;
  CHECK(parse_segment_file_name("00000000000000012345.seg", first));
  CHECK(first == 12345);
  CHECK_FALSE(parse_segment_file_name("0000000000000001234.seg", first));
  CHECK_FALSE(parse_segment_file_name("00000000000000012345.tmp", first));
  CHECK_FALSE(parse_segment_file_name("0000000000000001234x.seg", first));
  CHECK(segment_file_name(9) < segment_file_name(10));
}
