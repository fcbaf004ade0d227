#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "config/loader.hpp"

// The loader's walk over a yaml-cpp tree: every read records a `problem` with the key path and the node's place
// instead of throwing, so one pass reports everything wrong with a file. Never calls yaml-cpp's as<>() (it throws).
namespace rtm::config::detail {

class problem_list {
 public:
  explicit problem_list(std::string file) : file_(std::move(file)) {}

  void add(const YAML::Mark& mark, std::string key_path, std::string message);
  void add_unplaced(std::string key_path, std::string message);  // no place in the file (e.g. the file is empty)

  [[nodiscard]] bool empty() const noexcept { return problems_.empty(); }
  [[nodiscard]] const std::string& file() const noexcept { return file_; }
  // The problems in file order (line, then column); unplaced ones first.
  [[nodiscard]] std::vector<problem> take();

 private:
  std::string file_;
  std::vector<problem> problems_;
};

// A value node with its key path and the place to blame for it.
struct field {
  YAML::Node node;
  YAML::Mark mark;  // the value's place; its key's when the value is an implicit null (yaml-cpp marks the next line)
  std::string path;
};

[[nodiscard]] std::string child_path(std::string_view parent, std::string_view key);
[[nodiscard]] std::string index_path(std::string_view parent, std::size_t index);

// "null", "a map", "a list" or the quoted scalar: the "got ..." part of a message.
[[nodiscard]] std::string describe_node(const YAML::Node& node);

// Reads the keys of one map. Duplicate and non-string keys are reported at construction; every key that is not
// taken (or rejected) is reported by finish() as unknown, with the known keys and the closest one as a hint.
class map_reader {
 public:
  enum class null_is { empty_map, error };

  // Reports when `map` is not a map (`what` names what was expected, e.g. "a map (name, kind, ...)").
  map_reader(problem_list& out, field map, std::string_view what, null_is null_rule = null_is::empty_map);
  map_reader(const map_reader&) = delete;
  map_reader& operator=(const map_reader&) = delete;
  ~map_reader() = default;

  [[nodiscard]] bool valid() const noexcept { return valid_; }
  [[nodiscard]] const field& self() const noexcept { return self_; }

  // The value of `key` (its first occurrence), or nullopt when absent. Registers `key` as known either way.
  [[nodiscard]] std::optional<field> take(std::string_view key);
  // Like take(), and reports a missing key at the map's place.
  [[nodiscard]] std::optional<field> require(std::string_view key);
  // `key` is known but not allowed here: reported with `why` when present.
  void reject(std::string_view key, const std::string& why);
  // Every entry not yet taken, in file order (for free-form maps such as kafka.properties).
  [[nodiscard]] std::vector<std::pair<std::string, field>> take_rest();
  // Reports the keys nobody took. Call once, after every take().
  void finish();

 private:
  struct entry {
    std::string name;
    YAML::Mark key_mark;
    field value;
    bool used = false;
  };

  problem_list& out_;
  field self_;
  bool valid_ = false;
  std::vector<entry> entries_;
  std::vector<std::string> known_;
};

// A scalar's text: nullopt (and a reported problem) when the node is not a scalar. What the text may be is the
// schema's to judge (config/schema_values.hpp).
[[nodiscard]] std::optional<std::string> read_string(problem_list& out, const field& f);
// A list's items with their paths; reports (and returns nullopt) when the node is not a list.
[[nodiscard]] std::optional<std::vector<field>> read_list(problem_list& out, const field& f, std::string_view what);

}  // namespace rtm::config::detail
