#include "app/command_dispatcher.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <tuple>
#include <utility>

#include "util/log.hpp"

namespace rtm::app {
namespace {

using commands::reply_error;
using std::chrono::steady_clock;
using std::chrono::system_clock;

// How often queued commands are looked at while there are any: retries after the rate limit, max_age, reply
// timeouts. Sends themselves happen at once when the socket allows.
constexpr std::chrono::milliseconds tick_interval{100};
constexpr std::chrono::seconds commit_retry_delay{1};

double seconds_since(system_clock::time_point produced) noexcept {
  return std::chrono::duration<double>(system_clock::now() - produced).count();
}

}  // namespace

command_dispatcher::command_dispatcher(boost::asio::io_context& io, config::commands_config cfg,
                                       kafka::command_consumer_settings settings, kafka::publisher& publisher,
                                       metrics::registry& metrics, connection_directory directory)
    : io_(io),
      cfg_(std::move(cfg)),
      settings_(std::move(settings)),
      publisher_(publisher),
      metrics_(metrics),
      directory_(std::move(directory)),
      durability_(publisher.durability()),
      tick_(io),
      commit_retry_(io) {
  listener_id_ = durability_->add(*this);
  metrics_.enable_commands();
}

command_dispatcher::~command_dispatcher() {
  alive_.reset();
  durability_->remove(listener_id_);
  boost::system::error_code ignored;
  tick_.cancel(ignored);
  commit_retry_.cancel(ignored);
  if (consumer_ && !consumer_->closed()) {
    // close() was never reached (a failed start, or a second stop signal): the consumer is destroyed with the
    // io_context's handlers, which hold it; its callbacks reach nobody from here on.
    consumer_.reset();
  }
  if (closer_.joinable()) {
    if (closed_->load() || wait_closed(close_bound)) {
      closer_.join();
    } else {
      closer_.detach();  // only when the owner did not call wait_closed(): it exits at once on false
    }
  }
}

bool command_dispatcher::wait_closed(std::chrono::milliseconds bound) {
  if (!closer_.joinable()) {
    return true;
  }
  const auto deadline = steady_clock::now() + bound;
  while (!closed_->load() && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // after io_.run() returned: nothing waits on it
  }
  if (!closed_->load()) {
    log::warn("", "kafka: the command consumer did not leave its group within ",
              std::chrono::duration_cast<std::chrono::seconds>(bound).count(),
              " s (the group evicts it after its session timeout)");
    return false;
  }
  closer_.join();
  return true;
}

template <typename Work>
void command_dispatcher::guarded(std::string_view what, Work&& work) noexcept {
  try {
    std::forward<Work>(work)();
  } catch (const std::exception& e) {
    log::error("", "commands: ", what, ": ", e.what());
  }
}

void command_dispatcher::start() {
  consumer_ = kafka::command_consumer::create(io_, settings_, *this);
}

command_dispatcher::connection_state& command_dispatcher::state_of(std::string_view connection) {
  auto it = connections_.find(connection);
  if (it == connections_.end()) {
    it = connections_
             .emplace(std::piecewise_construct, std::forward_as_tuple(connection),
                      std::forward_as_tuple(io_, cfg_.max_age))
             .first;
  }
  return it->second;
}

std::size_t command_dispatcher::queued() const noexcept {
  std::size_t n = 0;
  for (const auto& [name, state] : connections_) {
    n += state.box.queued();
  }
  return n;
}

// ---- in -----------------------------------------------------------------------------------------------------------

void command_dispatcher::on_command(const kafka::command_message& m) {
  if (!intake_) {
    return;
  }
  commands::queued_command c;
  c.ticket = offsets_.add(m.partition, m.offset);
  c.partition = m.partition;
  c.command_id =
      m.command_id.empty() ? commands::default_command_id(m.topic, m.partition, m.offset) : std::string(m.command_id);
  c.produced_at = m.timestamp;
  const std::string name(m.key);
  const std::optional<config::connection_kind> kind = directory_.kind_of(name);
  if (!kind) {
    return answer(name, c, reply_error::unknown_connection,
                  name.empty() ? "the command record has no key (the key names the connection)"
                               : "no connection of this name in the running configuration");
  }
  if (*kind != config::connection_kind::slack) {
    return answer(name, c, reply_error::unsupported,
                  std::string("connection kind ") + config::to_string(*kind) +
                      " has no outbound: only slack (legacy RTM) connections send commands");
  }
  auto parsed = commands::parse_command(m.value);
  if (auto* refused = std::get_if<commands::refusal>(&parsed)) {
    return answer(name, c, refused->error, refused->detail);
  }
  const commands::command& cmd = std::get<commands::command>(parsed);
  c.type = cmd.type;
  c.object = std::string(cmd.object);
  connection_state& state = state_of(name);
  if (state.box.expired(c, system_clock::now())) {
    return answer(name, c, reply_error::expired, "older than commands.max_age when it was read");
  }
  state.box.push(std::move(c));
  if (state.box.full()) {
    block(name, state, m.partition);
  }
  pump(name);
  arm_tick();
}

void command_dispatcher::block(const std::string& connection, connection_state& state, std::int32_t partition) {
  if (!state.blocking.insert(partition).second) {
    return;
  }
  std::set<std::string>& holders = blockers_[partition];
  holders.insert(connection);
  if (holders.size() == 1 && consumer_) {
    log::warn(connection, "commands: ", state.box.queued(), " commands queued for this connection; pausing partition ",
              partition, " of ", cfg_.topic, " until it drains");
    consumer_->pause(partition);
  }
}

// Still ours until the revocation returns (unless lost): what is confirmed there is committed first. Its queued
// commands are dropped unanswered: whoever gets the partition next (this instance again, after a lost session)
// reads them again from that commit, and answers them; sending them here as well would send them twice. Those
// already sent are answered here as usual.
void command_dispatcher::on_revoked(std::span<const std::int32_t> partitions, bool lost) {
  if (!lost) {
    const auto points = offsets_.take_commits();
    if (consumer_ && !points.empty()) {
      consumer_->commit(points);
    }
  }
  const auto revoked = [&partitions](std::int32_t p) {
    return std::find(partitions.begin(), partitions.end(), p) != partitions.end();
  };
  std::size_t dropped = 0;
  for (auto& [name, state] : connections_) {
    dropped += state.box.drop_if([&](const commands::queued_command& c) { return revoked(c.partition); });
    std::erase_if(state.blocking, revoked);
    metrics_.command_queue(name, state.box.queued());
  }
  for (const std::int32_t p : partitions) {
    offsets_.forget(p);
    blockers_.erase(p);
  }
  log::info("", "commands: ", partitions.size(), " partition(s) revoked", lost ? " (lost)" : "", "; ", dropped,
            " queued command(s) left to the next owner");
}

void command_dispatcher::on_commit_failed(std::span<const std::int32_t> partitions) {
  for (const std::int32_t p : partitions) {
    offsets_.uncommit(p);
  }
  if (commit_retry_armed_) {
    return;
  }
  commit_retry_armed_ = true;
  commit_retry_.expires_after(commit_retry_delay);
  commit_retry_.async_wait([this, token = std::weak_ptr<int>(alive_)](const boost::system::error_code& ec) {
    if (ec || !token.lock()) {
      return;
    }
    commit_retry_armed_ = false;
    post_commit();
  });
}

// ---- out ----------------------------------------------------------------------------------------------------------

void command_dispatcher::pump(std::string_view connection) {
  const auto it = connections_.find(connection);
  if (it == connections_.end()) {
    return;
  }
  connection_state& state = it->second;
  state.box.take_expired(system_clock::now(), [&](const commands::queued_command& c) {
    answer(connection, c, reply_error::expired,
           "not sent within commands.max_age of being produced (no live socket, or queued behind the connection's "
           "one-frame-a-second pace)");
  });
  // A reload removed the connection, or made it another kind: what waits for it is answered now, never sent.
  const std::optional<config::connection_kind> kind = directory_.kind_of(connection);
  while ((!kind || *kind != config::connection_kind::slack) && !state.box.empty()) {
    const commands::queued_command c = state.box.pop_front();
    if (!kind) {
      answer(connection, c, reply_error::unknown_connection, "the connection was removed from the configuration");
    } else {
      answer(connection, c, reply_error::unsupported,
             std::string("the connection is now of kind ") + config::to_string(*kind) + ", which has no outbound");
    }
  }
  upstream::connection* conn = directory_.find(connection);
  while (conn != nullptr && !state.box.empty()) {
    const upstream::send_result sent = conn->send_command(state.box.front().object);
    if (!sent.sent) {
      // The rate budget: tried again at that moment. No live socket: on_outbound_ready() (or the tick) tries again.
      if (sent.retry_at != steady_clock::time_point::max()) {
        retry_at(it->first, state, sent.retry_at);
      }
      break;
    }
    commands::queued_command c = state.box.pop_front();
    if (commands::expects_reply(c.type)) {
      state.box.sent(std::move(c), sent.socket, sent.id, steady_clock::now());
    } else {
      answer(connection, c, reply_error::none);  // Slack answers these with nothing: done once written
    }
  }
  after_change(connection, state);
}

void command_dispatcher::retry_at(const std::string& connection, connection_state& state, steady_clock::time_point at) {
  if (state.retry_at <= at) {
    return;  // armed already, for no later than that
  }
  state.retry_at = at;
  state.retry.expires_at(at);
  state.retry.async_wait(
      [this, &state, connection, token = std::weak_ptr<int>(alive_)](const boost::system::error_code& ec) {
        if (ec || !token.lock()) {
          return;
        }
        state.retry_at = steady_clock::time_point::max();
        guarded("cannot send the queued commands", [this, &connection] { pump(connection); });
      });
}

void command_dispatcher::after_change(std::string_view connection, connection_state& state) {
  metrics_.command_queue(connection, state.box.queued());
  if (state.blocking.empty() || !state.box.has_room_again()) {
    return;
  }
  log::info(connection, "commands: queue drained to ", state.box.queued(), "; its partitions may be read again");
  for (const std::int32_t p : state.blocking) {
    const auto holders = blockers_.find(p);
    if (holders == blockers_.end()) {
      continue;
    }
    holders->second.erase(std::string(connection));
    if (holders->second.empty()) {
      blockers_.erase(holders);
      if (consumer_) {
        consumer_->resume(p);
        log::info(connection, "commands: partition ", p, " of ", cfg_.topic, " resumed");
      }
    }
  }
  state.blocking.clear();
}

void command_dispatcher::answer(std::string_view connection, const commands::queued_command& c, reply_error error,
                                std::string_view detail, std::string_view reply_frame) {
  const std::string value = commands::reply_value(c.command_id, connection, error, detail, reply_frame);
  publisher_.publish_reply(cfg_.reply_topic, connection, c.command_id, value, {listener_id_, c.ticket});
  // A name the configuration does not know is not a label: any producer could make series without end.
  metrics_.command_answered(error == reply_error::unknown_connection ? std::string_view{} : connection,
                            commands::to_string(error), seconds_since(c.produced_at));
  if (error == reply_error::none) {
    log::debug(connection, "commands: ", c.command_id, " ok");
  } else {
    log::info(connection, "commands: ", c.command_id, " answered ", commands::to_string(error),
              detail.empty() ? "" : ": ", detail);
  }
}

void command_dispatcher::connection_started(std::string_view name) {
  guarded("cannot send the queued commands", [&] { pump(name); });
}

void command_dispatcher::on_outbound_ready(const std::string& connection) noexcept {
  guarded("cannot send the queued commands", [&] {
    pump(connection);
    arm_tick();
  });
}

void command_dispatcher::on_outbound_reply(const std::string& connection, std::uint64_t socket, std::uint64_t reply_to,
                                           std::string_view frame) noexcept {
  guarded("cannot answer a command", [&] {
    const auto it = connections_.find(connection);
    if (it == connections_.end()) {
      return;
    }
    std::optional<commands::sent_command> s = it->second.box.take_reply(socket, reply_to);
    if (!s) {
      log::debug(connection, "commands: a reply_to ", reply_to, " that no waiting command matches; ignored");
      return;
    }
    if (commands::reply_ok(frame)) {
      answer(connection, s->cmd, reply_error::none, {}, frame);
    } else {
      answer(connection, s->cmd, reply_error::slack_error, "Slack answered ok:false", frame);
    }
  });
}

void command_dispatcher::on_outbound_closed(const std::string& connection, std::uint64_t socket) noexcept {
  guarded("cannot answer the commands of a closed socket", [&] {
    const auto it = connections_.find(connection);
    if (it == connections_.end()) {
      return;
    }
    it->second.box.take_unanswered(socket, [&](const commands::sent_command& s) {
      answer(connection, s.cmd, reply_error::no_reply,
             "the socket closed before Slack's reply_to arrived: the message may or may not have been posted");
    });
  });
}

// ---- housekeeping -------------------------------------------------------------------------------------------------

void command_dispatcher::arm_tick() {
  if (tick_armed_) {
    return;
  }
  tick_armed_ = true;
  tick_.expires_after(tick_interval);
  tick_.async_wait([this, token = std::weak_ptr<int>(alive_)](const boost::system::error_code& ec) {
    if (ec || !token.lock()) {
      return;
    }
    tick_armed_ = false;
    guarded("housekeeping failed", [this] { on_tick(); });
  });
}

void command_dispatcher::on_tick() {
  const auto now = steady_clock::now();
  bool work_left = false;
  for (auto& entry : connections_) {
    const std::string& name = entry.first;  // not a structured binding: the lambda below captures it
    connection_state& state = entry.second;
    state.box.take_timed_out(now, [&](const commands::sent_command& s) {
      answer(name, s.cmd, reply_error::no_reply,
             "no reply_to within 10 s of sending: the message may or may not have been posted");
    });
    if (intake_ || !state.box.empty()) {
      pump(name);
    }
    work_left = work_left || !state.box.empty() || state.box.awaiting() > 0;
  }
  if (work_left) {
    arm_tick();
  }
}

void command_dispatcher::on_durable(std::uint64_t ticket) noexcept {
  offsets_.done(ticket);
  post_commit();
}

void command_dispatcher::on_lost(std::uint64_t ticket) noexcept {
  log::error("", "commands: a reply was lost for good (its delivery and its dead letter failed: see above); its ",
             "command's offset is committed anyway, so that the commands after it are not sent again at every start");
  on_durable(ticket);
}

// One commit per turn of the loop, however many replies were confirmed in it.
void command_dispatcher::post_commit() {
  if (commit_posted_ || !consumer_ || consumer_->closed()) {
    return;
  }
  guarded("cannot schedule a commit", [this] {
    boost::asio::post(io_, [this, token = std::weak_ptr<int>(alive_)]() noexcept {
      if (!token.lock()) {
        return;
      }
      commit_posted_ = false;
      guarded("cannot commit", [this] {
        const auto points = offsets_.take_commits();
        if (consumer_ && !points.empty()) {
          consumer_->commit(points);
        }
      });
    });
    commit_posted_ = true;
  });
}

void command_dispatcher::stop_intake() noexcept {
  intake_ = false;
  if (consumer_) {
    consumer_->stop_intake();
  }
}

void command_dispatcher::close() {
  if (!consumer_ || consumer_->closed()) {
    return;
  }
  closer_ = consumer_->close(offsets_.commit_points(), [closed = closed_] { closed->store(true); });
  if (!closer_.joinable()) {
    closed_->store(true);  // closed on this thread
  }
}

}  // namespace rtm::app
