#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"

struct rd_kafka_conf_s;

// Checks `kafka.properties` the way the producer will use them: librdkafka parses each one (its own error text is
// the message), and properties the bridge owns or that would break the contract are refused with the key to use.
namespace rtm::config {

class property_checker {
 public:
  property_checker();
  property_checker(const property_checker&) = delete;
  property_checker& operator=(const property_checker&) = delete;
  ~property_checker();

  // nullopt when `name = value` is accepted. Properties accumulate in one librdkafka conf, as in the producer.
  [[nodiscard]] std::optional<std::string> check(const std::string& name, const std::string& value);

 private:
  struct conf_deleter {
    void operator()(rd_kafka_conf_s* conf) const noexcept;
  };
  std::unique_ptr<rd_kafka_conf_s, conf_deleter> conf_;
};

// librdkafka's message.timeout.ms is a 32-bit millisecond count.
[[nodiscard]] std::optional<std::string> check_delivery_timeout(duration d);

// Property names whose values are credentials (sasl.password, ssl.key.password, ...): masked in summaries.
[[nodiscard]] bool is_sensitive_property(std::string_view name) noexcept;

}  // namespace rtm::config
