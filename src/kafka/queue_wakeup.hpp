#pragma once

#include <librdkafka/rdkafka.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <optional>
#include <string>

// How a librdkafka handle wakes the io_context without being polled in a loop (kafka::producer for its main queue,
// kafka::command_consumer for its consumer queue): librdkafka writes to an eventfd whenever the queue goes from
// empty to non-empty, and the handle async_waits on it. Called on the io_context thread.
namespace rtm::kafka {

// Which queue of the handle is wired: the main queue (a producer's reports), or the consumer queue (a consumer's
// messages, rebalances and, after rd_kafka_poll_set_consumer, everything else).
enum class wakeup_queue { main, consumer };

// Creates the eventfd, gives it to `wakeup` and has librdkafka write to it for `which` queue of `rk`. The error
// text (errno's) when no eventfd can be had; nothing is wired then.
[[nodiscard]] std::optional<std::string> attach_wakeup(rd_kafka_t* rk, wakeup_queue which,
                                                       boost::asio::posix::stream_descriptor& wakeup);
// librdkafka stops writing to it. Before closing the descriptor, whose number may be reused at once.
void detach_wakeup(rd_kafka_t* rk, wakeup_queue which) noexcept;
// After a wake-up, before serving the queue (so no wake-up is lost): resets the counter (EAGAIN: already reset).
void reset_wakeup(boost::asio::posix::stream_descriptor& wakeup) noexcept;

}  // namespace rtm::kafka
