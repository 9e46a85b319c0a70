// The Consul KV adapter against the in-process stand-in: key layout, values, listing,
// fingerprints, unix socket URIs, and failure statuses.
#include "adapters/consulkv/consulkv_adapter.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/consul_standin/consul_standin.h"
#include "testing/process.h"
#include "testing/scripted_http_server.h"

namespace registrator {
namespace {

using ::registrator::fakes::ConsulStandin;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

Service MakeService(const std::string& id, const std::string& name, const std::string& ip,
                    int port) {
  Service s;
  s.id = id;
  s.name = name;
  s.ip = ip;
  s.port = port;
  return s;
}

std::unique_ptr<RegistryAdapter> MakeAdapter(const std::string& uri,
                                             const AdapterOptions& options = {}) {
  absl::StatusOr<BackendUri> parsed = ParseBackendUri(uri);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  auto adapter = NewConsulKvAdapter(*parsed, options);
  EXPECT_TRUE(adapter.ok()) << adapter.status();
  return adapter.ok() ? *std::move(adapter) : nullptr;
}

class ConsulKvTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(standin_.ListenTcp().ok()); }
  std::string Uri(const std::string& path) const {
    return absl::StrCat("consulkv://127.0.0.1:", standin_.port(), path);
  }
  ConsulStandin standin_;
};

TEST_F(ConsulKvTest, WritesKeyPerServiceAndDeletesIt) {
  auto adapter = MakeAdapter(Uri("/services"));
  ASSERT_TRUE(adapter->Ping().ok());
  const Service v4 = MakeService("host1:web:80", "web", "10.0.0.5", 32768);
  const Service v6 = MakeService("host1:web6:80", "web6", "fd00::5", 8080);
  ASSERT_TRUE(adapter->Register(v4).ok());
  ASSERT_TRUE(adapter->Register(v6).ok());
  EXPECT_EQ(standin_.KvValue("services/web/host1:web:80"), "10.0.0.5:32768");
  EXPECT_EQ(standin_.KvValue("services/web6/host1:web6:80"), "[fd00::5]:8080");
  EXPECT_EQ(standin_.BodiesOf("PUT", "/v1/kv/services/web/host1:web:80"),
            std::vector<std::string>{"10.0.0.5:32768"});

  ASSERT_TRUE(adapter->Deregister(v4).ok());
  EXPECT_EQ(standin_.KvValue("services/web/host1:web:80"), std::nullopt);
  EXPECT_TRUE(adapter->Deregister(v4).ok());  // Already gone is fine.
}

TEST_F(ConsulKvTest, ListsPrefixWithFingerprints) {
  auto adapter = MakeAdapter(Uri("/services"));
  auto empty = adapter->Services();
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_THAT(*empty, IsEmpty());

  const Service v4 = MakeService("host1:web:80", "web", "10.0.0.5", 32768);
  const Service v6 = MakeService("host1:web6:80:udp", "web6", "fd00::5", 8080);
  ASSERT_TRUE(adapter->Register(v4).ok());
  ASSERT_TRUE(adapter->Register(v6).ok());
  // Outside the prefix, and a stray key inside it: neither is a service of ours.
  ASSERT_EQ(standin_.Handle("PUT", "/v1/kv/other/web/x", {}, "1.1.1.1:1", {}).status, 200);
  ASSERT_EQ(standin_.Handle("PUT", "/v1/kv/services/stray", {}, "x", {}).status, 200);

  standin_.ClearLog();
  auto listed = adapter->Services();
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(standin_.write_count(), 0);
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].service.id, "host1:web:80");
  EXPECT_EQ((*listed)[0].service.name, "web");
  EXPECT_EQ((*listed)[0].service.ip, "10.0.0.5");
  EXPECT_EQ((*listed)[0].service.port, 32768);
  EXPECT_EQ((*listed)[0].fingerprint, "services/web/host1:web:80=10.0.0.5:32768");
  EXPECT_EQ((*listed)[0].fingerprint, adapter->Fingerprint(v4));
  EXPECT_EQ((*listed)[1].service.ip, "fd00::5");
  EXPECT_EQ((*listed)[1].service.port, 8080);
  EXPECT_EQ((*listed)[1].fingerprint, adapter->Fingerprint(v6));

  Service moved = v4;
  moved.port = 32769;
  EXPECT_NE((*listed)[0].fingerprint, adapter->Fingerprint(moved));
  moved = v4;
  moved.ip = "10.0.0.6";
  EXPECT_NE((*listed)[0].fingerprint, adapter->Fingerprint(moved));

  // Deregistering what Services() returned removes it.
  ASSERT_TRUE(adapter->Deregister((*listed)[1].service).ok());
  EXPECT_EQ(standin_.KvValue("services/web6/host1:web6:80:udp"), std::nullopt);
}

TEST_F(ConsulKvTest, EmptyPrefixUsesNameAtTheRoot) {
  auto adapter = MakeAdapter(Uri(""));
  ASSERT_TRUE(adapter->Register(MakeService("h:c:1", "svc", "1.2.3.4", 1)).ok());
  EXPECT_EQ(standin_.KvValue("svc/h:c:1"), "1.2.3.4:1");
  auto listed = adapter->Services();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].service.id, "h:c:1");
}

TEST_F(ConsulKvTest, RefreshIsANoOp) {
  AdapterOptions options;
  options.ttl = 30;
  auto adapter = MakeAdapter(Uri("/services"), options);
  const Service s = MakeService("host1:web:80", "web", "10.0.0.5", 1);
  ASSERT_TRUE(adapter->Register(s).ok());
  standin_.ClearLog();
  EXPECT_TRUE(adapter->Refresh({s}).ok());
  EXPECT_THAT(standin_.requests(), IsEmpty());
}

TEST(ConsulKvAclTest, TokenIsSentAndMissingTokenIsPermissionDenied) {
  ConsulStandin standin({.acl_token = "kv-token"});
  ASSERT_TRUE(standin.ListenTcp().ok());
  const std::string uri = absl::StrCat("consulkv://127.0.0.1:", standin.port(), "/p");
  const Service s = MakeService("h:c:1", "svc", "1.2.3.4", 1);
  EXPECT_EQ(MakeAdapter(uri)->Register(s).code(), absl::StatusCode::kPermissionDenied);
  AdapterOptions options;
  options.env["CONSUL_HTTP_TOKEN"] = "kv-token";
  ASSERT_TRUE(MakeAdapter(uri, options)->Register(s).ok());
  EXPECT_EQ(standin.KvValue("p/svc/h:c:1"), "1.2.3.4:1");
}

TEST(ConsulKvUnixTest, SocketPathThenPrefix) {
  registrator::fakes::TempDir dir("ckv");
  const std::string socket = dir.path() + "/consul.sock";
  ConsulStandin standin;
  ASSERT_TRUE(standin.ListenUnix(socket).ok());
  auto adapter = MakeAdapter(absl::StrCat("consulkv-unix://", socket, ":/reg/services"));
  ASSERT_TRUE(adapter->Ping().ok());
  ASSERT_TRUE(adapter->Register(MakeService("h:c:1", "svc", "1.2.3.4", 1)).ok());
  EXPECT_EQ(standin.KvValue("reg/services/svc/h:c:1"), "1.2.3.4:1");
  auto listed = adapter->Services();
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 1u);
}

// A rate limit or a proxy's answer is retried, not taken as a rejected value (issue 12).
TEST(ConsulKvStatusTest, OnlyA400IsPermanent) {
  fakes::ScriptedHttpServer agent;
  auto adapter = MakeAdapter(absl::StrCat("consulkv://", agent.address(), "/p"));
  const Service s = MakeService("h:c:1", "svc", "1.2.3.4", 1);
  const std::pair<int, absl::StatusCode> cases[] = {
      {200, absl::StatusCode::kOk},
      {400, absl::StatusCode::kInvalidArgument},
      {403, absl::StatusCode::kPermissionDenied},
      {404, absl::StatusCode::kUnavailable},
      {408, absl::StatusCode::kUnavailable},
      {413, absl::StatusCode::kUnavailable},
      {429, absl::StatusCode::kUnavailable},
      {500, absl::StatusCode::kUnavailable},
  };
  for (const auto& [http_status, code] : cases) {
    agent.Reply("PUT /v1/kv/p/svc/h:c:1", http_status, "answer");
    EXPECT_EQ(adapter->Register(s).code(), code) << http_status;
  }
}

TEST(ConsulKvDownTest, UnreachableIsUnavailableAndFactoryValidates) {
  const int port = registrator::fakes::FreeLoopbackPort();
  auto adapter = MakeAdapter(absl::StrCat("consulkv://127.0.0.1:", port, "/p"));
  EXPECT_EQ(adapter->Ping().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(adapter->Register(MakeService("h:c:1", "svc", "1.2.3.4", 1)).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(NewConsulKvAdapter(*ParseBackendUri("consul://127.0.0.1:1/p"), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NewConsulKvAdapter(*ParseBackendUri("consulkv-unix://h/x.sock:/p"), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace registrator
