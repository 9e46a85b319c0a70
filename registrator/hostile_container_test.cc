// Issue 13, bounded resources: a hostile container served by the fake Docker engine (10,000
// SERVICE_* labels, a 1 MB label, 65,535 published ports, a 100 KB check script, a path-injecting
// SERVICE_NAME on one port) goes through the real DockerClient, the derivation and the bridge
// into an in-memory backend. The test computes what registrator ends up holding and asserts it
// is bounded by the documented limits, that a neighbour container is unaffected, and that
// registrator only ever sent GET requests to Docker.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "docker_client/docker_client.h"
#include "docker_client/fake_docker_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"
#include "registrator/bridge.h"
#include "registrator/common/http_client.h"
#include "registrator/derive.h"
#include "registrator/model/fake_adapter.h"
#include "registrator/model/service_validation.h"

namespace registrator {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

constexpr char kHostileId[] = "badbadbadbad0000000000000000000000000000000000000000000000000000";
constexpr char kGoodId[] = "900d900d900d0000000000000000000000000000000000000000000000000000";

std::string Json(absl::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

std::string InspectJson(absl::string_view id, absl::string_view name,
                        const std::vector<std::pair<std::string, std::string>>& labels,
                        int first_port, int last_port) {
  std::vector<std::string> label_members;
  for (const auto& [k, v] : labels) label_members.push_back(absl::StrCat(Json(k), ":", Json(v)));
  std::vector<std::string> exposed;
  std::vector<std::string> ports;
  for (int p = first_port; p <= last_port; ++p) {
    exposed.push_back(absl::StrCat("\"", p, "/tcp\":{}"));
    ports.push_back(
        absl::StrCat("\"", p, "/tcp\":[{\"HostIp\":\"0.0.0.0\",\"HostPort\":\"", p, "\"}]"));
  }
  return absl::StrCat(
      "{\"Id\":", Json(id), ",\"Name\":", Json(absl::StrCat("/", name)),
      ",\"State\":{\"Status\":\"running\",\"Running\":true},"
      "\"Config\":{\"Hostname\":\"h\",\"Image\":\"img\",\"Env\":[],\"Labels\":{",
      absl::StrJoin(label_members, ","), "},\"ExposedPorts\":{", absl::StrJoin(exposed, ","),
      "}},\"HostConfig\":{\"NetworkMode\":\"default\"},\"NetworkSettings\":{\"IPAddress\":"
      "\"172.17.0.2\",\"Ports\":{",
      absl::StrJoin(ports, ","), "},\"Networks\":{}}}");
}

class HostileContainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<std::pair<std::string, std::string>> labels;
    for (int i = 0; i < 10000; ++i) labels.emplace_back(absl::StrCat("SERVICE_K", i), "v");
    labels.emplace_back("SERVICE_BLOB", std::string(1 << 20, 'x'));
    labels.emplace_back("SERVICE_CHECK_SCRIPT", std::string(100 * 1024, 'y'));
    labels.emplace_back("SERVICE_1_NAME", "../../agent/service/deregister/victim");
    hostile_json_ = InspectJson(kHostileId, "hostile", labels, 1, 65535);
    engine_.SetResponse("/_ping", 200, "OK");
    engine_.SetResponse("/version", 200, R"({"Version":"20.10.24","ApiVersion":"1.41"})");
    engine_.SetResponse(
        "/containers/json", 200,
        absl::StrCat("[{\"Id\":\"", kHostileId,
                     "\",\"Names\":[\"/hostile\"],\"State\":\"running\"},", "{\"Id\":\"", kGoodId,
                     "\",\"Names\":[\"/good\"],\"State\":\"running\"}]"));
    engine_.SetResponse(absl::StrCat("/containers/", kHostileId, "/json"), 200, hostile_json_);
    engine_.SetResponse(absl::StrCat("/containers/", kGoodId, "/json"), 200,
                        InspectJson(kGoodId, "good", {{"SERVICE_NAME", "good"}}, 80, 80));
    ASSERT_TRUE(engine_.Start().ok());
    auto client = docker::DockerClient::ForHost(engine_.host());
    ASSERT_TRUE(client.ok()) << client.status();
    docker_ = std::move(*client);
  }

  docker::FakeDockerServer engine_;
  std::unique_ptr<docker::DockerClient> docker_;
  std::string hostile_json_;
};

TEST_F(HostileContainerTest, WhatRegistratorHoldsIsBoundedAndOthersAreUnaffected) {
  ASSERT_GT(hostile_json_.size(), 4u << 20) << "the input really is big";
  DeriveConfig config;
  config.hostname = "dockerhost";
  config.resolved_host_ip = "10.0.0.5";
  std::vector<std::string> warnings;
  ServiceDeriver derive = [&](const docker::Container& c) {
    DeriveResult r = DeriveServices(c, config);
    warnings.insert(warnings.end(), r.warnings.begin(), r.warnings.end());
    return r.services;
  };
  fakes::FakeAdapter backend;
  BridgeConfig bridge_config;
  bridge_config.hostname = "dockerhost";
  Bridge bridge(docker_.get(), &backend, derive, bridge_config);
  bridge.Start();
  ASSERT_TRUE(bridge.SyncNow().ok());
  ASSERT_TRUE(bridge.WaitIdle(absl::Seconds(60)));
  bridge.Stop();

  // Measured: what the backend was given, service by service.
  const std::map<std::string, Service> entries = backend.entries();
  size_t hostile = 0;
  size_t max_metadata_bytes = 0;
  for (const auto& [id, s] : entries) {
    EXPECT_TRUE(ValidateServiceKeys(s).ok()) << id;
    if (s.container_id != kHostileId) continue;
    ++hostile;
    size_t bytes = 0;
    for (const auto& [k, v] : s.attrs) bytes += k.size() + v.size();
    for (const std::string& tag : s.tags) bytes += tag.size();
    max_metadata_bytes = std::max(max_metadata_bytes, bytes);
    EXPECT_LE(s.attrs.size(), 128u);
    EXPECT_FALSE(s.has_check) << "the 100 KB check script is over the 8 KiB value limit";
    EXPECT_EQ(s.name.find('/'), std::string::npos);
  }
  // 256 ports kept; the one with the path-injecting name is refused.
  EXPECT_EQ(hostile, 255u);
  EXPECT_LE(max_metadata_bytes, 65536u);
  EXPECT_EQ(entries.count("dockerhost:good:80"), 1u);
  EXPECT_EQ(entries.at("dockerhost:good:80").name, "good");

  // Warned about, each once, in a bounded number of short lines.
  EXPECT_LE(warnings.size(), 33u);
  size_t warning_bytes = 0;
  for (const std::string& w : warnings) warning_bytes += w.size();
  EXPECT_LE(warning_bytes, 33u * 600);
  EXPECT_THAT(warnings, Contains(HasSubstr("65535 ports; only the first 256")));
  EXPECT_THAT(warnings, Contains(HasSubstr("SERVICE_* keys beyond the limit of 128")));
  EXPECT_THAT(warnings, Contains(AllOf(HasSubstr("SERVICE_BLOB"), HasSubstr("1048576 bytes"))));
  EXPECT_THAT(warnings, Contains(AllOf(HasSubstr("SERVICE_CHECK_SCRIPT"),
                                       HasSubstr("over the limit of 8192"))));
  EXPECT_THAT(warnings, Contains(AllOf(HasSubstr("(hostile)"), HasSubstr("port 1/tcp"),
                                       HasSubstr("invalid name"))));

  // Registrator only read from Docker.
  EXPECT_THAT(engine_.non_get_requests(), ::testing::IsEmpty());
  EXPECT_FALSE(engine_.targets().empty());
}

// The fake engine itself enforces "only GET": anything else fails the running test.
docker::FakeDockerServer* g_engine = nullptr;

TEST_F(HostileContainerTest, FakeEngineFailsTheTestOnAnyMethodButGet) {
  g_engine = &engine_;
  EXPECT_NONFATAL_FAILURE_ON_ALL_THREADS(
      {
        HttpEndpoint endpoint;
        endpoint.unix_socket = g_engine->socket_path();
        HttpClient client(endpoint);
        HttpRequest request;
        request.method = "POST";
        request.path = "/v1.41/containers/x/kill";
        absl::StatusOr<HttpResponse> response = client.Send(request);
        ASSERT_TRUE(response.ok());
        EXPECT_EQ(response->status, 405);
      },
      "only GET is allowed");
  EXPECT_THAT(engine_.non_get_requests(), ::testing::ElementsAre("POST /v1.41/containers/x/kill"));
  g_engine = nullptr;
}

}  // namespace
}  // namespace registrator
