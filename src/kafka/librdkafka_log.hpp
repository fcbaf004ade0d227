#pragma once

#include <librdkafka/rdkafka.h>

// librdkafka's log lines, routed to rtm::log. librdkafka calls a log_cb from its own threads; rtm::log is safe from
// any thread and this callback touches nothing else (not even the handle's opaque, which may be gone while a retired
// handle is destroyed in the background). librdkafka never logs sasl.password or other secrets it was given.
namespace rtm::kafka {

// Usable directly as rd_kafka_conf_set_log_cb(conf, &forward_librdkafka_log). Never throws.
void forward_librdkafka_log(const rd_kafka_t* rk, int level, const char* facility, const char* message) noexcept;

}  // namespace rtm::kafka
