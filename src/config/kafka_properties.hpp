#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"

struct rd_kafka_conf_s;

// The one rule for `kafka.properties`, in one place: the config loader applies it (so --check-config says what the
// daemon would say) and so does the producer when it builds its librdkafka conf (the second line of defence for
// the delivery guarantees). librdkafka parses each property (its own error text is the message), and properties the
// bridge owns or that would break the contract are refused with the key to use or the value it must have.
namespace rtm::config {

// Sets `name = value` in `conf` and checks it against the contract. nullopt when accepted; else the message (without
// the key path). Properties accumulate in `conf`, so constraints between them are judged as librdkafka will.
// librdkafka's own text may quote the value: for a sensitive property (is_sensitive_property) it is not repeated.
[[nodiscard]] std::optional<std::string> set_property(rd_kafka_conf_s* conf, const std::string& name,
                                                      const std::string& value);

// A property the bridge decides (its config key sets it, or its value is fixed by the contract), whatever its value:
// the names set_property() refuses or accepts only with the fixed value. A "topic." prefix is ignored.
[[nodiscard]] bool is_bridge_property(std::string_view name) noexcept;

// set_property() on a conf of its own, for the config loader.
class property_checker {
 public:
  property_checker();
  property_checker(const property_checker&) = delete;
  property_checker& operator=(const property_checker&) = delete;
  ~property_checker();

  // nullopt when `name = value` is accepted. Properties accumulate in one librdkafka conf, as in the producer.
  [[nodiscard]] std::optional<std::string> check(const std::string& name, const std::string& value);

  // How librdkafka reads `name` back from the accumulated properties (its default when none set it); nullopt for a
  // property it cannot report.
  [[nodiscard]] std::optional<std::string> get(const std::string& name) const;

 private:
  struct conf_deleter {
    void operator()(rd_kafka_conf_s* conf) const noexcept;
  };
  std::unique_ptr<rd_kafka_conf_s, conf_deleter> conf_;
};

// What the envelope, key and headers may add to an event of limits.max_event_size bytes (the event default leaves
// this much of Kafka's default message.max.bytes).
inline constexpr std::size_t envelope_overhead = std::size_t{16} << 10;

// librdkafka refuses a record whose value is larger than queue.buffering.max.kbytes with QUEUE_FULL even when its
// queue is empty, so that record could never leave. Below the largest record the producer would otherwise accept —
// `max_event_size` plus envelope_overhead, or message.max.bytes when that is smaller (larger records are refused as
// msg_size_too_large instead) — the queue size is refused. `queue_kbytes` and `message_max_bytes` as librdkafka
// reads them back.
[[nodiscard]] std::optional<std::string> check_queue_size(std::size_t queue_kbytes, std::size_t message_max_bytes,
                                                          std::size_t max_event_size,
                                                          std::string_view largest_connection);

// Property names whose values are credentials or key material: masked in summaries, never repeated in error
// messages, and a config holding one in clear is a config holding a secret. Names containing "password" or
// "secret", and ssl.key.pem, ssl_key (private keys) and sasl.oauthbearer.config (may carry a token). A user name,
// a path or a certificate is not a secret: summaries show it.
[[nodiscard]] bool is_sensitive_property(std::string_view name) noexcept;

}  // namespace rtm::config
