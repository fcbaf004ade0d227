#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// Reading what landed in Kafka the way a downstream consumer would: kcat 1.7.1 over TCP (`-J`, one JSON object per
// message), so tests check the bytes on the broker, not what our producer believes it sent.
namespace rtm::test {

struct consumed {
  std::string topic;
  int partition = -1;
  std::int64_t offset = -1;
  std::optional<std::string> key;
  std::string payload;
  std::vector<std::pair<std::string, std::string>> headers;

  // The one value of header `name` (a doctest CHECK fails if it appears twice).
  [[nodiscard]] std::optional<std::string> header(std::string_view name) const;
};

// Everything in `topic` from the beginning, in offset order per partition.
std::vector<consumed> read_topic(const std::string& bootstrap, const std::string& topic);

}  // namespace rtm::test
