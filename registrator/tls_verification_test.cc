// TLS verification is on by default for every transport registrator speaks: Docker over tcp://
// with DOCKER_TLS_VERIFY, consul-tls://, and etcd over https. One loopback https server answers
// as all three; with the CA that signed it each client connects, and with another CA (a server
// whose certificate they cannot trust) each refuses to talk to it.
#include <httplib.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "adapters/adapter_factory.h"
#include "docker_client/docker_client.h"
#include "gtest/gtest.h"
#include "testing/consul_standin/test_certs.h"
#include "testing/process.h"
#include "testing/status_matchers.h"

namespace registrator {
namespace {

using fakes::TempDir;
using ::registrator::fakes::IsOk;
using ::testing::Not;

class TlsVerificationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_THAT(fakes::MakeTestCertificates(trusted_.path()), IsOk());
    ASSERT_THAT(fakes::MakeTestCertificates(other_.path()), IsOk());
    // Docker reads <DOCKER_CERT_PATH>/{ca,cert,key}.pem.
    for (const TempDir* dir : {&trusted_, &other_}) {
      ASSERT_EQ(
          fakes::RunCommand(absl::StrCat("cd ", dir->path(),
                                         " && cp client.pem cert.pem && cp client.key key.pem"),
                            nullptr),
          0);
    }
    server_ = std::make_unique<httplib::SSLServer>((trusted_.path() + "/server.pem").c_str(),
                                                   (trusted_.path() + "/server.key").c_str());
    ASSERT_TRUE(server_->is_valid());
    server_->Get("/_ping", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("OK", "text/plain");
    });
    server_->Get("/version", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"etcdserver":"3.4.23","etcdcluster":"3.4.0"})", "application/json");
    });
    server_->Get("/v1/status/leader", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"("127.0.0.1:8300")", "application/json");
    });
    server_->Post(".*", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("{}", "application/json");
    });
    port_ = server_->bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    ASSERT_TRUE(fakes::WaitFor([this] { return server_->is_running(); }, absl::Seconds(10)));
  }
  void TearDown() override {
    server_->stop();
    if (thread_.joinable()) thread_.join();
  }

  absl::Status DockerPing(const TempDir& certs) {
    auto client = docker::DockerClient::FromEnvironment({
        {"DOCKER_HOST", absl::StrCat("tcp://127.0.0.1:", port_)},
        {"DOCKER_TLS_VERIFY", "1"},
        {"DOCKER_CERT_PATH", certs.path()},
    });
    if (!client.ok()) return client.status();
    return (*client)->Ping();
  }
  absl::Status BackendPing(const std::string& uri, const std::map<std::string, std::string>& env) {
    AdapterOptions options;
    options.hostname = "h";
    options.env = env;
    auto adapter = CreateAdapter(uri, options);
    if (!adapter.ok()) return adapter.status();
    return (*adapter)->Ping();
  }
  absl::Status ConsulPing(const TempDir& ca) {
    return BackendPing(absl::StrCat("consul-tls://127.0.0.1:", port_),
                       {{"CONSUL_CACERT", ca.path() + "/ca.pem"}});
  }
  absl::Status EtcdPing(const TempDir& ca) {
    return BackendPing(absl::StrCat("etcd3://127.0.0.1:", port_, "/services"),
                       {{"ETCDCTL_CACERT", ca.path() + "/ca.pem"}});
  }

  TempDir trusted_{"tlsok"};
  TempDir other_{"tlsbad"};
  std::unique_ptr<httplib::SSLServer> server_;
  std::thread thread_;
  int port_ = 0;
};

TEST_F(TlsVerificationTest, TrustedServerIsReachedOverEveryTransport) {
  EXPECT_THAT(DockerPing(trusted_), IsOk()) << DockerPing(trusted_);
  EXPECT_THAT(ConsulPing(trusted_), IsOk()) << ConsulPing(trusted_);
  EXPECT_THAT(EtcdPing(trusted_), IsOk()) << EtcdPing(trusted_);
}

TEST_F(TlsVerificationTest, UntrustedCertificateIsRefusedByEveryTransport) {
  EXPECT_TRUE(absl::IsUnavailable(DockerPing(other_))) << DockerPing(other_);
  EXPECT_TRUE(absl::IsUnavailable(ConsulPing(other_))) << ConsulPing(other_);
  EXPECT_TRUE(absl::IsUnavailable(EtcdPing(other_))) << EtcdPing(other_);
  // Without a CA file the system CAs are used, which do not know the test CA either.
  EXPECT_THAT(BackendPing(absl::StrCat("consul-tls://127.0.0.1:", port_), {}), Not(IsOk()));
  EXPECT_THAT(BackendPing(absl::StrCat("etcd3://127.0.0.1:", port_, "/services"),
                          {{"ETCDCTL_CERT", other_.path() + "/client.pem"},
                           {"ETCDCTL_KEY", other_.path() + "/client.key"}}),
              Not(IsOk()));
}

// The host name check: a certificate the trusted CA issued for another address (IP:127.0.0.2)
// must not be accepted at 127.0.0.1. The release build's mbedTLS checks iPAddress names through
// registrator's own verify callback (http_client.cc); this proves it matches the address rather
// than clearing every mismatch.
TEST_F(TlsVerificationTest, CertificateForAnotherAddressIsRefused) {
  const std::string dir = trusted_.path();
  ASSERT_EQ(fakes::RunCommand(
                absl::StrCat("set -e; cd '", dir, "'; exec 2>wrongip.log;",
                             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes",
                             " -keyout wrongip.key -out wrongip.csr -subj /CN=127.0.0.2;",
                             "printf 'subjectAltName=IP:127.0.0.2\\n' > wrongip.ext;",
                             "openssl x509 -req -in wrongip.csr -CA ca.pem -CAkey ca.key",
                             " -CAcreateserial -out wrongip.pem -days 1 -extfile wrongip.ext"),
                nullptr),
            0)
      << fakes::ReadFileOrEmpty(dir + "/wrongip.log");
  server_->stop();
  thread_.join();
  server_ = std::make_unique<httplib::SSLServer>((dir + "/wrongip.pem").c_str(),
                                                 (dir + "/wrongip.key").c_str());
  ASSERT_TRUE(server_->is_valid());
  server_->Get("/v1/status/leader", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"("127.0.0.1:8300")", "application/json");
  });
  port_ = server_->bind_to_any_port("127.0.0.1");
  ASSERT_GT(port_, 0);
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  ASSERT_TRUE(fakes::WaitFor([this] { return server_->is_running(); }, absl::Seconds(10)));

  EXPECT_TRUE(absl::IsUnavailable(DockerPing(trusted_))) << DockerPing(trusted_);
  EXPECT_TRUE(absl::IsUnavailable(ConsulPing(trusted_))) << ConsulPing(trusted_);
  EXPECT_TRUE(absl::IsUnavailable(EtcdPing(trusted_))) << EtcdPing(trusted_);
}

}  // namespace
}  // namespace registrator
