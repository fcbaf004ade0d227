#pragma once

#include <iosfwd>
#include <string>

// `rtm-bridge --spool-dump PATH` (CONTRACT "Durable spool"): every valid record of a spool directory that Kafka has
// not confirmed yet (at or above the checkpoint's low-water mark), one JSON object per line on `out`
// (seq, id, connection, team_id, event, topic, bytes, kind), then a summary line on `err`. Read-only and lock-free,
// so it is safe while the daemon runs (a record being written at that instant is not shown) and it is the oracle
// of the crash tests: it decodes the files itself and trusts nothing the daemon says.
namespace rtm::app {

// Returns the exit code: 0, or 1 when the directory cannot be read (the reason on `err`).
int spool_dump(const std::string& path, std::ostream& out, std::ostream& err);

}  // namespace rtm::app
