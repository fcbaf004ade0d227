#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tls/context.hpp"

// A small HTTP(S) client on Boost.Beast for the upstreams' REST calls (Acme endpoint discovery: GET; Slack
// rtm.connect: POST with a form body). Runs on the daemon's io_context with the connection's TLS settings and one
// deadline for the whole exchange. Every member and the completion run on the io_context's single thread.
namespace rtm::upstream::http {

struct request {
  std::string method = "GET";  // GET or POST
  std::string url;             // http:// or https://
  std::string content_type;    // with a body
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. Authorization: never logged
  tls::options tls;
  std::chrono::milliseconds timeout{10000};  // DNS, connect, TLS, request and response together
  std::size_t body_limit = std::size_t{1024} * 1024;
};

struct response {
  unsigned status = 0;
  std::string body;
  std::string retry_after;  // the Retry-After header as sent (HTTP 429/503), empty when absent
};

// `error_text` empty: `reply` is what the server answered, whatever its status. Otherwise the exchange failed
// (DNS, connect, TLS, timeout, malformed response) and the text says so without any header value.
using completion = std::function<void(std::string_view error_text, const response& reply)>;

// A request in flight. Dropping the handle does not cancel it; cancel() does.
class operation {
 public:
  operation() = default;
  operation(const operation&) = delete;
  operation& operator=(const operation&) = delete;
  operation(operation&&) = delete;
  operation& operator=(operation&&) = delete;
  virtual ~operation() = default;

  // Closes the socket; the completion is never called after this.
  virtual void cancel() noexcept = 0;
};

// Starts the request. The completion runs exactly once (unless cancelled), always later from the io_context, never from
// inside async_request.
[[nodiscard]] std::shared_ptr<operation> async_request(boost::asio::io_context& io, request req, completion done);

}  // namespace rtm::upstream::http
