#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "support/daemon.hpp"
#include "support/kcat.hpp"

// The oracle for the spool's integration tests (issue 16): what the spool wrote, read by `rtm-bridge --spool-dump`
// (a separate process that does not trust the daemon under test), and what landed in Kafka, read by kcat. Shared by
// spool_enospc_test.cpp and spool_kill_test.cpp.
namespace rtm::test {

struct command_result {
  int code = -1;  // -1: did not end within the timeout (then killed)
  std::string output;
};

// Runs a command to its end (stdout and stderr together, captured in a fresh temporary directory).
command_result run(std::vector<std::string> argv, std::chrono::milliseconds timeout = std::chrono::seconds(60));

std::string joined(const std::vector<std::string>& argv);

// A number field of a flat JSON text ("\"name\":123"); a doctest REQUIRE fails when it is missing.
std::uint64_t json_number(const std::string& text, const std::string& name);
// A string field of a flat JSON text ("\"name\":\"value\""); empty when missing.
std::string json_string(const std::string& text, const std::string& name);

// The written set W: the envelope ids `rtm-bridge --spool-dump` lists (every valid record not yet confirmed by
// Kafka); `summary` gets the dump's closing "spool ..." line.
std::set<std::string> spool_dump(const std::string& spool_dir, std::string& summary);

// What a topic holds of the fixtures' "stream" events (payload "seq" per team, counted from 0 by the fixture).
struct topic_census {
  std::set<std::string> ids;             // distinct envelope ids (every record, stream or not)
  std::uint64_t records = 0;             // every record
  std::uint64_t duplicates = 0;          // records whose id appeared earlier
  std::uint64_t out_of_order = 0;        // per team, a first occurrence whose stream seq is not above the last one
  std::map<std::string, long> last_seq;  // per record key (team): the highest stream seq seen
};

// Takes stock of `records` (in offset order per partition, which for one key is the order it was produced in).
topic_census take_census(const std::vector<consumed>& records);

}  // namespace rtm::test
