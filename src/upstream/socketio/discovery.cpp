#include "upstream/socketio/discovery.hpp"

#include <simdjson.h>

#include "upstream/http/url.hpp"

namespace rtm::upstream::socketio {

std::string discovery_url(std::string_view api_url, std::string_view tier) {
  while (!api_url.empty() && api_url.back() == '/') {
    api_url.remove_suffix(1);
  }
  std::string out(api_url);
  out += '/';
  out += tier;
  out += "/connect/endpoints";
  return out;
}

std::optional<std::string> parse_discovery(std::string_view body, std::string& error) {
  namespace od = simdjson::ondemand;
  // Once per (re)connect: a padded copy is cheaper to reason about than borrowing the HTTP body's capacity.
  const simdjson::padded_string padded(body);
  od::parser parser;
  od::document doc;
  std::string_view app;
  if (parser.iterate(padded).get(doc)) {
    error = "the endpoint discovery response is not JSON";
    return std::nullopt;
  }
  const auto result = doc.at_pointer("/data/socket/app").get_string().get(app);
  if (result == simdjson::NO_SUCH_FIELD || result == simdjson::INCORRECT_TYPE) {
    error = "the endpoint discovery response has no data.socket.app string (is the token valid for this tier?)";
    return std::nullopt;
  }
  if (result) {
    error = std::string("the endpoint discovery response is not valid JSON: ") + simdjson::error_message(result);
    return std::nullopt;
  }
  if (app.empty()) {
    error = "the endpoint discovery response has an empty data.socket.app";
    return std::nullopt;
  }
  return std::string(app);
}

std::optional<std::string> engine_url(std::string_view endpoint, int protocol, std::string& error) {
  auto parsed = http::parse_url(endpoint, &error);
  if (!parsed) {
    return std::nullopt;
  }
  if (parsed->scheme == "http") {
    parsed->scheme = "ws";
  } else if (parsed->scheme == "https") {
    parsed->scheme = "wss";
  }
  if (!parsed->query.empty() && parsed->query.back() != '&') {
    parsed->query += '&';
  }
  parsed->query += protocol == 3 ? "EIO=3" : "EIO=4";
  parsed->query += "&transport=websocket";
  return parsed->to_string();
}

}  // namespace rtm::upstream::socketio
