// DockerClient against a fake engine that answers with Podman 4.3.1's captured payloads
// (testdata/podman): API version negotiation from Podman's /version, and the image's exposed
// ports for containers whose inspect lacks them (Podman's --network host and container:).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "docker_client/docker_client.h"
#include "docker_client/fake_docker_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/process.h"

namespace registrator::docker {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kImageId[] =
    "sha256:981cc08ac572991c7760741874b870a1e7ba9788d10d48512517a3def4752840";
constexpr char kHostId[] = "e1003aa638c38e6ad773576f86d483bc2e4572fc9af9e2e8906b26c78192fb7f";
constexpr char kSidecarId[] = "fa27a7a45f7ca17263dad594202ac93515a31ab1be1d0bf2a3af0ddfa34c2d5b";
constexpr char kWebId[] = "21e8f93bafff6841b3704e885cc9e4df6988d742192cf23885a431388095cad0";

std::string ReadTestdata(const std::string& name) {
  std::string text = fakes::ReadFileOrEmpty("testdata/podman/" + name);
  EXPECT_FALSE(text.empty()) << "missing testdata/podman/" << name;
  return text;
}

class PodmanClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.SetResponse("/version", 200, ReadTestdata("version.json"));
    server_.SetResponse(absl::StrCat("/containers/", kHostId, "/json"), 200,
                        ReadTestdata("inspect-pm-host.json"));
    server_.SetResponse(absl::StrCat("/containers/", kSidecarId, "/json"), 200,
                        ReadTestdata("inspect-pm-sidecar.json"));
    server_.SetResponse(absl::StrCat("/containers/", kWebId, "/json"), 200,
                        ReadTestdata("inspect-pm-web.json"));
    server_.SetResponse("/containers/json", 200, ReadTestdata("containers-json.json"));
    ASSERT_TRUE(server_.Start().ok());
    client_ = *DockerClient::ForHost(server_.host());
  }

  std::vector<std::string> ImageRequests() {
    std::vector<std::string> images;
    for (const std::string& target : server_.targets()) {
      if (target.find("/images/") != std::string::npos) images.push_back(target);
    }
    return images;
  }

  FakeDockerServer server_;
  std::unique_ptr<DockerClient> client_;
};

TEST_F(PodmanClientTest, NegotiatesDockerApiFromPodmanVersion) {
  absl::StatusOr<std::vector<ContainerSummary>> list = client_->ListContainers(false, "running");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->size(), 6u);
  EXPECT_THAT(
      server_.targets(),
      ElementsAre("/version",
                  "/v1.41/containers/json?filters=%7B%22status%22%3A%5B%22running%22%5D%7D"));
}

TEST_F(PodmanClientTest, HostNetworkContainerGetsItsImagesExposedPorts) {
  server_.SetResponse(absl::StrCat("/images/", kImageId, "/json"), 200,
                      ReadTestdata("image-busybox.json"));
  absl::StatusOr<Container> c = client_->InspectContainer(kHostId);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->network_mode, "host");
  // As Docker reports for --net=host: the image's EXPOSE 80/tcp.
  EXPECT_THAT(c->exposed_ports, ElementsAre("80/tcp"));
  EXPECT_THAT(ImageRequests(), ElementsAre(absl::StrCat("/v1.41/images/sha256%3A",
                                                        std::string(kImageId).substr(7), "/json")));
}

TEST_F(PodmanClientTest, SidecarGetsItsImagesExposedPortsNotTheOtherContainersPorts) {
  server_.SetResponse(absl::StrCat("/images/", kImageId, "/json"), 200,
                      ReadTestdata("image-busybox.json"));
  absl::StatusOr<Container> c = client_->InspectContainer(kSidecarId);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->network_mode, absl::StrCat("container:", kWebId));
  EXPECT_THAT(c->exposed_ports, ElementsAre("80/tcp"));
  EXPECT_THAT(c->ports, IsEmpty());
}

TEST_F(PodmanClientTest, ImageInspectFailureKeepsTheContainer) {
  server_.SetResponse(
      absl::StrCat("/images/", kImageId, "/json"), 404,
      R"({"cause":"failed to find image","message":"no such image","response":404})");
  absl::StatusOr<Container> c = client_->InspectContainer(kHostId);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->name, "pm-host");
  EXPECT_THAT(c->exposed_ports, IsEmpty());
  EXPECT_THAT(ImageRequests(), Not(IsEmpty()));
}

TEST_F(PodmanClientTest, BridgeContainerNeedsNoImage) {
  absl::StatusOr<Container> c = client_->InspectContainer(kWebId);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->exposed_ports, ElementsAre("80/tcp"));
  EXPECT_THAT(ImageRequests(), IsEmpty());
  EXPECT_THAT(server_.targets(), Contains(HasSubstr("/v1.41/containers/")));
}

}  // namespace
}  // namespace registrator::docker
