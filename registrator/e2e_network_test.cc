// End to end: choosing the network (issue 15) with the registrator binary, a real dockerd and a
// real etcd. A container on two user-defined networks registers its address on the one
// SERVICE_NETWORK names; `docker network disconnect` removes the registration and `docker
// network connect` brings it back, each followed from the network events alone (no -resync);
// -network is the default for containers without SERVICE_NETWORK, and a container not on the
// named network is skipped with a warning naming it and the network.
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "testing/dockerd_fixture.h"
#include "testing/e2e_test_base.h"
#include "testing/etcd_fixture.h"
#include "testing/process.h"

namespace registrator {
namespace {

using fakes::EtcdFixture;
using fakes::WaitFor;

constexpr char kFront[] = "e2e-frontnet";
constexpr char kBack[] = "e2e-backnet";

class NetworkEndToEndTest : public fakes::EndToEndTest {
 protected:
  static void SetUpTestSuite() {
    EndToEndTest::SetUpTestSuite();
    absl::StatusOr<std::unique_ptr<EtcdFixture>> etcd = EtcdFixture::Start();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
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
    // User-defined networks ignore the daemon's --ip: keep their published ports on loopback.
    for (const char* network : {kFront, kBack}) {
      fakes::DockerdFixture::Result created =
          docker_->Docker({"network", "create", "-o",
                           "com.docker.network.bridge.host_binding_ipv4=127.0.0.1", network});
      ASSERT_EQ(created.exit_code, 0) << "docker network create " << network;
    }
  }
  void TearDown() override {
    EndToEndTest::TearDown();  // Removes the containers first: a network in use cannot go.
    if (docker_ != nullptr) docker_->Docker({"network", "rm", kFront, kBack});
    if (etcd_ != nullptr) etcd_->Etcdctl("del --prefix /");
  }
  std::string BackendState() override {
    std::string keys;
    etcd_->Etcdctl("get --prefix /", &keys);
    return absl::StrCat("\netcd keys:\n", keys);
  }

  std::string Uri() const { return absl::StrCat("etcd://", etcd_->endpoint(), prefix_); }
  static std::optional<std::string> Value(const std::string& key) {
    std::string output;
    if (etcd_->Etcdctl(absl::StrCat("get '", key, "' --print-value-only"), &output) != 0) {
      return std::nullopt;
    }
    absl::StripTrailingAsciiWhitespace(&output);
    if (output.empty()) return std::nullopt;
    return output;
  }
  static bool WaitForValue(const std::string& key, const std::string& want) {
    return WaitFor([&] { return Value(key) == want; }, absl::Seconds(30), absl::Milliseconds(100));
  }
  static bool WaitForGone(const std::string& key) {
    return WaitFor([&] { return !Value(key).has_value(); }, absl::Seconds(30),
                   absl::Milliseconds(100));
  }
  // The container's address on `network`, as Docker reports it.
  std::string IpOn(const std::string& container, const std::string& network) {
    fakes::DockerdFixture::Result r = docker_->Docker(
        {"inspect", "-f",
         absl::StrCat("{{(index .NetworkSettings.Networks \"", network, "\").IPAddress}}"),
         container});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_FALSE(r.output.empty()) << container << " has no address on " << network;
    return r.output;
  }
  int Docker(const std::vector<std::string>& args) { return docker_->Docker(args).exit_code; }

  static EtcdFixture* etcd_;
  std::string prefix_;
};

EtcdFixture* NetworkEndToEndTest::etcd_ = nullptr;

TEST_F(NetworkEndToEndTest, RegistrationFollowsTheChosenNetworkThroughDisconnectAndConnect) {
  // No -resync: every change below must come from the event stream.
  StartRegistrator({"-internal"}, Uri());
  const std::string name = "e2e-net-two";
  const std::string key = absl::StrCat(prefix_, "/twonet/", Id(name));
  // Started on frontnet only: its chosen network (backnet) is missing, so nothing is registered
  // (not its frontnet address), with a warning naming the container and the network.
  ASSERT_FALSE(RunContainer(name, {"--network", kFront, "-e", "SERVICE_NAME=twonet", "-e",
                                   absl::StrCat("SERVICE_NETWORK=", kBack)})
                   .empty());
  ASSERT_TRUE(registrator_.WaitForOutput(
      absl::StrCat("(", name, "): not attached to network \"", kBack, "\" (SERVICE_NETWORK)")));
  EXPECT_FALSE(Value(key).has_value());

  ASSERT_EQ(Docker({"network", "connect", kBack, name}), 0);
  const std::string back_ip = IpOn(name, kBack);
  ASSERT_TRUE(WaitForValue(key, absl::StrCat(back_ip, ":80")));
  EXPECT_NE(back_ip, IpOn(name, kFront));

  ASSERT_EQ(Docker({"network", "disconnect", kBack, name}), 0);
  ASSERT_TRUE(WaitForGone(key));

  ASSERT_EQ(Docker({"network", "connect", kBack, name}), 0);
  ASSERT_TRUE(WaitForValue(key, absl::StrCat(IpOn(name, kBack), ":80")));
  EXPECT_TRUE(registrator_.running());
}

TEST_F(NetworkEndToEndTest, NetworkFlagIsTheDefaultAndSkipsContainersNotOnIt) {
  StartRegistrator({"-internal", "-network", kFront}, Uri());
  // On both networks, no SERVICE_NETWORK: the flag's network.
  const std::string both = "e2e-net-flag-both";
  ASSERT_FALSE(RunContainer(both, {"--network", kBack, "-e", "SERVICE_NAME=both"}).empty());
  ASSERT_EQ(Docker({"network", "connect", kFront, both}), 0);
  const std::string both_key = absl::StrCat(prefix_, "/both/", Id(both));
  ASSERT_TRUE(WaitForValue(both_key, absl::StrCat(IpOn(both, kFront), ":80")));
  // SERVICE_NETWORK beats the flag.
  const std::string own = "e2e-net-flag-own";
  ASSERT_FALSE(RunContainer(own, {"--network", kFront, "-e", "SERVICE_NAME=own", "-e",
                                  absl::StrCat("SERVICE_NETWORK=", kBack)})
                   .empty());
  ASSERT_EQ(Docker({"network", "connect", kBack, own}), 0);
  ASSERT_TRUE(
      WaitForValue(absl::StrCat(prefix_, "/own/", Id(own)), absl::StrCat(IpOn(own, kBack), ":80")));
  // Only on the default bridge: skipped, named in a warning, never registered.
  const std::string elsewhere = "e2e-net-flag-elsewhere";
  ASSERT_FALSE(RunContainer(elsewhere, {"-e", "SERVICE_NAME=elsewhere"}).empty());
  ASSERT_TRUE(registrator_.WaitForOutput(
      absl::StrCat("(", elsewhere, "): not attached to network \"", kFront, "\" (-network)")));
  EXPECT_FALSE(Value(absl::StrCat(prefix_, "/elsewhere/", Id(elsewhere))).has_value());
  // A hostile name in a label is refused with the field named; the container's registration
  // does not happen with some other address.
  const std::string hostile = "e2e-net-flag-hostile";
  ASSERT_FALSE(RunContainer(hostile, {"--network", kFront, "-e", "SERVICE_NAME=hostile", "-l",
                                      "SERVICE_NETWORK=front\tnet"})
                   .empty());
  ASSERT_TRUE(registrator_.WaitForOutput(
      absl::StrCat("(", hostile, "): SERVICE_NETWORK \"front\\x09net\": not a network name")));
  EXPECT_FALSE(Value(absl::StrCat(prefix_, "/hostile/", Id(hostile))).has_value());
  EXPECT_TRUE(registrator_.running());
}

}  // namespace
}  // namespace registrator
