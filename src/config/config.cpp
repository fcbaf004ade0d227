#include "config/config.hpp"

#include <openssl/evp.h>

#include <array>
#include <stdexcept>

#include "config/schema.hpp"

namespace rtm::config {

std::string token_identity(const connection_config& c) {
  const std::string& credential = c.kind == connection_kind::acme ? c.identifier.value : c.key.value;
  std::string input = to_string(c.kind);
  input += '\n';
  input += credential;
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_Digest(input.data(), input.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("cannot compute SHA-256 (OpenSSL EVP_Digest failed)");
  }
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(std::size_t{size} * 2);
  for (unsigned int i = 0; i < size; ++i) {
    out += hex[digest[i] >> 4U];
    out += hex[digest[i] & 0x0fU];
  }
  return out;
}

// The names are the schema's choices (what the file says), so a summary or log line spells a kind as it is written.
const char* to_string(connection_kind kind) noexcept {
  return schema::choice_name(schema::kind_choices, static_cast<int>(kind)).data();
}

const char* to_string(acme_tier tier) noexcept {
  return schema::choice_name(schema::tier_choices, static_cast<int>(tier)).data();
}

}  // namespace rtm::config
