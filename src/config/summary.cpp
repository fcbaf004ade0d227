#include "config/loader.hpp"

#include <algorithm>
#include <sstream>

#include "config/duration.hpp"
#include "config/kafka_properties.hpp"
#include "config/size.hpp"
#include "upstream/socketio/acme_events.hpp"

// `--check-config` output: what the daemon would run, in one screen. Secrets appear only as secret::describe()
// (their source), and properties that hold credentials only as "****".
namespace rtm::config {
namespace {

const char* level_name(log_level level) noexcept {
  switch (level) {
    case log_level::trace:
      return "trace";
    case log_level::debug:
      return "debug";
    case log_level::info:
      return "info";
    case log_level::warn:
      return "warn";
    case log_level::error:
      return "error";
  }
  return "unknown";
}

std::string property_text(const kafka_config& k, const std::string& name, const std::string& value) {
  const auto from_secret = std::find_if(k.secret_properties.begin(), k.secret_properties.end(),
                                        [&name](const auto& p) { return p.first == name; });
  if (from_secret != k.secret_properties.end()) {
    return from_secret->second.describe();
  }
  return is_sensitive_property(name) ? "****" : value;
}

// What the authentication emit will ask for (the globs expanded against the known events), and a warning for each
// glob that matches none of them: it subscribes nothing.
void write_subscription(std::ostringstream& out, const connection_config& c) {
  namespace sio = upstream::socketio;
  const std::vector<std::string> names = sio::subscription(c.events);
  out << "    subscription (" << names.size() << " sent in authentication): ";
  if (c.events.empty()) {
    out << "all " << names.size() << " known events";
  } else {
    for (std::size_t i = 0; i < names.size(); ++i) {
      out << (i == 0 ? "" : ",") << names[i];
    }
  }
  out << "\n";
  for (const std::string& glob : sio::globs_matching_nothing_known(c.events)) {
    out << "    warning: events glob \"" << glob << "\" matches no event this build knows, so it subscribes nothing "
        << "(globs are expanded here, never sent): list the wanted events by their exact names\n";
  }
}

void write_connection(std::ostringstream& out, const connection_config& c) {
  out << "  " << c.name << ": " << to_string(c.kind);
  if (c.kind == connection_kind::acme) {
    out << ", url " << (c.url.empty() ? "discovered via " + c.api_url : c.url);
    out << ", protocol " << c.protocol << ", tier " << to_string(c.tier) << ", events ";
    if (c.events.empty()) {
      out << "all of the tier";
    } else {
      for (std::size_t i = 0; i < c.events.size(); ++i) {
        out << (i == 0 ? "" : ",") << c.events[i];
      }
    }
    out << ", identifier " << c.identifier.describe();
  } else {
    out << ", api " << c.url;
  }
  out << ", key " << c.key.describe();
  if (c.kind == connection_kind::acme) {
    // The payload's team_id is the key; a configured one keys the events that carry none.
    out << ", team_id " << (c.team_id ? *c.team_id + " for events without one" : std::string("from each event"));
  } else {
    out << ", team_id " << c.team_id.value_or("from rtm.connect");
  }
  out << ", reconnect " << format_duration(c.reconnect.initial_delay) << ".." << format_duration(c.reconnect.max_delay)
      << " jitter " << c.reconnect.jitter << ", ping_timeout " << format_duration(c.ping_timeout);
  out << ", tls " << (c.tls.verify ? "verify" : "NO VERIFICATION") << " ca " << c.tls.ca_file.value_or("system store")
      << ", limits frame " << format_size(c.limits.max_frame_size) << " event " << format_size(c.limits.max_event_size)
      << "\n";
  if (c.kind == connection_kind::acme) {
    write_subscription(out, c);
  }
}

}  // namespace

std::string summary(const config& cfg) {
  std::ostringstream out;
  const kafka_config& k = cfg.kafka;
  out << "config " << cfg.path << ": valid\n";
  out << "kafka:\n";
  out << "  brokers: " << (k.embedded() ? "embedded (in-process mock cluster, demo/tests only)" : k.brokers) << "\n";
  out << "  client id: " << k.client_id << "\n";
  if (!k.properties.empty()) {
    out << "  properties:";
    for (const auto& [name, value] : k.properties) {
      out << " " << name << "=" << property_text(k, name, value);
    }
    out << "\n";
  }
  out << "  topic: " << k.topic << "\n";
  if (k.routes.empty()) {
    out << "  routes: none (every event goes to the topic above)\n";
  } else {
    out << "  routes (first match wins):";
    for (const route& r : k.routes) {
      out << " " << r.match << " -> " << r.topic << ";";
    }
    out << "\n";
  }
  out << "  dead-letter topic: " << k.dead_letter_topic << "\n";
  out << "  delivery timeout: "
      << (k.delivery_timeout.count() == 0 ? "never give up" : format_duration(k.delivery_timeout))
      << ", shutdown timeout: " << format_duration(k.shutdown_timeout) << "\n";
  out << "connections (" << cfg.connections.size() << "):\n";
  for (const connection_config& c : cfg.connections) {
    write_connection(out, c);
  }
  out << "metrics: " << (cfg.metrics.listen.empty() ? "disabled" : "listen " + cfg.metrics.listen) << "\n";
  out << "log: level " << level_name(cfg.log.level) << ", format "
      << (cfg.log.format == log_format::json ? "json" : "text") << "\n";
  return out.str();
}

}  // namespace rtm::config
