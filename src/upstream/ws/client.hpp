#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tls/context.hpp"

// One WebSocket client connection (ws:// or wss://) on the daemon's io_context, dialect-free: the Acme Socket.IO
// session and the Slack RTM session both sit on it. websocketpp lives behind this header (client.cpp, built as
// C++17); nothing here includes it.
//
// Threading: every member and every handler call runs on the io_context's single thread.
namespace rtm::upstream::ws {

namespace close_code {
inline constexpr int normal = 1000;
inline constexpr int going_away = 1001;
inline constexpr int protocol_error = 1002;
inline constexpr int no_status = 1005;
inline constexpr int abnormal = 1006;  // no close frame: failed to open, dropped, aborted
inline constexpr int message_too_big = 1009;
}  // namespace close_code

struct options {
  std::string url;  // ws://host[:port]/path?query or wss://...
  // The path and query are a credential (Slack's single-use rtm.connect URL): error texts show only the origin.
  bool url_path_is_secret = false;
  std::vector<std::pair<std::string, std::string>> headers;  // extra handshake request headers
  tls::options tls;
  std::string user_agent;  // empty: "rtm-bridge"
  // A larger incoming message is refused before its payload is read: websocketpp closes with 1009 and drops the
  // TCP connection (it cannot skip a frame); handler::on_message_refused() and then on_close() follow.
  std::size_t max_message_size = std::size_t{16} * 1024 * 1024;
  std::chrono::milliseconds open_timeout{10000};  // DNS + TCP + TLS + HTTP upgrade, all together
  // A close we start first keeps reading (and delivering) this long, so what the server already sent is not lost;
  // the peer closing ends it early. 0: the close handshake starts at once.
  std::chrono::milliseconds drain_grace{0};
  std::chrono::milliseconds close_grace{2000};  // close handshake, then the TCP connection is dropped
};

// Implemented by the session that owns the client. Calls arrive on the io_context thread, never from inside a
// client member function (no re-entrancy), and never after the client is destroyed.
class handler {
 public:
  handler() = default;
  handler(const handler&) = delete;
  handler& operator=(const handler&) = delete;
  handler(handler&&) = delete;
  handler& operator=(handler&&) = delete;
  virtual ~handler() = default;

  virtual void on_open() = 0;
  // `payload` is valid only during the call.
  virtual void on_message(std::string_view payload, bool binary) = 0;
  // Exactly once per open(), whether the connection failed to open or closed later. `code` is the peer's close code
  // when it sent one, else ours (close_code::abnormal when there was no close frame). `error_text` is empty for a
  // clean close and otherwise says what went wrong in words an operator can act on.
  virtual void on_close(int code, std::string_view reason, std::string_view error_text) = 0;
  // The connection was closed because an incoming message exceeded options::max_message_size (its size is unknown:
  // it was refused unread). Called once, right before that connection's on_close, so the owner can record it.
  virtual void on_message_refused(std::size_t /*limit*/) {}
  // Data frames that arrived after our close frame was sent and that websocketpp dropped unread (the server went on
  // sending past the drain): called once, right after on_close (the owner may have let go of the client in it), when
  // there were any, so the owner can count them.
  // Frames, not events: a ping or an acknowledgement among them is counted too (an upper bound on lost events).
  virtual void on_frames_discarded(std::size_t /*frames*/) {}
  // A pong frame arrived (the answer to send_ping(), or an unsolicited one): the peer is alive.
  virtual void on_ws_pong() {}
};

// Single use: one open(), one on_close(). The TCP connection never outlives the client: destroying it drops the
// connection at once and calls no handler.
class client {
 public:
  client(boost::asio::io_context& io, options opts, std::weak_ptr<handler> events);
  client(const client&) = delete;
  client& operator=(const client&) = delete;
  client(client&&) = delete;
  client& operator=(client&&) = delete;
  ~client();

  // Starts connecting; on_open or on_close follows.
  void open();
  // Queued behind earlier sends; websocketpp writes one frame at a time. Ignored unless open.
  // websocketpp copies the text into its own message: the caller's buffer can be reused at once.
  void send_text(std::string_view text);
  // A WebSocket ping frame (control frame, answered by the peer's pong: handler::on_ws_pong). Ignored unless open.
  void send_ping(std::string payload);
  // Graceful close: reading (and on_message) goes on for options::drain_grace, then a close frame, the peer's reply,
  // TCP shutdown; the TCP connection is dropped if that has not finished after close_grace. Before the open
  // completed, the same as abort().
  void close(int code, std::string reason);
  // Drops the TCP connection now (a dead or hostile peer: nothing to wait for).
  void abort();
  // Backpressure. Frames already read are still delivered; reading stops before the next socket read.
  void pause_reading();
  void resume_reading();

  [[nodiscard]] bool is_open() const noexcept;

  class impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace rtm::upstream::ws
