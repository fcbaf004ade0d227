#pragma once

// The command line of docs/CONTRACT.md: parse, map failures to sysexits codes, run.
namespace rtm::app {

inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;
inline constexpr int exit_usage = 64;        // EX_USAGE
inline constexpr int exit_unavailable = 69;  // EX_UNAVAILABLE: fatal Kafka producer error
inline constexpr int exit_config = 78;       // EX_CONFIG

int main(int argc, char** argv) noexcept;

}  // namespace rtm::app
