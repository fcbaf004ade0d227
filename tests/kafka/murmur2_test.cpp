#include "kafka/murmur2.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <string_view>

namespace {

struct vector_case {
  std::string_view key;
  std::int32_t expected;
};

// Apache Kafka clients UtilsTest.testMurmur2 (Java's Utils.murmur2 results) and librdkafka's rdmurmur2.c unit test
// (java_murmur2_results, there written as hex: 0xd067cf64 for "kafka", ...). Two independent sources; the
// integration test also checks the placement against librdkafka's murmur2_random partitioner on the mock cluster.
constexpr vector_case java_vectors[] = {
    {"21", -973932308},
    {"foobar", -790332482},
    {"a-little-bit-long-string", -985981536},
    {"a-little-bit-longer-string", -1486304829},
    {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
    {"abc", 479470107},
    {"kafka", static_cast<std::int32_t>(0xd067cf64U)},
    {"giberish123456789", static_cast<std::int32_t>(0x8f552b0cU)},
    {"1234", static_cast<std::int32_t>(0x9fc97b14U)},
    {"234", static_cast<std::int32_t>(0xe7c009caU)},
    {"34", static_cast<std::int32_t>(0x873930daU)},
    {"4", static_cast<std::int32_t>(0x5a4b5ca1U)},
    {"PreAmbleWillBeRemoved,ThePrePartThatIs", static_cast<std::int32_t>(0x78424f1cU)},
    {"reAmbleWillBeRemoved,ThePrePartThatIs", static_cast<std::int32_t>(0x4a62b377U)},
    {"eAmbleWillBeRemoved,ThePrePartThatIs", static_cast<std::int32_t>(0xe0e4e09eU)},
    {"AmbleWillBeRemoved,ThePrePartThatIs", static_cast<std::int32_t>(0x62b8b43fU)},
    {"", static_cast<std::int32_t>(0x106e08d9U)},
};

}  // namespace

TEST_CASE("murmur2 matches the Java client's vectors") {
  for (const auto& v : java_vectors) {
    CAPTURE(v.key);
    CHECK(rtm::kafka::murmur2(v.key) == v.expected);
  }
}

TEST_CASE("murmur2 partition is toPositive(hash) % partitions, alignment-independent") {
  CHECK(rtm::kafka::to_positive(-1) == 0x7fffffff);
  CHECK(rtm::kafka::to_positive(INT32_MIN) == 0);
  CHECK(rtm::kafka::to_positive(5) == 5);
  // "21": 0xc5f2f8ec & 0x7fffffff = 1173551340.
  CHECK(rtm::kafka::murmur2_partition("21", 7) == 1173551340 % 7);
  CHECK(rtm::kafka::murmur2_partition("foobar", 7) == 0);
  CHECK(rtm::kafka::murmur2_partition("abc", 1) == 0);
  CHECK(rtm::kafka::murmur2_partition("abc", 0) == -1);
  // Same bytes at every alignment give the same hash.
  alignas(8) char storage[16] = {};
  for (std::size_t offset = 0; offset < 4; ++offset) {
    std::memcpy(storage + offset, "kafka", 5);
    CHECK(rtm::kafka::murmur2(std::string_view(storage + offset, 5)) == static_cast<std::int32_t>(0xd067cf64U));
  }
}
