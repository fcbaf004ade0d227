#pragma once

#include <string>
#include <string_view>

// Digests for identities and fingerprints (never for secrecy of their own: they name a token or a map without
// holding it). OpenSSL's EVP; throws std::runtime_error in the unlikely case it fails.
namespace rtm::util {

// SHA-256 of `input`, 64 lowercase hex digits.
[[nodiscard]] std::string sha256_hex(std::string_view input);

}  // namespace rtm::util
