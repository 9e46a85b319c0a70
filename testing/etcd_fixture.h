// A real etcd server for integration tests: started on free loopback ports with its data in a
// temp dir, ready once /health says so, restartable with its data kept, and stopped (and its
// files removed) when the fixture is destroyed, even if a test fails.
#ifndef TESTING_ETCD_FIXTURE_H_
#define TESTING_ETCD_FIXTURE_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "testing/process.h"

namespace registrator::fakes {

struct EtcdFixtureOptions {
  bool enable_v2 = false;  // --enable-v2=true: serve the v2 keys API as well.
  // Serve clients over https only, with a throwaway CA (made with openssl) and client
  // certificates required (--client-cert-auth).
  bool tls = false;
};

class EtcdFixture {
 public:
  // Starts etcd and waits (up to ~15 s) until it is healthy.
  static absl::StatusOr<std::unique_ptr<EtcdFixture>> Start(EtcdFixtureOptions options = {});
  ~EtcdFixture();
  EtcdFixture(const EtcdFixture&) = delete;
  EtcdFixture& operator=(const EtcdFixture&) = delete;

  // "127.0.0.1:<client port>", as used in a registry URI.
  std::string endpoint() const;
  // "http://127.0.0.1:<client port>" ("https://" with tls).
  std::string base_url() const;
  // With tls: the CA that signed the server, and a client certificate and key it accepts.
  std::string ca_file() const;
  std::string client_cert_file() const;
  std::string client_key_file() const;
  int client_port() const { return client_port_; }
  bool running() { return process_.running(); }

  // Stops etcd (SIGTERM, then SIGKILL), keeping its data. The ports stay reserved for Resume.
  void Stop();
  // Starts it again on the same ports and data dir; waits for health.
  absl::Status Resume();
  absl::Status Restart() {
    Stop();
    return Resume();
  }

  // Runs `ETCDCTL_API=3 etcdctl --endpoints=<this> <args>`; returns its exit status, stdout in
  // `output`. `args` is passed to the shell as is.
  int Etcdctl(const std::string& args, std::string* output = nullptr) const;
  // The server's log so far (for failure messages).
  std::string Log() const;

 private:
  EtcdFixture() = default;
  absl::Status Launch();
  absl::Status MakeCertificates();

  EtcdFixtureOptions options_;
  std::unique_ptr<TempDir> dir_;
  int client_port_ = 0;
  int peer_port_ = 0;
  ChildProcess process_;
};

}  // namespace registrator::fakes

#endif  // TESTING_ETCD_FIXTURE_H_
