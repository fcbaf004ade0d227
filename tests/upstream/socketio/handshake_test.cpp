#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "upstream/http/url.hpp"
#include "upstream/socketio/acme_events.hpp"
#include "upstream/socketio/discovery.hpp"

namespace http = rtm::upstream::http;
namespace sio = rtm::upstream::socketio;

TEST_CASE("url parsing") {
  auto u = http::parse_url("wss://RTM.acme.com/");
  REQUIRE(u);
  CHECK(u->scheme == "wss");
  CHECK(u->host == "rtm.acme.com");
  CHECK(u->port == "443");
  CHECK(u->path == "/");
  CHECK(u->secure());
  CHECK(u->host_header() == "rtm.acme.com");

  u = http::parse_url("http://127.0.0.1:8080/v1/user/connect/endpoints?a=1#frag");
  REQUIRE(u);
  CHECK(u->port == "8080");
  CHECK(u->target() == "/v1/user/connect/endpoints?a=1");
  CHECK(u->host_header() == "127.0.0.1:8080");
  CHECK_FALSE(u->secure());

  u = http::parse_url("ws://[::1]:9000");
  REQUIRE(u);
  CHECK(u->host == "::1");
  CHECK(u->path == "/");
  CHECK(u->to_string() == "ws://[::1]:9000/");

  std::string error;
  CHECK_FALSE(http::parse_url("rtm.acme.com", &error));
  CHECK_FALSE(error.empty());
  CHECK_FALSE(http::parse_url("ftp://x/", &error));
  CHECK_FALSE(http::parse_url("wss://user:pass@x/", &error));
  CHECK(error.find("user info") != std::string::npos);
  CHECK_FALSE(http::parse_url("wss://x:0/"));
  CHECK_FALSE(http::parse_url("wss://x:65536/"));
  CHECK_FALSE(http::parse_url("wss://x:port/"));
  CHECK_FALSE(http::parse_url("wss:///path"));
  CHECK_FALSE(http::parse_url("wss://[::1/"));
}

TEST_CASE("base64 and basic authorization") {
  CHECK(http::base64_encode("").empty());
  CHECK(http::base64_encode("f") == "Zg==");
  CHECK(http::base64_encode("fo") == "Zm8=");
  CHECK(http::base64_encode("foo") == "Zm9v");
  CHECK(http::base64_encode("foobar") == "Zm9vYmFy");
  CHECK(http::base64_encode(std::string("\xff\xfe\x00", 3)) == "//4A");
  CHECK(http::basic_authorization("Aladdin", "open sesame") == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
}

TEST_CASE("engine.io URL: the endpoint's own path, query preserved, EIO revision") {
  std::string error;
  CHECK(sio::engine_url("wss://rtm.acme.com/", 4, error) == "wss://rtm.acme.com/?EIO=4&transport=websocket");
  CHECK(sio::engine_url("wss://rtm.acme.com", 3, error) == "wss://rtm.acme.com/?EIO=3&transport=websocket");
  CHECK(sio::engine_url("ws://127.0.0.1:3000/rtm/?region=eu#x", 4, error) ==
        "ws://127.0.0.1:3000/rtm/?region=eu&EIO=4&transport=websocket");
  CHECK(sio::engine_url("https://relay.acme.com:8443/", 4, error) ==
        "wss://relay.acme.com:8443/?EIO=4&transport=websocket");
  CHECK(sio::engine_url("http://relay.acme.com/", 4, error) == "ws://relay.acme.com/?EIO=4&transport=websocket");
  CHECK_FALSE(sio::engine_url("rtm.acme.com", 4, error));
}

TEST_CASE("endpoint discovery: URL and response") {
  CHECK(sio::discovery_url("https://api.acme.com/v1", "user") == "https://api.acme.com/v1/user/connect/endpoints");
  CHECK(sio::discovery_url("https://api.acme.com/v1/", "app") == "https://api.acme.com/v1/app/connect/endpoints");
  std::string error;
  CHECK(
      sio::parse_discovery(
          R"({"error":false,"reason":"resolved","data":{"socket":{"app":"wss://relay.acme.com/"},"rescue":{"socket":{"app":"wss://rescue/"}}}})",
          error) == "wss://relay.acme.com/");
  CHECK_FALSE(sio::parse_discovery(R"({"error":false,"data":{}})", error));
  CHECK(error.find("data.socket.app") != std::string::npos);
  CHECK_FALSE(sio::parse_discovery(R"({"data":{"socket":{"app":5}}})", error));
  CHECK_FALSE(sio::parse_discovery(R"({"data":{"socket":{"app":""}}})", error));
  CHECK_FALSE(sio::parse_discovery("<html>", error));
  CHECK_FALSE(sio::parse_discovery("", error));
}

TEST_CASE("subscription list from the configured globs") {
  const auto all = sio::subscription({});
  CHECK(all.size() == sio::known_events().size());
  CHECK(std::find(all.begin(), all.end(), "session:update_availability") != all.end());
  CHECK(std::find(all.begin(), all.end(), "plan:subscription:updated") != all.end());

  // A glob: its known matches, never itself (a server that checks names could refuse it); exact names as they are.
  const auto some = sio::subscription({"session:update_*", "message:updated", "custom:event"});
  CHECK(some == std::vector<std::string>{"session:update_availability", "session:update_verify", "message:updated",
                                         "custom:event"});
  const auto duplicates = sio::subscription({"message:updated", "message:*"});
  CHECK(std::count(duplicates.begin(), duplicates.end(), "message:updated") == 1);
  // A glob that matches nothing known is not sent verbatim: it subscribes nothing, and is warned about.
  CHECK(sio::subscription({"nothing:*"}).empty());
  CHECK(sio::subscription({"nothing:*", "custom:event"}) == std::vector<std::string>{"custom:event"});
  const auto messages = sio::subscription({"message:*"});
  CHECK(std::find(messages.begin(), messages.end(), "message:*") == messages.end());
  CHECK(sio::globs_matching_nothing_known({"nothing:*", "message:*", "exact:name", "x?"}) ==
        std::vector<std::string>{"nothing:*", "x?"});
  CHECK(sio::globs_matching_nothing_known({}).empty());
  CHECK(sio::is_glob("a*"));
  CHECK(sio::is_glob("a?"));
  CHECK(sio::is_glob("[ab]"));
  CHECK_FALSE(sio::is_glob("message:updated"));
}
