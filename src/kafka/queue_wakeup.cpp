#include "kafka/queue_wakeup.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace rtm::kafka {
namespace {

rd_kafka_queue_t* queue_of(rd_kafka_t* rk, wakeup_queue which) noexcept {
  return which == wakeup_queue::main ? rd_kafka_queue_get_main(rk) : rd_kafka_queue_get_consumer(rk);
}

}  // namespace

std::optional<std::string> attach_wakeup(rd_kafka_t* rk, wakeup_queue which,
                                         boost::asio::posix::stream_descriptor& wakeup) {
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) {
    return std::string(std::strerror(errno));
  }
  wakeup.assign(fd);
  // librdkafka writes these 8 bytes (an eventfd counter increment of 1) on each empty → non-empty transition.
  static constexpr std::uint64_t one = 1;
  rd_kafka_queue_t* queue = queue_of(rk, which);
  rd_kafka_queue_io_event_enable(queue, fd, &one, sizeof one);
  rd_kafka_queue_destroy(queue);
  return std::nullopt;
}

void detach_wakeup(rd_kafka_t* rk, wakeup_queue which) noexcept {
  rd_kafka_queue_t* queue = queue_of(rk, which);
  rd_kafka_queue_io_event_enable(queue, -1, nullptr, 0);
  rd_kafka_queue_destroy(queue);
}

void reset_wakeup(boost::asio::posix::stream_descriptor& wakeup) noexcept {
  std::uint64_t count = 0;
  const ssize_t n = ::read(wakeup.native_handle(), &count, sizeof count);
  (void)n;
}

}  // namespace rtm::kafka
