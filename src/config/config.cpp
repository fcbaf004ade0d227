#include "config/config.hpp"

#include "config/schema.hpp"
#include "util/digest.hpp"

namespace rtm::config {

std::string token_identity(const connection_config& c) {
  const std::string& credential = c.kind == connection_kind::acme ? c.identifier.value : c.key.value;
  std::string input = to_string(c.kind);
  input += '\n';
  input += credential;
  return util::sha256_hex(input);
}

// The names are the schema's choices (what the file says), so a summary or log line spells a kind as it is written.
const char* to_string(connection_kind kind) noexcept {
  return schema::choice_name(schema::kind_choices, static_cast<int>(kind)).data();
}

const char* to_string(acme_tier tier) noexcept {
  return schema::choice_name(schema::tier_choices, static_cast<int>(tier)).data();
}

}  // namespace rtm::config
