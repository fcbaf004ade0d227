#include "config/kafka_properties.hpp"

#include <librdkafka/rdkafka.h>

#include <array>
#include <charconv>
#include <cstdint>
#include <limits>
#include <new>
#include <system_error>

namespace rtm::config {
namespace {

struct owned_property {
  std::string_view name;
  std::string_view use_instead;
};

// Properties with a dedicated config key: setting both would leave two sources of truth.
constexpr std::array<owned_property, 5> owned{{
    {"bootstrap.servers", "kafka.brokers"},
    {"metadata.broker.list", "kafka.brokers"},
    {"message.timeout.ms", "kafka.delivery_timeout"},
    {"delivery.timeout.ms", "kafka.delivery_timeout"},
    {"client.id", "kafka.client_id"},
}};

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

}  // namespace

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
  // librdkafka accepts topic properties with a "topic." prefix; the contract's rules apply to both spellings.
  const std::string_view bare =
      std::string_view(name).starts_with("topic.") ? std::string_view(name).substr(6) : std::string_view(name);
  for (const owned_property& p : owned) {
    if (bare == p.name) {
      return "set by the bridge: use " + std::string(p.use_instead) + " instead";
    }
  }
  if (bare == "transactional.id") {
    return std::string(
        "the bridge's producer is idempotent, not transactional: remove transactional.id (ordering and no "
        "duplicates per partition come from enable.idempotence, which is always on)");
  }

  char errstr[512] = {};
  if (rd_kafka_conf_set(conf_.get(), name.c_str(), value.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
    return "librdkafka: " + std::string(trim_newlines(errstr));
  }

  // Read back the value as librdkafka parsed it ("all" → "-1", "0" → "false"), so every spelling is judged alike.
  std::array<char, 256> buf{};
  std::size_t size = buf.size();
  const std::string lookup(bare);
  if (rd_kafka_conf_get(conf_.get(), lookup.c_str(), buf.data(), &size) != RD_KAFKA_CONF_OK) {
    return std::nullopt;  // write-only or pointer-valued properties: nothing more to check
  }
  const std::string_view parsed(buf.data());

  if (bare == "enable.idempotence" && parsed != "true") {
    return "the contract requires an idempotent producer: enable.idempotence cannot be false (remove the key)";
  }
  if ((bare == "acks" || bare == "request.required.acks") && parsed != "-1") {
    return "the contract requires acks=all (got \"" + value + "\"): remove the key or set it to all";
  }
  if (bare == "partitioner" && parsed != "murmur2_random") {
    return "the contract fixes the partitioner to murmur2_random (the Java client's), so every Kafka client agrees "
           "where a team lives: remove the key";
  }
  if (bare == "queuing.strategy" && parsed != "fifo") {
    return std::string("the idempotent producer needs queuing.strategy=fifo: remove the key");
  }
  // The constraints librdkafka enforces for enable.idempotence only when the producer is created.
  if (bare == "max.in.flight" || bare == "max.in.flight.requests.per.connection") {
    if (const auto n = to_integer(parsed); n && *n > 5) {
      return "must be at most 5 with the idempotent producer the bridge uses, got " + std::string(parsed);
    }
  }
  if (bare == "retries" || bare == "message.send.max.retries") {
    if (const auto n = to_integer(parsed); n && *n < 1) {
      return "must be at least 1 with the idempotent producer the bridge uses, got " + std::string(parsed);
    }
  }
  return std::nullopt;
}

std::optional<std::string> check_delivery_timeout(duration d) {
  constexpr auto max_ms = static_cast<duration::rep>(std::numeric_limits<std::int32_t>::max());
  if (d.count() > max_ms) {
    return "at most " + std::to_string(max_ms) +
           "ms (about 24 days; librdkafka's message.timeout.ms limit), or 0 to never give up";
  }
  return std::nullopt;
}

bool is_sensitive_property(std::string_view name) noexcept {
  return name.find("password") != std::string_view::npos || name.find("secret") != std::string_view::npos ||
         name == "ssl.key.pem" || name == "sasl.oauthbearer.config";
}

}  // namespace rtm::config
