#pragma once

// The websocketpp side of ws::client: one implementation per websocketpp config (ws:// and wss://). Internal to
// upstream/ws: included by client.cpp only (C++17).
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <exception>
#include <memory>
#include <string>
#include <system_error>

#include "build_config.hpp"
#include "upstream/ws/client.hpp"
#include "upstream/ws/websocketpp_setup.hpp"

namespace rtm::upstream::ws {

// The type-erased side of client: one implementation per websocketpp config (ws:// and wss://).
class client::impl {
 public:
  impl() = default;
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;
  impl(impl&&) = delete;
  impl& operator=(impl&&) = delete;
  virtual ~impl() = default;

  virtual void open() = 0;
  virtual void send_view(std::string_view text) = 0;
  virtual void send_ping(std::string payload) = 0;
  virtual void close(int code, std::string reason) = 0;
  virtual void abort(std::string error_text) = 0;
  virtual void pause_reading() = 0;
  virtual void resume_reading() = 0;
  // The owning client is gone: call no handler again and drop the connection.
  virtual void detach() = 0;
  [[nodiscard]] virtual bool is_open() const noexcept = 0;
};

namespace detail {

// Lifetimes: the client owns the impl (shared_ptr); the impl owns the websocketpp endpoint and the current
// connection. websocketpp's own pending handlers keep the connection alive, and the handlers we install on the
// connection keep the endpoint alive (websocketpp binds raw endpoint pointers into its connect handlers), while they
// reach the impl only through a weak_ptr. So destroying the client never leaves a dangling pointer on either side.
template <typename Config>
class impl_t final : public client::impl, public std::enable_shared_from_this<impl_t<Config>> {
 public:
  using endpoint_type = websocketpp::client<Config>;
  using connection_ptr = typename endpoint_type::connection_ptr;
  using message_ptr = typename endpoint_type::message_ptr;

  impl_t(boost::asio::io_context& io, options opts, std::weak_ptr<handler> events)
      : io_(io), opts_(std::move(opts)), handler_(std::move(events)), open_timer_(io), close_timer_(io) {}

  impl_t(const impl_t&) = delete;
  impl_t& operator=(const impl_t&) = delete;
  impl_t(impl_t&&) = delete;
  impl_t& operator=(impl_t&&) = delete;
  ~impl_t() override = default;

  void open() override {
    if (state_ != state::idle) {
      return;
    }
    state_ = state::connecting;
    try {
      start();
    } catch (const std::exception& e) {
      release_and_drop();
      fail_soon("cannot open " + display_url() + ": " + e.what());
    }
  }

  void start() {
    endpoint_ = std::make_shared<endpoint_type>();
    endpoint_->clear_access_channels(websocketpp::log::alevel::all);
    endpoint_->clear_error_channels(websocketpp::log::elevel::all);
    websocketpp::lib::error_code ec;
    endpoint_->init_asio(&io_, ec);
    if (ec) {
      fail_soon("cannot set up the WebSocket client: " + ec.message());
      return;
    }
    endpoint_->set_user_agent(opts_.user_agent.empty() ? std::string("rtm-bridge/") + RTM_BRIDGE_VERSION
                                                       : opts_.user_agent);
    std::string error;
    if (!prepare_transport(error)) {
      fail_soon(std::move(error));
      return;
    }
    connection_ptr con = endpoint_->get_connection(opts_.url, ec);
    if (ec || !con) {
      fail_soon("cannot connect to " + display_url() + ": " + (ec ? ec.message() : std::string("invalid URL")));
      return;
    }
    for (const auto& [name, value] : opts_.headers) {
      con->replace_header(name, value);
    }
    con->set_max_message_size(opts_.max_message_size);
    // Our own open timer (below) is the authority and names the phase; websocketpp's is a backstop.
    con->set_open_handshake_timeout(static_cast<long>((opts_.open_timeout + std::chrono::seconds(1)).count()));
    con->set_close_handshake_timeout(static_cast<long>((opts_.close_grace + std::chrono::seconds(1)).count()));
    install_handlers(con);
    con_ = con;

    open_timer_.expires_after(opts_.open_timeout);
    open_timer_.async_wait([weak = this->weak_from_this()](const boost::system::error_code& error) {
      if (error) {
        return;  // cancelled: the open completed or failed first
      }
      if (auto self = weak.lock()) {
        self->on_open_timeout();
      }
    });
    endpoint_->connect(con);
  }

  void send_view(std::string_view text) override {
    if ((state_ != state::open && state_ != state::draining) || !con_) {
      return;
    }
    const websocketpp::lib::error_code ec = con_->send(text.data(), text.size(), websocketpp::frame::opcode::text);
    if (ec) {
      abort("cannot send on the WebSocket: " + ec.message());
    }
  }

  void send_ping(std::string payload) override {
    if (state_ != state::open || !con_) {
      return;
    }
    websocketpp::lib::error_code ec;
    con_->ping(payload, ec);
    if (ec) {
      abort("cannot send a ping on the WebSocket: " + ec.message());
    }
  }

  // A close we start drains first: for options::drain_grace the connection stays open for reading and every frame
  // that arrives is delivered (the server's frames already on their way, and whatever is waiting in our receive
  // buffer while reading was paused), then the close handshake begins. The peer closing meanwhile ends it early.
  void close(int code, std::string reason) override {
    if (state_ == state::connecting) {
      abort("closed before the WebSocket opened");
      return;
    }
    if (state_ != state::open) {
      return;
    }
    close_code_ = code;
    close_reason_ = std::move(reason);
    if (opts_.drain_grace <= std::chrono::milliseconds::zero()) {
      begin_close_handshake();
      return;
    }
    state_ = state::draining;
    // A paused reader would deliver nothing of what the server already sent.
    resume_reading();
    close_timer_.expires_after(opts_.drain_grace);
    close_timer_.async_wait([weak = this->weak_from_this()](const boost::system::error_code& error) {
      if (error) {
        return;
      }
      if (auto self = weak.lock()) {
        self->guarded([self] { self->begin_close_handshake(); });
      }
    });
  }

  void begin_close_handshake() {
    if (state_ != state::open && state_ != state::draining) {
      return;
    }
    state_ = state::closing;
    // A paused reader would never see the peer's close frame.
    resume_reading();
    websocketpp::lib::error_code ec;
    con_->close(static_cast<websocketpp::close::status::value>(close_code_), close_reason_, ec);
    if (ec) {
      abort("cannot close the WebSocket: " + ec.message());
      return;
    }
    close_timer_.expires_after(opts_.close_grace);
    close_timer_.async_wait([weak = this->weak_from_this()](const boost::system::error_code& error) {
      if (error) {
        return;
      }
      if (auto self = weak.lock()) {
        self->on_close_timeout();
      }
    });
  }

  void abort(std::string error_text) override {
    if (state_ == state::idle || state_ == state::closed) {
      return;
    }
    // The owner may give up on a connection that websocketpp is already closing for an oversized message (its close
    // frame is written asynchronously, so an owner's timer can come first): that refusal is still reported.
    const bool refused = refused_by_us();
    release_and_drop();
    if (refused) {
      report_soon(close_code::message_too_big, "", refusal_text(), true);
      return;
    }
    report_soon(close_code::abnormal, "", std::move(error_text));
  }

  void pause_reading() override { pause_requested_ = true; }

  void resume_reading() override {
    pause_requested_ = false;
    if (!paused_ || !con_) {
      return;
    }
    if (in_message_) {
      // Called from inside a frame handler (the owner closed, or resumed, on a frame): websocketpp's read loop is
      // still walking the buffer it read into, and it would start a second read into that same buffer if reading
      // resumed now. Posted, the resume runs after the loop has finished (its own read_frame() does nothing while
      // paused), and starts exactly one read.
      if (!resume_posted_) {
        resume_posted_ = true;
        boost::asio::post(io_, [weak = this->weak_from_this()] {
          if (auto self = weak.lock()) {
            self->resume_posted_ = false;
            if (!self->pause_requested_ && self->paused_ && self->con_ && self->state_ != state::closed) {
              self->paused_ = false;
              self->con_->handle_resume_reading();
            }
          }
        });
      }
      return;
    }
    paused_ = false;
    // No read is outstanding while paused (see on_ws_message), so this starts exactly one.
    con_->handle_resume_reading();
  }

  void detach() override {
    handler_.reset();
    if (state_ != state::idle && state_ != state::closed) {
      release_and_drop();
      state_ = state::closed;
    }
    finish();
  }

  [[nodiscard]] bool is_open() const noexcept override { return state_ == state::open; }

 private:
  enum class state { idle, connecting, open, draining, closing, closed };

  // wss: the TLS context for this connection's host; ws: nothing. False with `error` when TLS cannot be set up.
  bool prepare_transport(std::string& error);

  void install_handlers(const connection_ptr& con) {
    // Each handler holds the endpoint (see the lifetime note above) and reaches the impl through a weak_ptr. A
    // connection the impl has let go of (aborted, timed out, detached) is dropped at its next step, so a connection
    // abandoned mid-handshake cannot come to life behind our back.
    const std::weak_ptr<impl_t> weak = this->weak_from_this();
    const std::shared_ptr<endpoint_type> endpoint = endpoint_;
    con->set_tcp_post_init_handler([weak, endpoint](websocketpp::connection_hdl hdl) {
      auto self = weak.lock();
      if (!self || !self->owns(hdl)) {
        drop_orphan(endpoint, hdl);
      }
    });
    con->set_open_handler([weak, endpoint](websocketpp::connection_hdl hdl) {
      auto self = weak.lock();
      if (!self || !self->owns(hdl)) {
        drop_orphan(endpoint, hdl);
        return;
      }
      self->guarded([self] { self->on_ws_open(); });
    });
    con->set_message_handler([weak, endpoint](websocketpp::connection_hdl hdl, message_ptr message) {
      auto self = weak.lock();
      if (!self || !self->owns(hdl)) {
        drop_orphan(endpoint, hdl);
        return;
      }
      self->guarded([self, message] { self->on_ws_message(message); });
    });
    con->set_pong_handler([weak, endpoint](websocketpp::connection_hdl hdl, const std::string& /*payload*/) {
      auto self = weak.lock();
      if (self && self->owns(hdl)) {
        self->guarded([self] {
          if (auto events = self->handler_.lock()) {
            events->on_ws_pong();
          }
        });
      }
    });
    con->set_fail_handler([weak, endpoint](websocketpp::connection_hdl hdl) {
      auto self = weak.lock();
      if (self && self->owns(hdl)) {
        self->guarded([self] { self->on_ws_fail(); });
      }
    });
    con->set_close_handler([weak, endpoint](websocketpp::connection_hdl hdl) {
      auto self = weak.lock();
      if (self && self->owns(hdl)) {
        self->guarded([self] { self->on_ws_close(); });
      }
    });
  }

  [[nodiscard]] bool owns(const websocketpp::connection_hdl& hdl) const noexcept {
    return con_ && state_ != state::closed && !hdl.owner_before(con_) && !con_.owner_before(hdl);
  }

  static void drop_orphan(const std::shared_ptr<endpoint_type>& endpoint, const websocketpp::connection_hdl& hdl) {
    websocketpp::lib::error_code ec;
    const connection_ptr con = endpoint->get_con_from_hdl(hdl, ec);
    if (!ec && con) {
      drop(con);
    }
  }

  // Lets go of the current connection first, so the callbacks that dropping it triggers (some run synchronously,
  // inside terminate()) find it no longer ours and reach nobody; then drops it.
  void release_and_drop() noexcept {
    const connection_ptr con = std::move(con_);
    con_.reset();
    drop(con);
  }

  // Drops the TCP connection: websocketpp's pending operations fail and it terminates the connection itself;
  // terminate() covers the case with nothing pending (reading paused, idle). Neither reaches us any more.
  static void drop(const connection_ptr& con) noexcept {
    if (!con) {
      return;
    }
    boost::system::error_code ignored;
    con->get_raw_socket().close(ignored);
    con->terminate(websocketpp::lib::error_code());
  }

  // No exception may escape into websocketpp: a throwing handler costs the connection, with the reason.
  template <typename Fn>
  void guarded(Fn&& fn) noexcept {
    try {
      fn();
    } catch (const std::exception& e) {
      abort(std::string("internal error while handling the WebSocket: ") + e.what());
    }
  }

  void on_ws_open() {
    open_timer_.cancel();
    state_ = state::open;
    if (auto events = handler_.lock()) {
      events->on_open();
    }
  }

  void on_ws_message(const message_ptr& message) {
    if (state_ != state::open && state_ != state::draining && state_ != state::closing) {
      return;
    }
    if (auto events = handler_.lock()) {
      // Marks the span inside websocketpp's read loop for resume_reading(); reset on every exit, exceptions included.
      struct in_message_scope {
        bool& flag;
        explicit in_message_scope(bool& f) : flag(f) { flag = true; }
        in_message_scope(const in_message_scope&) = delete;
        in_message_scope& operator=(const in_message_scope&) = delete;
        in_message_scope(in_message_scope&&) = delete;
        in_message_scope& operator=(in_message_scope&&) = delete;
        ~in_message_scope() { flag = false; }
      } scope(in_message_);
      events->on_message(message->get_payload(), message->get_opcode() == websocketpp::frame::opcode::binary);
    }
    // Pausing takes effect here, inside websocketpp's read handler: after it websocketpp issues no further socket
    // read, so the later resume_reading() cannot start a second concurrent read. Frames already in the read buffer
    // are still delivered. A pause requested between frames waits for the next frame, which is harmless: nothing
    // is delivered meanwhile.
    if (pause_requested_ && !paused_ && state_ == state::open && con_) {
      paused_ = true;
      // The handler itself, not pause_reading(): that one posts it, and websocketpp would issue its next socket
      // read before the flag flips, leaving a read outstanding that a later resume would double. Calling it here is
      // what that post would do, on the same (only) thread, just soon enough.
      con_->handle_pause_reading();
    }
  }

  void on_ws_fail() {
    std::string text = describe_failure();
    report(close_code::abnormal, "", text);
  }

  void on_ws_close() {
    const auto remote = static_cast<int>(con_->get_remote_close_code());
    const bool remote_sent = remote != close_code::no_status && remote != close_code::abnormal &&
                             remote != websocketpp::close::status::blank;
    const int code = remote_sent ? remote : static_cast<int>(con_->get_local_close_code());
    // Without a close frame websocketpp puts its error text in the local reason; that goes to error_text instead.
    std::string reason;
    if (remote_sent) {
      reason = con_->get_remote_close_reason();
    } else if (state_ == state::closing || state_ == state::draining) {
      reason = con_->get_local_close_reason();
    }
    // Our refusal of an oversized message: 1009 is terminal for websocketpp, it drops the TCP connection as soon as
    // its close frame is written, so no close frame comes back. A peer's own 1009 comes with a close frame.
    const bool refused = !remote_sent && refused_by_us();
    std::string text;
    const auto ec = con_->get_ec();
    if (refused) {
      text = refusal_text();
      if (auto events = handler_.lock()) {
        events->on_message_refused(opts_.max_message_size);
      }
      if (state_ == state::closed) {
        return;  // the handler let go of the client meanwhile
      }
    } else if (ec) {
      text = "the connection was dropped: " + ec.message();
      const auto transport = con_->get_transport_ec();
      if (transport && transport.message() != text) {
        text += " (" + transport.message() + ")";
      }
    } else if (!remote_sent && state_ != state::closing && state_ != state::draining) {
      text = "the connection was closed without a close frame";
    }
    report(code, reason, text);
  }

  // websocketpp closes with 1009 by itself, without telling us, when an incoming message exceeds its limit, and then
  // reads nothing more (hybi13 processor, connection::handle_read_frame). We never close with 1009 ourselves, and
  // close() moves us out of `open`, so a local 1009 while we are open is that refusal.
  [[nodiscard]] bool refused_by_us() const {
    return (state_ == state::open || state_ == state::draining) && con_ &&
           static_cast<int>(con_->get_local_close_code()) == close_code::message_too_big;
  }

  [[nodiscard]] std::string refusal_text() const {
    return "refused an incoming message larger than the limit of " + std::to_string(opts_.max_message_size) +
           " bytes unread (closed with 1009)";
  }

  void on_open_timeout() {
    if (state_ != state::connecting) {
      return;
    }
    release_and_drop();
    report(close_code::abnormal, "",
           "timed out after " + std::to_string(opts_.open_timeout.count()) +
               " ms opening the WebSocket (DNS, TCP connect, TLS handshake or HTTP upgrade)");
  }

  void on_close_timeout() {
    if (state_ != state::closing) {
      return;
    }
    // The peer did not finish the close handshake in time: the socket goes now, the close counts as ours.
    release_and_drop();
    report(close_code_, "",
           "the peer did not finish the close handshake within " + std::to_string(opts_.close_grace.count()) +
               " ms; the connection was dropped");
  }

  // The URL as error texts show it: whole, or only its origin when the path is a credential.
  [[nodiscard]] std::string display_url() const {
    if (!opts_.url_path_is_secret) {
      return opts_.url;
    }
    const auto authority = opts_.url.find("://");
    const auto path = authority == std::string::npos ? std::string::npos : opts_.url.find('/', authority + 3);
    return opts_.url.substr(0, path) + "/(single-use path not shown)";
  }

  [[nodiscard]] std::string describe_failure() const {
    if (!con_) {
      return "the WebSocket failed to open";
    }
    std::string text = "cannot open " + display_url() + ": ";
    const auto ec = con_->get_ec();
    const auto transport = con_->get_transport_ec();
    text += ec ? ec.message() : std::string("connection failed");
    if (tls_failure_ && !tls_failure_->empty()) {
      // websocketpp reports only "TLS handshake failed"; OpenSSL's reason is what an operator needs.
      text += ": the server's certificate was refused: " + *tls_failure_;
    } else if (transport && transport.message() != (ec ? ec.message() : std::string())) {
      text += " (" + transport.message() + ")";
    }
    const auto status = con_->get_response_code();
    if (status != websocketpp::http::status_code::uninitialized &&
        status != websocketpp::http::status_code::switching_protocols) {
      text += "; the server answered HTTP " + std::to_string(static_cast<int>(status)) + " " + con_->get_response_msg();
    }
    return text;
  }

  // Reports from inside a websocketpp handler: straight to the owner.
  void report(int code, const std::string& reason, const std::string& error_text) {
    if (state_ == state::closed) {
      return;
    }
    state_ = state::closed;
    const std::size_t discarded = take_discarded();
    finish();
    if (auto events = handler_.lock()) {
      // on_close first: the owner's state must never depend on the count being taken.
      events->on_close(code, reason, error_text);
      if (discarded > 0) {
        events->on_frames_discarded(discarded);
      }
    }
  }

  // Frames websocketpp dropped since the last call (see discard_counting_log).
  std::size_t take_discarded() noexcept {
    if (!endpoint_) {
      return 0;
    }
    const std::size_t total = endpoint_->get_elog().discarded();
    const std::size_t fresh = total - discarded_reported_;
    discarded_reported_ = total;
    return fresh;
  }

  // Reports from inside a client member call: posted, so the owner is never re-entered.
  void report_soon(int code, std::string reason, std::string error_text, bool refused = false) {
    if (state_ == state::closed) {
      return;
    }
    state_ = state::closed;
    const std::size_t discarded = take_discarded();
    finish();
    boost::asio::post(io_, [weak = handler_, code, reason = std::move(reason), text = std::move(error_text), refused,
                            limit = opts_.max_message_size, discarded] {
      if (auto events = weak.lock()) {
        if (refused) {
          events->on_message_refused(limit);
        }
        events->on_close(code, reason, text);
        if (discarded > 0) {
          events->on_frames_discarded(discarded);
        }
      }
    });
  }

  void fail_soon(std::string error_text) { report_soon(close_code::abnormal, "", std::move(error_text)); }

  void finish() {
    open_timer_.cancel();
    close_timer_.cancel();
    con_.reset();
  }

  boost::asio::io_context& io_;
  const options opts_;
  std::weak_ptr<handler> handler_;
  std::shared_ptr<endpoint_type> endpoint_;
  connection_ptr con_;
  boost::asio::steady_timer open_timer_;
  boost::asio::steady_timer close_timer_;
  state state_ = state::idle;
  int close_code_ = close_code::normal;
  std::string close_reason_;
  std::size_t discarded_reported_ = 0;
  bool pause_requested_ = false;
  bool in_message_ = false;                   // inside on_ws_message, i.e. inside websocketpp's read loop
  bool resume_posted_ = false;                // a resume_reading() from inside it is waiting to run
  bool paused_ = false;                       // websocketpp's reading is paused (set only inside its read handler)
  std::shared_ptr<std::string> tls_failure_;  // wss: why the peer's certificate was refused, if it was
};

template <>
inline bool impl_t<plain_config>::prepare_transport(std::string& /*error*/) {
  return true;
}

template <>
inline bool impl_t<tls_config>::prepare_transport(std::string& error) {
  const websocketpp::uri parsed(opts_.url);
  tls_failure_ = std::make_shared<std::string>();
  auto context = tls::make_client_context(opts_.tls, parsed.get_host(), error, tls_failure_);
  if (!context) {
    return false;
  }
  // websocketpp sets SNI itself in its TLS pre-init (for IP literals too, which servers ignore); the peer and host
  // name checks are the context's.
  endpoint_->set_tls_init_handler([context](const websocketpp::connection_hdl&) { return context; });
  return true;
}

}  // namespace detail
}  // namespace rtm::upstream::ws
