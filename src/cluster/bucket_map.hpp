#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// Several instances (docs/CONTRACT.md, "Several instances"), the pure half of which connection belongs to which
// bucket: a connection's bucket is murmur2(name) % buckets (Kafka's own partitioner, so any client can predict it),
// or the bucket its config names. The instances of one group hold the buckets (the assignment topic's partitions)
// between them and open the connections of the buckets they hold. Every instance must compute the same map: the
// fingerprint (exported as a metric label) makes a difference visible. No I/O; owned by the daemon's loop thread.
namespace rtm::cluster {

// toPositive(murmur2(name)) % buckets; `buckets` > 0.
[[nodiscard]] std::uint32_t bucket_of(std::string_view connection_name, std::uint32_t buckets) noexcept;

struct placed_connection {
  std::string name;
  std::optional<std::uint32_t> bucket;  // an explicit `bucket:`, else murmur2
};

class bucket_map {
 public:
  // Throws std::invalid_argument when buckets is 0 or an explicit bucket is out of range (the loader refuses both
  // first).
  bucket_map(const std::vector<placed_connection>& connections, std::uint32_t buckets);

  [[nodiscard]] std::uint32_t buckets() const noexcept { return static_cast<std::uint32_t>(by_bucket_.size()); }
  // The connections of `bucket`, in name order (empty for a bucket out of range).
  [[nodiscard]] const std::vector<std::string>& connections_of(std::uint32_t bucket) const noexcept;
  // The bucket of a connection by name, or nullopt when the map has no such connection.
  [[nodiscard]] std::optional<std::uint32_t> bucket(std::string_view name) const;
  // 16 hex digits of SHA-256 over "buckets\n" then "name\tbucket\n" per connection in name order: equal exactly when
  // two instances would open the same connections for the same buckets.
  [[nodiscard]] const std::string& fingerprint() const noexcept { return fingerprint_; }

 private:
  std::vector<std::vector<std::string>> by_bucket_;
  std::vector<std::pair<std::string, std::uint32_t>> by_name_;  // sorted by name
  std::string fingerprint_;
};

}  // namespace rtm::cluster
