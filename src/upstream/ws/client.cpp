#include "upstream/ws/client.hpp"

#include <utility>

#include "upstream/ws/connection_impl.hpp"

namespace rtm::upstream::ws {

using detail::impl_t;
using detail::plain_config;
using detail::tls_config;

client::client(boost::asio::io_context& io, options opts, std::weak_ptr<handler> events) {
  const websocketpp::uri parsed(opts.url);
  if (parsed.get_valid() && parsed.get_secure()) {
    auto tls = std::make_shared<impl_t<tls_config>>(io, std::move(opts), std::move(events));
    impl_ = tls;
  } else {
    // Invalid URLs take this path too and fail in open() with the parser's error.
    impl_ = std::make_shared<impl_t<plain_config>>(io, std::move(opts), std::move(events));
  }
}

client::~client() {
  impl_->detach();
}

void client::open() {
  (void)impl_;
  impl_->open();
}

void client::send_text(std::string_view text) {
  impl_->send_view(text);
}

void client::send_ping(std::string payload) {
  impl_->send_ping(std::move(payload));
}

void client::close(int code, std::string reason) {
  impl_->close(code, std::move(reason));
}

void client::abort() {
  impl_->abort("the connection was dropped on purpose");
}

void client::pause_reading() {
  impl_->pause_reading();
}

void client::resume_reading() {
  impl_->resume_reading();
}

bool client::is_open() const noexcept {
  return impl_->is_open();
}

}  // namespace rtm::upstream::ws
