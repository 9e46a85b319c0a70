// Test TLS material made with the openssl CLI: a throwaway CA, a server certificate for
// 127.0.0.1 and a client certificate, valid for one day. For TLS tests of the stand-in and the
// adapters; nothing here is secret.
#ifndef TESTING_CONSUL_STANDIN_TEST_CERTS_H_
#define TESTING_CONSUL_STANDIN_TEST_CERTS_H_

#include <string>

#include "absl/status/status.h"

namespace registrator::fakes {

// Writes ca.pem, server.pem, server.key, client.pem, client.key into `dir`.
absl::Status MakeTestCertificates(const std::string& dir);

}  // namespace registrator::fakes

#endif  // TESTING_CONSUL_STANDIN_TEST_CERTS_H_
