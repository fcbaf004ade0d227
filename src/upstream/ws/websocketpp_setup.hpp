#pragma once

// websocketpp 0.8.2 as this project configures and patches it: a pooled message manager, a log that counts the frames
// dropped by the close handshake, the transport timeouts, and two hot-path fixes (UTF-8 validation eight bytes at a
// time, read_frame without five allocations per read). Internal to upstream/ws: included by client.cpp only (C++17).
#include <cstdint>
#include <cstring>
#include <websocketpp/client.hpp>
#include <websocketpp/config/asio_client.hpp>
#include <websocketpp/config/asio_no_tls_client.hpp>
#include <websocketpp/uri.hpp>

namespace rtm::upstream::ws::detail {

// websocketpp's default message manager allocates twice per message (the shared message and its payload buffer),
// which on the event path means twice per event. This one keeps a few messages per connection and hands one out
// again once websocketpp and our handler have let go of it: use_count() == 1 means only the pool holds it, and the
// count is exact because one thread runs the io_context (no strands, no other owner on another thread). Messages
// still in use (a queued outgoing frame, a frame being delivered) are never handed out twice.
template <typename message>
class pooled_msg_manager : public std::enable_shared_from_this<pooled_msg_manager<message>> {
 public:
  typedef pooled_msg_manager<message> type;
  typedef std::shared_ptr<pooled_msg_manager> ptr;
  typedef std::weak_ptr<pooled_msg_manager> weak_ptr;
  typedef typename message::ptr message_ptr;

  pooled_msg_manager() { pool_.reserve(pool_size); }

  message_ptr get_message() { return std::make_shared<message>(this->shared_from_this()); }

  message_ptr get_message(websocketpp::frame::opcode::value op, std::size_t size) {
    for (const message_ptr& m : pool_) {
      if (m.use_count() == 1) {
        reuse(*m, op, size);
        return m;
      }
    }
    message_ptr m = std::make_shared<message>(this->shared_from_this(), op, size);
    if (pool_.size() < pool_size) {
      pool_.push_back(m);  // within the reserved capacity: no allocation
    }
    return m;
  }

  // websocketpp never calls this with the alloc-style managers; false = "not recycled, free it".
  bool recycle(message* /*unused*/) { return false; }

 private:
  // One incoming data message, one control message and a couple of queued outgoing frames is the usual peak.
  static constexpr std::size_t pool_size = 4;
  // A pooled message does not keep a payload buffer larger than this once it is reused for a smaller message, so
  // one huge frame does not pin its buffer to the connection.
  static constexpr std::size_t max_kept_capacity = std::size_t{64} * 1024;

  // What websocketpp's message constructor sets, for a message that has been used before. Extension data stays
  // empty: the configs below enable no extension.
  static void reuse(message& m, websocketpp::frame::opcode::value op, std::size_t size) {
    m.set_opcode(op);
    m.set_prepared(false);
    m.set_fin(true);
    m.set_terminal(false);
    m.set_compressed(false);
    m.set_header(std::string());
    std::string& payload = m.get_raw_payload();
    if (payload.capacity() > max_kept_capacity && size <= max_kept_capacity) {
      std::string().swap(payload);
    }
    payload.clear();
    payload.reserve(size);
  }

  std::vector<message_ptr> pool_;
};

// websocketpp drops a data frame that arrives after our close frame was sent (RFC 6455 lets the closing side ignore
// data) and says so only on its error log, as this exact text. This log keeps websocketpp's logging off and counts
// exactly those frames, so they are reported (handler::on_frames_discarded) instead of lost unseen. One per endpoint,
// and each client has its own endpoint: the count is this connection's.
constexpr const char* discarded_frame_text = "got non-close frame while closing";

template <typename Concurrency, typename Names>
class discard_counting_log : public websocketpp::log::basic<Concurrency, Names> {
 public:
  using websocketpp::log::basic<Concurrency, Names>::basic;
  void write(websocketpp::log::level /*channel*/, const std::string& msg) { count(msg.c_str()); }
  void write(websocketpp::log::level /*channel*/, const char* msg) { count(msg); }
  [[nodiscard]] std::size_t discarded() const noexcept { return discarded_; }

 private:
  void count(const char* msg) noexcept {
    if (std::strcmp(msg, discarded_frame_text) == 0) {
      ++discarded_;
    }
  }
  std::size_t discarded_ = 0;
};

// websocketpp's transport timeouts are compile-time constants; the client's own open timer bounds the whole opening
// (options::open_timeout), so these only need to be longer than any sane open_timeout. The socket shutdown one bounds
// the TLS close_notify exchange after a close handshake.
template <typename Base, typename Socket>
struct rtm_config : public Base {
  typedef rtm_config type;
  typedef Base base;
  typedef typename base::concurrency_type concurrency_type;
  typedef typename base::request_type request_type;
  typedef typename base::response_type response_type;
  typedef websocketpp::message_buffer::message<pooled_msg_manager> message_type;
  typedef pooled_msg_manager<message_type> con_msg_manager_type;
  typedef websocketpp::message_buffer::alloc::endpoint_msg_manager<con_msg_manager_type> endpoint_msg_manager_type;
  typedef typename base::alog_type alog_type;
  typedef discard_counting_log<concurrency_type, websocketpp::log::elevel> elog_type;
  typedef typename base::rng_type rng_type;

  // Errors reach the caller as on_close's error text; websocketpp's own logging stays off (elog_type only counts).
  static const websocketpp::log::level elog_level = websocketpp::log::elevel::none;
  static const websocketpp::log::level alog_level = websocketpp::log::alevel::none;

  struct transport_config : public base::transport_config {
    typedef typename type::concurrency_type concurrency_type;
    typedef typename type::alog_type alog_type;
    typedef typename type::elog_type elog_type;
    typedef typename type::request_type request_type;
    typedef typename type::response_type response_type;
    typedef Socket socket_type;
    // One thread runs the io_context: no strands.
    static bool const enable_multithreading = false;
    static const long timeout_socket_pre_init = 120000;
    static const long timeout_proxy = 120000;
    static const long timeout_socket_post_init = 120000;
    static const long timeout_dns_resolve = 120000;
    static const long timeout_connect = 120000;
    static const long timeout_socket_shutdown = 1000;
  };
  typedef websocketpp::transport::asio::endpoint<transport_config> transport_type;
};

using plain_config = rtm_config<websocketpp::config::asio_client, websocketpp::transport::asio::basic_socket::endpoint>;
using tls_config = rtm_config<websocketpp::config::asio_tls_client, websocketpp::transport::asio::tls_socket::endpoint>;

// RFC 6455 requires text frames to be valid UTF-8, and websocketpp checks it with a byte-at-a-time DFA that was the
// largest single cost of receiving an event. ASCII bytes leave an accepting DFA accepting, so runs of them can be
// skipped eight bytes at a time whenever the DFA sits between code points; everything else still goes through the
// same DFA, so exactly the same frames pass and fail. False on invalid UTF-8.
inline bool validate_utf8_tail(websocketpp::utf8_validator::validator& validator, const char* p,
                               const char* end) noexcept {
  constexpr std::uint64_t high_bits = 0x8080808080808080ULL;
  while (p != end) {
    if (validator.complete()) {
      while (end - p >= 8) {
        std::uint64_t word = 0;
        std::memcpy(&word, p, sizeof word);
        if ((word & high_bits) != 0) {
          break;
        }
        p += 8;
      }
      while (p != end && static_cast<unsigned char>(*p) < 0x80) {
        ++p;
      }
      if (p == end) {
        break;
      }
    }
    if (!validator.consume(static_cast<std::uint8_t>(*p))) {
      return false;
    }
    ++p;
  }
  return true;
}

// websocketpp 0.8.2's hybi13::process_payload_bytes, with validate_utf8_tail() in place of the byte-at-a-time loop.
template <typename Metadata, typename Deflate>
std::size_t process_payload(Metadata& current, const websocketpp::frame::basic_header& header, Deflate& deflate,
                            std::size_t& bytes_needed, std::uint8_t* buf, std::size_t len, std::error_code& ec) {
  if (websocketpp::frame::get_masked(header)) {
    current.prepared_key = websocketpp::frame::byte_mask_circ(buf, len, current.prepared_key);
  }
  std::string& out = current.msg_ptr->get_raw_payload();
  const std::size_t offset = out.size();
  if (deflate.is_enabled() && current.msg_ptr->get_compressed()) {
    ec = deflate.decompress(buf, len, out);
    if (ec) {
      return 0;
    }
  } else {
    out.append(reinterpret_cast<char*>(buf), len);
  }
  if (current.msg_ptr->get_opcode() == websocketpp::frame::opcode::TEXT &&
      !validate_utf8_tail(current.validator, out.data() + offset, out.data() + out.size())) {
    ec = websocketpp::processor::error::make_error_code(websocketpp::processor::error::invalid_utf8);
    return 0;
  }
  bytes_needed -= len;
  return len;
}

}  // namespace rtm::upstream::ws::detail

// Explicit specializations of websocketpp's member for our two configs, declared before anything instantiates the
// processor; the rest of websocketpp is used as shipped.
namespace websocketpp::processor {

template <>
inline std::size_t hybi13<rtm::upstream::ws::detail::plain_config>::process_payload_bytes(std::uint8_t* buf,
                                                                                          std::size_t len,
                                                                                          lib::error_code& ec) {
  return rtm::upstream::ws::detail::process_payload(*m_current_msg, m_basic_header, m_permessage_deflate,
                                                    m_bytes_needed, buf, len, ec);
}

template <>
inline std::size_t hybi13<rtm::upstream::ws::detail::tls_config>::process_payload_bytes(std::uint8_t* buf,
                                                                                        std::size_t len,
                                                                                        lib::error_code& ec) {
  return rtm::upstream::ws::detail::process_payload(*m_current_msg, m_basic_header, m_permessage_deflate,
                                                    m_bytes_needed, buf, len, ec);
}

}  // namespace websocketpp::processor

// connection::read_frame as shipped hands the transport m_handle_read_frame, a std::function holding a std::bind of a
// member pointer and `this` (24 bytes, past libstdc++'s 16-byte small buffer), which the transport copies five times
// per read: five heap allocations per socket read, the only ones left on our side of the event path. The same read
// with a lambda holding `this` (stored in place, copied without allocating). Lifetime is unchanged: the transport's
// handler still holds the connection's shared_ptr, as before.
namespace websocketpp {

template <>
inline void connection<rtm::upstream::ws::detail::plain_config>::read_frame() {
  if (!m_read_flag) {
    return;
  }
  transport_con_type::async_read_at_least(
      1, m_buf, rtm::upstream::ws::detail::plain_config::connection_read_buffer_size,
      [this](const lib::error_code& ec, std::size_t bytes) { handle_read_frame(ec, bytes); });
}

template <>
inline void connection<rtm::upstream::ws::detail::tls_config>::read_frame() {
  if (!m_read_flag) {
    return;
  }
  transport_con_type::async_read_at_least(
      1, m_buf, rtm::upstream::ws::detail::tls_config::connection_read_buffer_size,
      [this](const lib::error_code& ec, std::size_t bytes) { handle_read_frame(ec, bytes); });
}

}  // namespace websocketpp
