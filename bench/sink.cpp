#include "sink.hpp"

#include <exception>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

namespace rtm::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

reading_sink::reading_sink(unsigned short port, std::uint64_t bytes)
    : thread_([this, port, bytes] { run(port, bytes); }) {}

reading_sink::~reading_sink() {
  thread_.join();
}

void reading_sink::run(unsigned short port, std::uint64_t bytes) {
  try {
    asio::io_context io;
    tcp::socket socket(io);
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    beast::websocket::stream<tcp::socket&> ws(socket);
    ws.handshake("127.0.0.1", "/?EIO=4&transport=websocket");
    beast::flat_buffer in;
    auto read_text = [&ws, &in] {
      in.clear();
      ws.read(in);
      return beast::buffers_to_string(in.data());
    };
    if (!read_text().starts_with("0{")) {
      throw std::runtime_error("sink: no Engine.IO open packet");
    }
    ws.text(true);
    ws.write(asio::buffer(std::string("40")));
    if (!read_text().starts_with("40")) {
      throw std::runtime_error("sink: no namespace connect answer");
    }
    ws.write(asio::buffer(std::string(R"(42["authentication",{"tier":"user","username":"sink","password":"x"}])")));
    if (read_text() != R"(42["authenticated"])") {
      throw std::runtime_error("sink: not authenticated");
    }
    // Nothing arrives until the controller starts the stream after ready(), so Beast holds no stream bytes now.
    ready_ = true;
    std::vector<char> buffer(1 << 20);
    std::uint64_t got = 0;
    while (got < bytes) {
      got += socket.read_some(asio::buffer(buffer));
    }
    // More than expected only if a server ping ("2", 3 bytes) fell inside the stream.
    done_at_ = std::chrono::steady_clock::now();
  } catch (const std::exception& e) {
    error_ = std::string("sink: ") + e.what();
  }
  finished_ = true;
}

}  // namespace rtm::bench
