#include "util/digest.hpp"

#include <openssl/evp.h>

#include <array>
#include <stdexcept>

namespace rtm::util {

std::string sha256_hex(std::string_view input) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_Digest(input.data(), input.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("cannot compute SHA-256 (OpenSSL EVP_Digest failed)");
  }
  static constexpr std::string_view hex = "0123456789abcdef";
  std::string out;
  out.reserve(std::size_t{size} * 2);
  for (unsigned int i = 0; i < size; ++i) {
    out += hex[digest[i] >> 4U];
    out += hex[digest[i] & 0x0fU];
  }
  return out;
}

}  // namespace rtm::util
