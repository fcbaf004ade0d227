#pragma once

#include <optional>
#include <string>
#include <vector>

// What a benchmark run measured: rows for the console table and the same rows as JSON. Pure formatting.
namespace rtm::bench {

struct result_row {
  std::string section;  // "emitter", "throughput", ...
  std::string key;      // stable JSON name, e.g. "events_per_s"
  std::string label;    // what the table shows
  double value = 0;     // in `unit`; NaN when not measured
  std::string unit;
  std::string shown;         // the value as the table prints it
  std::string target;        // "" when there is none
  std::optional<bool> pass;  // nullopt: no target, or the data cannot decide
};

class report {
 public:
  void add(result_row row) { rows_.push_back(std::move(row)); }
  void error(const std::string& section, const std::string& text) { errors_.push_back(section + ": " + text); }
  void note(const std::string& text) { notes_.push_back(text); }
  void setting(const std::string& key, const std::string& value) { settings_.emplace_back(key, value); }

  [[nodiscard]] bool has_errors() const noexcept { return !errors_.empty(); }
  [[nodiscard]] std::string table() const;
  [[nodiscard]] std::string json() const;

 private:
  std::vector<result_row> rows_;
  std::vector<std::string> errors_;
  std::vector<std::string> notes_;
  std::vector<std::pair<std::string, std::string>> settings_;
};

// "%.*f" without the iostream ceremony.
[[nodiscard]] std::string fixed(double value, int decimals);

}  // namespace rtm::bench
