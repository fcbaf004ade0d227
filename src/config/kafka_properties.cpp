#include "config/kafka_properties.hpp"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <new>
#include <system_error>

namespace rtm::config {
namespace {

// The librdkafka properties the bridge decides: THE list (the loader and the producer both go through
// set_property()). A property has a config key of its own (`use_instead`: setting both would leave two sources of
// truth), or a value the contract fixes (`fixed`, as librdkafka reads it back, so "all" and "-1" are one value; a
// user value equal to it changes nothing and is accepted), or neither (never accepted).
struct bridge_property {
  std::string_view name;
  std::string_view use_instead;  // a config key, or empty
  std::string_view fixed;        // the one accepted value as read back, or empty
  std::string_view spelled;      // how to write the fixed value
  std::string_view why;          // for fixed or refused properties
};

constexpr std::array<bridge_property, 11> bridge_properties{{
    {"bootstrap.servers", "kafka.brokers", {}, {}, {}},
    {"metadata.broker.list", "kafka.brokers", {}, {}, {}},
    {"message.timeout.ms", "kafka.delivery_timeout", {}, {}, {}},
    {"delivery.timeout.ms", "kafka.delivery_timeout", {}, {}, {}},
    {"client.id", "kafka.client_id", {}, {}, {}},
    {"enable.idempotence",
     {},
     "true",
     "true",
     "the contract requires an idempotent producer, so enable.idempotence cannot be false"},
    {"acks", {}, "-1", "all", "the contract requires acks=all"},
    {"request.required.acks", {}, "-1", "all", "the contract requires acks=all"},
    {"partitioner",
     {},
     "murmur2_random",
     "murmur2_random",
     "the contract fixes the partitioner to murmur2_random (the Java client's), so every Kafka client agrees where a "
     "team lives"},
    {"queuing.strategy", {}, "fifo", "fifo", "the idempotent producer needs queuing.strategy=fifo"},
    {"transactional.id",
     {},
     {},
     {},
     "the bridge's producer is idempotent, not transactional: remove transactional.id (ordering and no duplicates "
     "per partition come from enable.idempotence, which is always on)"},
}};

// librdkafka accepts topic properties with a "topic." prefix; the rules apply to both spellings.
std::string_view bare_name(std::string_view name) noexcept {
  return name.starts_with("topic.") ? name.substr(6) : name;
}

const bridge_property* find_bridge_property(std::string_view name) noexcept {
  const std::string_view bare = bare_name(name);
  const auto it = std::find_if(bridge_properties.begin(), bridge_properties.end(),
                               [bare](const bridge_property& p) { return p.name == bare; });
  return it == bridge_properties.end() ? nullptr : &*it;
}

std::string_view trim_newlines(std::string_view text) noexcept {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  return text;
}

std::optional<long long> to_integer(std::string_view text) noexcept {
  long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

// How librdkafka reads `name` back; nullopt for write-only or pointer-valued properties.
std::optional<std::string> read_back(const rd_kafka_conf_t* conf, const std::string& name) {
  std::array<char, 512> buf{};
  std::size_t size = buf.size();
  if (rd_kafka_conf_get(conf, name.c_str(), buf.data(), &size) != RD_KAFKA_CONF_OK) {
    return std::nullopt;
  }
  return std::string(buf.data());
}

}  // namespace

bool is_bridge_property(std::string_view name) noexcept {
  return find_bridge_property(name) != nullptr;
}

std::optional<std::string> set_property(rd_kafka_conf_t* conf, const std::string& name, const std::string& value) {
  const bridge_property* owned = find_bridge_property(name);
  if (owned != nullptr && !owned->use_instead.empty()) {
    return "set by rtm-bridge itself: use " + std::string(owned->use_instead) + " instead";
  }
  if (owned != nullptr && owned->fixed.empty()) {
    return std::string(owned->why);
  }

  std::array<char, 512> errstr{};
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr.data(), errstr.size()) != RD_KAFKA_CONF_OK) {
    if (is_sensitive_property(bare_name(name))) {
      return std::string("librdkafka refused the value (not repeated here: it may be a secret)");
    }
    return "librdkafka: " + std::string(trim_newlines(errstr.data()));
  }

  // Judge the value as librdkafka parsed it ("all" → "-1", "0" → "false"), so every spelling is judged alike.
  const std::optional<std::string> parsed = read_back(conf, std::string(bare_name(name)));
  if (owned != nullptr) {
    if (parsed.value_or(value) != owned->fixed) {
      return "set by rtm-bridge itself: " + std::string(owned->why) + " (got \"" + value +
             "\"): remove the key or set it to " + std::string(owned->spelled);
    }
    return std::nullopt;
  }
  if (!parsed) {
    return std::nullopt;  // write-only or pointer-valued properties: nothing more to check
  }
  // The constraints librdkafka enforces for enable.idempotence only when the producer is created.
  const std::string_view bare = bare_name(name);
  if (bare == "max.in.flight" || bare == "max.in.flight.requests.per.connection") {
    if (const auto n = to_integer(*parsed); n && *n > 5) {
      return "must be at most 5 with the idempotent producer the bridge uses, got " + *parsed;
    }
  }
  if (bare == "retries" || bare == "message.send.max.retries") {
    if (const auto n = to_integer(*parsed); n && *n < 1) {
      return "must be at least 1 with the idempotent producer the bridge uses, got " + *parsed;
    }
  }
  return std::nullopt;
}

void property_checker::conf_deleter::operator()(rd_kafka_conf_s* conf) const noexcept {
  rd_kafka_conf_destroy(conf);
}

property_checker::property_checker() : conf_(rd_kafka_conf_new()) {
  if (!conf_) {
    throw std::bad_alloc();
  }
}

property_checker::~property_checker() = default;

std::optional<std::string> property_checker::check(const std::string& name, const std::string& value) {
  return set_property(conf_.get(), name, value);
}

std::optional<std::string> property_checker::get(const std::string& name) const {
  return read_back(conf_.get(), name);
}

std::optional<std::string> check_queue_size(std::size_t queue_kbytes, std::size_t message_max_bytes,
                                            std::size_t max_event_size, std::string_view largest_connection) {
  const std::size_t largest_record = std::min(max_event_size + envelope_overhead, message_max_bytes);
  const std::size_t needed_kbytes = (largest_record + 1023) / 1024;
  if (queue_kbytes >= needed_kbytes) {
    return std::nullopt;
  }
  return "must be at least " + std::to_string(needed_kbytes) + " (KiB) to hold the largest record: connection " +
         std::string(largest_connection) + "'s limits.max_event_size (" + std::to_string(max_event_size) +
         " bytes) plus " + std::to_string(envelope_overhead) +
         " for the envelope, key and headers (or message.max.bytes, " + std::to_string(message_max_bytes) +
         ", if smaller); got " + std::to_string(queue_kbytes) +
         ". librdkafka refuses a larger record even when its queue is empty, so it could never be sent: raise "
         "queue.buffering.max.kbytes or lower max_event_size";
}

bool is_sensitive_property(std::string_view name) noexcept {
  return name.find("password") != std::string_view::npos || name.find("secret") != std::string_view::npos ||
         name == "ssl.key.pem" || name == "ssl_key" || name == "sasl.oauthbearer.config";
}

}  // namespace rtm::config
