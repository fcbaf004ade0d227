#include "upstream/ws/tls_context.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <exception>

namespace rtm::upstream::ws {

std::shared_ptr<boost::asio::ssl::context> make_client_context(const tls_options& options, const std::string& host,
                                                               std::string& error) noexcept {
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
    if (!options.verify) {
      context->set_verify_mode(ssl::verify_none, ec);
      return context;
    }
    if (options.ca_file.empty()) {
      context->set_default_verify_paths(ec);
      if (ec) {
        error = "cannot load the system CA store: " + ec.message();
        return nullptr;
      }
    } else {
      context->load_verify_file(options.ca_file, ec);
      if (ec) {
        error = "cannot load tls.ca_file " + options.ca_file + ": " + ec.message() +
                " (it must be a readable PEM file of CA certificates)";
        return nullptr;
      }
    }
    context->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
    if (!ec) {
      context->set_verify_callback(ssl::host_name_verification(host), ec);
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
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  if (!ec) {
    return true;  // an IP literal: no SNI
  }
  // SSL_set_tlsext_host_name is a macro around SSL_ctrl with a (void*) cast of the name.
  return SSL_set_tlsext_host_name(ssl, const_cast<char*>(host.c_str())) == 1;  // NOLINT
}

}  // namespace rtm::upstream::ws
