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
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <list>
#include <optional>
#include <stdexcept>

#include "util/log.hpp"

namespace rtm::metrics {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

// A connection may sit idle (before its first request, or between keep-alive requests) for idle_timeout; once the
// first byte of a request has arrived, reading it and writing the answer must finish within request_deadline.
// Scrapers and probes send a whole request at once, so both are short: a client that opens connections and sends
// nothing, or drips a request, cannot hold a session for long.
constexpr std::chrono::seconds idle_timeout{2};
constexpr std::chrono::seconds request_deadline{5};
// accept(2) failing (EMFILE when descriptors run out, ENFILE, ENOBUFS) fails again at once if retried at once: the
// pending connection stays queued. Retry after a pause that doubles up to a second, so the loop does not spin.
constexpr std::chrono::milliseconds accept_retry_first{50};
constexpr std::chrono::milliseconds accept_retry_max{1000};

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

class session;

}  // namespace

struct http_server::state : std::enable_shared_from_this<http_server::state> {
  state(boost::asio::io_context& io_ctx, const registry& reg, readiness_probe p, extra_metrics e)
      : io(io_ctx), acceptor(io_ctx), accept_timer(io_ctx), metrics(reg), probe(std::move(p)), extra(std::move(e)) {}

  boost::asio::io_context& io;
  tcp::acceptor acceptor;
  boost::asio::steady_timer accept_timer;  // the pause after a failed accept
  const registry& metrics;
  readiness_probe probe;
  extra_metrics extra;
  std::size_t sessions = 0;  // counted sessions: an evicted one stops counting at once, before it is destroyed
  // Sessions waiting for a request, oldest first: the eviction candidates. Each session removes its own entry.
  std::list<std::weak_ptr<session>> waiting;
  std::chrono::milliseconds accept_retry{0};  // 0: the last accept succeeded
  std::uint64_t accept_failures = 0;          // in the current run of failures, for the recovery log line
  bool stopped = false;

  void accept();
  void on_accept(const boost::system::error_code& ec, tcp::socket socket);
  // Makes room for a new connection when every session is taken; false if none can be evicted.
  bool evict_oldest_waiting();
  http::response<http::string_body> respond(const http::request<http::string_body>& req) const;
};

namespace {

// One client connection: wait (idle_timeout) for a request to begin, read it and answer it (request_deadline), repeat
// while keep-alive. Runs on the io_context thread, like everything here.
class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket socket, std::shared_ptr<http_server::state> server)
      : stream_(std::move(socket)), server_(std::move(server)) {}
  session(const session&) = delete;
  session& operator=(const session&) = delete;
  session(session&&) = delete;
  session& operator=(session&&) = delete;
  ~session() {
    stop_waiting();
    uncount();
  }

  void start() { do_read(); }

  // Closes the connection to make room for a newer one; the pending read completes with an error and ends it.
  void evict() {
    stop_waiting();
    uncount();
    stream_.close();
  }

 private:
  void do_read() {
    request_ = {};
    waiting_ = server_->waiting.insert(server_->waiting.end(), weak_from_this());
    if (buffer_.size() > 0) {
      return read_request();  // a pipelined request is already here
    }
    // Idle until the first byte: read_some returns as soon as anything arrives.
    stream_.expires_after(idle_timeout);
    stream_.async_read_some(buffer_.prepare(first_read_size),
                            [self = shared_from_this()](const beast::error_code& ec, std::size_t n) {
                              if (ec) {
                                return self->close();
                              }
                              self->buffer_.commit(n);
                              self->read_request();
                            });
  }

  void read_request() {
    deadline_ = std::chrono::steady_clock::now() + request_deadline;
    stream_.expires_at(deadline_);
    http::async_read(stream_, buffer_, request_,
                     [self = shared_from_this()](const beast::error_code& ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(const beast::error_code& ec) {
    stop_waiting();
    if (ec) {
      return close();  // end of stream, timeout or a malformed request: nothing worth logging above debug
    }
    response_ = server_->respond(request_);
    stream_.expires_at(deadline_);
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
    stop_waiting();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  void stop_waiting() noexcept {
    if (waiting_) {
      server_->waiting.erase(*waiting_);
      waiting_.reset();
    }
  }

  void uncount() noexcept {
    if (counted_) {
      counted_ = false;
      --server_->sessions;
    }
  }

  static constexpr std::size_t first_read_size = 1024;

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
  std::shared_ptr<http_server::state> server_;
  std::optional<std::list<std::weak_ptr<session>>::iterator> waiting_;  // our entry in server_->waiting
  std::chrono::steady_clock::time_point deadline_;
  bool counted_ = true;  // in server_->sessions (the server counts a session before starting it)
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
    ++accept_failures;
    if (accept_retry.count() == 0) {
      // Once per run of failures: retrying is the remedy, a line per retry would flood the log.
      log::warn("", "metrics endpoint: accept failed: ", ec.message(),
                "; retrying with back-off (if it says too many open files, raise LimitNOFILE or ulimit -n)");
      accept_retry = accept_retry_first;
    } else {
      accept_retry = std::min(accept_retry * 2, accept_retry_max);
    }
    accept_timer.expires_after(accept_retry);
    accept_timer.async_wait([self = shared_from_this()](const boost::system::error_code& tec) {
      if (!tec && !self->stopped) {
        self->accept();
      }
    });
    return;
  }
  if (accept_retry.count() != 0) {
    log::info("", "metrics endpoint: accepting again after ", accept_failures, " failed accept(s)");
    accept_retry = std::chrono::milliseconds{0};
    accept_failures = 0;
  }
  if (sessions >= http_server::max_sessions && !evict_oldest_waiting()) {
    boost::system::error_code ignored;
    socket.close(ignored);
  } else {
    ++sessions;
    std::make_shared<session>(std::move(socket), shared_from_this())->start();
  }
  accept();
}

bool http_server::state::evict_oldest_waiting() {
  while (!waiting.empty()) {
    const auto oldest = waiting.front().lock();
    if (oldest) {
      oldest->evict();  // removes its own entry
      return true;
    }
    waiting.pop_front();
  }
  return false;
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
  state_->accept_timer.cancel();
  boost::system::error_code ignored;
  state_->acceptor.close(ignored);
}

unsigned short http_server::port() const noexcept {
  boost::system::error_code ec;
  const auto ep = state_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

}  // namespace rtm::metrics
