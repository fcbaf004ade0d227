#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

// Pure checks of single config values. Each returns nullopt when the value is fine, else a message saying what was
// expected and what was found (no key path, no position: the loader adds those).
namespace rtm::config {

inline constexpr std::size_t max_connection_name = 64;
inline constexpr std::size_t max_topic_name = 249;

// "\"text\"": the quoted value in messages.
[[nodiscard]] std::string quoted(std::string_view text);

// [a-z0-9_-]+, at most 64 characters.
[[nodiscard]] std::optional<std::string> check_connection_name(std::string_view name);

// A literal Kafka topic name: [a-zA-Z0-9._-]{1,249}, not "." or "..".
[[nodiscard]] std::optional<std::string> check_topic_name(std::string_view name);

// A topic template: literal topic characters and the placeholders {namespace}, {event}, {connection}, {source}.
// Without placeholders it must be a valid topic name.
[[nodiscard]] std::optional<std::string> check_topic_template(std::string_view tmpl);
[[nodiscard]] bool has_placeholder(std::string_view tmpl) noexcept;

struct port_range {
  unsigned min = 1;
  unsigned max = 65535;
};

// host:port where host is a dotted IPv4 address, a bracketed IPv6 address ([::1]) or a DNS name.
[[nodiscard]] std::optional<std::string> check_host_port(std::string_view text, port_range ports = {});

// "embedded", or a comma-separated host:port list (spaces around entries allowed).
[[nodiscard]] std::optional<std::string> check_brokers(std::string_view brokers);
// "kafka1:9092 , kafka2:9092" -> "kafka1:9092,kafka2:9092"; for a list check_brokers() accepted.
[[nodiscard]] std::string normalize_brokers(std::string_view brokers);

// scheme://host[:port][/path][?query] with one of `schemes`; no user info, no fragment, no spaces.
[[nodiscard]] std::optional<std::string> check_url(std::string_view url,
                                                   std::initializer_list<std::string_view> schemes);

}  // namespace rtm::config
