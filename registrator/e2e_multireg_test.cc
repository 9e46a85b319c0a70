// End to end, several registries at once (issue 16): the registrator binary against a real
// dockerd, a real etcd (the positional URI) and the Consul stand-in (-extra-registry). etcd is
// frozen (SIGSTOP) while containers start and stop: the stand-in keeps receiving every
// registration and deregistration, /health names etcd as the one failing; once etcd answers
// again it converges to exactly the running containers' services. /metrics carries a registry
// label per registry. Everything waits on conditions.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "testing/consul_standin/consul_standin.h"
#include "testing/dockerd_fixture.h"
#include "testing/e2e_test_base.h"
#include "testing/etcd_fixture.h"
#include "testing/process.h"
#include "testing/registrator_process.h"
#include "testing/status_matchers.h"

namespace registrator {
namespace {

using fakes::ConsulStandin;
using fakes::EtcdFixture;
using fakes::FreeLoopbackPort;
using fakes::RunCommand;
using fakes::WaitFor;
using ::registrator::fakes::IsOk;

class MultiRegistryEndToEndTest : public fakes::EndToEndTest {
 protected:
  static void SetUpTestSuite() {
    EndToEndTest::SetUpTestSuite();
    absl::StatusOr<std::unique_ptr<EtcdFixture>> etcd = EtcdFixture::Start();
    ASSERT_THAT(etcd, IsOk()) << etcd.status();
    etcd_ = etcd->release();
  }
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
    EndToEndTest::TearDownTestSuite();
  }
  void SetUp() override {
    EndToEndTest::SetUp();
    ASSERT_NE(etcd_, nullptr);
    prefix_ = absl::StrCat("/", test_name_);
    consul_ = std::make_unique<ConsulStandin>();
    ASSERT_THAT(consul_->ListenTcp(), IsOk());
  }
  void TearDown() override {
    if (etcd_ != nullptr) etcd_->Unpause();
    EndToEndTest::TearDown();
    if (etcd_ != nullptr) etcd_->Etcdctl("del --prefix /");
  }
  std::string BackendState() override {
    std::string keys;
    etcd_->Etcdctl("get --prefix --keys-only /", &keys);
    return absl::StrCat("\netcd keys:\n", keys,
                        "\nconsul services: ", absl::StrJoin(consul_->ServiceIds(), " "), "\n");
  }

  std::string EtcdUri() const { return absl::StrCat("etcd://", etcd_->endpoint(), prefix_); }
  std::string ConsulUri() const { return absl::StrCat("consul://127.0.0.1:", consul_->port()); }

  // This test's keys in etcd, sorted.
  std::vector<std::string> EtcdKeys() const {
    std::string output;
    etcd_->Etcdctl(absl::StrCat("get --prefix --keys-only '", prefix_, "/'"), &output);
    std::vector<std::string> keys = absl::StrSplit(output, '\n', absl::SkipWhitespace());
    std::sort(keys.begin(), keys.end());
    return keys;
  }
  std::vector<std::string> ConsulIds() const {
    std::vector<std::string> ids = consul_->ServiceIds();
    std::sort(ids.begin(), ids.end());
    return ids;
  }
  std::string EtcdKey(const std::string& name) const {
    return absl::StrCat(prefix_, "/", name, "/", Id(name));
  }
  // "<status code>\n<body>" of GET http://127.0.0.1:<port><path>.
  static std::string Fetch(int port, const std::string& path) {
    std::string output;
    RunCommand(absl::StrCat("curl -s -m 60 -w '\\n%{http_code}' http://127.0.0.1:", port, path),
               &output);
    return output;
  }
  void Run(const std::string& name) {
    ASSERT_FALSE(RunContainer(name, {"-p", Publish(FreeLoopbackPort()), "-e",
                                     absl::StrCat("SERVICE_NAME=", name)})
                     .empty());
  }

  static EtcdFixture* etcd_;
  std::string prefix_;
  std::unique_ptr<ConsulStandin> consul_;
};

EtcdFixture* MultiRegistryEndToEndTest::etcd_ = nullptr;

TEST_F(MultiRegistryEndToEndTest, FrozenEtcdNeverHoldsUpConsulAndConvergesAfter) {
  const int http_port = FreeLoopbackPort();
  StartRegistrator({"-resync", "1", "-http", absl::StrCat("127.0.0.1:", http_port),
                    "-extra-registry", ConsulUri()},
                   EtcdUri());
  Run("mr-a");
  ASSERT_TRUE(WaitFor([&] { return EtcdKeys() == std::vector<std::string>{EtcdKey("mr-a")}; },
                      absl::Seconds(30), absl::Milliseconds(100)));
  ASSERT_TRUE(WaitFor([&] { return ConsulIds() == std::vector<std::string>{Id("mr-a")}; },
                      absl::Seconds(30), absl::Milliseconds(100)));

  // etcd hangs: its sockets accept, nothing answers.
  etcd_->Pause();
  Run("mr-b");
  Run("mr-c");
  ASSERT_EQ(docker_->Docker({"rm", "-f", "mr-a"}).exit_code, 0);
  // The stand-in gets every change while etcd is frozen.
  std::vector<std::string> running = {Id("mr-b"), Id("mr-c")};
  std::sort(running.begin(), running.end());
  EXPECT_TRUE(
      WaitFor([&] { return ConsulIds() == running; }, absl::Seconds(30), absl::Milliseconds(50)))
      << registrator_.Output();
  // /health reports each registry: consul ok, etcd not.
  const std::string health = Fetch(http_port, "/health");
  EXPECT_TRUE(absl::StrContains(health, absl::StrCat("registry ", ConsulUri(), ": ok\n")))
      << health;
  EXPECT_FALSE(absl::StrContains(health, absl::StrCat("registry ", EtcdUri(), ": ok\n"))) << health;
  EXPECT_TRUE(absl::EndsWith(health, "\n503")) << health;

  // etcd answers again: it converges to exactly the running containers' services.
  etcd_->Unpause();
  std::vector<std::string> keys = {EtcdKey("mr-b"), EtcdKey("mr-c")};
  std::sort(keys.begin(), keys.end());
  EXPECT_TRUE(
      WaitFor([&] { return EtcdKeys() == keys; }, absl::Seconds(60), absl::Milliseconds(100)))
      << registrator_.Output();
  EXPECT_EQ(ConsulIds(), running);
  // Log lines name the registry they are about.
  EXPECT_TRUE(absl::StrContains(registrator_.Output(), absl::StrCat("[", ConsulUri(), "] ")))
      << registrator_.Output();
  EXPECT_TRUE(absl::StrContains(registrator_.Output(), absl::StrCat("[", EtcdUri(), "] ")))
      << registrator_.Output();

  EXPECT_TRUE(WaitFor(
      [&] {
        const std::string h = Fetch(http_port, "/health");
        return absl::StrContains(h, absl::StrCat("registry ", EtcdUri(), ": ok\n")) &&
               absl::EndsWith(h, "\n200");
      },
      absl::Seconds(30), absl::Milliseconds(200)))
      << Fetch(http_port, "/health");
  const std::string health_after = Fetch(http_port, "/health");
  EXPECT_TRUE(absl::StrContains(health_after, "docker: ok\n")) << health_after;
  EXPECT_TRUE(absl::StrContains(health_after, absl::StrCat("registry ", ConsulUri(), ": ok\n")))
      << health_after;

  const std::string metrics = Fetch(http_port, "/metrics");
  for (const std::string& uri : {EtcdUri(), ConsulUri()}) {
    EXPECT_TRUE(
        absl::StrContains(metrics, absl::StrCat("registrator_backend_writes_total{registry=\"", uri,
                                                "\",kind=\"register\",result=\"ok\"} ")))
        << metrics;
    EXPECT_TRUE(absl::StrContains(
        metrics, absl::StrCat("registrator_services_registered{registry=\"", uri, "\"} 2\n")))
        << metrics;
  }
  // Consul got 3 registrations and 1 deregistration, exactly once each.
  EXPECT_TRUE(absl::StrContains(
      metrics, absl::StrCat("registrator_backend_writes_total{registry=\"", ConsulUri(),
                            "\",kind=\"register\",result=\"ok\"} 3\n")))
      << metrics;
  EXPECT_TRUE(absl::StrContains(
      metrics, absl::StrCat("registrator_backend_writes_total{registry=\"", ConsulUri(),
                            "\",kind=\"deregister\",result=\"ok\"} 1\n")))
      << metrics;
  EXPECT_EQ(registrator_.Stop(), 0);
}

// A password in a registry URI never shows: not in the label, /health, or the log.
TEST_F(MultiRegistryEndToEndTest, CredentialsNeverShow) {
  const int http_port = FreeLoopbackPort();
  const std::string consul_with_token =
      absl::StrCat("consul://tok:s3cret-pw@127.0.0.1:", consul_->port());
  StartRegistrator(
      {"-http", absl::StrCat("127.0.0.1:", http_port), "-extra-registry", consul_with_token},
      EtcdUri());
  Run("mr-secret");
  ASSERT_TRUE(WaitFor([&] { return ConsulIds() == std::vector<std::string>{Id("mr-secret")}; },
                      absl::Seconds(30), absl::Milliseconds(100)));
  ASSERT_TRUE(WaitFor([&] { return EtcdKeys() == std::vector<std::string>{EtcdKey("mr-secret")}; },
                      absl::Seconds(30), absl::Milliseconds(100)));
  const std::string shown = absl::StrCat("consul://tok:***@127.0.0.1:", consul_->port());
  const std::string metrics = Fetch(http_port, "/metrics");
  EXPECT_TRUE(absl::StrContains(metrics, absl::StrCat("{registry=\"", shown, "\""))) << metrics;
  const std::string health = Fetch(http_port, "/health");
  EXPECT_TRUE(absl::StrContains(health, absl::StrCat("registry ", shown, ": ok"))) << health;
  for (const std::string& text :
       {metrics, health, Fetch(http_port, "/services"), registrator_.Output()}) {
    EXPECT_FALSE(absl::StrContains(text, "s3cret-pw")) << text;
  }
  EXPECT_EQ(registrator_.Stop(), 0);
}

}  // namespace
}  // namespace registrator
