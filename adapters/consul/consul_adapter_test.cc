// The Consul agent adapter against the in-process stand-in: the exact JSON Consul receives for
// each kind of service and check, TTL refresh, ACL tokens, TLS with client certificates, unix
// sockets, fingerprints, and how failures map to statuses.
#include "adapters/consul/consul_adapter.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "adapters/consul/consul_codec.h"
#include "adapters/consul/consul_watch.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"
#include "testing/consul_standin/consul_standin.h"
#include "testing/consul_standin/test_certs.h"
#include "testing/drift_counter.h"
#include "testing/process.h"
#include "testing/status_matchers.h"

namespace registrator {
namespace {

using ::registrator::fakes::ConsulStandin;
using ::registrator::fakes::ConsulStandinOptions;
using ::registrator::fakes::DriftCounter;
using ::registrator::fakes::IsOk;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

Service WebService() {
  Service s;
  s.id = "host1:web:80";
  s.name = "web";
  s.ip = "10.0.0.5";
  s.port = 32768;
  s.tags = {"b", "a"};
  s.meta = {{"env", "prod"}, {"version", "1.2"}};
  return s;
}

std::unique_ptr<RegistryAdapter> MakeAdapter(const std::string& uri, AdapterOptions options = {}) {
  absl::StatusOr<BackendUri> parsed = ParseBackendUri(uri);
  EXPECT_THAT(parsed, IsOk()) << parsed.status();
  absl::StatusOr<std::unique_ptr<RegistryAdapter>> adapter = NewConsulAdapter(*parsed, options);
  EXPECT_THAT(adapter, IsOk()) << adapter.status();
  return adapter.ok() ? *std::move(adapter) : nullptr;
}

class ConsulAdapterTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_THAT(standin_.ListenTcp(), IsOk()); }

  std::string Uri() const { return absl::StrCat("consul://127.0.0.1:", standin_.port()); }

  std::string LastRegisterBody() const {
    auto bodies = standin_.BodiesOf("PUT", "/v1/agent/service/register");
    return bodies.empty() ? "" : bodies.back();
  }

  ConsulStandin standin_;
};

TEST_F(ConsulAdapterTest, RegistersSinglePortServiceWithExactBody) {
  auto adapter = MakeAdapter(Uri());
  ASSERT_THAT(adapter->Ping(), IsOk());
  ASSERT_THAT(adapter->Register(WebService()), IsOk());
  EXPECT_EQ(LastRegisterBody(),
            R"({"ID":"host1:web:80","Name":"web","Tags":["b","a"],"Address":"10.0.0.5",)"
            R"("Port":32768,"Meta":{"env":"prod","version":"1.2"}})");
  EXPECT_THAT(standin_.ServiceIds(), ElementsAre("host1:web:80"));
  EXPECT_THAT(standin_.CheckIds(), IsEmpty());
}

TEST_F(ConsulAdapterTest, RegistersUdpServiceWithoutTagsOrMeta) {
  Service s;
  s.id = "host1:dns:53:udp";
  s.name = "dns";
  s.ip = "10.0.0.5";
  s.port = 53;
  s.tags = {"udp"};
  s.protocol = "udp";
  auto adapter = MakeAdapter(Uri());
  ASSERT_THAT(adapter->Register(s), IsOk());
  EXPECT_EQ(LastRegisterBody(),
            R"({"ID":"host1:dns:53:udp","Name":"dns","Tags":["udp"],"Address":"10.0.0.5",)"
            R"("Port":53,"Meta":{}})");
}

TEST_F(ConsulAdapterTest, EscapesJsonInValues) {
  Service s = WebService();
  s.tags = {"quote\"tag", "back\\slash"};
  s.meta = {{"k", "line\nbreak"}};
  auto adapter = MakeAdapter(Uri());
  ASSERT_THAT(adapter->Register(s), IsOk());
  EXPECT_THAT(LastRegisterBody(), HasSubstr(R"("Tags":["quote\"tag","back\\slash"])"));
  EXPECT_THAT(LastRegisterBody(), HasSubstr(R"("Meta":{"k":"line\nbreak"})"));
  auto listed = adapter->Services();
  ASSERT_THAT(listed, IsOk());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].fingerprint, adapter->Fingerprint(s));
}

struct CheckCase {
  std::string name;
  ServiceCheck check;
  std::string expected_check_json;
  std::string expected_status;  // In the stand-in after registration.
};

class ConsulCheckTest : public ConsulAdapterTest,
                        public ::testing::WithParamInterface<CheckCase> {};

TEST_P(ConsulCheckTest, SendsCheckDefinitionConsulAccepts) {
  Service s = WebService();
  s.meta.clear();
  s.tags.clear();
  s.has_check = true;
  s.check = GetParam().check;
  auto adapter = MakeAdapter(Uri());
  absl::Status status = adapter->Register(s);
  ASSERT_THAT(status, IsOk()) << status;
  const std::string checks = absl::StrCat(R"(,"Check":)", GetParam().expected_check_json);
  EXPECT_EQ(LastRegisterBody(),
            absl::StrCat(R"({"ID":"host1:web:80","Name":"web","Tags":[],"Address":"10.0.0.5",)",
                         R"("Port":32768,"Meta":{"registrator-check":")", consul::CheckHash(checks),
                         R"("})", checks, "}"));
  EXPECT_EQ(standin_.CheckStatus("service:host1:web:80"), GetParam().expected_status);
}

ServiceCheck Http() {
  ServiceCheck c;
  c.http = "http://10.0.0.5:32768/health";
  c.method = "HEAD";
  c.interval = "15s";
  return c;
}
ServiceCheck Https() {
  ServiceCheck c;
  c.http = "https://10.0.0.5:32768/health";
  c.tls_skip_verify = true;
  c.interval = "10s";
  c.timeout = "2s";
  return c;
}
ServiceCheck Tcp() {
  ServiceCheck c;
  c.tcp = "10.0.0.5:32768";
  c.interval = "1m30s";
  c.initial_status = "passing";
  return c;
}
ServiceCheck Grpc() {
  ServiceCheck c;
  c.grpc = "10.0.0.5:32768";
  c.grpc_use_tls = true;
  c.tls_skip_verify = true;
  c.interval = "500ms";
  return c;
}
ServiceCheck Script() {
  ServiceCheck c;
  c.script_args = {"/bin/check", "--port", "32768", "a b"};
  c.interval = "10s";
  c.deregister_after = "10m";
  return c;
}
ServiceCheck Ttl() {
  ServiceCheck c;
  c.ttl = "30s";
  c.initial_status = "warning";
  return c;
}

INSTANTIATE_TEST_SUITE_P(
    AllKinds, ConsulCheckTest,
    ::testing::Values(
        CheckCase{"http_with_method", Http(),
                  R"({"HTTP":"http://10.0.0.5:32768/health","Method":"HEAD","Interval":"15s"})",
                  "critical"},
        CheckCase{"https_skip_verify_timeout", Https(),
                  R"({"HTTP":"https://10.0.0.5:32768/health","TLSSkipVerify":true,)"
                  R"("Interval":"10s","Timeout":"2s"})",
                  "critical"},
        CheckCase{"tcp_initial_status", Tcp(),
                  R"({"TCP":"10.0.0.5:32768","Interval":"1m30s","Status":"passing"})", "passing"},
        CheckCase{"grpc_tls", Grpc(),
                  R"({"GRPC":"10.0.0.5:32768","GRPCUseTLS":true,"TLSSkipVerify":true,)"
                  R"("Interval":"500ms"})",
                  "critical"},
        CheckCase{"script_args_deregister_after", Script(),
                  R"({"ScriptArgs":["/bin/check","--port","32768","a b"],"Interval":"10s",)"
                  R"("DeregisterCriticalServiceAfter":"10m"})",
                  "critical"},
        CheckCase{"ttl_initial_status", Ttl(), R"({"TTL":"30s","Status":"warning"})", "warning"}),
    [](const ::testing::TestParamInfo<CheckCase>& info) { return info.param.name; });

TEST_F(ConsulAdapterTest, TtlCheckIsAddedAndRefreshKeepsItPassing) {
  AdapterOptions options;
  options.ttl = 30;
  auto adapter = MakeAdapter(Uri(), options);
  Service s = WebService();
  ASSERT_THAT(adapter->Register(s), IsOk());
  EXPECT_THAT(LastRegisterBody(),
              HasSubstr(R"("Check":{"CheckID":"service:host1:web:80:ttl",)"
                        R"("Name":"registrator TTL","TTL":"30s","Status":"passing",)"
                        R"("DeregisterCriticalServiceAfter":"60s"}})"));
  EXPECT_EQ(standin_.CheckStatus("service:host1:web:80:ttl"), "passing");

  // Something marks it failing; the next refresh passes it again.
  auto reply = standin_.Handle("PUT", "/v1/agent/check/fail/service:host1:web:80:ttl", {}, "", {});
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(standin_.CheckStatus("service:host1:web:80:ttl"), "critical");
  standin_.ClearLog();
  ASSERT_THAT(adapter->Refresh({s}), IsOk());
  EXPECT_EQ(standin_.CheckStatus("service:host1:web:80:ttl"), "passing");
  ASSERT_EQ(standin_.requests().size(), 1u);
  EXPECT_EQ(standin_.requests()[0].path, "/v1/agent/check/pass/service:host1:web:80:ttl");
}

TEST_F(ConsulAdapterTest, UserCheckAndTtlCheckGoInChecksArray) {
  AdapterOptions options;
  options.ttl = 20;
  auto adapter = MakeAdapter(Uri(), options);
  Service s = WebService();
  s.has_check = true;
  s.check = Tcp();
  ASSERT_THAT(adapter->Register(s), IsOk());
  EXPECT_THAT(LastRegisterBody(),
              HasSubstr(R"("Checks":[{"TCP":"10.0.0.5:32768","Interval":"1m30s",)"
                        R"("Status":"passing"},{"CheckID":"service:host1:web:80:ttl",)"
                        R"("Name":"registrator TTL","TTL":"20s","Status":"passing",)"
                        R"("DeregisterCriticalServiceAfter":"60s"}]})"));
  // Consul numbers unnamed checks of a Checks array.
  EXPECT_THAT(standin_.CheckIds(),
              ElementsAre("service:host1:web:80:1", "service:host1:web:80:ttl"));
}

// The agent's service listing has no checks; the hash in Meta makes a changed check visible,
// so a resync or a restart rewrites it instead of keeping the old check forever.
TEST_F(ConsulAdapterTest, ChangedCheckChangesTheListedFingerprint) {
  auto adapter = MakeAdapter(Uri());
  Service s = WebService();
  s.has_check = true;
  s.check = Tcp();
  ASSERT_THAT(adapter->Register(s), IsOk());
  absl::StatusOr<std::vector<RegisteredService>> listed = adapter->Services();
  ASSERT_THAT(listed, IsOk());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].fingerprint, adapter->Fingerprint(s));
  Service changed = s;
  changed.check.interval = "5s";
  EXPECT_NE((*listed)[0].fingerprint, adapter->Fingerprint(changed));
  Service without = s;
  without.has_check = false;
  EXPECT_NE((*listed)[0].fingerprint, adapter->Fingerprint(without));
}

// Docker health: one more TTL check per service, registered with the current status, its
// Output set through the documented update endpoint, and a health change is no definition
// change (same fingerprint, no re-registration).
TEST_F(ConsulAdapterTest, DockerHealthIsATtlCheckSetThroughTheUpdateEndpoint) {
  AdapterOptions options;
  options.ttl = 30;
  auto adapter = MakeAdapter(Uri(), options);
  Service s = WebService();
  s.has_check = true;
  s.check = Tcp();
  s.docker_health = {"starting", ""};
  ASSERT_TRUE(adapter->Register(s).ok());
  EXPECT_THAT(LastRegisterBody(),
              HasSubstr(R"(,{"CheckID":"service:host1:web:80:docker-health",)"
                        R"("Name":"Docker health","Notes":"Docker HEALTHCHECK status, set by )"
                        R"(registrator","TTL":"876000h","Status":"critical"}]})"));
  EXPECT_THAT(standin_.CheckIds(),
              ElementsAre("service:host1:web:80:1", "service:host1:web:80:docker-health",
                          "service:host1:web:80:ttl"));
  EXPECT_EQ(standin_.CheckStatus("service:host1:web:80:docker-health"), "critical");
  EXPECT_THAT(standin_.BodiesOf("PUT", "/v1/agent/check/update/service:host1:web:80:docker-health"),
              ElementsAre(R"({"Status":"critical","Output":""})"));

  Service healthy = s;
  healthy.docker_health = {"healthy", "ok \"quoted\"\n"};
  EXPECT_EQ(adapter->Fingerprint(healthy), adapter->Fingerprint(s));
  EXPECT_NE(adapter->HealthFingerprint(healthy), adapter->HealthFingerprint(s));
  standin_.ClearLog();
  ASSERT_TRUE(adapter->SetHealth(healthy).ok());
  ASSERT_EQ(standin_.requests().size(), 1u);
  EXPECT_EQ(standin_.requests()[0].method, "PUT");
  EXPECT_EQ(standin_.requests()[0].body, R"({"Status":"passing","Output":"ok \"quoted\"\n"})");
  EXPECT_EQ(standin_.CheckStatus("service:host1:web:80:docker-health"), "passing");

  // The listing reports what the check holds, as HealthFingerprint computes it.
  absl::StatusOr<std::vector<RegisteredService>> listed = adapter->Services();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].fingerprint, adapter->Fingerprint(healthy));
  EXPECT_EQ((*listed)[0].health_fingerprint, adapter->HealthFingerprint(healthy));

  // Something else fails the check; a refresh re-asserts Docker's status with the TTL pass.
  auto reply =
      standin_.Handle("PUT", "/v1/agent/check/fail/service:host1:web:80:docker-health", {}, "", {});
  ASSERT_EQ(reply.status, 200) << reply.body;
  listed = adapter->Services();
  ASSERT_TRUE(listed.ok());
  EXPECT_NE((*listed)[0].health_fingerprint, adapter->HealthFingerprint(healthy));
  ASSERT_TRUE(adapter->Refresh({healthy}).ok());
  EXPECT_EQ(standin_.CheckStatus("service:host1:web:80:docker-health"), "passing");
  EXPECT_EQ(standin_.CheckStatus("service:host1:web:80:ttl"), "passing");

  // Unhealthy is critical too.
  Service unhealthy = s;
  unhealthy.docker_health = {"unhealthy", "probe failed"};
  ASSERT_TRUE(adapter->SetHealth(unhealthy).ok());
  EXPECT_EQ(standin_.CheckStatus("service:host1:web:80:docker-health"), "critical");
}

TEST_F(ConsulAdapterTest, DockerHealthOfAnUnknownCheckIsNotFound) {
  auto adapter = MakeAdapter(Uri());
  Service s = WebService();
  s.docker_health = {"healthy", "ok"};
  absl::Status status = adapter->SetHealth(s);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  // Without Docker health nothing changes: no check, no update, no extra listing request.
  ASSERT_TRUE(adapter->Register(WebService()).ok());
  EXPECT_THAT(standin_.CheckIds(), IsEmpty());
  EXPECT_EQ(adapter->HealthFingerprint(WebService()), "");
  standin_.ClearLog();
  ASSERT_TRUE(adapter->Services().ok());
  EXPECT_EQ(standin_.requests().size(), 1u);
}

// Our output bound is Consul's: 4096 bytes come back whole.
TEST_F(ConsulAdapterTest, DockerHealthOutputOfTheMaximumSizeIsKeptWhole) {
  auto adapter = MakeAdapter(Uri());
  Service s = WebService();
  s.docker_health = {"unhealthy", std::string(kMaxDockerHealthOutput, 'x')};
  ASSERT_TRUE(adapter->Register(s).ok());
  absl::StatusOr<std::vector<RegisteredService>> listed = adapter->Services();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].health_fingerprint, adapter->HealthFingerprint(s));
}

TEST_F(ConsulAdapterTest, RefreshWithoutTtlWritesNothing) {
  auto adapter = MakeAdapter(Uri());
  ASSERT_THAT(adapter->Register(WebService()), IsOk());
  standin_.ClearLog();
  ASSERT_THAT(adapter->Refresh({WebService()}), IsOk());
  EXPECT_EQ(standin_.write_count(), 0);
}

TEST_F(ConsulAdapterTest, RefreshOfForgottenCheckRequestsStateRewrite) {
  AdapterOptions options;
  options.ttl = 30;
  auto adapter = MakeAdapter(Uri(), options);
  std::atomic<int> lost{0};
  adapter->SetStateLostCallback([&] { ++lost; });
  absl::Status status = adapter->Refresh({WebService()});
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_EQ(lost.load(), 1);
}

TEST_F(ConsulAdapterTest, DeregisterRemovesServiceAndChecksAndMissingIsOk) {
  AdapterOptions options;
  options.ttl = 30;
  auto adapter = MakeAdapter(Uri(), options);
  ASSERT_THAT(adapter->Register(WebService()), IsOk());
  ASSERT_THAT(adapter->Deregister(WebService()), IsOk());
  EXPECT_THAT(standin_.ServiceIds(), IsEmpty());
  EXPECT_THAT(standin_.CheckIds(), IsEmpty());
  auto requests = standin_.requests();
  EXPECT_EQ(requests.back().method, "PUT");
  EXPECT_EQ(requests.back().path, "/v1/agent/service/deregister/host1:web:80");
  EXPECT_THAT(adapter->Deregister(WebService()), IsOk());
}

TEST_F(ConsulAdapterTest, FingerprintsMatchForUnchangedAndDifferForChanged) {
  auto adapter = MakeAdapter(Uri());
  Service s = WebService();
  ASSERT_THAT(adapter->Register(s), IsOk());
  Service other = WebService();
  other.id = "host1:web:81";  // Listed after host1:web:80 (the agent sorts by ID).
  other.name = "web-81";
  other.tags.clear();
  other.meta.clear();
  ASSERT_THAT(adapter->Register(other), IsOk());

  standin_.ClearLog();
  auto listed = adapter->Services();
  ASSERT_THAT(listed, IsOk()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  const RegisteredService& web = (*listed)[0];
  EXPECT_EQ(web.service.id, "host1:web:80");
  EXPECT_EQ(web.service.name, "web");
  EXPECT_EQ(web.service.ip, "10.0.0.5");
  EXPECT_EQ(web.service.port, 32768);
  EXPECT_THAT(web.service.tags, ElementsAre("b", "a"));
  EXPECT_EQ(web.fingerprint, adapter->Fingerprint(s));
  EXPECT_EQ((*listed)[1].fingerprint, adapter->Fingerprint(other));
  EXPECT_EQ(standin_.write_count(), 0);

  Service changed = s;
  changed.port = 32769;
  EXPECT_NE(web.fingerprint, adapter->Fingerprint(changed));
  changed = s;
  changed.tags = {"a", "b"};
  EXPECT_NE(web.fingerprint, adapter->Fingerprint(changed));
  changed = s;
  changed.meta = {{"env", "dev"}, {"version", "1.2"}};
  EXPECT_NE(web.fingerprint, adapter->Fingerprint(changed));
  changed = s;
  changed.ip = "10.0.0.6";
  EXPECT_NE(web.fingerprint, adapter->Fingerprint(changed));
  changed = s;
  changed.name = "web2";
  EXPECT_NE(web.fingerprint, adapter->Fingerprint(changed));
}

TEST_F(ConsulAdapterTest, RejectedRegistrationIsInvalidArgumentWithConsulsMessage) {
  Service s = WebService();
  s.meta = {{"bad.key", "x"}};  // The derivation never sends this; Consul rejects it.
  auto adapter = MakeAdapter(Uri());
  absl::Status status = adapter->Register(s);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(), HasSubstr("Key contains invalid characters"));
  EXPECT_THAT(status.message(), HasSubstr("host1:web:80"));
}

TEST_F(ConsulAdapterTest, NoLeaderIsUnavailable) {
  standin_.SetLeader("");
  absl::Status status = MakeAdapter(Uri())->Ping();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("no leader"));
}

TEST(ConsulAdapterDownTest, StandinDownIsUnavailable) {
  const int port = registrator::fakes::FreeLoopbackPort();
  auto adapter = MakeAdapter(absl::StrCat("consul://127.0.0.1:", port));
  EXPECT_EQ(adapter->Ping().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(adapter->Register(WebService()).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(adapter->Services().status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(ConsulAdapterTest, HostFromConsulHttpAddrWhenUriHasNone) {
  AdapterOptions options;
  options.env["CONSUL_HTTP_ADDR"] = absl::StrCat("http://127.0.0.1:", standin_.port());
  auto adapter = MakeAdapter("consul://", options);
  ASSERT_THAT(adapter->Register(WebService()), IsOk());
  EXPECT_THAT(standin_.ServiceIds(), ElementsAre("host1:web:80"));

  options.env["CONSUL_HTTP_ADDR"] = absl::StrCat("127.0.0.1:", standin_.port());
  EXPECT_THAT(MakeAdapter("consul://", options)->Ping(), IsOk());
}

TEST_F(ConsulAdapterTest, ConcurrentRegistrationsFromManyThreads) {
  AdapterOptions options;
  options.ttl = 30;
  auto adapter = MakeAdapter(Uri(), options);
  constexpr int kThreads = 6;
  constexpr int kPerThread = 10;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        Service s = WebService();
        s.id = absl::StrCat("host1:web", t, ":", i);
        if (!adapter->Register(s).ok() || !adapter->Refresh({s}).ok()) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  auto listed = adapter->Services();
  ASSERT_THAT(listed, IsOk()) << listed.status();
  EXPECT_EQ(listed->size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(standin_.CheckIds().size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST(ConsulAdapterEnvTest, ConsulHttpAddrMayNameAUnixSocket) {
  registrator::fakes::TempDir dir("cua");
  const std::string socket = dir.path() + "/agent.sock";
  ConsulStandin standin;
  ASSERT_THAT(standin.ListenUnix(socket), IsOk());
  AdapterOptions options;
  options.env["CONSUL_HTTP_ADDR"] = absl::StrCat("unix://", socket);
  auto adapter = MakeAdapter("consul://", options);
  ASSERT_THAT(adapter->Register(WebService()), IsOk());
  EXPECT_THAT(standin.ServiceIds(), ElementsAre("host1:web:80"));
}

TEST(ConsulAdapterFactoryTest, ValidatesUriWithoutNetwork) {
  AdapterOptions options;
  auto parse = [](const std::string& uri) { return *ParseBackendUri(uri); };
  EXPECT_EQ(NewConsulAdapter(parse("etcd://127.0.0.1:1"), options).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NewConsulAdapter(parse("consul-unix://host/x.sock"), options).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NewConsulAdapter(parse("consul-unix://"), options).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NewConsulAdapter(parse("consul://a:1,b:2"), options).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Nothing listens on port 1: the factory must not have tried.
  EXPECT_THAT(NewConsulAdapter(parse("consul://127.0.0.1:1"), options), IsOk());
  EXPECT_THAT(NewConsulAdapter(parse("consul-tls://127.0.0.1:1"), options), IsOk());
}

class ConsulAclTest : public ::testing::Test {
 protected:
  ConsulAclTest() : standin_(ConsulStandinOptions{.acl_token = "s3cret-token"}) {}
  void SetUp() override { ASSERT_THAT(standin_.ListenTcp(), IsOk()); }
  std::string Uri() const { return absl::StrCat("consul://127.0.0.1:", standin_.port()); }
  ConsulStandin standin_;
};

TEST_F(ConsulAclTest, TokenFromEnvironmentIsSentOnEveryRequest) {
  AdapterOptions options;
  options.env["CONSUL_HTTP_TOKEN"] = "s3cret-token";
  options.ttl = 10;
  auto adapter = MakeAdapter(Uri(), options);
  ASSERT_THAT(adapter->Register(WebService()), IsOk());
  ASSERT_THAT(adapter->Refresh({WebService()}), IsOk());
  auto listed = adapter->Services();
  ASSERT_THAT(listed, IsOk());
  EXPECT_EQ(listed->size(), 1u);
  ASSERT_THAT(adapter->Deregister(WebService()), IsOk());
  for (const auto& request : standin_.requests()) {
    EXPECT_TRUE(request.has_token) << request.method << " " << request.path;
  }
}

TEST_F(ConsulAclTest, WithoutTokenWritesArePermissionDenied) {
  auto adapter = MakeAdapter(Uri());
  absl::Status status = adapter->Register(WebService());
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_THAT(status.message(), HasSubstr("Permission denied"));
  EXPECT_THAT(standin_.ServiceIds(), IsEmpty());

  AdapterOptions wrong;
  wrong.env["CONSUL_HTTP_TOKEN"] = "wrong";
  status = MakeAdapter(Uri(), wrong)->Register(WebService());
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_THAT(std::string(status.message()), ::testing::Not(HasSubstr("wrong")));
}

TEST(ConsulUnixSocketTest, RegistersAndListsOverUnixSocket) {
  registrator::fakes::TempDir dir("cus");
  const std::string socket = dir.path() + "/consul.sock";
  ConsulStandin standin;
  ASSERT_THAT(standin.ListenUnix(socket), IsOk());
  auto adapter = MakeAdapter(absl::StrCat("consul-unix://", socket));
  ASSERT_THAT(adapter->Ping(), IsOk());
  ASSERT_THAT(adapter->Register(WebService()), IsOk());
  auto listed = adapter->Services();
  ASSERT_THAT(listed, IsOk()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].fingerprint, adapter->Fingerprint(WebService()));
}

class ConsulTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string d = dir_.path();
    absl::Status certs = registrator::fakes::MakeTestCertificates(d);
    ASSERT_THAT(certs, IsOk()) << certs;
    ConsulStandinOptions options;
    options.tls_cert_file = d + "/server.pem";
    options.tls_key_file = d + "/server.key";
    options.tls_client_ca_file = d + "/ca.pem";
    standin_ = std::make_unique<ConsulStandin>(options);
    ASSERT_THAT(standin_->ListenTcp(), IsOk());
  }
  std::string Uri() const { return absl::StrCat("consul-tls://127.0.0.1:", standin_->port()); }
  AdapterOptions TlsOptions(bool with_client_cert) const {
    AdapterOptions options;
    options.env["CONSUL_CACERT"] = dir_.path() + "/ca.pem";
    if (with_client_cert) {
      options.env["CONSUL_CLIENT_CERT"] = dir_.path() + "/client.pem";
      options.env["CONSUL_CLIENT_KEY"] = dir_.path() + "/client.key";
    }
    return options;
  }

  registrator::fakes::TempDir dir_{"ctls"};
  std::unique_ptr<ConsulStandin> standin_;
};

TEST_F(ConsulTlsTest, RegistersOverVerifiedTlsWithClientCertificate) {
  auto adapter = MakeAdapter(Uri(), TlsOptions(true));
  absl::Status ping = adapter->Ping();
  ASSERT_THAT(ping, IsOk()) << ping;
  ASSERT_THAT(adapter->Register(WebService()), IsOk());
  EXPECT_THAT(standin_->ServiceIds(), ElementsAre("host1:web:80"));
}

TEST_F(ConsulTlsTest, HttpsConsulHttpAddrTurnsOnTls) {
  AdapterOptions options = TlsOptions(true);
  options.env["CONSUL_HTTP_ADDR"] = absl::StrCat("https://127.0.0.1:", standin_->port());
  absl::Status ping = MakeAdapter("consul://", options)->Ping();
  EXPECT_THAT(ping, IsOk()) << ping;
}

TEST_F(ConsulTlsTest, FailsWithoutClientCertificateOrTrustedCa) {
  EXPECT_EQ(MakeAdapter(Uri(), TlsOptions(false))->Ping().code(), absl::StatusCode::kUnavailable);
  AdapterOptions untrusted = TlsOptions(true);
  untrusted.env.erase("CONSUL_CACERT");  // The system CAs do not know our test CA.
  EXPECT_EQ(MakeAdapter(Uri(), untrusted)->Ping().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(standin_->ServiceIds(), IsEmpty());
}

// --- Drift watching (issue 16): a hash-based blocking query on /v1/agent/services. ---

std::unique_ptr<RegistryAdapter> MakeWatchingAdapter(const std::string& uri,
                                                     consul::BlockingWatchOptions watch) {
  absl::StatusOr<BackendUri> parsed = ParseBackendUri(uri);
  EXPECT_THAT(parsed, IsOk()) << parsed.status();
  absl::StatusOr<std::unique_ptr<RegistryAdapter>> adapter =
      NewConsulAdapterWithWatch(*parsed, AdapterOptions(), watch);
  EXPECT_THAT(adapter, IsOk()) << adapter.status();
  return adapter.ok() ? *std::move(adapter) : nullptr;
}

class ConsulWatchTest : public ConsulAdapterTest {
 protected:
  // Blocking reads of /v1/agent/services (those carrying ?hash=) the stand-in received.
  int ParkedReads() const {
    int parked = 0;
    for (const auto& r : standin_.requests()) {
      parked += r.path == "/v1/agent/services" && absl::StrContains(r.query, "hash=");
    }
    return parked;
  }
  // Waits until the stand-in has received more than `mark` blocking reads.
  void AwaitParkedAbove(int mark) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (ParkedReads() <= mark && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(2));
    ASSERT_GT(ParkedReads(), mark);
  }
  // Registers web:80, starts the watch and waits for its baseline report and its first read
  // parked on the agent's hash.
  void RegisterAndAwaitParkedWatch(RegistryAdapter* adapter, DriftCounter* drift) {
    ASSERT_THAT(adapter->Register(WebService()), IsOk());
    ASSERT_THAT(adapter->StartWatch(drift->Callback()), IsOk());
    // The first read is a baseline, reported once (the entries may have changed before it).
    ASSERT_TRUE(drift->AwaitAbove(0));
    AwaitParkedAbove(0);
  }
  fakes::StandinReply Behind(const std::string& method, const std::string& path,
                             const std::string& body = "") {
    return standin_.Handle(method, path, {}, body, {});
  }
};

TEST_F(ConsulWatchTest, DeletedAlteredOrAddedBehindItsBackCallsDrifted) {
  auto adapter = MakeAdapter(Uri());
  DriftCounter drift;
  ASSERT_NO_FATAL_FAILURE(RegisterAndAwaitParkedWatch(adapter.get(), &drift));
  int mark = drift.count();

  ASSERT_EQ(Behind("PUT", "/v1/agent/service/deregister/host1:web:80").status, 200);
  ASSERT_TRUE(drift.AwaitAbove(mark));
  mark = drift.count();
  ASSERT_THAT(adapter->Register(WebService()), IsOk());  // Our own write wakes it too.
  ASSERT_TRUE(drift.AwaitAbove(mark));
  AwaitParkedAbove(ParkedReads());
  mark = drift.count();
  ASSERT_EQ(
      Behind("PUT", "/v1/agent/service/register", R"({"ID":"host1:web:80","Name":"web","Port":1})")
          .status,
      200);
  ASSERT_TRUE(drift.AwaitAbove(mark));
  mark = drift.count();
  ASSERT_EQ(Behind("PUT", "/v1/agent/service/register", R"({"ID":"other","Name":"x"})").status,
            200);
  ASSERT_TRUE(drift.AwaitAbove(mark));

  // Stopping ends the parked five-minute read at once; nothing is reported afterwards.
  adapter->StopWatch();
  mark = drift.count();
  ASSERT_EQ(Behind("PUT", "/v1/agent/service/deregister/other").status, 200);
  adapter->StopWatch();  // Idempotent.
  EXPECT_EQ(drift.count(), mark);
}

// A hash only tells "equal or not": a read parked on the hash from before our own register is
// not woken when a deletion brings the listing back to that content before the agent re-checks
// (our register, then a deletion ms later: missed in e2e_watch_consul_test under load). So our
// own write ends the parked read and the watch reads afresh and reports, whether or not the
// hash moved. Here it does not move (the same registration again), which is what a parked read
// sees in that race.
TEST_F(ConsulWatchTest, OwnWriteEndsTheParkedHashReadEvenWhenTheHashIsUnchanged) {
  auto adapter = MakeAdapter(Uri());
  DriftCounter drift;
  ASSERT_NO_FATAL_FAILURE(RegisterAndAwaitParkedWatch(adapter.get(), &drift));
  const int parked = ParkedReads();
  const int mark = drift.count();
  ASSERT_THAT(adapter->Register(WebService()), IsOk());  // Same body: the hash stays.
  ASSERT_TRUE(drift.AwaitAbove(mark)) << "the parked read was not replaced by a fresh one";
  // ...and then it parks again, on what the fresh read returned.
  AwaitParkedAbove(parked);
  adapter->StopWatch();
}

TEST_F(ConsulWatchTest, TimeoutsAndUnrelatedWritesAreNotDrift) {
  consul::BlockingWatchOptions options;
  options.wait = absl::Milliseconds(30);
  auto adapter = MakeWatchingAdapter(Uri(), options);
  ASSERT_THAT(adapter->Register(WebService()), IsOk());
  DriftCounter drift;
  ASSERT_THAT(adapter->StartWatch(drift.Callback()), IsOk());
  ASSERT_TRUE(drift.AwaitAbove(0));
  const int baseline = drift.count();
  // Check status and KV writes leave the agent's services (and so their hash) alone.
  ASSERT_EQ(Behind("PUT", "/v1/kv/unrelated", "x").status, 200);
  // Several waits run out, each answered with the same hash: no drift.
  AwaitParkedAbove(5);
  EXPECT_EQ(drift.count(), baseline);
  for (const auto& r : standin_.requests()) {
    if (r.path == "/v1/agent/services") {
      EXPECT_TRUE(r.query.empty() || absl::StrContains(r.query, "wait=30ms")) << r.query;
    }
  }
  EXPECT_EQ(standin_.write_count(), 2);  // The register and the KV write: the watch writes nothing.
  adapter->StopWatch();
}

TEST_F(ConsulWatchTest, BrokenWatchReportsOnceAndComesBack) {
  consul::BlockingWatchOptions options;
  options.backoff_initial = absl::Milliseconds(10);
  options.backoff_max = absl::Milliseconds(50);
  auto adapter = MakeWatchingAdapter(Uri(), options);
  DriftCounter drift;
  ASSERT_NO_FATAL_FAILURE(RegisterAndAwaitParkedWatch(adapter.get(), &drift));
  int mark = drift.count();
  const int port = standin_.port();
  standin_.Stop();  // Answers the parked read, then refuses connections.
  ASSERT_TRUE(drift.AwaitAbove(mark));
  // The agent comes back without its data: the watch re-establishes and reports it.
  standin_.Wipe();
  ASSERT_THAT(standin_.ListenTcp("127.0.0.1", port), IsOk());
  mark = drift.count();
  ASSERT_TRUE(drift.AwaitAbove(mark));
  ASSERT_THAT(adapter->Register(WebService()), IsOk());
  AwaitParkedAbove(ParkedReads());
  mark = drift.count();
  ASSERT_EQ(Behind("PUT", "/v1/agent/service/deregister/host1:web:80").status, 200);
  EXPECT_TRUE(drift.AwaitAbove(mark));
  adapter->StopWatch();
}

TEST_F(ConsulWatchTest, StartingTwiceIsRefused) {
  auto adapter = MakeAdapter(Uri());
  DriftCounter drift;
  ASSERT_THAT(adapter->StartWatch(drift.Callback()), IsOk());
  EXPECT_FALSE(adapter->StartWatch(drift.Callback()).ok());
  adapter->StopWatch();
}

}  // namespace
}  // namespace registrator
