#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "pipeline/event.hpp"
#include "util/string_hash.hpp"

// Topic routing: `kafka.routes` (first glob match on the event name wins) over the default `kafka.topic` template.
// Pure: no I/O. Owned and called by the publisher on the io_context thread (not thread-safe).
//
// Templates may use {namespace}, {event}, {connection} and {source}; `{{` and `}}` stand for literal braces. Every
// resolved name is then made acceptable to Kafka, deterministically:
//   - ':' becomes '.' (so "rtm.{event}" with "message:updated" gives "rtm.message.updated");
//   - any other byte outside [a-zA-Z0-9._-] becomes '_' (UTF-8 sequences give one '_' per byte);
//   - a name longer than 249 bytes (Kafka's limit) is cut to 249;
//   - an empty name becomes "_", and "." / ".." (names Kafka forbids) become "_" / "__".
// Two different events may therefore share a topic (e.g. "a:b" and "a.b"); that is the price of a total mapping.
namespace rtm::kafka {

inline constexpr std::size_t max_topic_length = 249;

// Rewrites `name` in place as described above.
void sanitize_topic(std::string& name);

class router {
 public:
  // Resolved topics are cached per (source, connection, namespace, event); past this many entries new combinations
  // are formatted into a scratch buffer instead, so a flood of distinct event names cannot grow memory without bound.
  static constexpr std::size_t default_cache_limit = 10000;

  // Throws std::runtime_error naming the key (kafka.topic or kafka.routes[i]) on an unknown placeholder, an
  // unbalanced brace or an invalid glob.
  explicit router(const config::kafka_config& cfg, std::size_t cache_limit = default_cache_limit);

  // The topic for `ev`. The reference stays valid until the next resolve() (it points into the cache or into the
  // scratch buffer); the string is NUL-terminated, so c_str() can go to librdkafka directly. Allocates only when a
  // new combination enters the cache.
  const std::string& resolve(const pipeline::event& ev);
  const std::string& resolve(pipeline::source from, std::string_view connection, std::string_view name_space,
                             std::string_view event_name);

  [[nodiscard]] std::size_t cache_size() const noexcept { return cache_.size(); }
  [[nodiscard]] std::uint64_t uncached_resolutions() const noexcept { return uncached_; }

 private:
  enum class part_kind : std::uint8_t { literal, name_space, event, connection, source };
  struct part {
    part_kind kind = part_kind::literal;
    std::string text;  // for literals
  };
  struct compiled {
    std::vector<part> parts;
  };
  struct compiled_route {
    std::string match;
    compiled topic;
  };

  static compiled compile(std::string_view text, std::string_view key);
  void format(const compiled& tpl, pipeline::source from, std::string_view connection, std::string_view name_space,
              std::string_view event_name, std::string& out) const;

  std::vector<compiled_route> routes_;
  compiled default_;
  std::size_t cache_limit_;
  string_map<std::string> cache_;
  std::string key_;      // reused lookup key: no allocation once grown
  std::string scratch_;  // reused output when the cache is full
  std::uint64_t uncached_ = 0;
};

}  // namespace rtm::kafka
