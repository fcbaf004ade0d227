#include "kafka/librdkafka_log.hpp"

#include "util/log.hpp"

namespace rtm::kafka {

void forward_librdkafka_log(const rd_kafka_t* rk, int level, const char* facility, const char* message) noexcept {
  // librdkafka uses syslog levels: 0-3 error, 4 warning, 5-6 notice/info, 7 debug.
  log::level lvl = log::level::debug;
  if (level <= 3) {
    lvl = log::level::error;
  } else if (level == 4) {
    lvl = log::level::warn;
  } else if (level <= 6) {
    lvl = log::level::info;
  }
  const char* name = rk != nullptr ? rd_kafka_name(rk) : "librdkafka";
  log::emit(lvl, "", "kafka: ", name, " ", facility != nullptr ? facility : "-", ": ",
            message != nullptr ? message : "");
}

}  // namespace rtm::kafka
