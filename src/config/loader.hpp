#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

// Loading and validating the YAML config: every error of a file is collected (where the file parses at all) and
// reported as `PATH:LINE:COL: key.path: what is wrong`, the contract's format.
namespace rtm::config {

struct problem {
  std::string file;
  int line = 0;    // 1-based; 0 when the problem has no place in the file (missing, unreadable or empty file)
  int column = 0;  // 1-based
  // e.g. "connections[1].reconnect.max_delay" (list indexes are 0-based, as in jq/yq), "kafka.properties.linger.ms";
  // empty for file-level problems (syntax errors, an empty file). A missing key is placed at its parent map.
  std::string key_path;
  std::string message;

  // "file:line:col: key.path: message"; ":line:col" is left out when line is 0, "key.path: " when it is empty.
  [[nodiscard]] std::string format() const;
};

// what() is every problem's format(), one per line, in file order: ready for stderr.
class load_error : public std::runtime_error {
 public:
  explicit load_error(std::vector<problem> problems);
  [[nodiscard]] const std::vector<problem>& problems() const noexcept { return problems_; }

 private:
  std::vector<problem> problems_;
};

// Reads, validates and resolves secrets (env, file, credential). Throws load_error with every problem found.
// Relative paths in the file (secret files, tls.ca_file) are relative to the working directory (/ under systemd).
// Logs one warning (never a secret) when the file holds inline secrets and is readable by group or others.
[[nodiscard]] config load_file(const std::string& path);
// Same, from text; `path` is only used in messages and to resolve nothing else.
[[nodiscard]] config load_string(std::string_view yaml, const std::string& path);

// The one-screen `--check-config` summary: connections, kinds, topics, brokers; secrets masked.
[[nodiscard]] std::string summary(const config& cfg);

}  // namespace rtm::config
