#include "app/cluster_member.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <map>
#include <utility>

#include "util/log.hpp"

namespace rtm::app {
namespace {

std::vector<cluster::placed_connection> placed(const std::vector<config::connection_config>& connections) {
  std::vector<cluster::placed_connection> out;
  out.reserve(connections.size());
  for (const auto& c : connections) {
    std::optional<std::uint32_t> bucket;
    if (c.bucket) {
      bucket = static_cast<std::uint32_t>(*c.bucket);
    }
    out.push_back({c.name, bucket});
  }
  return out;
}

std::string bucket_list(std::span<const std::int32_t> buckets) {
  std::string text;
  for (const std::int32_t b : buckets) {
    text += (text.empty() ? "" : ",") + std::to_string(b);
  }
  return text.empty() ? "none" : text;
}

}  // namespace

cluster_member::cluster_member(boost::asio::io_context& io, const config::cluster_config& cfg,
                               const std::vector<config::connection_config>& connections, hooks h)
    : io_(io),
      cfg_(cfg),
      hooks_(std::move(h)),
      map_(std::make_unique<cluster::bucket_map>(placed(connections), static_cast<std::uint32_t>(cfg.buckets))),
      lease_(cfg.session_timeout, cfg.fence_margin),
      fence_timer_(io),
      tick_(std::max(std::chrono::milliseconds(10), cfg.fence_margin / 4)) {
  log::info("", "cluster: ", connections.size(), " connection(s) over ", cfg.buckets, " buckets, map fingerprint ",
            map_->fingerprint(), " (must be the same on every instance)");
}

cluster_member::~cluster_member() {
  if (closer_.joinable()) {
    closer_.detach();  // only when the owner did not wait: it exits right after
  }
}

std::optional<kafka::topic_problem> cluster_member::prepare(const kafka::group_member_settings& settings) {
  member_ = kafka::group_member::create(io_, settings, *this);
  // Long enough for a first connection to a cluster that is still starting, short enough for systemd's start.
  return member_->check_topic(cfg_.buckets, cfg_.session_timeout * 3);
}

void cluster_member::start() {
  member_->join();
  last_tick_ = clock::now();
  arm_fence_timer();
}

void cluster_member::leave() {
  if (leaving_ || !member_) {
    return;
  }
  leaving_ = true;
  fence_timer_.cancel();
  closer_ = member_->close([closed = closed_] { closed->store(true); });
  if (!closer_.joinable()) {
    closed_->store(true);
  }
}

bool cluster_member::wait_closed(std::chrono::seconds bound) {
  if (!closer_.joinable()) {
    return true;
  }
  const auto deadline = clock::now() + bound;
  while (!closed_->load() && clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // after io_.run() returned: nothing waits on it
  }
  if (!closed_->load()) {
    log::warn("", "cluster: the group consumer did not leave the group within ", bound.count(),
              " s (the group evicts this member after cluster.session_timeout)");
    return false;
  }
  closer_.join();
  return true;
}

void cluster_member::set_connections(const std::vector<config::connection_config>& connections) {
  auto next = std::make_unique<cluster::bucket_map>(placed(connections), static_cast<std::uint32_t>(cfg_.buckets));
  if (next->fingerprint() != map_->fingerprint()) {
    log::info("", "cluster: the connection map changed, fingerprint ", map_->fingerprint(), " -> ", next->fingerprint(),
              " (reload every instance with the same file)");
  }
  map_ = std::move(next);
}

bool cluster_member::owns(std::string_view connection) const {
  if (lease_.fenced() || leaving_ || !lease_.valid(clock::now())) {
    return false;
  }
  const auto bucket = map_->bucket(connection);
  return bucket && owned_.count(static_cast<std::int32_t>(*bucket)) != 0;
}

bool cluster_member::may_forward() {
  if (lease_.fenced()) {
    return false;
  }
  const auto now = clock::now();
  refresh();
  if (lease_.valid(now) && now - last_tick_ <= cfg_.fence_margin / 2) {
    return true;
  }
  // Not here, inside a connection's frame handler: the fence drops sockets, that one's included.
  if (!fence_posted_) {
    fence_posted_ = true;
    boost::asio::post(io_, [this] {
      fence_posted_ = false;
      (void)check(clock::now());
    });
  }
  return false;
}

void cluster_member::refresh() {
  const kafka::lease_inputs in = member_->inputs();
  if (in.latest_sent > seen_sent_) {
    lease_.answered(in.latest_sent);
    seen_sent_ = in.latest_sent;
  }
}

bool cluster_member::check(clock::time_point now) {
  if (leaving_) {
    return false;
  }
  const auto stalled = now - last_tick_;
  last_tick_ = now;
  refresh();  // fenced or not: rule (a) needs the lease as the answers have it now
  if (lease_.fenced()) {
    return true;
  }
  if (stalled > cfg_.fence_margin / 2 && lease_.valid(now)) {
    // The loop did not run for a while: end the lease now, what the threads saw meanwhile needs a fresh proof.
    fence(now, "the event loop did not run for " +
                   std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(stalled).count()) +
                   " ms (a stopped or starved process)");
    return true;
  }
  if (lease_.expired(now)) {
    fence(now, "no answer from the group coordinator for " +
                   std::to_string(
                       std::chrono::duration_cast<std::chrono::milliseconds>(cfg_.session_timeout - cfg_.fence_margin)
                           .count()) +
                   " ms (session_timeout - fence_margin)");
    return true;
  }
  return false;
}

void cluster_member::fence(clock::time_point now, const std::string& why) {
  if (!lease_.fenced()) {
    // A stall while the lease still holds: the lease is ended by hand (expired() would not fire before until()).
    lease_.end(now);
  }
  member_->count_heartbeats_after(now);
  log::warn("", "cluster: fenced: ", why, "; closing the connections of ", owned_.size(),
            " bucket(s) before the group can give them away; they reopen once the group confirms this member");
  apply(true);
}

void cluster_member::arm_fence_timer() {
  fence_timer_.expires_after(tick_);
  fence_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || leaving_) {
      return;
    }
    (void)check(clock::now());
    arm_fence_timer();
  });
}

void cluster_member::apply(bool drop) noexcept {
  try {
    hooks_.apply(drop);
  } catch (const std::exception& e) {
    log::error("", "cluster: applying the assignment failed: ", e.what());
  }
}

void cluster_member::on_assigned(std::span<const std::int32_t> buckets) noexcept {
  const auto now = clock::now();
  (void)check(now);  // an assignment seen first after a stall must not open anything before the fence
  const bool was_fenced = lease_.fenced();
  lease_.assigned(now);
  owned_.insert(buckets.begin(), buckets.end());
  log::info("", "cluster: assigned bucket(s) ", bucket_list(buckets), "; ", owned_.size(), " owned",
            was_fenced && !lease_.fenced() ? " (membership confirmed: reopening after the fence)" : "",
            lease_.fenced() ? " (still fenced: the lease does not hold)" : "");
  apply(false);
}

void cluster_member::on_revoked(std::span<const std::int32_t> buckets, bool lost) noexcept {
  for (const std::int32_t b : buckets) {
    owned_.erase(b);
  }
  if (lost) {
    lease_.lost();
    member_->count_heartbeats_after(clock::now());
  }
  log::info("", "cluster: ", lost ? "lost" : "revoked", " bucket(s) ", bucket_list(buckets),
            "; closing their connections; ", owned_.size(), " owned");
  apply(true);
}

void cluster_member::on_polled(const kafka::lease_inputs& before, bool drained) noexcept {
  const auto now = clock::now();
  // Rule (b) counts only heartbeats answered before the turn began, and only a turn that served the queue to its
  // end: a lost revocation they caused has reached on_revoked() by then.
  if (check(now) && drained) {
    const bool was_fenced = lease_.fenced();
    lease_.polled(now, before.heartbeats_after);
    if (was_fenced && !lease_.fenced()) {
      log::info("", "cluster: membership confirmed by two heartbeats after the fence: reopening ", owned_.size(),
                " bucket(s)");
      apply(false);
    }
  }
}

std::optional<std::string> cluster_member::moved_token(const std::vector<config::connection_config>& current,
                                                       const std::vector<config::connection_config>& next) const {
  const cluster::bucket_map next_map(placed(next), static_cast<std::uint32_t>(cfg_.buckets));
  std::map<std::string, std::pair<std::string, std::uint32_t>> by_token;  // token -> (name, bucket) now
  for (const auto& c : current) {
    if (const auto b = map_->bucket(c.name)) {
      by_token.emplace(config::token_identity(c), std::make_pair(c.name, *b));
    }
  }
  for (const auto& c : next) {
    const auto it = by_token.find(config::token_identity(c));
    const auto b = next_map.bucket(c.name);
    if (it != by_token.end() && b && *b != it->second.second) {
      return "connection " + c.name + " would move from bucket " + std::to_string(it->second.second) + " (as " +
             it->second.first + ") to bucket " + std::to_string(*b) +
             ": instances reloading one after the other could both hold its token. Remove it from the file on "
             "every instance and reload them all first, then add it with its new name or bucket";
    }
  }
  return std::nullopt;
}

void cluster_member::on_fatal(const std::string& why) noexcept {
  log::error("", "cluster: the group consumer failed for good: ", why,
             " (is another live process using cluster.instance_id ", cfg_.instance_id.value_or("(none)"), "?)");
  owned_.clear();
  apply(true);
  try {
    hooks_.fatal(why);
  } catch (const std::exception& e) {
    log::error("", "cluster: stopping after the fatal error failed: ", e.what());
  }
}

}  // namespace rtm::app
