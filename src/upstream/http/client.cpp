#include "upstream/http/client.hpp"

// Beast 1.74's parser trips g++ 12's -Wmaybe-uninitialized (a boost::optional false positive) after inlining, where
// the system-header exemption no longer applies; it is silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <exception>
#include <type_traits>

#include "build_config.hpp"
#include "upstream/http/url.hpp"
#include "util/log.hpp"

namespace rtm::upstream::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

// One request, in the Beast client example's shape: on_resolve → on_connect → on_handshake (https) → on_write →
// on_read. A single deadline timer bounds the whole exchange: when it fires it closes the socket and the pending
// step fails. All on the io_context thread; handlers hold `self`.
template <typename Stream>
class fetch final : public operation, public std::enable_shared_from_this<fetch<Stream>> {
 public:
  fetch(asio::io_context& io, request req, url target, completion done, std::shared_ptr<asio::ssl::context> tls_context,
        std::shared_ptr<std::string> tls_failure)
      : req_(std::move(req)),
        url_(std::move(target)),
        done_(std::move(done)),
        tls_context_(std::move(tls_context)),
        tls_failure_(std::move(tls_failure)),
        resolver_(io),
        stream_(make_stream(io, tls_context_.get())),
        deadline_(io) {}

  void start() {
    request_.method(req_.method == "POST" ? bhttp::verb::post : bhttp::verb::get);
    request_.target(url_.target());
    request_.version(11);
    request_.set(bhttp::field::host, url_.host_header());
    request_.set(bhttp::field::user_agent, std::string("rtm-bridge/") + RTM_BRIDGE_VERSION);
    request_.set(bhttp::field::accept, "application/json");
    request_.set(bhttp::field::connection, "close");
    for (const auto& [name, value] : req_.headers) {
      request_.set(name, value);
    }
    if (!req_.body.empty() || request_.method() == bhttp::verb::post) {
      request_.set(bhttp::field::content_type, req_.content_type);
      request_.body() = std::move(req_.body);
      request_.prepare_payload();
    }
    parser_.body_limit(req_.body_limit);

    deadline_.expires_after(req_.timeout);
    deadline_.async_wait([self = this->shared_from_this()](const beast::error_code& ec) {
      if (ec) {
        return;  // cancelled: the exchange finished first
      }
      self->timed_out_ = true;
      self->close_socket();
      self->resolver_.cancel();
    });
    resolver_.async_resolve(
        url_.host, url_.port,
        [self = this->shared_from_this()](const beast::error_code& ec, const tcp::resolver::results_type& results) {
          self->on_resolve(ec, results);
        });
  }

  void cancel() noexcept override {
    cancelled_ = true;
    done_ = nullptr;
    deadline_.cancel();
    resolver_.cancel();
    close_socket();
  }

 private:
  static Stream make_stream(asio::io_context& io, asio::ssl::context* tls_context) {
    if constexpr (std::is_same_v<Stream, tls_stream>) {
      return Stream(io, *tls_context);
    } else {
      (void)tls_context;
      return Stream(io);
    }
  }

  void on_resolve(const beast::error_code& ec, const tcp::resolver::results_type& results) {
    if (ec) {
      return fail(ec, "resolve");
    }
    beast::get_lowest_layer(stream_).async_connect(
        results, [self = this->shared_from_this()](const beast::error_code& error, const tcp::endpoint&) {
          self->on_connect(error);
        });
  }

  void on_connect(const beast::error_code& ec) {
    if (ec) {
      return fail(ec, "connect");
    }
    if constexpr (std::is_same_v<Stream, tls_stream>) {
      if (!tls::set_server_name(stream_.native_handle(), url_.host)) {
        return finish(req_.method + " " + url_.to_string() + ": cannot set the TLS server name");
      }
      stream_.async_handshake(
          asio::ssl::stream_base::client,
          [self = this->shared_from_this()](const beast::error_code& error) { self->on_handshake(error); });
    } else {
      write();
    }
  }

  void on_handshake(const beast::error_code& ec) {
    if (ec) {
      return fail(ec, "TLS handshake");
    }
    write();
  }

  void write() {
    bhttp::async_write(stream_, request_, [self = this->shared_from_this()](const beast::error_code& ec, std::size_t) {
      self->on_write(ec);
    });
  }

  void on_write(const beast::error_code& ec) {
    if (ec) {
      return fail(ec, "write");
    }
    bhttp::async_read(
        stream_, buffer_, parser_,
        [self = this->shared_from_this()](const beast::error_code& error, std::size_t) { self->on_read(error); });
  }

  void on_read(const beast::error_code& ec) {
    if (ec) {
      return fail(ec, "read");
    }
    response reply;
    reply.status = parser_.get().result_int();
    reply.body = std::move(parser_.get().body());
    if (const auto it = parser_.get().find(bhttp::field::retry_after); it != parser_.get().end()) {
      reply.retry_after = std::string(it->value());
    }
    // "Connection: close" was asked for: no TLS close_notify exchange to wait on, the socket just goes.
    finish("", reply);
  }

  void fail(const beast::error_code& ec, const char* step) {
    if (timed_out_) {
      return finish(req_.method + " " + url_.to_string() + ": timed out after " + std::to_string(req_.timeout.count()) +
                    " ms (during " + step + ")");
    }
    std::string text = req_.method + " " + url_.to_string() + ": " + step + ": " + ec.message();
    if (tls_failure_ && !tls_failure_->empty()) {
      text += ": " + *tls_failure_;
    }
    if (ec == bhttp::error::body_limit) {
      text += " (more than " + std::to_string(req_.body_limit) + " bytes)";
    }
    finish(text);
  }

  void finish(const std::string& error_text, const response& reply = {}) {
    deadline_.cancel();
    close_socket();
    if (cancelled_ || !done_) {
      return;
    }
    auto done = std::move(done_);
    done_ = nullptr;
    try {
      done(error_text, reply);
    } catch (const std::exception& e) {
      // The completion must not throw; if it does anyway, it is reported here rather than unwinding through Asio.
      log::error("", "HTTP completion for ", url_.to_string(), " failed: ", e.what());
    }
  }

  void close_socket() noexcept {
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().close(ignored);
  }

  request req_;
  url url_;
  completion done_;
  std::shared_ptr<asio::ssl::context> tls_context_;
  std::shared_ptr<std::string> tls_failure_;  // https: why the server's certificate was refused, if it was
  tcp::resolver resolver_;
  Stream stream_;
  asio::steady_timer deadline_;
  beast::flat_buffer buffer_;
  bhttp::request<bhttp::string_body> request_;
  bhttp::response_parser<bhttp::string_body> parser_;
  bool timed_out_ = false;
  bool cancelled_ = false;
};

// A request that failed before it started (bad URL, TLS setup): reported later like any failure, still cancellable.
class failed_request final : public operation, public std::enable_shared_from_this<failed_request> {
 public:
  void report(asio::io_context& io, completion done, std::string text) {
    asio::post(io, [self = shared_from_this(), done = std::move(done), text = std::move(text)] {
      if (self->cancelled_) {
        return;
      }
      try {
        done(text, response{});
      } catch (const std::exception& e) {
        log::error("", "HTTP completion failed: ", e.what());
      }
    });
  }
  void cancel() noexcept override { cancelled_ = true; }

 private:
  bool cancelled_ = false;
};

std::shared_ptr<operation> fail_later(asio::io_context& io, completion done, std::string text) {
  auto op = std::make_shared<failed_request>();
  op->report(io, std::move(done), std::move(text));
  return op;
}

}  // namespace

std::shared_ptr<operation> async_request(asio::io_context& io, request req, completion done) {
  std::string error;
  auto target = parse_url(req.url, &error);
  if (target && target->scheme != "http" && target->scheme != "https") {
    error = "not an http:// or https:// URL";
    target.reset();
  }
  if (!target) {
    return fail_later(io, std::move(done), req.method + " " + req.url + ": " + error);
  }
  if (target->scheme == "https") {
    auto tls_failure = std::make_shared<std::string>();
    auto tls_context = tls::make_client_context(req.tls, target->host, error, tls_failure);
    if (!tls_context) {
      return fail_later(io, std::move(done), req.method + " " + target->to_string() + ": " + error);
    }
    auto op = std::make_shared<fetch<tls_stream>>(io, std::move(req), std::move(*target), std::move(done),
                                                  std::move(tls_context), std::move(tls_failure));
    op->start();
    return op;
  }
  auto op =
      std::make_shared<fetch<plain_stream>>(io, std::move(req), std::move(*target), std::move(done), nullptr, nullptr);
  op->start();
  return op;
}

}  // namespace rtm::upstream::http
