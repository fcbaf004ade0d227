#pragma once

// A throw-away PKI for the TLS tests of both dialects, made with the openssl command line: a CA, a server
// certificate from it for 127.0.0.1/localhost ("good"), one from it for another host ("other"), and one for
// 127.0.0.1 from a second CA nobody trusts ("rogue").
#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "support/process.hpp"

namespace rtm::test {

class temp_pki {
 public:
  temp_pki() {
    ca_cert = make_ca("ca", "rtm-bridge test CA");
    good_cert = issue("good", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost");
    good_key = dir.file("good.key");
    other_cert = issue("other", "ca", "subjectAltName=DNS:other.example");
    other_key = dir.file("other.key");
    make_ca("rogue-ca", "rtm-bridge untrusted CA");
    rogue_cert = issue("rogue", "rogue-ca", "subjectAltName=IP:127.0.0.1,DNS:localhost");
    rogue_key = dir.file("rogue.key");
  }

  temp_dir dir;
  std::string ca_cert;
  std::string good_cert;
  std::string good_key;
  std::string other_cert;
  std::string other_key;
  std::string rogue_cert;
  std::string rogue_key;

 private:
  std::string make_ca(const std::string& name, const std::string& subject) {
    const std::string cert = dir.file(name + ".crt");
    run({"openssl",
         "req",
         "-x509",
         "-newkey",
         "ec",
         "-pkeyopt",
         "ec_paramgen_curve:prime256v1",
         "-nodes",
         "-keyout",
         dir.file(name + ".key"),
         "-out",
         cert,
         "-days",
         "2",
         "-subj",
         "/CN=" + subject,
         "-addext",
         "basicConstraints=critical,CA:TRUE",
         "-addext",
         "keyUsage=critical,keyCertSign,cRLSign"});
    return cert;
  }

  std::string issue(const std::string& name, const std::string& ca, const std::string& san) {
    const std::string ext = dir.write(name + ".ext", san + "\nbasicConstraints=CA:FALSE\n");
    run({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
         dir.file(name + ".key"), "-out", dir.file(name + ".csr"), "-subj", "/CN=" + name});
    run({"openssl", "x509", "-req", "-in", dir.file(name + ".csr"), "-CA", dir.file(ca + ".crt"), "-CAkey",
         dir.file(ca + ".key"), "-CAcreateserial", "-out", dir.file(name + ".crt"), "-days", "2", "-extfile", ext});
    return dir.file(name + ".crt");
  }

  void run(std::vector<std::string> argv) {
    child_process::options opts;
    opts.argv = std::move(argv);
    opts.stdout_file = dir.file("openssl.out");
    opts.stderr_file = dir.file("openssl.err");
    child_process p(std::move(opts));
    const auto status = p.wait(std::chrono::seconds(30));
    REQUIRE_MESSAGE(status == 0, "openssl failed: " << read_file(dir.file("openssl.err")));
  }
};

}  // namespace rtm::test
