#include "config/ca_file.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <climits>
#include <variant>

#include "config/file.hpp"

namespace rtm::config {

std::optional<std::string> check_ca_file(const std::string& path) {
  file_result read = read_small_file(path, max_ca_file_bytes);
  if (const auto* error = std::get_if<std::string>(&read)) {
    return "cannot read CA file " + path + ": " + *error;
  }
  const std::string& pem = std::get<file_content>(read).data;
  static_assert(max_ca_file_bytes <= INT_MAX);
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) {
    ERR_clear_error();
    return "cannot check CA file " + path + ": out of memory";
  }
  STACK_OF(X509_INFO)* infos = PEM_X509_INFO_read_bio(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  int certificates = 0;
  if (infos != nullptr) {
    for (int i = 0; i < sk_X509_INFO_num(infos); ++i) {
      if (sk_X509_INFO_value(infos, i)->x509 != nullptr) {
        ++certificates;
      }
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
  }
  // This thread's OpenSSL error queue must be left empty for the TLS code that runs later on it.
  ERR_clear_error();
  if (certificates == 0) {
    return "CA file " + path + " holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")";
  }
  return std::nullopt;
}

}  // namespace rtm::config
