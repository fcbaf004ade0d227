#include "cluster/bucket_map.hpp"

#include <algorithm>
#include <stdexcept>

#include "kafka/murmur2.hpp"
#include "util/digest.hpp"

namespace rtm::cluster {
namespace {

const std::vector<std::string>& no_connections() {
  static const std::vector<std::string> none;
  return none;
}

}  // namespace

std::uint32_t bucket_of(std::string_view connection_name, std::uint32_t buckets) noexcept {
  if (buckets == 0) {
    return 0;
  }
  const auto positive = static_cast<std::uint32_t>(kafka::to_positive(kafka::murmur2(connection_name)));
  return positive % buckets;
}

bucket_map::bucket_map(const std::vector<placed_connection>& connections, std::uint32_t buckets) {
  if (buckets == 0) {
    throw std::invalid_argument("cluster: buckets must be at least 1");
  }
  by_bucket_.resize(buckets);
  by_name_.reserve(connections.size());
  for (const placed_connection& c : connections) {
    const std::uint32_t b = c.bucket.value_or(bucket_of(c.name, buckets));
    if (b >= buckets) {
      throw std::invalid_argument("cluster: connection " + c.name + " names bucket " + std::to_string(b) +
                                  ", beyond the " + std::to_string(buckets) + " buckets");
    }
    by_name_.emplace_back(c.name, b);
  }
  std::sort(by_name_.begin(), by_name_.end());
  std::string canonical = std::to_string(buckets) + "\n";
  for (const auto& [name, b] : by_name_) {
    by_bucket_[b].push_back(name);  // in name order, as by_name_ is
    canonical += name;
    canonical += '\t';
    canonical += std::to_string(b);
    canonical += '\n';
  }
  fingerprint_ = util::sha256_hex(canonical).substr(0, 16);
}

const std::vector<std::string>& bucket_map::connections_of(std::uint32_t bucket) const noexcept {
  return bucket < by_bucket_.size() ? by_bucket_[bucket] : no_connections();
}

std::optional<std::uint32_t> bucket_map::bucket(std::string_view name) const {
  const auto it = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                                   [](const auto& entry, std::string_view n) { return entry.first < n; });
  if (it == by_name_.end() || it->first != name) {
    return std::nullopt;
  }
  return it->second;
}

}  // namespace rtm::cluster
