#include "util/log.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "support/stderr_capture.hpp"

namespace {

// What the logger wrote to stderr while `body` ran.
template <typename Body>
std::string captured_stderr(Body body) {
  rtm::test::stderr_capture capture;
  REQUIRE(capture.ok());
  body();
  capture.restore();
  return capture.text();
}

}  // namespace

TEST_CASE("text logs escape control characters in every field: server text cannot forge a journald entry") {
  namespace log = rtm::log;
  log::configure(log::level::info, log::format::text);
  // What a hostile server could put in a discovery error body, an `unauthorized` message or an event name.
  const std::string forged = "credentials refused\n<0>rtm-bridge: fake emergency\r\x1b[2J\tend\x7f";
  const std::string out = captured_stderr([&] {
    log::error("acme\n<0>x", "server said: ", forged);
    log::info("", "two\nlines");
  });
  CHECK(std::count(out.begin(), out.end(), '\n') == 2);  // one line per call, nothing more
  CHECK(out.find("\n<0>") == std::string::npos);
  CHECK(out.find("connection=acme\\n<0>x ") != std::string::npos);
  CHECK(out.find("server said: credentials refused\\n<0>rtm-bridge: fake emergency\\r\\x1b[2J\\tend\\x7f\n") !=
        std::string::npos);
  CHECK(out.find("two\\nlines\n") != std::string::npos);
  CHECK(out.find('\x1b') == std::string::npos);
  CHECK(out.find('\r') == std::string::npos);
  // UTF-8 and printable text pass untouched.
  const std::string plain = captured_stderr([] { rtm::log::info("c", "café \"quoted\" back\\slash"); });
  CHECK(plain.find("connection=c café \"quoted\" back\\slash\n") != std::string::npos);
}

TEST_CASE("json logs keep one entry per line whatever the message holds") {
  namespace log = rtm::log;
  log::configure(log::level::info, log::format::json);
  const std::string out = captured_stderr([] { log::warn("acme\n", "body: {\"error\":\"no\"}\n<0>forged\x1b"); });
  log::configure(log::level::info, log::format::text);
  CHECK(std::count(out.begin(), out.end(), '\n') == 1);
  CHECK(out.find("\"connection\":\"acme\\n\"") != std::string::npos);
  CHECK(out.find("\"msg\":\"body: {\\\"error\\\":\\\"no\\\"}\\n<0>forged\\u001b\"}\n") != std::string::npos);
}
