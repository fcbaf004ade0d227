#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/schema.hpp"
#include "config/schema_reader.hpp"

// The schema reader's bookkeeping (config/schema_reader.cpp, the only includer): what it remembers about the keys
// of the section it is reading and about each connection, to report problems with the file's positions.
namespace rtm::config::detail {

// One key of a section as the reader met it: the member it fills, where the file gives it, whether it was stored.
struct taken_key {
  const void* member = nullptr;
  std::optional<field> given;
  bool ok = true;  // absent, or read without a problem
};

// The map being read and what was taken from it; lives on the stack for the duration of one section's visit.
class section_frame {
 public:
  section_frame(problem_list& out, const field& f, std::string_view what, map_reader::null_is rule)
      : m(out, f, what, rule) {}

  map_reader m;
  std::optional<connection_kind> kind;  // the section's `kind`, once read (connections)
  std::vector<taken_key> keys;          // the rows that applied, in table order
  std::vector<std::string_view> names;  // their names
  // Rows of other kinds than this connection's. Copies: visit() passes each row as a temporary.
  std::vector<schema::key_spec> elsewhere;

  [[nodiscard]] const taken_key* find(const void* member) const noexcept {
    const auto it = std::find_if(keys.begin(), keys.end(), [member](const taken_key& k) { return k.member == member; });
    return it == keys.end() ? nullptr : &*it;
  }
  // Where the file gives `member`'s key, or nullptr.
  [[nodiscard]] const field* given(const void* member) const noexcept {
    const taken_key* k = find(member);
    return k != nullptr && k->given ? &*k->given : nullptr;
  }
  // Absent or read without a problem.
  [[nodiscard]] bool ok(const void* member) const noexcept {
    const taken_key* k = find(member);
    return k == nullptr || k->ok;
  }
  // Given and stored.
  [[nodiscard]] const field* accepted(const void* member) const noexcept {
    return ok(member) ? given(member) : nullptr;
  }
};

// What the loader remembers about a connection to check it against the others (names, tokens are unique).
struct connection_places {
  std::optional<field> name;
  std::optional<field> token;   // acme: identifier, slack: key
  std::string token_identity;   // config::token_identity(): compared, never printed
  std::optional<field> bucket;  // an explicit `bucket:`, checked against cluster.buckets once every section is read
};

// "acme", "slack or slack_socket": the kinds a row applies to.
inline std::string kinds_text(schema::kind_set kinds) {
  std::vector<std::string_view> names;
  for (const schema::choice& c : schema::kind_choices) {
    if ((kinds & schema::kind_bit(static_cast<connection_kind>(c.value))) != 0) {
      names.push_back(c.name);
    }
  }
  std::string text;
  for (std::size_t i = 0; i < names.size(); ++i) {
    text += i == 0 ? "" : (i + 1 == names.size() ? " or " : ", ");
    text += names[i];
  }
  return text;
}

}  // namespace rtm::config::detail
