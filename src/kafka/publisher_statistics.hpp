#pragma once

#include <cstdint>

// The publisher's counters (publisher::stats()), for tests and logs; the Prometheus metrics are kept apart, in
// metrics::registry. Each part of the publisher counts its own: recovery.hpp the producers, dead_letters.hpp the
// failures, the publisher the rest. io_context thread only.
namespace rtm::kafka {

struct publisher_statistics {
  std::uint64_t accepted = 0;           // records accepted (events and dead letters)
  std::uint64_t delivered = 0;          // records confirmed by the cluster
  std::uint64_t failed = 0;             // records that failed permanently (events dead-lettered, lost dead letters)
  std::uint64_t dead_letters_lost = 0;  // dead letters that themselves failed
  std::uint64_t producers_created = 0;
  std::uint64_t fatal_errors = 0;
  std::uint64_t reproduced = 0;           // records produced again by a new producer
  std::uint64_t possibly_duplicated = 0;  // of those, how many an earlier producer may have written already
  std::uint64_t queue_full = 0;           // QUEUE_FULL answers from librdkafka
  std::uint64_t spool_dropped = 0;        // not kept: the spool was full (when_full: drop_newest)
  std::uint64_t spool_read_back = 0;      // records read back from the spool's files (not taken live)
};

}  // namespace rtm::kafka
