// Throwaway CA, server and client certificates (made with openssl) for TLS tests.
#include "testing/consul_standin/test_certs.h"

#include "absl/strings/str_cat.h"
#include "testing/process.h"

namespace registrator::fakes {

absl::Status MakeTestCertificates(const std::string& dir) {
  // EC keys: generated in milliseconds, unlike RSA.
  const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const std::string script =
      absl::StrCat("set -e; cd '", dir, "'; exec 2>openssl.log;", "openssl req -x509 ", key,
                   " -keyout ca.key -out ca.pem -days 1 -subj /CN=test-ca;", "openssl req ", key,
                   " -keyout server.key -out server.csr -subj /CN=127.0.0.1;",
                   "printf 'subjectAltName=IP:127.0.0.1\\n' > server.ext;",
                   "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial",
                   " -out server.pem -days 1 -extfile server.ext;", "openssl req ", key,
                   " -keyout client.key -out client.csr -subj /CN=registrator;",
                   "printf 'extendedKeyUsage=clientAuth\\n' > client.ext;",
                   "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial",
                   " -out client.pem -days 1 -extfile client.ext");
  if (RunCommand(script) != 0) {
    return absl::InternalError(absl::StrCat("openssl failed making test certificates in ", dir,
                                            ": ", ReadFileOrEmpty(dir + "/openssl.log")));
  }
  return absl::OkStatus();
}

}  // namespace registrator::fakes
