#include "metrics/http_server.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
// g++ 12 reports a false -Wmaybe-uninitialized inside Beast's request parser (boost::optional in basic_parser) once
// it is inlined here; the warning is about Boost's code, not ours.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <boost/beast/http.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#include <chrono>
#include <stdexcept>

#include "util/log.hpp"

namespace rtm::metrics {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

constexpr std::chrono::seconds request_timeout{10};
constexpr std::size_t max_sessions = 64;  // scrapers and probes are few; this bounds a misbehaving client

tcp::endpoint parse_listen(boost::asio::io_context& io, const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size()) {
    throw std::runtime_error("metrics.listen \"" + listen + "\": expected host:port");
  }
  std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(host, ec);
  if (!ec) {
    return {address, static_cast<unsigned short>(std::stoul(port))};
  }
  // A host name: resolved once at start-up, which is before the loop serves anything.
  tcp::resolver resolver(io);
  const auto results = resolver.resolve(host, port, ec);
  if (ec || results.empty()) {
    throw std::runtime_error("metrics.listen \"" + listen + "\": cannot resolve " + host + ": " + ec.message());
  }
  return results.begin()->endpoint();
}

}  // namespace

struct http_server::state : std::enable_shared_from_this<http_server::state> {
  state(boost::asio::io_context& io_ctx, const registry& reg, readiness_probe p, extra_metrics e)
      : io(io_ctx), acceptor(io_ctx), metrics(reg), probe(std::move(p)), extra(std::move(e)) {}

  boost::asio::io_context& io;
  tcp::acceptor acceptor;
  const registry& metrics;
  readiness_probe probe;
  extra_metrics extra;
  std::size_t sessions = 0;
  bool stopped = false;

  void accept();
  void on_accept(const boost::system::error_code& ec, tcp::socket socket);
  http::response<http::string_body> respond(const http::request<http::string_body>& req) const;
};

namespace {

// One client connection: read a request, answer it, repeat while keep-alive; a timeout on every read and write.
class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket socket, std::shared_ptr<http_server::state> server)
      : stream_(std::move(socket)), server_(std::move(server)) {}
  session(const session&) = delete;
  session& operator=(const session&) = delete;
  session(session&&) = delete;
  session& operator=(session&&) = delete;
  ~session() { --server_->sessions; }

  void start() { do_read(); }

 private:
  void do_read() {
    request_ = {};
    stream_.expires_after(request_timeout);
    http::async_read(stream_, buffer_, request_,
                     [self = shared_from_this()](const beast::error_code& ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(const beast::error_code& ec) {
    if (ec) {
      return close();  // end of stream, timeout or a malformed request: nothing worth logging above debug
    }
    response_ = server_->respond(request_);
    stream_.expires_after(request_timeout);
    http::async_write(stream_, response_,
                      [self = shared_from_this()](const beast::error_code& wec, std::size_t) { self->on_write(wec); });
  }

  void on_write(const beast::error_code& ec) {
    if (ec || !response_.keep_alive() || server_->stopped) {
      return close();
    }
    do_read();
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
  std::shared_ptr<http_server::state> server_;
};

}  // namespace

void http_server::state::accept() {
  acceptor.async_accept([self = shared_from_this()](const boost::system::error_code& ec, tcp::socket socket) {
    self->on_accept(ec, std::move(socket));
  });
}

void http_server::state::on_accept(const boost::system::error_code& ec, tcp::socket socket) {
  if (stopped || ec == boost::asio::error::operation_aborted) {
    return;
  }
  if (ec) {
    log::warn("", "metrics endpoint: accept failed: ", ec.message());
  } else if (sessions >= max_sessions) {
    boost::system::error_code ignored;
    socket.close(ignored);
  } else {
    ++sessions;
    std::make_shared<session>(std::move(socket), shared_from_this())->start();
  }
  accept();
}

http::response<http::string_body> http_server::state::respond(const http::request<http::string_body>& req) const {
  http::response<http::string_body> res;
  res.version(req.version());
  res.keep_alive(req.keep_alive());
  res.set(http::field::server, "rtm-bridge");
  const auto target = req.target();
  const auto path = target.substr(0, target.find('?'));
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    res.result(http::status::method_not_allowed);
    res.set(http::field::allow, "GET, HEAD");
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = "only GET and HEAD\n";
  } else if (path == "/metrics") {
    res.result(http::status::ok);
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = metrics.render();
    if (extra) {
      res.body() += extra();
    }
  } else if (path == "/healthz") {
    res.result(http::status::ok);
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = "ok\n";
  } else if (path == "/readyz") {
    const readiness r = probe ? probe() : readiness{true, {}};
    res.result(r.ready ? http::status::ok : http::status::service_unavailable);
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = r.ready ? "ready\n" : "not ready\n" + r.detail;
  } else {
    res.result(http::status::not_found);
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = "not found: try /metrics, /healthz or /readyz\n";
  }
  if (req.method() == http::verb::head) {
    res.content_length(res.body().size());
    res.body().clear();
  }
  res.prepare_payload();
  return res;
}

http_server::http_server(boost::asio::io_context& io, const std::string& listen, const registry& metrics,
                         readiness_probe probe, extra_metrics extra)
    : state_(std::make_shared<state>(io, metrics, std::move(probe), std::move(extra))) {
  const tcp::endpoint endpoint = parse_listen(io, listen);
  boost::system::error_code ec;
  state_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) {
    state_->acceptor.set_option(boost::asio::socket_base::reuse_address(true), ec);
  }
  if (!ec) {
    state_->acceptor.bind(endpoint, ec);
  }
  if (!ec) {
    state_->acceptor.listen(boost::asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    throw std::runtime_error("metrics.listen \"" + listen + "\": cannot listen: " + ec.message());
  }
}

http_server::~http_server() {
  stop();
}

void http_server::start() {
  log::info("", "metrics endpoint on http://", state_->acceptor.local_endpoint().address().to_string(), ':', port(),
            "/metrics (also /healthz, /readyz)");
  state_->accept();
}

void http_server::stop() noexcept {
  state_->stopped = true;
  boost::system::error_code ignored;
  state_->acceptor.close(ignored);
}

unsigned short http_server::port() const noexcept {
  boost::system::error_code ec;
  const auto ep = state_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

}  // namespace rtm::metrics
