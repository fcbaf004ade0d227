#include "kafka/recovery.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <functional>

#include "util/log.hpp"

namespace rtm::kafka {

producer_recovery::producer_recovery(boost::asio::io_context& io, producer_settings settings, limits lim,
                                     producer_listener& reports, recovery_listener& owner, record_store& store,
                                     publisher_statistics& stats)
    : io_(io),
      settings_(std::move(settings)),
      limits_(lim),
      reports_(reports),
      owner_(owner),
      store_(store),
      stats_(stats),
      budget_(lim.fatal_limit, lim.fatal_window) {}

producer_recovery::~producer_recovery() {
  alive_.reset();  // handlers still queued on the io_context do nothing from here on
  if (producer_) {
    std::thread t = producer_->close({});
    producer_.reset();
    if (t.joinable()) {
      t.join();
    }
  }
  for (auto& [generation, thread] : reapers_) {
    if (thread.joinable()) {
      thread.join();
    }
  }
}

void producer_recovery::start() {
  create();
  owner_.on_producer_created(*producer_, false);
}

void producer_recovery::create() {
  const std::uint32_t generation = generation_ + 1;
  producer_ = producer::create(io_, settings_, reports_, generation);
  generation_ = generation;
  ++stats_.producers_created;
}

void producer_recovery::schedule(const std::string& reason) {
  if (pending_ || gave_up_ || closed_) {
    return;
  }
  // Posted first, flagged after: if posting fails, nothing is pending and the next error schedules again.
  boost::asio::post(io_, [this, token = std::weak_ptr<int>(alive_), reason]() noexcept {
    if (token.lock()) {
      recreate(reason);
    }
  });
  pending_ = true;
}

void producer_recovery::recreate(const std::string& reason) noexcept {
  if (closed_) {
    pending_ = false;  // the drain finished meanwhile: nothing is produced any more
    return;
  }
  ++stats_.fatal_errors;
  std::string last = reason;
  // The error boundary of recovery (README "Error policy"): whatever stops a re-creation gives up.
  try {
    if (budget_.allow_recreate(std::chrono::steady_clock::now())) {
      replace(reason);
      return;
    }
  } catch (const std::exception& e) {
    // librdkafka refuses a new handle, no eventfd or thread is left, or no memory: recreating cannot go on.
    last = std::string("cannot recreate the Kafka producer: ") + e.what();
  }
  pending_ = false;
  give_up(last);
}

void producer_recovery::replace(const std::string& reason) {
  const record_store::retired_counts counts = retire();
  create();
  stats_.reproduced += counts.again;
  stats_.possibly_duplicated += counts.maybe_persisted;
  log::warn("", "kafka: producer recreated after a fatal error (", reason, "; ", budget_.recent(), " of at most ",
            limits_.fatal_limit - 1, " tolerated within ", limits_.fatal_window.count(), " s): producing ",
            counts.again, " unconfirmed records again in their original order, ", counts.maybe_persisted,
            " of which may already be in Kafka (possible duplicates, same envelope id)");
  pending_ = false;
  owner_.on_producer_created(*producer_, true);
}

void producer_recovery::give_up(const std::string& reason) noexcept {
  gave_up_ = true;
  // Without memory even for this, the process ends here (noexcept): README "Error policy".
  retire();
  log::error("", "kafka: giving up on the producer (", budget_.recent(), " fatal errors within the last ",
             limits_.fatal_window.count(), " s; last: ", reason, "); ", store_.unsettled(),
             " records are not confirmed");
  owner_.on_gave_up(reason);
}

record_store::retired_counts producer_recovery::retire() {
  if (!producer_) {
    return {};
  }
  // Everything that may fail (memory) comes first, so that a failure retires nothing.
  const std::uint32_t generation = producer_->generation();
  std::function<void()> destroyed = [&io = io_, token = std::weak_ptr<int>(alive_), this, generation] {
    // On the reaper thread: only post back.
    boost::asio::post(io, [token, this, generation] {
      if (token.lock()) {
        on_destroyed(generation);
      }
    });
  };
  store_.prepare_retire();
  reapers_.reserve(reapers_.size() + 1);

  // From here current() is nullptr; the reports served below still count (generation_ is unchanged).
  const std::shared_ptr<producer> p = std::move(producer_);
  p->serve();
  const record_store::retired_counts counts = store_.retire(generation);
  std::thread reaper = p->close(std::move(destroyed));
  if (reaper.joinable()) {
    reapers_.emplace_back(generation, std::move(reaper));  // within the reserved room
  }
  return counts;
}

void producer_recovery::on_destroyed(std::uint32_t generation) noexcept {
  const auto it = std::find_if(reapers_.begin(), reapers_.end(),
                               [generation](const auto& reaper) { return reaper.first == generation; });
  if (it != reapers_.end()) {
    if (it->second.joinable()) {
      it->second.join();  // it has nothing left to do but return
    }
    reapers_.erase(it);
  }
  if (reapers_.empty()) {
    store_.release_held();
    owner_.on_retired_destroyed();
  }
}

rd_kafka_resp_err_t producer_recovery::inject_fatal_error_for_testing(rd_kafka_resp_err_t err) noexcept {
  return producer_ ? producer_->inject_fatal_error_for_testing(err) : RD_KAFKA_RESP_ERR__STATE;
}

}  // namespace rtm::kafka
