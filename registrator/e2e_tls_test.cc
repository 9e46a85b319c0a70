// End to end over TLS: the registrator binary against a real dockerd and
//   - the Consul stand-in serving https with client certificates required (consul-tls://,
//     CONSUL_CACERT / CONSUL_CLIENT_CERT / CONSUL_CLIENT_KEY),
//   - a real etcd serving https only with --client-cert-auth (etcd://, ETCDCTL_CACERT /
//     ETCDCTL_CERT / ETCDCTL_KEY),
// and that a server certificate from another CA is refused. tools/test also runs this under
// --config=release, where it proves the static libcurl's (mbedTLS) certificate handling.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "testing/consul_standin/consul_standin.h"
#include "testing/consul_standin/test_certs.h"
#include "testing/dockerd_fixture.h"
#include "testing/etcd_fixture.h"
#include "testing/process.h"
#include "testing/registrator_process.h"

namespace registrator {
namespace {

using fakes::ConsulStandin;
using fakes::ConsulStandinOptions;
using fakes::DockerdFixture;
using fakes::EtcdFixture;
using fakes::EtcdFixtureOptions;
using fakes::FreeLoopbackPort;
using fakes::LocalHostname;
using fakes::RegistratorProcess;
using fakes::TempDir;
using fakes::WaitFor;

class TlsEndToEndTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<DockerdFixture>> docker = DockerdFixture::Start();
    ASSERT_TRUE(docker.ok()) << docker.status();
    docker_ = docker->release();
  }
  static void TearDownTestSuite() {
    delete docker_;
    docker_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(docker_, nullptr);
    ASSERT_TRUE(fakes::MakeTestCertificates(certs_.path()).ok());
  }
  void TearDown() override {
    registrator_.Stop();
    for (const std::string& name : containers_) docker_->Docker({"rm", "-f", name});
    if (HasFailure()) ADD_FAILURE() << "registrator output:\n" << registrator_.Output();
  }

  std::string Cert(const std::string& name) const { return certs_.path() + "/" + name; }
  void StartRegistrator(const std::string& uri, const std::vector<std::string>& env) {
    const std::string log =
        absl::StrCat(docker_->dir(), "/registrator-",
                     ::testing::UnitTest::GetInstance()->current_test_info()->name(), ".out");
    ASSERT_TRUE(registrator_.Start({}, uri, docker_->host(), log, env).ok());
  }
  // A busybox httpd with SERVICE_NAME=<name> published on a free loopback port.
  void RunWeb(const std::string& name) {
    containers_.push_back(name);
    DockerdFixture::Result result = docker_->Docker(
        {"run", "-d", "--name", name, "-p", absl::StrCat("127.0.0.1:", FreeLoopbackPort(), ":80"),
         "-e", absl::StrCat("SERVICE_NAME=", name), DockerdFixture::kImage});
    ASSERT_EQ(result.exit_code, 0);
  }
  std::string Id(const std::string& container) const {
    return absl::StrCat(LocalHostname(), ":", container, ":80");
  }

  static DockerdFixture* docker_;
  TempDir certs_{"regtls"};
  RegistratorProcess registrator_;
  std::vector<std::string> containers_;
};

DockerdFixture* TlsEndToEndTest::docker_ = nullptr;

TEST_F(TlsEndToEndTest, ConsulTlsWithClientCertificate) {
  ConsulStandinOptions options;
  options.tls_cert_file = Cert("server.pem");
  options.tls_key_file = Cert("server.key");
  options.tls_client_ca_file = Cert("ca.pem");  // verify_incoming: a client cert is required.
  ConsulStandin consul(options);
  ASSERT_TRUE(consul.ListenTcp().ok());
  StartRegistrator(absl::StrCat("consul-tls://127.0.0.1:", consul.port()),
                   {"CONSUL_CACERT=" + Cert("ca.pem"), "CONSUL_CLIENT_CERT=" + Cert("client.pem"),
                    "CONSUL_CLIENT_KEY=" + Cert("client.key")});
  ASSERT_TRUE(registrator_.WaitForOutput("listening for Docker events")) << registrator_.Output();

  RunWeb("e2e-tls-consul");
  const auto registered = [&] {
    std::vector<std::string> ids = consul.ServiceIds();
    return std::find(ids.begin(), ids.end(), Id("e2e-tls-consul")) != ids.end();
  };
  EXPECT_TRUE(WaitFor(registered, absl::Seconds(20)));
  ASSERT_EQ(docker_->Docker({"stop", "-t", "1", "e2e-tls-consul"}).exit_code, 0);
  EXPECT_TRUE(WaitFor([&] { return !registered(); }, absl::Seconds(20)));
}

TEST_F(TlsEndToEndTest, ConsulTlsRefusesServerFromAnotherCa) {
  TempDir other("regtls");
  ASSERT_TRUE(fakes::MakeTestCertificates(other.path()).ok());
  ConsulStandinOptions options;
  options.tls_cert_file = Cert("server.pem");
  options.tls_key_file = Cert("server.key");
  ConsulStandin consul(options);
  ASSERT_TRUE(consul.ListenTcp().ok());
  // Trusts only the other CA: the first ping must fail verification, and with the default
  // -retry-attempts 0 registrator gives up and exits by itself.
  StartRegistrator(absl::StrCat("consul-tls://127.0.0.1:", consul.port()),
                   {"CONSUL_CACERT=" + other.path() + "/ca.pem"});
  EXPECT_TRUE(WaitFor([&] { return !registrator_.running(); }, absl::Seconds(20)));
  const std::string output = registrator_.Output();
  EXPECT_TRUE(absl::StrContains(output, "unreachable")) << output;
  EXPECT_TRUE(absl::StrContains(output, "certificate")) << output;
  EXPECT_TRUE(consul.ServiceIds().empty());
  EXPECT_TRUE(consul.requests().empty());
}

TEST_F(TlsEndToEndTest, EtcdOverHttpsWithClientCertificate) {
  EtcdFixtureOptions options;
  options.tls = true;  // https only, --client-cert-auth.
  absl::StatusOr<std::unique_ptr<EtcdFixture>> etcd = EtcdFixture::Start(options);
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  StartRegistrator(
      absl::StrCat("etcd://", (*etcd)->endpoint(), "/tls"),
      {"ETCDCTL_CACERT=" + (*etcd)->ca_file(), "ETCDCTL_CERT=" + (*etcd)->client_cert_file(),
       "ETCDCTL_KEY=" + (*etcd)->client_key_file()});
  ASSERT_TRUE(registrator_.WaitForOutput("listening for Docker events")) << registrator_.Output();

  RunWeb("e2e-tls-etcd");
  const std::string key = absl::StrCat("/tls/e2e-tls-etcd/", Id("e2e-tls-etcd"));
  const auto keys = [&] {
    std::string output;
    (*etcd)->Etcdctl("get --prefix --keys-only /tls/", &output);
    return output;
  };
  EXPECT_TRUE(WaitFor([&] { return absl::StrContains(keys(), key); }, absl::Seconds(20))) << keys();
  ASSERT_EQ(docker_->Docker({"stop", "-t", "1", "e2e-tls-etcd"}).exit_code, 0);
  EXPECT_TRUE(WaitFor([&] { return !absl::StrContains(keys(), key); }, absl::Seconds(20)))
      << keys();
}

}  // namespace
}  // namespace registrator
