#include "upstream/connection.hpp"

#include <stdexcept>

#include "upstream/slack/session.hpp"
#include "upstream/slack/socket_session.hpp"
#include "upstream/socketio/session.hpp"

namespace rtm::upstream {

std::shared_ptr<connection> make_connection(boost::asio::io_context& io, const config::connection_config& cfg,
                                            pipeline::sink& events, metrics::registry& metrics) {
  switch (cfg.kind) {
    case config::connection_kind::acme:
      return socketio::session::create(io, cfg, events, metrics);
    case config::connection_kind::slack:
      return std::make_shared<slack::session>(io, cfg, events, metrics);
    case config::connection_kind::slack_socket:
      return std::make_shared<slack::socket_session>(io, cfg, events, metrics);
  }
  throw std::invalid_argument("connection " + cfg.name + ": unknown kind");
}

}  // namespace rtm::upstream
