// The connection → bucket map alone.
#include "cluster/bucket_map.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "kafka/murmur2.hpp"

using rtm::cluster::bucket_map;
using rtm::cluster::bucket_of;
using rtm::cluster::placed_connection;

TEST_CASE("bucket map: a connection's bucket is Kafka's partition of its name, unless it names one") {
  for (const std::string name : {"acme-main", "slack-main", "a", "token-0042", "x_y-z"}) {
    for (const std::uint32_t buckets : {1U, 7U, 64U, 1000U}) {
      CHECK(bucket_of(name, buckets) ==
            static_cast<std::uint32_t>(rtm::kafka::murmur2_partition(name, static_cast<std::int32_t>(buckets))));
    }
  }
  const bucket_map map({{"acme-main", std::nullopt}, {"pinned", 3U}, {"slack-main", std::nullopt}}, 8);
  CHECK(map.buckets() == 8);
  CHECK(map.bucket("pinned") == std::optional<std::uint32_t>(3));
  CHECK(map.bucket("acme-main") == std::optional<std::uint32_t>(bucket_of("acme-main", 8)));
  CHECK_FALSE(map.bucket("nope").has_value());
  const auto& in_3 = map.connections_of(3);
  CHECK(std::find(in_3.begin(), in_3.end(), "pinned") != in_3.end());
  CHECK(map.connections_of(99).empty());
  std::size_t total = 0;
  for (std::uint32_t b = 0; b < map.buckets(); ++b) {
    total += map.connections_of(b).size();
    CHECK(std::is_sorted(map.connections_of(b).begin(), map.connections_of(b).end()));
  }
  CHECK(total == 3);
}

TEST_CASE("bucket map: 10,000 names spread over 64 buckets, none empty, none with more than twice its share") {
  std::vector<placed_connection> many;
  for (int i = 0; i < 10000; ++i) {
    many.push_back({"token-" + std::to_string(i), std::nullopt});
  }
  const bucket_map map(many, 64);
  for (std::uint32_t b = 0; b < 64; ++b) {
    CHECK(map.connections_of(b).size() > 0);
    CHECK(map.connections_of(b).size() < 2 * 10000 / 64);
  }
}

TEST_CASE("bucket map: the fingerprint is the same for the same map in any order, and differs for any change") {
  const bucket_map a({{"one", std::nullopt}, {"two", std::nullopt}, {"three", 1U}}, 16);
  const bucket_map b({{"three", 1U}, {"one", std::nullopt}, {"two", std::nullopt}}, 16);
  CHECK(a.fingerprint() == b.fingerprint());
  CHECK(a.fingerprint().size() == 16);
  CHECK(a.fingerprint() != bucket_map({{"one", std::nullopt}, {"two", std::nullopt}, {"three", 2U}}, 16).fingerprint());
  CHECK(a.fingerprint() != bucket_map({{"one", std::nullopt}, {"two", std::nullopt}, {"three", 1U}}, 17).fingerprint());
  CHECK(a.fingerprint() != bucket_map({{"one", std::nullopt}, {"two", std::nullopt}}, 16).fingerprint());
  CHECK(a.fingerprint() !=
        bucket_map({{"one", std::nullopt}, {"two", std::nullopt}, {"three", 1U}, {"four", std::nullopt}}, 16)
            .fingerprint());
}

TEST_CASE("bucket map: no buckets, or a bucket beyond them, is refused") {
  CHECK_THROWS_AS(bucket_map({{"a", std::nullopt}}, 0), std::invalid_argument);
  CHECK_THROWS_AS(bucket_map({{"a", 8U}}, 8), std::invalid_argument);
  CHECK_NOTHROW(bucket_map({{"a", 7U}}, 8));
}
