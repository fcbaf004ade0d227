#include "emitter.hpp"

#include <algorithm>
#include <array>
#include <deque>
#include <stdexcept>
#include <string>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>

#include "util/log.hpp"

namespace rtm::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr auto handshake_deadline = std::chrono::seconds(60);
constexpr std::size_t max_chunk_frames = 256;  // ≈ 60 KiB per write
constexpr auto pace_tick = std::chrono::milliseconds(1);

std::int64_t to_ns(clock_type::time_point tp) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(tp.time_since_epoch()).count();
}

const std::string& ping_frame() {
  static const std::string frame = ws_text_frame("2");
  return frame;
}

}  // namespace

// One upstream connection. Owned by its own async chain (shared_from_this); the emitter keeps a weak reference.
class emitter_session : public std::enable_shared_from_this<emitter_session> {
 public:
  emitter_session(emitter& owner, tcp::socket socket)
      : owner_(owner),
        ws_(std::move(socket)),
        deadline_(ws_.get_executor()),
        ping_timer_(ws_.get_executor()),
        pace_timer_(ws_.get_executor()) {}

  void run() {
    deadline_.expires_after(handshake_deadline);
    deadline_.async_wait([self = shared_from_this()](boost::system::error_code ec) { self->on_deadline(ec); });
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(beast::http::field::server, "rtm-bench-emitter"); }));
    ws_.async_accept([self = shared_from_this()](boost::system::error_code ec) { self->on_accept(ec); });
  }

  void stream(std::uint64_t frames, double rate_per_s) {
    remaining_ = frames;
    total_ = frames;
    rate_per_s_ = rate_per_s;
    stream_done_reported_ = false;
    stream_started_ = false;
    if (rate_per_s_ <= 0) {
      credit_ = frames;
      pump();
      return;
    }
    credit_ = 0;
    paced_ = 0;
    pace_start_ = clock_type::now();
    schedule_pace();
  }

  void close() {
    boost::system::error_code ignored;
    ws_.next_layer().socket().close(ignored);
  }

 private:
  void on_deadline(boost::system::error_code ec) {
    if (ec || authenticated_) {
      return;
    }
    log::warn("emitter", "a client did not finish the Socket.IO handshake in time; closing it");
    close();
  }

  void on_accept(boost::system::error_code ec) {
    if (ec) {
      return fail(ec, "websocket accept");
    }
    ws_.text(true);
    sid_ = "bench" + std::to_string(owner_.next_sid_++);
    out_ = "0{\"sid\":\"" + sid_ + R"(","upgrades":[],"pingInterval":)" +
           std::to_string(owner_.ping_interval_.count()) + R"(,"pingTimeout":20000,"maxPayload":1000000})";
    ws_.async_write(asio::buffer(out_), [self = shared_from_this()](boost::system::error_code ec2, std::size_t) {
      self->on_open_written(ec2);
    });
  }

  void on_open_written(boost::system::error_code ec) {
    if (ec) {
      return fail(ec, "write open packet");
    }
    read_handshake();
  }

  void read_handshake() {
    in_.clear();
    ws_.async_read(
        in_, [self = shared_from_this()](boost::system::error_code ec, std::size_t) { self->on_handshake_read(ec); });
  }

  void on_handshake_read(boost::system::error_code ec) {
    if (ec) {
      return fail(ec, "handshake read");
    }
    const std::string text = beast::buffers_to_string(in_.data());
    if (text == "40" || text.starts_with("40{")) {
      out_ = "40{\"sid\":\"" + sid_ + "-ns\"}";
    } else if (text.starts_with("42[\"authentication\"")) {
      out_ = "42[\"authenticated\"]";
      authenticating_ = true;
    } else {
      // Pongs or anything else before authentication: not answered.
      return read_handshake();
    }
    ws_.async_write(asio::buffer(out_), [self = shared_from_this()](boost::system::error_code ec2, std::size_t) {
      self->on_handshake_written(ec2);
    });
  }

  void on_handshake_written(boost::system::error_code ec) {
    if (ec) {
      return fail(ec, "handshake write");
    }
    if (!authenticating_) {
      return read_handshake();
    }
    // From here on Beast is no longer used: the client sends only pongs, which are drained raw, and every frame
    // the emitter sends is pre-encoded.
    authenticated_ = true;
    deadline_.cancel();
    owner_.live_.push_back(weak_from_this());
    ++owner_.authenticated_;
    ++owner_.handshakes_;
    read_raw();
    schedule_ping();
  }

  void read_raw() {
    ws_.next_layer().socket().async_read_some(
        asio::buffer(drain_),
        [self = shared_from_this()](boost::system::error_code ec, std::size_t) { self->on_raw_read(ec); });
  }

  void on_raw_read(boost::system::error_code ec) {
    if (ec) {
      return fail(ec, "read");
    }
    read_raw();
  }

  void schedule_ping() {
    ping_timer_.expires_after(owner_.ping_interval_);
    ping_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) { self->on_ping_timer(ec); });
  }

  void on_ping_timer(boost::system::error_code ec) {
    if (ec || closed_) {
      return;
    }
    ping_due_ = true;
    pump();
    schedule_ping();
  }

  void schedule_pace() {
    pace_timer_.expires_after(pace_tick);
    pace_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) { self->on_pace(ec); });
  }

  void on_pace(boost::system::error_code ec) {
    if (ec || closed_) {
      return;
    }
    const double elapsed = std::chrono::duration<double>(clock_type::now() - pace_start_).count();
    const auto due = std::min<std::uint64_t>(total_, static_cast<std::uint64_t>(elapsed * rate_per_s_));
    if (due > paced_) {
      credit_ += due - paced_;
      paced_ = due;
    }
    pump();
    if (paced_ < total_) {
      schedule_pace();
    }
  }

  // One write outstanding: the ping first, then the next contiguous run of frames the credit allows.
  void pump() {
    if (writing_ || closed_) {
      return;
    }
    if (ping_due_) {
      ping_due_ = false;
      writing_ = true;
      in_flight_frames_ = 0;
      asio::async_write(ws_.next_layer().socket(), asio::buffer(ping_frame()),
                        [self = shared_from_this()](boost::system::error_code ec, std::size_t) { self->on_write(ec); });
      return;
    }
    if (credit_ == 0) {
      return;
    }
    const std::size_t count = std::min<std::uint64_t>({credit_, max_chunk_frames, owner_.frames_.size() - cursor_});
    const std::string_view bytes = owner_.frames_.wire(cursor_, count);
    cursor_ = (cursor_ + count) % owner_.frames_.size();
    credit_ -= count;
    in_flight_frames_ = count;
    writing_ = true;
    if (!stream_started_) {
      stream_started_ = true;
      owner_.first_write_ns_ = to_ns(clock_type::now());
    }
    asio::async_write(ws_.next_layer().socket(), asio::buffer(bytes.data(), bytes.size()),
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) { self->on_write(ec); });
  }

  void on_write(boost::system::error_code ec) {
    writing_ = false;
    if (ec) {
      return fail(ec, "write");
    }
    if (in_flight_frames_ > 0) {
      owner_.frames_written_ += in_flight_frames_;
      sent_ += in_flight_frames_;
      remaining_ -= in_flight_frames_;
      in_flight_frames_ = 0;
      if (remaining_ == 0 && !stream_done_reported_) {
        stream_done_reported_ = true;
        owner_.last_write_ns_ = to_ns(clock_type::now());
        ++owner_.streams_done_;
      }
    }
    pump();
  }

  void fail(boost::system::error_code ec, const char* step) {
    if (closed_) {
      return;
    }
    closed_ = true;
    if (authenticated_) {
      --owner_.authenticated_;
    }
    deadline_.cancel();
    ping_timer_.cancel();
    pace_timer_.cancel();
    if (ec != asio::error::eof && ec != asio::error::operation_aborted && ec != websocket::error::closed &&
        ec != asio::error::connection_reset) {
      log::warn("emitter", "session ", sid_, ": ", step, ": ", ec.message());
    }
    close();
  }

  emitter& owner_;
  websocket::stream<beast::tcp_stream> ws_;
  asio::steady_timer deadline_;
  asio::steady_timer ping_timer_;
  asio::steady_timer pace_timer_;
  beast::flat_buffer in_;
  std::string out_;
  std::string sid_;
  std::array<char, 4096> drain_{};
  bool authenticating_ = false;
  bool authenticated_ = false;
  bool closed_ = false;
  bool writing_ = false;
  bool ping_due_ = false;
  bool stream_started_ = false;
  bool stream_done_reported_ = false;
  std::uint64_t total_ = 0;      // frames of the current stream
  std::uint64_t remaining_ = 0;  // of those, not yet written
  std::uint64_t credit_ = 0;     // frames allowed to be handed to the socket now
  std::uint64_t paced_ = 0;      // frames released so far by the pacing clock
  std::uint64_t sent_ = 0;
  std::size_t in_flight_frames_ = 0;
  std::size_t cursor_ = 0;  // next frame of the cycle
  double rate_per_s_ = 0;
  clock_type::time_point pace_start_{};
};

emitter::emitter(const frame_cycle& frames, std::chrono::milliseconds ping_interval)
    : frames_(frames), ping_interval_(ping_interval), acceptor_(io_) {
  const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
  boost::system::error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) {
    acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  }
  if (!ec) {
    acceptor_.bind(endpoint, ec);
  }
  if (!ec) {
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    throw std::runtime_error("emitter: cannot listen on 127.0.0.1: " + ec.message());
  }
  port_ = acceptor_.local_endpoint().port();
  do_accept();
  thread_ = std::thread([this] { io_.run(); });
}

emitter::~emitter() {
  // Stopping the loop leaves every session's pending handlers in io_; destroying io_ (last member) releases them
  // and closes their sockets.
  io_.stop();
  thread_.join();
}

void emitter::do_accept() {
  acceptor_.async_accept(
      [this](boost::system::error_code ec, tcp::socket socket) { on_accept(ec, std::move(socket)); });
}

void emitter::on_accept(boost::system::error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted) {
    return;
  }
  if (ec) {
    // EMFILE and the like: keep accepting, the client retries.
    log::warn("emitter", "accept: ", ec.message());
  } else {
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    std::make_shared<emitter_session>(*this, std::move(socket))->run();
  }
  do_accept();
}

void emitter::start_stream(std::uint64_t frames, double rate_per_s) {
  asio::post(io_, [this, frames, rate_per_s] {
    std::erase_if(live_, [](const std::weak_ptr<emitter_session>& w) { return w.expired(); });
    for (auto& weak : live_) {
      if (auto s = weak.lock()) {
        s->stream(frames, rate_per_s);
      }
    }
  });
}

emitter::stats emitter::last_stream() const {
  stats s;
  s.frames_written = frames_written_.load();
  s.first_write = clock_type::time_point(std::chrono::nanoseconds(first_write_ns_.load()));
  s.last_write = clock_type::time_point(std::chrono::nanoseconds(last_write_ns_.load()));
  return s;
}

}  // namespace rtm::bench
