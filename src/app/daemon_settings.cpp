#include "app/daemon_settings.hpp"

#include "config/cluster_rules.hpp"

#include "util/log.hpp"

namespace rtm::app {
namespace {

log::level to_log_level(config::log_level level) noexcept {
  switch (level) {
    case config::log_level::trace:
      return log::level::trace;
    case config::log_level::debug:
      return log::level::debug;
    case config::log_level::info:
      return log::level::info;
    case config::log_level::warn:
      return log::level::warn;
    case config::log_level::error:
      return log::level::error;
  }
  return log::level::info;
}

}  // namespace

void apply_log_config(const config::log_config& cfg) noexcept {
  log::configure(to_log_level(cfg.level),
                 cfg.format == config::log_format::json ? log::format::json : log::format::text);
}

kafka::publisher::tuning publisher_tuning(const config::config& cfg) {
  kafka::publisher::tuning tune;
  if (cfg.spool.enabled()) {
    spool::options o;
    o.path = cfg.spool.path;
    o.max_size = cfg.spool.max_size;
    o.segment_size = cfg.spool.segment_size;
    o.min_free = cfg.spool.min_free;
    o.fsync_interval = cfg.spool.fsync_interval;
    o.checkpoint_interval = cfg.spool.checkpoint_interval;
    o.max_in_flight = cfg.spool.max_in_flight;
    o.block_when_full = cfg.spool.when_full == config::spool_full_policy::block;
    tune.spool = o;
  }
  return tune;
}

kafka::command_consumer_settings command_consumer_settings(const config::config& cfg, const std::string& bootstrap) {
  kafka::command_consumer_settings settings;
  settings.bootstrap_servers = bootstrap;
  settings.client_id = cfg.kafka.client_id;
  settings.group_id = cfg.commands.group_id;
  settings.topic = cfg.commands.topic;
  settings.properties = cfg.kafka.properties;
  return settings;
}

kafka::group_member_settings group_member_settings(const config::config& cfg, const std::string& bootstrap) {
  kafka::group_member_settings settings;
  settings.bootstrap_servers = bootstrap;
  settings.client_id = cfg.kafka.client_id;
  settings.group_id = cfg.cluster.group_id;
  settings.topic = cfg.cluster.assignment_topic;
  settings.instance_id = cfg.cluster.instance_id;
  settings.session_timeout = cfg.cluster.session_timeout;
  settings.heartbeat_interval = cfg.cluster.heartbeat_interval;
  settings.rebalance_timeout = cfg.cluster.rebalance_timeout;
  // kafka.properties apply (security, timeouts), except what cluster: decides (group.instance.id set there would
  // give every instance sharing the file one static id).
  for (const auto& p : cfg.kafka.properties) {
    if (!config::cluster_owned_property(p.first)) {
      settings.properties.push_back(p);
    }
  }
  settings.properties.insert(settings.properties.end(), cfg.cluster.properties.begin(), cfg.cluster.properties.end());
  return settings;
}

}  // namespace rtm::app
