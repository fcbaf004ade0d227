#pragma once

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

// Client TLS policy shared by the WebSocket transport and the HTTPS client (both dialects). Compiles as C++17 and
// C++20; includes nothing of websocketpp.
namespace rtm::tls {

struct options {
  bool verify = true;   // false: no peer or host name check at all (the caller logs a loud warning)
  std::string ca_file;  // PEM bundle to trust instead of the system store; empty: the system store
};

// A client context: TLS 1.2 minimum; with `verify`, the peer chain is checked against `ca_file` or the system
// store and the leaf certificate against `host` (a DNS name or an IP literal, by OpenSSL's own RFC 6125 check).
// One context per connection, since the host name check is bound to it. When `verify_failure` is given, the first
// reason a certificate was refused is written there ("hostname mismatch", "self-signed certificate in certificate
// chain", ...), for the error an operator reads. Returns nullptr with `error` set (e.g. an unreadable ca_file);
// never throws.
[[nodiscard]] std::shared_ptr<boost::asio::ssl::context> make_client_context(
    const options& opts, const std::string& host, std::string& error,
    const std::shared_ptr<std::string>& verify_failure = nullptr) noexcept;

// Sets SNI on a client handle unless `host` is an IP literal (RFC 6066 forbids those in SNI).
[[nodiscard]] bool set_server_name(SSL* ssl, const std::string& host) noexcept;

}  // namespace rtm::tls
