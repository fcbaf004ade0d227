#include "app/connection_set.hpp"

#include <algorithm>

#include "metrics/registry.hpp"
#include "util/log.hpp"

namespace rtm::app {
namespace {

void erase_one(std::multiset<std::string>& set, const std::string& value) {
  if (const auto it = set.find(value); it != set.end()) {
    set.erase(it);
  }
}

}  // namespace

void connection_set::start(const config::connection_config& cfg, std::string token) {
  if (token.empty()) {
    token = config::token_identity(cfg);
  }
  remove_pending(cfg.name);
  if (closing_names_.count(cfg.name) != 0 || closing_tokens_.count(token) != 0) {
    pending_by_token_.emplace(token, cfg.name);
    pending_.insert_or_assign(cfg.name, pending_start{cfg, std::move(token)});
    return;
  }
  try {
    auto conn = upstream::make_connection(io_, cfg, *hooks_.events, metrics_);
    if (hooks_.made) {
      hooks_.made(*conn);
    }
    conn->start();
    connections_[cfg.name] = std::move(conn);
    live_tokens_[cfg.name] = std::move(token);
    if (hooks_.started) {
      hooks_.started(cfg.name);
    }
  } catch (const std::exception& e) {
    log::error(cfg.name, "cannot start connection: ", e.what());
  }
}

void connection_set::stop(const std::string& name, std::function<void()> then, bool drop) {
  const auto it = connections_.find(name);
  if (it == connections_.end()) {
    if (then) {
      then();
    }
    return;
  }
  auto conn = it->second;
  connections_.erase(it);
  std::string token = std::move(live_tokens_[name]);
  live_tokens_.erase(name);
  closing_names_.insert(name);
  closing_tokens_.insert(token);
  closing_.emplace(name, conn);
  auto done = [this, name, token = std::move(token), conn, then = std::move(then)]() mutable {
    erase_one(closing_names_, name);
    erase_one(closing_tokens_, token);
    const auto [first, last] = closing_.equal_range(name);
    for (auto c = first; c != last; ++c) {
      if (c->second == conn) {
        closing_.erase(c);
        break;
      }
    }
    metrics_.forget_connection(name);
    conn.reset();
    if (then) {
      then();
    }
    start_unblocked(name, token);
  };
  if (drop) {
    conn->drop(std::move(done));
  } else {
    conn->stop(std::move(done));
  }
}

void connection_set::remove_pending(const std::string& name) {
  const auto it = pending_.find(name);
  if (it == pending_.end()) {
    return;
  }
  const auto [first, last] = pending_by_token_.equal_range(it->second.token);
  for (auto t = first; t != last; ++t) {
    if (t->second == name) {
      pending_by_token_.erase(t);
      break;
    }
  }
  pending_.erase(it);
}

void connection_set::clear_pending() {
  pending_.clear();
  pending_by_token_.clear();
}

void connection_set::drop_closing(const std::function<bool(const std::string&)>& keep) {
  std::vector<std::shared_ptr<upstream::connection>> doomed;
  for (const auto& [name, conn] : closing_) {
    if (!keep(name)) {
      doomed.push_back(conn);
    }
  }
  for (const auto& conn : doomed) {
    conn->drop({});  // its stop callback is queued already; drop only closes the socket now
  }
}

void connection_set::drop_all() {
  for (const auto& name : names()) {
    stop(name, nullptr, true);
  }
  drop_closing([](const std::string&) { return false; });
}

void connection_set::forget_closing() {
  closing_names_.clear();
  closing_tokens_.clear();
}

upstream::connection* connection_set::find(std::string_view name) const {
  const auto it = connections_.find(name);
  return it == connections_.end() ? nullptr : it->second.get();
}

std::vector<std::string> connection_set::names() const {
  std::vector<std::string> out;
  out.reserve(connections_.size());
  for (const auto& [name, conn] : connections_) {
    out.push_back(name);
  }
  return out;
}

std::vector<std::string> connection_set::pending_names() const {
  std::vector<std::string> out;
  for (const auto& [name, entry] : pending_) {
    out.push_back(name);
  }
  return out;
}

// A socket with this name and token is gone: starts the pending connections it was holding back (the one of the
// same name, those of the same token) whose name and token are both free now.
void connection_set::start_unblocked(const std::string& name, const std::string& token) {
  if (hooks_.stopping && hooks_.stopping()) {
    return;
  }
  std::vector<std::string> candidates{name};
  const auto [first, last] = pending_by_token_.equal_range(token);
  for (auto t = first; t != last; ++t) {
    candidates.push_back(t->second);
  }
  for (const auto& candidate : candidates) {
    const auto it = pending_.find(candidate);
    if (it == pending_.end() || closing_names_.count(candidate) != 0 || closing_tokens_.count(it->second.token) != 0) {
      continue;
    }
    pending_start next = it->second;
    remove_pending(candidate);
    start(next.cfg, std::move(next.token));
  }
}

connection_set::reload_counts connection_set::reconcile(const std::vector<config::connection_config>& wanted_list) {
  std::map<std::string, const config::connection_config*> wanted;
  for (const auto& c : wanted_list) {
    wanted[c.name] = &c;
  }
  reload_counts counts;
  std::map<std::string, pending_start> was_pending;
  was_pending.swap(pending_);
  pending_by_token_.clear();
  for (const auto& [name, entry] : was_pending) {
    const auto w = wanted.find(name);
    if (w == wanted.end()) {
      log::info(name, "reload: connection removed before its start (it was waiting for an old socket to close)");
      ++counts.removed;
    } else if (!(*w->second == entry.cfg)) {
      log::info(name, "reload: connection changed again before its start; the new settings win");
      ++counts.changed;
    }
  }
  std::vector<std::string> names;
  for (const auto& [name, conn] : connections_) {
    names.push_back(name);
  }
  for (const auto& name : names) {
    const auto w = wanted.find(name);
    if (w == wanted.end()) {
      log::info(name, "reload: connection removed, tearing it down");
      stop(name, nullptr);
      ++counts.removed;
    } else if (!(*w->second == connections_.at(name)->settings())) {
      log::info(name, "reload: connection changed, reconnecting with the new settings");
      stop(name, nullptr);
      ++counts.changed;
    }
  }
  for (const auto& c : wanted_list) {
    if (connections_.count(c.name) != 0) {
      continue;  // live and unchanged
    }
    const bool known = was_pending.count(c.name) != 0 || std::find(names.begin(), names.end(), c.name) != names.end();
    if (!known) {
      log::info(c.name, "reload: connection added");
      ++counts.added;
    }
    start(c);
    if (pending_.count(c.name) != 0) {
      log::info(c.name, "reload: waiting for the old socket of the same token or name to close before connecting");
    }
  }
  return counts;
}

}  // namespace rtm::app
