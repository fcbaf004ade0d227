#pragma once

#include <cstdint>
#include <memory>
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

// A consumer that runs beside the test from the beginning of `topic` (kcat -C -u: unbuffered, or its last records
// would sit in its pipe buffer), for topics that outgrow what the mock broker keeps per partition (its last 5 MiB):
// what kcat has read survives the broker dropping it. Stopped and reaped by the destructor.
class topic_follower {
 public:
  topic_follower(const std::string& bootstrap, const std::string& topic);
  topic_follower(const topic_follower&) = delete;
  topic_follower& operator=(const topic_follower&) = delete;
  topic_follower(topic_follower&&) = delete;
  topic_follower& operator=(topic_follower&&) = delete;
  ~topic_follower();
  // Parses the complete lines kcat has written since the last call onto records(); returns records().size().
  std::size_t poll();
  [[nodiscard]] const std::vector<consumed>& records() const noexcept { return records_; }

 private:
  struct state;
  std::unique_ptr<state> state_;
  std::vector<consumed> records_;
};

}  // namespace rtm::test
