#include "config/yaml_reader.hpp"

#include <algorithm>

#include "config/validate.hpp"

namespace rtm::config::detail {
namespace {

// Places are 1-based in messages; yaml-cpp's are 0-based, and -1 for nodes it built itself.
int one_based(int zero_based) noexcept {
  return zero_based < 0 ? 0 : zero_based + 1;
}

// Edit distance for "did you mean" hints; keys are short, so the quadratic table is fine.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

YAML::Mark place_of(const YAML::Node& value, const YAML::Mark& key_mark) {
  if (value.IsNull() || value.Mark().line < 0) {
    return key_mark;
  }
  return value.Mark();
}

}  // namespace

void problem_list::add(const YAML::Mark& mark, std::string key_path, std::string message) {
  problems_.push_back(
      problem{file_, one_based(mark.line), one_based(mark.column), std::move(key_path), std::move(message)});
}

void problem_list::add_unplaced(std::string key_path, std::string message) {
  problems_.push_back(problem{file_, 0, 0, std::move(key_path), std::move(message)});
}

std::vector<problem> problem_list::take() {
  std::stable_sort(problems_.begin(), problems_.end(), [](const problem& a, const problem& b) {
    return a.line != b.line ? a.line < b.line : a.column < b.column;
  });
  return std::move(problems_);
}

std::string child_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) {
    return std::string(key);
  }
  std::string out(parent);
  out += '.';
  out += key;
  return out;
}

std::string index_path(std::string_view parent, std::size_t index) {
  return std::string(parent) + "[" + std::to_string(index) + "]";
}

std::string describe_node(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return "null";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      break;
  }
  return quoted(node.Scalar());
}

map_reader::map_reader(problem_list& out, field map, std::string_view what, null_is null_rule)
    : out_(out), self_(std::move(map)) {
  if (self_.node.IsNull() && null_rule == null_is::empty_map) {
    valid_ = true;
    return;
  }
  if (!self_.node.IsMap()) {
    out_.add(self_.mark, self_.path, "expected " + std::string(what) + ", got " + describe_node(self_.node));
    return;
  }
  valid_ = true;
  for (auto it = self_.node.begin(); it != self_.node.end(); ++it) {
    const YAML::Node key = it->first;
    if (!key.IsScalar()) {
      out_.add(key.Mark(), self_.path, "keys must be plain strings, got " + describe_node(key) + " as a key");
      continue;
    }
    const std::string& name = key.Scalar();
    const auto first =
        std::find_if(entries_.begin(), entries_.end(), [&name](const entry& e) { return e.name == name; });
    if (first != entries_.end()) {
      out_.add(key.Mark(), child_path(self_.path, name),
               "duplicate key " + quoted(name) + " (first set at line " +
                   std::to_string(one_based(first->key_mark.line)) + "): keep one");
      continue;
    }
    entries_.push_back(
        entry{name, key.Mark(), field{it->second, place_of(it->second, key.Mark()), child_path(self_.path, name)}});
  }
}

std::optional<field> map_reader::take(std::string_view key) {
  known_.emplace_back(key);
  for (entry& e : entries_) {
    if (e.name == key) {
      e.used = true;
      return e.value;
    }
  }
  return std::nullopt;
}

std::optional<field> map_reader::require(std::string_view key) {
  std::optional<field> f = take(key);
  if (!f && valid_) {
    out_.add(self_.mark, child_path(self_.path, key), "missing required key " + quoted(key));
  }
  return f;
}

void map_reader::reject(std::string_view key, const std::string& why) {
  for (entry& e : entries_) {
    if (e.name == key) {
      e.used = true;
      out_.add(e.key_mark, e.value.path, why);
    }
  }
}

std::vector<std::pair<std::string, field>> map_reader::take_rest() {
  std::vector<std::pair<std::string, field>> rest;
  for (entry& e : entries_) {
    if (!e.used) {
      e.used = true;
      rest.emplace_back(e.name, e.value);
    }
  }
  return rest;
}

void map_reader::finish() {
  for (entry& e : entries_) {
    if (e.used) {
      continue;
    }
    e.used = true;
    std::string message = "unknown key " + quoted(e.name);
    const std::string* closest = nullptr;
    std::size_t best = 3;  // hint only for near misses (a typo or two)
    for (const std::string& k : known_) {
      // The distance is at least the difference in length: skipping those keeps a long hostile key from costing
      // (key length x known key length) steps per known key, and changes no hint.
      const std::size_t length_gap = e.name.size() > k.size() ? e.name.size() - k.size() : k.size() - e.name.size();
      if (length_gap >= best) {
        continue;
      }
      const std::size_t d = edit_distance(e.name, k);
      if (d < best) {
        best = d;
        closest = &k;
      }
    }
    if (closest != nullptr) {
      message += ", did you mean " + quoted(*closest) + "?";
    }
    if (!known_.empty()) {
      message += " (expected one of:";
      for (std::size_t i = 0; i < known_.size(); ++i) {
        message += (i == 0 ? " " : ", ") + known_[i];
      }
      message += ")";
    }
    out_.add(e.key_mark, e.value.path, std::move(message));
  }
}

std::optional<std::string> read_string(problem_list& out, const field& f) {
  if (!f.node.IsScalar()) {
    out.add(f.mark, f.path, "expected a string, got " + describe_node(f.node));
    return std::nullopt;
  }
  return f.node.Scalar();
}

std::optional<std::vector<field>> read_list(problem_list& out, const field& f, std::string_view what) {
  if (!f.node.IsSequence()) {
    out.add(f.mark, f.path, "expected " + std::string(what) + ", got " + describe_node(f.node));
    return std::nullopt;
  }
  std::vector<field> items;
  std::size_t i = 0;
  for (auto it = f.node.begin(); it != f.node.end(); ++it, ++i) {
    const YAML::Node item = *it;
    items.push_back(field{item, item.IsNull() || item.Mark().line < 0 ? f.mark : item.Mark(), index_path(f.path, i)});
  }
  return items;
}

}  // namespace rtm::config::detail
