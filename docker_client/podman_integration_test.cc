// DockerClient and EventStream against a real Podman 4.3 API service (testing/podman_fixture):
// version negotiation, list, inspect (published, host network, user-defined network), the
// container event stream (start, die with its exit code, remove as destroy) and its resumption
// with since= across a restart of the service.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "docker_client/docker_client.h"
#include "docker_client/event_stream.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/podman_fixture.h"
#include "testing/process.h"

namespace registrator::docker {
namespace {

using fakes::PodmanFixture;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Field;

// Records every sink call as "<action> <id> <exit code>" / "connected ..." / "disconnected".
class RecordingSink : public EventSink {
 public:
  void OnEvent(const Event& e) override {
    Add(absl::StrCat(e.action, " ", e.id, e.exit_code.empty() ? "" : " ", e.exit_code));
  }
  void OnConnected(bool first) override { Add(first ? "connected first" : "connected again"); }
  void OnDisconnected(const absl::Status&) override { Add("disconnected"); }
  std::vector<std::string> calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  bool WaitFor(const std::string& call, absl::Duration timeout = absl::Seconds(30)) {
    return fakes::WaitFor(
        [&] {
          std::vector<std::string> now = calls();
          return std::find(now.begin(), now.end(), call) != now.end();
        },
        timeout, absl::Milliseconds(20));
  }
  int Count(const std::string& call) {
    std::vector<std::string> now = calls();
    return static_cast<int>(std::count(now.begin(), now.end(), call));
  }

 private:
  void Add(std::string call) {
    absl::MutexLock lock(&mu_);
    calls_.push_back(std::move(call));
  }
  absl::Mutex mu_;
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
};

class PodmanIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<PodmanFixture>> podman = PodmanFixture::Start();
    ASSERT_TRUE(podman.ok()) << podman.status();
    podman_ = podman->release();
  }
  static void TearDownTestSuite() {
    delete podman_;
    podman_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(podman_, nullptr);
    client_ = *DockerClient::ForHost(podman_->host());
  }
  void TearDown() override {
    stream_.reset();
    for (const std::string& name : containers_) podman_->Podman({"rm", "-f", "-t", "0", name});
    if (HasFailure()) ADD_FAILURE() << "podman service log:\n" << podman_->ServiceLog();
  }

  // podman run -d --name <name> <args...>; returns the full ID.
  std::string Run(const std::string& name, const std::vector<std::string>& args) {
    std::vector<std::string> all = {"run", "-d", "--name", name};
    all.insert(all.end(), args.begin(), args.end());
    containers_.push_back(name);
    PodmanFixture::Result r = podman_->Podman(all);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.output;
  }
  void StartStream() {
    EventStreamOptions options;
    options.initial_backoff = absl::Milliseconds(50);
    options.max_backoff = absl::Milliseconds(500);
    stream_ = std::make_unique<EventStream>(*client_, options);
    ASSERT_TRUE(stream_->Start(&sink_).ok());
    ASSERT_TRUE(sink_.WaitFor("connected first"));
  }

  static PodmanFixture* podman_;
  std::unique_ptr<DockerClient> client_;
  RecordingSink sink_;
  std::unique_ptr<EventStream> stream_;
  std::vector<std::string> containers_;
};

PodmanFixture* PodmanIntegrationTest::podman_ = nullptr;

TEST_F(PodmanIntegrationTest, VersionListInspectAndEvents) {
  ASSERT_TRUE(client_->Ping().ok());
  absl::StatusOr<Version> version = client_->GetVersion();
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(version->version, "4.3.1");
  EXPECT_EQ(client_->ApiPath("/x"), "/v1.41/x");  // Podman serves Docker's /v1.41 paths.

  StartStream();
  const int port = fakes::FreeLoopbackPort();
  const std::string id = Run("it-web", {"-p", absl::StrCat("127.0.0.1:", port, ":80"), "-e",
                                        "SERVICE_NAME=web", PodmanFixture::kImage});
  ASSERT_EQ(id.size(), 64u) << id;
  EXPECT_TRUE(sink_.WaitFor("start " + id)) << ::testing::PrintToString(sink_.calls());

  absl::StatusOr<std::vector<ContainerSummary>> running = client_->ListContainers(false, "running");
  ASSERT_TRUE(running.ok()) << running.status();
  EXPECT_THAT(
      *running,
      Contains(AllOf(Field(&ContainerSummary::id, id), Field(&ContainerSummary::name, "it-web"),
                     Field(&ContainerSummary::image, "localhost/registrator-test/busybox:1"),
                     Field(&ContainerSummary::state, "running"),
                     Field(&ContainerSummary::ports,
                           ElementsAre(SummaryPort{80, port, "tcp", "127.0.0.1"})))));

  absl::StatusOr<Container> c = client_->InspectContainer(id);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->name, "it-web");
  EXPECT_EQ(c->network_mode, "bridge");
  EXPECT_TRUE(absl::StartsWith(c->ip_address, "10.213.8.")) << c->ip_address;
  EXPECT_THAT(c->exposed_ports, ElementsAre("80/tcp"));
  EXPECT_THAT(c->ports[("80/tcp")], ElementsAre(PortBinding{"127.0.0.1", std::to_string(port)}));
  EXPECT_THAT(c->env, Contains("SERVICE_NAME=web"));
  EXPECT_TRUE(c->state.running);
  EXPECT_EQ(client_->InspectContainer("no-such-container").status().code(),
            absl::StatusCode::kNotFound);

  // A container exiting 3: die carries the code; podman rm arrives as "destroy".
  const std::string failing = Run("it-exit3", {PodmanFixture::kImage, "sh", "-c", "exit 3"});
  EXPECT_TRUE(sink_.WaitFor("die " + failing + " 3")) << ::testing::PrintToString(sink_.calls());
  absl::StatusOr<Container> exited = client_->InspectContainer(failing);
  ASSERT_TRUE(exited.ok()) << exited.status();
  EXPECT_EQ(exited->state.exit_code, 3);
  EXPECT_FALSE(exited->state.running);
  ASSERT_EQ(podman_->Podman({"rm", "it-exit3"}).exit_code, 0);
  EXPECT_TRUE(sink_.WaitFor("destroy " + failing)) << ::testing::PrintToString(sink_.calls());
}

TEST_F(PodmanIntegrationTest, HostNetworkContainerHasItsImagesExposedPorts) {
  const int port = fakes::FreeLoopbackPort();
  const std::string id =
      Run("it-host", {"--network", "host", PodmanFixture::kImage, "/bin/busybox", "httpd", "-f",
                      "-p", absl::StrCat("127.0.0.1:", port), "-h", "/www"});
  absl::StatusOr<Container> c = client_->InspectContainer(id);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->network_mode, "host");
  // Podman's inspect says ExposedPorts null; Docker would report the image's 80/tcp.
  EXPECT_THAT(c->exposed_ports, ElementsAre("80/tcp"));
  EXPECT_TRUE(c->ports.empty());
}

TEST_F(PodmanIntegrationTest, UserDefinedNetworkIsNamedAsDockerWould) {
  // CNI keeps host-local IPAM state for networks made by the CLI in /var/lib/cni/networks.
  ASSERT_EQ(
      podman_->Podman({"network", "create", "--subnet", "10.213.9.0/24", "regpm-app"}).exit_code,
      0);
  const int port = fakes::FreeLoopbackPort();
  const std::string id =
      Run("it-net", {"--network", "regpm-app", "-p", absl::StrCat("127.0.0.1:", port, ":80"),
                     PodmanFixture::kImage});
  absl::StatusOr<Container> c = client_->InspectContainer(id);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->network_mode, "regpm-app");  // Podman itself says "bridge".
  ASSERT_EQ(c->networks.size(), 1u);
  EXPECT_EQ(c->networks[0].name, "regpm-app");
  EXPECT_TRUE(absl::StartsWith(c->networks[0].ip_address, "10.213.9."))
      << c->networks[0].ip_address;
  podman_->Podman({"rm", "-f", "-t", "0", "it-net"});
  podman_->Podman({"network", "rm", "-f", "regpm-app"});
  fakes::RunCommand("rm -rf /var/lib/cni/networks/regpm-app");
}

TEST_F(PodmanIntegrationTest, EventStreamResumesAcrossAServiceRestart) {
  StartStream();
  const std::string before = Run("it-before", {PodmanFixture::kImage});
  ASSERT_TRUE(sink_.WaitFor("start " + before)) << ::testing::PrintToString(sink_.calls());

  ASSERT_TRUE(podman_->StopService().ok());
  ASSERT_TRUE(sink_.WaitFor("disconnected")) << ::testing::PrintToString(sink_.calls());
  // While the API is down the CLI still runs containers; their events go to the events log.
  const std::string during = Run("it-during", {PodmanFixture::kImage});
  ASSERT_EQ(during.size(), 64u);
  ASSERT_TRUE(podman_->StartService().ok()) << podman_->ServiceLog();
  ASSERT_TRUE(sink_.WaitFor("connected again")) << ::testing::PrintToString(sink_.calls());
  // Resumed with since=: Podman replays what happened from its events log.
  EXPECT_TRUE(sink_.WaitFor("start " + during)) << ::testing::PrintToString(sink_.calls());
  // Replayed events already delivered are dropped.
  EXPECT_EQ(sink_.Count("start " + before), 1);

  const std::string after = Run("it-after", {PodmanFixture::kImage});
  EXPECT_TRUE(sink_.WaitFor("start " + after)) << ::testing::PrintToString(sink_.calls());
}

}  // namespace
}  // namespace registrator::docker
