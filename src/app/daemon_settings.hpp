#pragma once

#include <string>

#include "config/config.hpp"
#include "kafka/command_consumer.hpp"
#include "kafka/group_member.hpp"
#include "kafka/publisher.hpp"

// What the daemon derives from the config for the parts it builds: pure translations, one place each, so that a
// start and a reload read a section the same way.
namespace rtm::app {

// log.level and log.format applied to rtm::log.
void apply_log_config(const config::log_config& cfg) noexcept;

// The publisher's tuning: the spool's settings from spool: (CONTRACT "Durable spool"); none without spool.path.
[[nodiscard]] kafka::publisher::tuning publisher_tuning(const config::config& cfg);

// The command consumer's settings from commands: and kafka: (client id, properties) for `bootstrap`.
[[nodiscard]] kafka::command_consumer_settings command_consumer_settings(const config::config& cfg,
                                                                         const std::string& bootstrap);

// The group consumer's settings from cluster: and kafka: (client id; kafka.properties then cluster.properties).
[[nodiscard]] kafka::group_member_settings group_member_settings(const config::config& cfg,
                                                                 const std::string& bootstrap);

}  // namespace rtm::app
