#pragma once

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "pipeline/event.hpp"
#include "upstream/connection.hpp"

namespace rtm::metrics {
class registry;
}

// The daemon's upstream connections by name, and the one rule between them: at most one live socket per token (and
// per name). A connection whose token or name still has a socket closing waits (pending) and starts from that
// socket's stop callback. The token identity is a digest, computed once per connection and kept beside it, so a
// reload of many connections costs no digest per check. Everything on the io_context thread.
namespace rtm::app {

class connection_set {
 public:
  struct hooks {
    pipeline::sink* events = nullptr;  // what every connection forwards to
    // A connection object was made and is about to start (pause it, wire its commands).
    std::function<void(upstream::connection&)> made;
    // It started (the command dispatcher hears of it).
    std::function<void(const std::string& name)> started;
    // Once a stop has begun nothing pending starts any more.
    std::function<bool()> stopping;
  };

  struct reload_counts {
    std::size_t added = 0;
    std::size_t removed = 0;
    std::size_t changed = 0;
  };

  connection_set(boost::asio::io_context& io, metrics::registry& metrics, hooks h)
      : io_(io), metrics_(metrics), hooks_(std::move(h)) {}

  // Before the first start (the sink exists only once the publisher does).
  void set_hooks(hooks h) { hooks_ = std::move(h); }

  // Starts `cfg` now, or once the socket of its token or name is gone.
  void start(const config::connection_config& cfg, std::string token = {});
  // Stops a live connection; `then` runs once its socket is gone (at once when there is none). `drop`: the TCP
  // connection is closed before this returns (cluster mode), not gracefully.
  void stop(const std::string& name, std::function<void()> then, bool drop = false);
  // Forgets a pending start.
  void remove_pending(const std::string& name);
  void clear_pending();
  // Brings every connection (live, pending behind a closing socket, or closing) to what `wanted` says. The latest
  // list wins: starts an earlier reload deferred are dropped and worked out again from this one, so a connection
  // changed twice starts once, with the second settings, and a removed one never comes back.
  reload_counts reconcile(const std::vector<config::connection_config>& wanted_list);
  // The stop bound ran out: nothing is waited for any more.
  void forget_closing();
  // Drops at once the sockets of connections already closing gracefully whose name `keep` refuses (cluster mode: a
  // revocation or a fence must reach those too).
  void drop_closing(const std::function<bool(const std::string&)>& keep);
  // Drops every socket, live or closing (a forced exit).
  void drop_all();

  [[nodiscard]] const std::map<std::string, std::shared_ptr<upstream::connection>, std::less<>>& live() const {
    return connections_;
  }
  [[nodiscard]] upstream::connection* find(std::string_view name) const;
  [[nodiscard]] std::vector<std::string> names() const;
  [[nodiscard]] std::vector<std::string> pending_names() const;
  [[nodiscard]] bool is_pending(const std::string& name) const { return pending_.count(name) != 0; }
  [[nodiscard]] bool quiet() const { return closing_names_.empty() && connections_.empty(); }

 private:
  void start_unblocked(const std::string& name, const std::string& token);

  boost::asio::io_context& io_;
  metrics::registry& metrics_;
  hooks hooks_;
  std::map<std::string, std::shared_ptr<upstream::connection>, std::less<>> connections_;
  // Connections whose stop has not completed yet, by name and by config::token_identity(); the socket of each may
  // still be open, so nothing with the same token or name may start until it has gone.
  std::multiset<std::string> closing_names_;
  std::multiset<std::string> closing_tokens_;
  // The closing connections themselves, by name, until their socket is gone.
  std::multimap<std::string, std::shared_ptr<upstream::connection>> closing_;
  // config::token_identity() of each connection in connections_, by name.
  std::map<std::string, std::string> live_tokens_;
  // Connections to start once the token and name they need are free, by name, and the same entries by token
  // (token → name) so that a socket going away looks only at the starts it was holding back.
  struct pending_start {
    config::connection_config cfg;
    std::string token;
  };
  std::map<std::string, pending_start> pending_;
  std::multimap<std::string, std::string> pending_by_token_;
};

}  // namespace rtm::app
