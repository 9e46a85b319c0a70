// DockerClient against a fake dockerd on a unix socket: host parsing, API version negotiation,
// list/inspect decoding, and error mapping (404, 500, garbage, unreachable).
#include "docker_client/docker_client.h"

#include <unistd.h>

#include "docker_client/fake_docker_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/process.h"

namespace registrator::docker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string ReadTestdata(const std::string& name) {
  std::string text = fakes::ReadFileOrEmpty("testdata/docker/" + name);
  EXPECT_FALSE(text.empty()) << "missing testdata/docker/" << name;
  return text;
}

TEST(ParseDockerHost, Forms) {
  absl::StatusOr<HttpEndpoint> e = ParseDockerHost("unix:///var/run/docker.sock");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->unix_socket, "/var/run/docker.sock");
  EXPECT_EQ(e->base_url, "http://localhost");

  e = ParseDockerHost("/tmp/d.sock");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->unix_socket, "/tmp/d.sock");

  e = ParseDockerHost("tcp://127.0.0.1:2375");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->unix_socket, "");
  EXPECT_EQ(e->base_url, "http://127.0.0.1:2375");

  e = ParseDockerHost("tcp://docker.local");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->base_url, "http://docker.local:2375");

  e = ParseDockerHost("tcp://[::1]");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->base_url, "http://[::1]:2375");

  e = ParseDockerHost("tcp://10.0.0.1:2376/", /*tls=*/true, "/certs");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->base_url, "https://10.0.0.1:2376");
  EXPECT_EQ(e->ca_file, "/certs/ca.pem");
  EXPECT_EQ(e->cert_file, "/certs/cert.pem");
  EXPECT_EQ(e->key_file, "/certs/key.pem");
  EXPECT_TRUE(e->verify_peer);

  for (const char* bad : {"", "ssh://user@host", "npipe:////./pipe/docker_engine", "unix://",
                          "unix://relative.sock", "tcp://", "tcp://h:1/path", "fd://"}) {
    EXPECT_EQ(ParseDockerHost(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(DockerClient, FromEnvironment) {
  absl::StatusOr<std::unique_ptr<DockerClient>> c = DockerClient::FromEnvironment({});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->http().endpoint().unix_socket, "/tmp/docker.sock");

  c = DockerClient::FromEnvironment({{"DOCKER_HOST", "tcp://127.0.0.1:12375"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->http().endpoint().base_url, "http://127.0.0.1:12375");
  EXPECT_EQ((*c)->http().endpoint().ca_file, "");

  c = DockerClient::FromEnvironment({{"DOCKER_HOST", "tcp://127.0.0.1:12376"},
                                     {"DOCKER_TLS_VERIFY", "1"},
                                     {"DOCKER_CERT_PATH", "/etc/docker-certs"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->http().endpoint().base_url, "https://127.0.0.1:12376");
  EXPECT_EQ((*c)->http().endpoint().ca_file, "/etc/docker-certs/ca.pem");
  EXPECT_EQ((*c)->http().endpoint().cert_file, "/etc/docker-certs/cert.pem");
  EXPECT_EQ((*c)->http().endpoint().key_file, "/etc/docker-certs/key.pem");

  c = DockerClient::FromEnvironment(
      {{"DOCKER_HOST", "tcp://h:1"}, {"DOCKER_TLS_VERIFY", "1"}, {"HOME", "/root"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->http().endpoint().ca_file, "/root/.docker/ca.pem");

  // TLS with a unix socket makes no sense; an unknown scheme is refused.
  EXPECT_FALSE(
      DockerClient::FromEnvironment({{"DOCKER_HOST", "unix:///x.sock"}, {"DOCKER_TLS_VERIFY", "1"}})
          .ok());
  EXPECT_EQ(DockerClient::FromEnvironment({{"DOCKER_HOST", "ssh://h"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

class DockerClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.SetResponse("/version", 200, ReadTestdata("docker-version.json"));
    server_.SetResponse("/_ping", 200, "OK");
    ASSERT_TRUE(server_.Start().ok());
    absl::StatusOr<std::unique_ptr<DockerClient>> c = DockerClient::ForHost(server_.host());
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = *std::move(c);
  }

  FakeDockerServer server_;
  std::unique_ptr<DockerClient> client_;
};

TEST_F(DockerClientTest, PingAndVersion) {
  EXPECT_TRUE(client_->Ping().ok());
  absl::StatusOr<Version> v = client_->GetVersion();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->version, "20.10.24+dfsg1");
  EXPECT_EQ(v->api_version, "1.41");
  EXPECT_THAT(server_.targets(), ElementsAre("/_ping", "/version"));
}

TEST_F(DockerClientTest, ListNegotiatesOnceAndFiltersByStatus) {
  server_.SetResponse("/containers/json", 200, ReadTestdata("containers-json-sample.json"));
  absl::StatusOr<std::vector<ContainerSummary>> list = client_->ListContainers(true, "running");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 4u);
  EXPECT_EQ((*list)[0].name, "hostnet");
  list = client_->ListContainers(false);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_THAT(server_.targets(),
              ElementsAre("/version",
                          "/v1.41/containers/"
                          "json?all=1&filters=%7B%22status%22%3A%5B%22running%22%5D%7D",
                          "/v1.41/containers/json"));
}

TEST_F(DockerClientTest, NewerServerIsCappedAtOurVersion) {
  server_.SetResponse("/version", 200, R"({"Version":"27.0.1","ApiVersion":"1.46"})");
  EXPECT_EQ(client_->ApiPath("/x"), "/v1.41/x");
}

TEST_F(DockerClientTest, OlderServerVersionIsUsed) {
  server_.SetResponse("/version", 200, R"({"Version":"19.03","ApiVersion":"1.40"})");
  EXPECT_EQ(client_->ApiPath("/x"), "/v1.40/x");
  EXPECT_EQ(client_->ApiPath("/y"), "/v1.40/y");
  EXPECT_THAT(server_.targets(), ElementsAre("/version"));
}

TEST_F(DockerClientTest, VersionFailureFallsBackToUnversioned) {
  server_.SetResponse("/version", 500, R"({"message":"boom"})");
  EXPECT_EQ(client_->ApiPath("/x"), "/x");
  EXPECT_EQ(client_->ApiPath("/y"), "/y");
  // An HTTP answer fixes the decision: /version is asked only once.
  EXPECT_THAT(server_.targets(), ElementsAre("/version"));
}

TEST_F(DockerClientTest, InspectDecodes) {
  const std::string body = ReadTestdata("inspect-e-labels-env.json");
  server_.SetResponse("/containers/labels-e/json", 200, body);
  absl::StatusOr<Container> c = client_->InspectContainer("labels-e");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->id, "c2f4671cb2d26896556d5d3e008fdd8f2cd6fdd517ecb2bc7717771b2c740188");
  EXPECT_EQ(c->name, "labels-e");
  EXPECT_EQ(c->raw_json, body);
  EXPECT_EQ(server_.targets().back(), "/v1.41/containers/labels-e/json");
}

TEST_F(DockerClientTest, InspectErrors) {
  server_.SetResponse("/containers/gone/json", 404, R"({"message":"No such container: gone"})");
  server_.SetResponse("/containers/broken/json", 500,
                      R"({"message":"Cannot connect to containerd"})");
  server_.SetResponse("/containers/garbage/json", 200, "<html>not json");
  server_.SetResponse("/containers/plain/json", 503, "overloaded\n");

  absl::StatusOr<Container> c = client_->InspectContainer("gone");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(c.status().message(), HasSubstr("No such container: gone"));
  EXPECT_THAT(c.status().message(), HasSubstr("inspect container gone"));

  c = client_->InspectContainer("broken");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(c.status().message(), HasSubstr("HTTP 500: Cannot connect to containerd"));

  c = client_->InspectContainer("garbage");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("inspect container garbage"));

  c = client_->InspectContainer("plain");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(c.status().message(), HasSubstr("HTTP 503: overloaded"));

  // Ids are URL-encoded into the path.
  c = client_->InspectContainer("a/../b c");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(server_.targets().back(), "/v1.41/containers/a%2F..%2Fb%20c/json");

  EXPECT_EQ(client_->InspectContainer("").status().code(), absl::StatusCode::kInvalidArgument);

  server_.SetResponse("/containers/json", 200, "{\"not\":\"a list\"}");
  EXPECT_EQ(client_->ListContainers(true).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(DockerClientUnreachable, TransportFailuresAreUnavailableAndNegotiationRetries) {
  fakes::TempDir dir("fdk");
  const std::string socket = dir.path() + "/missing.sock";
  absl::StatusOr<std::unique_ptr<DockerClient>> c = DockerClient::ForHost("unix://" + socket);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->Ping().code(), absl::StatusCode::kUnavailable);
  absl::StatusOr<Container> inspect = (*c)->InspectContainer("abc");
  EXPECT_EQ(inspect.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(inspect.status().message(), HasSubstr("inspect container abc"));
  EXPECT_EQ((*c)->ListContainers(true).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ((*c)->ApiPath("/x"), "/x");
  // Docker is unreachable: nothing was decided, so the version is asked again once it answers.
  // (A server on another socket path stands in for "Docker came up".)
  FakeDockerServer server;
  server.SetResponse("/version", 200, R"({"ApiVersion":"1.41"})");
  ASSERT_TRUE(server.Start().ok());
  ASSERT_EQ(::symlink(server.socket_path().c_str(), socket.c_str()), 0);
  EXPECT_EQ((*c)->ApiPath("/x"), "/v1.41/x");
  c->reset();  // Close the kept-alive connection before the server stops.
}

}  // namespace
}  // namespace registrator::docker
