// End to end: the registrator binary against a real dockerd and the Consul stand-in
// (testing/consul_standin, in this process, a fresh one per test). Checks the exact register
// bodies Consul receives (single and multi-port containers, udp, tags, port-specific keys, Meta,
// every check kind), -ttl's TTL check kept passing, ACL tokens from CONSUL_HTTP_TOKEN,
// consul-unix://, consulkv://, deregistration on stop and with -deregister on-success, -cleanup,
// and that an unchanged resync or a restart makes zero writes.
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "adapters/consul/consul_codec.h"
#include "gtest/gtest.h"
#include "testing/consul_standin/consul_standin.h"
#include "testing/dockerd_fixture.h"
#include "testing/e2e_test_base.h"
#include "testing/process.h"
#include "testing/registrator_process.h"
#include "testing/status_matchers.h"

namespace registrator {
namespace {

using fakes::ConsulStandin;
using fakes::ConsulStandinOptions;
using fakes::DockerdFixture;
using fakes::FreeLoopbackPort;
using fakes::LocalHostname;
using fakes::RecordedRequest;
using fakes::RegistratorProcess;
using fakes::TempDir;
using fakes::WaitFor;
using ::registrator::fakes::IsOk;

// The adapter adds Meta "registrator-check" (a hash of the checks part of the body) to every
// service with a check; expected bodies are written without it and get it here, computed from
// the expected checks so the hash input is pinned too.
std::string WithCheckHash(std::string body) {
  size_t checks = body.find(",\"Check\":");
  if (checks == std::string::npos) checks = body.find(",\"Checks\":");
  if (checks == std::string::npos) return body;
  const std::string hash = consul::CheckHash(body.substr(checks, body.size() - 1 - checks));
  const size_t meta = body.find("\"Meta\":{");
  const size_t close = body.find('}', meta);  // Meta values in these tests have no braces.
  body.insert(close, absl::StrCat(body[close - 1] == '{' ? "" : ",", "\"registrator-check\":\"",
                                  hash, "\""));
  return body;
}

constexpr char kRegisterPath[] = "/v1/agent/service/register";

class ConsulEndToEndTest : public fakes::EndToEndTest {
 protected:
  void SetUp() override {
    EndToEndTest::SetUp();
    consul_ = std::make_unique<ConsulStandin>();
    ASSERT_THAT(consul_->ListenTcp(), IsOk());
  }
  std::string BackendState() override {
    std::string requests;
    for (const RecordedRequest& r : consul_->requests()) {
      absl::StrAppend(&requests, r.method, " ", r.path, "?", r.query, " ", r.body, "\n");
    }
    return absl::StrCat("\nrequests:\n", requests);
  }

  std::string Uri() const { return absl::StrCat("consul://127.0.0.1:", consul_->port()); }
  bool HasService(const std::string& id) const {
    std::vector<std::string> ids = consul_->ServiceIds();
    return std::find(ids.begin(), ids.end(), id) != ids.end();
  }
  bool WaitForService(const std::string& id, absl::Duration timeout = absl::Seconds(20)) const {
    return WaitFor([&] { return HasService(id); }, timeout, absl::Milliseconds(50));
  }
  bool WaitForNoService(const std::string& id, absl::Duration timeout = absl::Seconds(20)) const {
    return WaitFor([&] { return !HasService(id); }, timeout, absl::Milliseconds(50));
  }
  // The last register body the stand-in received for this service ID.
  std::string RegisterBodyOf(const std::string& id) const {
    std::string found;
    const std::string needle = absl::StrCat("{\"ID\":\"", id, "\",");
    for (const std::string& body : consul_->BodiesOf("PUT", kRegisterPath)) {
      if (absl::StartsWith(body, needle)) found = body;
    }
    return found;
  }

  std::unique_ptr<ConsulStandin> consul_;
};

TEST_F(ConsulEndToEndTest, RegisterBodiesForPortsTagsMetaAndEveryCheckKind) {
  StartRegistrator({}, Uri());
  const std::string host = LocalHostname();

  const int web = FreeLoopbackPort();
  RunContainer("e2e-c-web", {"-p", Publish(web), "-e", "SERVICE_NAME=web", "-e", "SERVICE_TAGS=b,a",
                             "-e", "SERVICE_REGION=eu", "-e", "SERVICE_CHECK_HTTP=/health", "-e",
                             "SERVICE_CHECK_INTERVAL=5s", "-e", "SERVICE_CHECK_TIMEOUT=2s",
                             "--label", "SERVICE_bad.key=dropped"});
  const int https = FreeLoopbackPort();
  RunContainer("e2e-c-https", {"-p", Publish(https), "-e", "SERVICE_NAME=https", "-e",
                               "SERVICE_CHECK_HTTPS=/s", "-e", "SERVICE_CHECK_HTTPS_METHOD=HEAD",
                               "-e", "SERVICE_CHECK_INITIAL_STATUS=passing", "-e",
                               "SERVICE_CHECK_DEREGISTER_AFTER=90m"});
  const int multi80 = FreeLoopbackPort();
  const int multi81 = FreeLoopbackPort();
  RunContainer("e2e-c-multi", {"-p", Publish(multi80), "-p", Publish(multi81, "81"), "-e",
                               "SERVICE_NAME=multi", "-e", "SERVICE_81_NAME=admin", "-e",
                               "SERVICE_81_TAGS=x", "-e", "SERVICE_81_CHECK_TCP=true"});
  const int dns = FreeLoopbackPort();
  RunContainer("e2e-c-udp", {"-p", Publish(dns, "53/udp"), "-e", "SERVICE_NAME=dns", "-e",
                             "SERVICE_CHECK_TTL=30s"});
  const int script = FreeLoopbackPort();
  RunContainer("e2e-c-script", {"-p", Publish(script), "-e", "SERVICE_NAME=script", "-e",
                                "SERVICE_CHECK_SCRIPT=nc -z $SERVICE_IP $SERVICE_PORT"});
  const int grpc = FreeLoopbackPort();
  RunContainer("e2e-c-grpc", {"-p", Publish(grpc), "-e", "SERVICE_NAME=grpc", "-e",
                              "SERVICE_CHECK_GRPC=true", "-e", "SERVICE_CHECK_GRPC_USE_TLS=true"});

  for (const std::string& id :
       {Id("e2e-c-web"), Id("e2e-c-https"), Id("e2e-c-multi"), Id("e2e-c-multi", "81"),
        Id("e2e-c-udp", "53:udp"), Id("e2e-c-script"), Id("e2e-c-grpc")}) {
    ASSERT_TRUE(WaitForService(id)) << id;
  }
  EXPECT_EQ(RegisterBodyOf(Id("e2e-c-web")),
            WithCheckHash(absl::StrCat(
                "{\"ID\":\"", Id("e2e-c-web"),
                "\",\"Name\":\"web\",\"Tags\":[\"b\",\"a\"],\"Address\":\"127.0.0.1\","
                "\"Port\":",
                web, ",\"Meta\":{\"region\":\"eu\"},\"Check\":{\"HTTP\":\"http://127.0.0.1:", web,
                "/health\",\"Interval\":\"5s\",\"Timeout\":\"2s\"}}")));
  EXPECT_EQ(RegisterBodyOf(Id("e2e-c-https")),
            WithCheckHash(absl::StrCat(
                "{\"ID\":\"", Id("e2e-c-https"),
                "\",\"Name\":\"https\",\"Tags\":[],\"Address\":\"127.0.0.1\",\"Port\":", https,
                ",\"Meta\":{},\"Check\":{\"HTTP\":\"https://127.0.0.1:", https,
                "/s\",\"Method\":\"HEAD\",\"Interval\":\"10s\",\"Status\":\"passing\","
                "\"DeregisterCriticalServiceAfter\":\"90m\"}}")));
  EXPECT_EQ(consul_->CheckStatus(absl::StrCat("service:", Id("e2e-c-https"))), "passing");
  // One write per service: the start event and the initial sync do not both register it.
  EXPECT_EQ(consul_->BodiesOf("PUT", kRegisterPath).size(), 7u);
  // A group: the generic name gets "-<port>", the port-specific one does not.
  EXPECT_EQ(RegisterBodyOf(Id("e2e-c-multi")),
            WithCheckHash(absl::StrCat(
                "{\"ID\":\"", Id("e2e-c-multi"),
                "\",\"Name\":\"multi-80\",\"Tags\":[],\"Address\":\"127.0.0.1\",\"Port\":", multi80,
                ",\"Meta\":{}}")));
  EXPECT_EQ(
      RegisterBodyOf(Id("e2e-c-multi", "81")),
      WithCheckHash(absl::StrCat("{\"ID\":\"", Id("e2e-c-multi", "81"),
                                 "\",\"Name\":\"admin\",\"Tags\":[\"x\"],\"Address\":\"127.0.0.1\","
                                 "\"Port\":",
                                 multi81, ",\"Meta\":{},\"Check\":{\"TCP\":\"127.0.0.1:", multi81,
                                 "\",\"Interval\":\"10s\"}}")));
  // Only the udp port is published (80/tcp is exposed only), so it is no group.
  EXPECT_EQ(
      RegisterBodyOf(Id("e2e-c-udp", "53:udp")),
      WithCheckHash(absl::StrCat("{\"ID\":\"", Id("e2e-c-udp", "53:udp"),
                                 "\",\"Name\":\"dns\",\"Tags\":[\"udp\"],\"Address\":\"127.0.0.1\","
                                 "\"Port\":",
                                 dns, ",\"Meta\":{},\"Check\":{\"TTL\":\"30s\"}}")));
  EXPECT_EQ(RegisterBodyOf(Id("e2e-c-script")),
            WithCheckHash(absl::StrCat(
                "{\"ID\":\"", Id("e2e-c-script"),
                "\",\"Name\":\"script\",\"Tags\":[],\"Address\":\"127.0.0.1\",\"Port\":", script,
                ",\"Meta\":{},\"Check\":{\"ScriptArgs\":[\"nc\",\"-z\",\"127.0.0.1\",\"", script,
                "\"],\"Interval\":\"10s\"}}")));
  EXPECT_EQ(RegisterBodyOf(Id("e2e-c-grpc")),
            WithCheckHash(absl::StrCat(
                "{\"ID\":\"", Id("e2e-c-grpc"),
                "\",\"Name\":\"grpc\",\"Tags\":[],\"Address\":\"127.0.0.1\",\"Port\":", grpc,
                ",\"Meta\":{},\"Check\":{\"GRPC\":\"127.0.0.1:", grpc,
                "\",\"GRPCUseTLS\":true,\"Interval\":\"10s\"}}")));
  EXPECT_EQ(consul_->CheckStatus(absl::StrCat("service:", Id("e2e-c-udp", "53:udp"))), "critical")
      << "a new TTL check starts critical";

  // Stopping a container deregisters its services (and the agent drops their checks).
  ASSERT_EQ(docker_->Docker({"stop", "-t", "1", "e2e-c-multi"}).exit_code, 0);
  EXPECT_TRUE(WaitForNoService(Id("e2e-c-multi")));
  EXPECT_TRUE(WaitForNoService(Id("e2e-c-multi", "81")));
  EXPECT_EQ(
      consul_
          ->BodiesOf("PUT", absl::StrCat("/v1/agent/service/deregister/", Id("e2e-c-multi", "81")))
          .size(),
      1u);
  EXPECT_TRUE(HasService(Id("e2e-c-web")));
}

TEST_F(ConsulEndToEndTest, TtlCheckIsKeptPassingAndGoesCriticalAfterAKill) {
  StartRegistrator({"-ttl", "3", "-ttl-refresh", "1"}, Uri());
  const int port = FreeLoopbackPort();
  RunContainer("e2e-c-ttl", {"-p", Publish(port), "-e", "SERVICE_NAME=ttl"});
  const std::string id = Id("e2e-c-ttl");
  ASSERT_TRUE(WaitForService(id));
  const std::string check = absl::StrCat("service:", id, ":ttl");
  EXPECT_EQ(RegisterBodyOf(id),
            WithCheckHash(absl::StrCat(
                "{\"ID\":\"", id,
                "\",\"Name\":\"ttl\",\"Tags\":[],\"Address\":\"127.0.0.1\",\"Port\":", port,
                ",\"Meta\":{},\"Check\":{\"CheckID\":\"", check,
                "\",\"Name\":\"registrator "
                "TTL\",\"TTL\":\"3s\",\"Status\":\"passing\",\"DeregisterCriticalServiceAfter\":"
                "\"60s\"}}")));
  // Twice the TTL: the refreshes keep it passing.
  const absl::Time until = absl::Now() + absl::Seconds(6);
  while (absl::Now() < until) {
    ASSERT_EQ(consul_->CheckStatus(check), "passing");
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_GE(consul_->BodiesOf("PUT", absl::StrCat("/v1/agent/check/pass/", check)).size(), 4u);
  // A user check and the TTL check together: a Checks array.
  const int tcp = FreeLoopbackPort();
  RunContainer("e2e-c-ttl-tcp",
               {"-p", Publish(tcp), "-e", "SERVICE_NAME=both", "-e", "SERVICE_CHECK_TCP=true"});
  const std::string both = Id("e2e-c-ttl-tcp");
  ASSERT_TRUE(WaitForService(both));
  EXPECT_EQ(RegisterBodyOf(both),
            WithCheckHash(absl::StrCat(
                "{\"ID\":\"", both,
                "\",\"Name\":\"both\",\"Tags\":[],\"Address\":\"127.0.0.1\",\"Port\":", tcp,
                ",\"Meta\":{},\"Checks\":[{\"TCP\":\"127.0.0.1:", tcp,
                "\",\"Interval\":\"10s\"},{\"CheckID\":\"service:", both,
                ":ttl\",\"Name\":\"registrator TTL\",\"TTL\":\"3s\",\"Status\":"
                "\"passing\",\"DeregisterCriticalServiceAfter\":\"60s\"}]}")));
  absl::SleepFor(absl::Seconds(4));
  EXPECT_EQ(consul_->CheckStatus(absl::StrCat("service:", both, ":ttl")), "passing");

  registrator_.Kill();
  EXPECT_TRUE(
      WaitFor([&] { return consul_->CheckStatus(check) == "critical"; }, absl::Seconds(10)));
}

// The agent restarts without its state: the next TTL refresh finds the check unknown (404) and
// registrator registers the service again.
TEST_F(ConsulEndToEndTest, TtlRefreshReRegistersAfterTheAgentLostItsState) {
  StartRegistrator({"-ttl", "3", "-ttl-refresh", "1"}, Uri());
  const int port = FreeLoopbackPort();
  RunContainer("e2e-c-lost", {"-p", Publish(port), "-e", "SERVICE_NAME=lost"});
  const std::string id = Id("e2e-c-lost");
  ASSERT_TRUE(WaitForService(id));
  const int agent_port = consul_->port();
  consul_->Stop();
  consul_ = std::make_unique<ConsulStandin>();
  ASSERT_THAT(consul_->ListenTcp("127.0.0.1", agent_port), IsOk());
  EXPECT_TRUE(WaitForService(id, absl::Seconds(10)));
  EXPECT_TRUE(WaitFor(
      [&] { return consul_->CheckStatus(absl::StrCat("service:", id, ":ttl")) == "passing"; },
      absl::Seconds(5)));
}

TEST_F(ConsulEndToEndTest, AclTokenFromTheEnvironment) {
  ConsulStandinOptions options;
  options.acl_token = "s3cret";
  consul_ = std::make_unique<ConsulStandin>(options);
  ASSERT_THAT(consul_->ListenTcp(), IsOk());
  const int port = FreeLoopbackPort();
  RunContainer("e2e-c-acl", {"-p", Publish(port), "-e", "SERVICE_NAME=acl"});
  const std::string id = Id("e2e-c-acl");

  StartRegistrator({}, Uri(), {}, "-without");
  ASSERT_TRUE(
      WaitFor([&] { return !consul_->BodiesOf("PUT", kRegisterPath).empty(); }, absl::Seconds(20)));
  EXPECT_TRUE(registrator_.WaitForOutput("403"));
  EXPECT_TRUE(consul_->ServiceIds().empty());
  for (const RecordedRequest& request : consul_->requests()) EXPECT_FALSE(request.has_token);
  registrator_.Stop();

  consul_->ClearLog();
  StartRegistrator({}, Uri(), {"CONSUL_HTTP_TOKEN=s3cret"}, "-with");
  EXPECT_TRUE(WaitForService(id));
  for (const RecordedRequest& request : consul_->requests()) {
    if (request.method == "PUT") {
      EXPECT_TRUE(request.has_token) << request.path;
    }
  }
}

TEST_F(ConsulEndToEndTest, ConsulUnixSocketRegistersAndDeregisters) {
  TempDir dir("cu");
  const std::string socket = absl::StrCat(dir.path(), "/consul.sock");
  consul_ = std::make_unique<ConsulStandin>();
  ASSERT_THAT(consul_->ListenUnix(socket), IsOk());
  StartRegistrator({}, absl::StrCat("consul-unix://", socket));
  const int port = FreeLoopbackPort();
  RunContainer("e2e-c-unix", {"-p", Publish(port), "-e", "SERVICE_NAME=unix"});
  const std::string id = Id("e2e-c-unix");
  ASSERT_TRUE(WaitForService(id));
  EXPECT_EQ(RegisterBodyOf(id),
            WithCheckHash(absl::StrCat(
                "{\"ID\":\"", id,
                "\",\"Name\":\"unix\",\"Tags\":[],\"Address\":\"127.0.0.1\",\"Port\":", port,
                ",\"Meta\":{}}")));
  ASSERT_EQ(docker_->Docker({"stop", "-t", "1", "e2e-c-unix"}).exit_code, 0);
  EXPECT_TRUE(WaitForNoService(id));
  registrator_.Stop();
  consul_->Stop();
}

TEST_F(ConsulEndToEndTest, ConsulHttpAddrIsUsedWhenTheUriHasNoHost) {
  StartRegistrator({}, "consul://", {absl::StrCat("CONSUL_HTTP_ADDR=127.0.0.1:", consul_->port())});
  const int port = FreeLoopbackPort();
  RunContainer("e2e-c-addr", {"-p", Publish(port), "-e", "SERVICE_NAME=addr"});
  EXPECT_TRUE(WaitForService(Id("e2e-c-addr")));
}

TEST_F(ConsulEndToEndTest, RetryAttemptsWaitForTheAgentAtStart) {
  const int agent_port = consul_->port();
  consul_->Stop();
  consul_ = std::make_unique<ConsulStandin>();
  const int port = FreeLoopbackPort();
  RunContainer("e2e-c-retry", {"-p", Publish(port), "-e", "SERVICE_NAME=retry"});

  // No retries: exits 1 right away.
  std::string output;
  EXPECT_EQ(
      fakes::RunCommand(absl::StrCat(fakes::RegistratorBinaryPath(),
                                     " -retry-attempts 0 consul://127.0.0.1:", agent_port, " 2>&1"),
                        &output),
      1)
      << output;

  // Forever: waits until the agent is there, then registers.
  ASSERT_TRUE(registrator_
                  .Start({"-retry-attempts", "-1", "-retry-interval", "200"},
                         absl::StrCat("consul://127.0.0.1:", agent_port), docker_->host(),
                         absl::StrCat(docker_->dir(), "/registrator-", test_name_, ".out"))
                  .ok());
  ASSERT_TRUE(registrator_.WaitForOutput("unreachable", absl::Seconds(10), 2));
  ASSERT_THAT(consul_->ListenTcp("127.0.0.1", agent_port), IsOk());
  EXPECT_TRUE(WaitForService(Id("e2e-c-retry")));
}

TEST_F(ConsulEndToEndTest, ConsulKvWritesAndDeletesPrefixKeys) {
  StartRegistrator({}, absl::StrCat("consulkv://127.0.0.1:", consul_->port(), "/reg/services"));
  const int port = FreeLoopbackPort();
  RunContainer("e2e-c-kv", {"-p", Publish(port), "-e", "SERVICE_NAME=kv"});
  const std::string key = absl::StrCat("reg/services/kv/", Id("e2e-c-kv"));
  ASSERT_TRUE(WaitFor([&] { return consul_->KvValue(key).has_value(); }, absl::Seconds(20)));
  EXPECT_EQ(consul_->KvValue(key), absl::StrCat("127.0.0.1:", port));
  ASSERT_EQ(docker_->Docker({"stop", "-t", "1", "e2e-c-kv"}).exit_code, 0);
  EXPECT_TRUE(WaitFor([&] { return !consul_->KvValue(key).has_value(); }, absl::Seconds(20)));
}

TEST_F(ConsulEndToEndTest, OnSuccessKeepsAFailedExitAndRemovesCleanAndKilledOnes) {
  StartRegistrator({"-deregister", "on-success"}, Uri());
  const int failing = FreeLoopbackPort();
  RunContainer("e2e-c-exit3", {"-p", Publish(failing), "-e", "SERVICE_NAME=exit3"},
               {"sh", "-c", "sleep 2; exit 3"});
  const int clean = FreeLoopbackPort();
  RunContainer("e2e-c-exit0", {"-p", Publish(clean), "-e", "SERVICE_NAME=exit0"},
               {"sh", "-c", "sleep 2; exit 0"});
  const int killed = FreeLoopbackPort();
  RunContainer("e2e-c-killed", {"-p", Publish(killed), "-e", "SERVICE_NAME=killed"});
  ASSERT_TRUE(WaitForService(Id("e2e-c-exit3")));
  ASSERT_TRUE(WaitForService(Id("e2e-c-exit0")));
  ASSERT_TRUE(WaitForService(Id("e2e-c-killed")));
  // Killed by a signal (exit code 137): deregistered too.
  ASSERT_EQ(docker_->Docker({"kill", "e2e-c-killed"}).exit_code, 0);
  EXPECT_TRUE(WaitForNoService(Id("e2e-c-killed")));
  ASSERT_TRUE(registrator_.WaitForOutput("(e2e-c-exit3) exited with code 3"));
  EXPECT_TRUE(WaitForNoService(Id("e2e-c-exit0")));
  EXPECT_TRUE(registrator_.WaitForOutput(absl::StrCat("deregistered ", Id("e2e-c-exit0"))));
  EXPECT_TRUE(HasService(Id("e2e-c-exit3")));
}

// With -ttl, a registration kept after a failed exit is no longer refreshed: its TTL check goes
// critical while a running container's stays passing.
TEST_F(ConsulEndToEndTest, OnSuccessWithTtlLetsTheKeptServicesCheckGoCritical) {
  StartRegistrator({"-deregister", "on-success", "-ttl", "3", "-ttl-refresh", "1"}, Uri());
  const int healthy = FreeLoopbackPort();
  RunContainer("e2e-c-ttl-ok", {"-p", Publish(healthy), "-e", "SERVICE_NAME=ok"});
  const int failing = FreeLoopbackPort();
  RunContainer("e2e-c-ttl-fail", {"-p", Publish(failing), "-e", "SERVICE_NAME=fail"},
               {"sh", "-c", "sleep 2; exit 3"});
  ASSERT_TRUE(WaitForService(Id("e2e-c-ttl-ok")));
  ASSERT_TRUE(WaitForService(Id("e2e-c-ttl-fail")));
  ASSERT_TRUE(registrator_.WaitForOutput("(e2e-c-ttl-fail) exited with code 3"));
  const std::string failed_check = absl::StrCat("service:", Id("e2e-c-ttl-fail"), ":ttl");
  EXPECT_TRUE(
      WaitFor([&] { return consul_->CheckStatus(failed_check) == "critical"; }, absl::Seconds(10)));
  EXPECT_TRUE(HasService(Id("e2e-c-ttl-fail"))) << "kept, only its check fails";
  EXPECT_EQ(consul_->CheckStatus(absl::StrCat("service:", Id("e2e-c-ttl-ok"), ":ttl")), "passing");
}

TEST_F(ConsulEndToEndTest, CleanupRemovesThisHostsDanglingServiceOnly) {
  auto seed = [&](const std::string& id) {
    fakes::StandinReply reply = consul_->Handle(
        "PUT", kRegisterPath, {},
        absl::StrCat("{\"ID\":\"", id, "\",\"Name\":\"x\",\"Address\":\"127.0.0.1\",\"Port\":1}"),
        {});
    ASSERT_EQ(reply.status, 200) << reply.body;
  };
  const std::string mine = absl::StrCat(LocalHostname(), ":gone:80");
  seed(mine);
  seed("otherhost:gone:80");
  StartRegistrator({"-cleanup"}, Uri());
  EXPECT_TRUE(WaitForNoService(mine));
  EXPECT_TRUE(registrator_.WaitForOutput(absl::StrCat("cleanup: removed dangling ", mine)));
  EXPECT_TRUE(HasService("otherhost:gone:80"));
}

TEST_F(ConsulEndToEndTest, ResyncRestoresAServiceRemovedBehindItsBack) {
  StartRegistrator({"-resync", "1"}, Uri());
  const int port = FreeLoopbackPort();
  RunContainer("e2e-c-drift", {"-p", Publish(port), "-e", "SERVICE_NAME=drift"});
  const std::string id = Id("e2e-c-drift");
  ASSERT_TRUE(WaitForService(id));
  ASSERT_EQ(
      consul_->Handle("PUT", absl::StrCat("/v1/agent/service/deregister/", id), {}, "", {}).status,
      200);
  // Not checked absent in between: the drift watch may have put it back already.
  EXPECT_TRUE(WaitForService(id, absl::Seconds(10)));
}

// The container is re-created with another check while registrator is down: the agent's
// listing (which has no checks) looks unchanged, but the new check must reach Consul.
// Regression: the listing used to look unchanged and the old check ran forever; the check hash
// in Meta ("registrator-check") makes the difference visible.
TEST_F(ConsulEndToEndTest, RestartPicksUpAChangedCheck) {
  StartRegistrator({}, Uri());
  const int port = FreeLoopbackPort();
  RunContainer("e2e-c-check",
               {"-p", Publish(port), "-e", "SERVICE_NAME=check", "-e", "SERVICE_CHECK_HTTP=/old"});
  const std::string id = Id("e2e-c-check");
  ASSERT_TRUE(WaitForService(id));
  ASSERT_TRUE(absl::StrContains(RegisterBodyOf(id), "/old"));
  EXPECT_EQ(registrator_.Stop(), 0);
  ASSERT_EQ(docker_->Docker({"rm", "-f", "e2e-c-check"}).exit_code, 0);
  RunContainer("e2e-c-check",
               {"-p", Publish(port), "-e", "SERVICE_NAME=check", "-e", "SERVICE_CHECK_HTTP=/new"});
  StartRegistrator({}, Uri(), {}, "-2");
  EXPECT_TRUE(
      WaitFor([&] { return absl::StrContains(RegisterBodyOf(id), "/new"); }, absl::Seconds(10)));
}

TEST_F(ConsulEndToEndTest, UnchangedResyncAndRestartMakeZeroWrites) {
  StartRegistrator({"-resync", "1"}, Uri());
  const int port = FreeLoopbackPort();
  RunContainer("e2e-c-steady",
               {"-p", Publish(port), "-e", "SERVICE_NAME=steady", "-e", "SERVICE_TAGS=t", "-e",
                "SERVICE_REGION=eu", "-e", "SERVICE_CHECK_TCP=true"});
  ASSERT_TRUE(WaitForService(Id("e2e-c-steady")));
  const int writes = consul_->write_count();
  const size_t listings = consul_->BodiesOf("GET", "/v1/agent/services").size();
  // Two more resyncs (each lists the agent's services), waited for rather than slept for.
  EXPECT_TRUE(
      WaitFor([&] { return consul_->BodiesOf("GET", "/v1/agent/services").size() >= listings + 2; },
              absl::Seconds(30)))
      << "the resyncs did not run";
  EXPECT_EQ(consul_->write_count(), writes) << "a resync of an unchanged host wrote";

  EXPECT_EQ(registrator_.Stop(), 0);
  ASSERT_TRUE(HasService(Id("e2e-c-steady")));
  const size_t listings_before_restart = consul_->BodiesOf("GET", "/v1/agent/services").size();
  StartRegistrator({"-resync", "1"}, Uri(), {}, "-2");
  EXPECT_TRUE(WaitFor(
      [&] {
        return consul_->BodiesOf("GET", "/v1/agent/services").size() >= listings_before_restart + 2;
      },
      absl::Seconds(30)))
      << "the resyncs did not run";
  EXPECT_EQ(consul_->write_count(), writes) << "a restart over an unchanged host wrote";
}

}  // namespace
}  // namespace registrator
