#include "tls/context.hpp"

#include <openssl/x509_vfy.h>

#include <boost/asio/ip/address.hpp>
#include <exception>

namespace rtm::tls {

namespace {

// IPv6 literals may come with the URL's brackets.
std::string bare_host(const std::string& host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    return host.substr(1, host.size() - 2);
  }
  return host;
}

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

std::shared_ptr<boost::asio::ssl::context> make_client_context(
    const options& opts, const std::string& host, std::string& error,
    const std::shared_ptr<std::string>& verify_failure) noexcept {
  namespace ssl = boost::asio::ssl;
  try {
    auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
    boost::system::error_code ec;
    context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                             ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                         ec);
    if (!ec && SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION) != 1) {
      error = "cannot require TLS 1.2 or newer in OpenSSL";
      return nullptr;
    }
    if (ec) {
      error = "cannot set TLS options: " + ec.message();
      return nullptr;
    }
    if (!opts.verify) {
      context->set_verify_mode(ssl::verify_none, ec);
      return context;
    }
    if (opts.ca_file.empty()) {
      context->set_default_verify_paths(ec);
      if (ec) {
        error = "cannot load the system CA store: " + ec.message();
        return nullptr;
      }
    } else {
      context->load_verify_file(opts.ca_file, ec);
      if (ec) {
        error = "cannot load tls.ca_file " + opts.ca_file + ": " + ec.message() +
                " (it must be a readable PEM file of CA certificates)";
        return nullptr;
      }
    }
    // The expected name goes into the context's verification parameters, which every SSL handle made from it
    // inherits: OpenSSL then refuses a mismatch during the handshake like any other certificate error.
    const std::string name = bare_host(host);
    X509_VERIFY_PARAM* param = SSL_CTX_get0_param(context->native_handle());
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int set = is_ip_literal(name) ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                                        : X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
    if (set != 1 || name.empty()) {
      error = "cannot check the TLS certificate against host name '" + name + "'";
      return nullptr;
    }
    context->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
    if (!ec) {
      context->set_verify_callback(
          [verify_failure](bool preverified, ssl::verify_context& ctx) {
            if (!preverified && verify_failure && verify_failure->empty()) {
              X509_STORE_CTX* store = ctx.native_handle();
              *verify_failure = std::string(X509_verify_cert_error_string(X509_STORE_CTX_get_error(store))) +
                                " (certificate depth " + std::to_string(X509_STORE_CTX_get_error_depth(store)) + ")";
            }
            return preverified;
          },
          ec);
    }
    if (ec) {
      error = "cannot enable TLS peer verification: " + ec.message();
      return nullptr;
    }
    return context;
  } catch (const std::exception& e) {
    // ssl::context's constructor throws when OpenSSL cannot allocate a context.
    error = std::string("cannot create a TLS context: ") + e.what();
    return nullptr;
  }
}

bool set_server_name(SSL* ssl, const std::string& host) noexcept {
  if (is_ip_literal(bare_host(host))) {
    return true;  // an IP literal: no SNI
  }
  // SSL_set_tlsext_host_name is a macro around SSL_ctrl with a (void*) cast of the name.
  return SSL_set_tlsext_host_name(ssl, const_cast<char*>(host.c_str())) == 1;  // NOLINT
}

}  // namespace rtm::tls
