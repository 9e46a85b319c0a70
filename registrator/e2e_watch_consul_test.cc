// End to end, issue 16 ("Instant repair by watching") on Consul: the registrator binary against a
// real dockerd and the Consul stand-in (in this process), with no -resync and no -ttl, so only the
// drift watch can repair anything. A service or KV key deleted or altered behind registrator's
// back comes back; entries that are not ours are never touched; an agent restart breaks the
// watch, which is logged once, re-established, and repairs again afterwards. How fast, and what
// the idle watch costs, is measured by bench/watch_consul_bench (no wall-clock assertions here).
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
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
using fakes::FreeLoopbackPort;
using fakes::RecordedRequest;
using fakes::StandinReply;
using fakes::WaitFor;
using ::registrator::fakes::IsOk;

constexpr char kBrokenLine[] = "watch of /v1/agent/services broken";

class ConsulWatchEndToEndTest : public fakes::EndToEndTest {
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
  bool WaitForService(const std::string& id) const {
    return WaitFor([&] { return HasService(id); }, absl::Seconds(20), absl::Milliseconds(10));
  }
  StandinReply Behind(const std::string& method, const std::string& path,
                      const std::string& body = "") {
    return consul_->Handle(method, path, {}, body, {});
  }
  // The agent's view of one service (GET /v1/agent/service/<id>), "" when it has none.
  std::string AgentService(const std::string& id) {
    StandinReply reply = Behind("GET", "/v1/agent/service/" + id);
    return reply.status == 200 ? reply.body : "";
  }
  // Writes the stand-in received that name `needle` in their path or body.
  int WritesNaming(const std::string& needle) const {
    int writes = 0;
    for (const RecordedRequest& r : consul_->requests()) {
      if (r.method == "GET") continue;
      writes += absl::StrContains(r.path, needle) || absl::StrContains(r.body, needle);
    }
    return writes;
  }

  std::unique_ptr<ConsulStandin> consul_;
};

TEST_F(ConsulWatchEndToEndTest, DeletedOrAlteredServiceIsRestoredAndForeignOnesAreUntouched) {
  ASSERT_EQ(Behind("PUT", "/v1/agent/service/register",
                   R"({"ID":"otherhost:foreign:80","Name":"foreign","Port":80})")
                .status,
            200);
  StartRegistrator({}, Uri());
  const int port = FreeLoopbackPort();
  RunContainer("e2e-w-web", {"-p", Publish(port), "-e", "SERVICE_NAME=web"});
  const std::string id = Id("e2e-w-web");
  ASSERT_TRUE(WaitForService(id));
  // The watch is a parked hash-based blocking query on the agent's services.
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const RecordedRequest& r : consul_->requests()) {
          if (r.path == "/v1/agent/services" && absl::StrContains(r.query, "hash=")) return true;
        }
        return false;
      },
      absl::Seconds(20)));

  ASSERT_EQ(Behind("PUT", "/v1/agent/service/deregister/" + id).status, 200);
  ASSERT_FALSE(HasService(id));
  EXPECT_TRUE(WaitForService(id));

  // Altered: same ID, another port. The watch sees the change, the bridge rewrites ours.
  ASSERT_EQ(Behind("PUT", "/v1/agent/service/register",
                   absl::StrCat(R"({"ID":")", id, R"(","Name":"web","Port":1})"))
                .status,
            200);
  EXPECT_TRUE(
      WaitFor([&] { return absl::StrContains(AgentService(id), absl::StrCat("\"Port\":", port)); },
              absl::Seconds(20), absl::Milliseconds(10)));

  // Not ours: registered by another host, never written or removed by this one.
  EXPECT_TRUE(HasService("otherhost:foreign:80"));
  EXPECT_EQ(WritesNaming("otherhost:foreign:80"), 1);  // The test's own register.
}

TEST_F(ConsulWatchEndToEndTest, ConsulKvDeletedOrAlteredKeyIsRestoredForeignKeysUntouched) {
  const std::string prefix = "reg/services";
  const std::string foreign = prefix + "/web/otherhost:web:80";
  ASSERT_EQ(Behind("PUT", "/v1/kv/" + foreign, "10.9.9.9:80").status, 200);
  ASSERT_EQ(Behind("PUT", "/v1/kv/elsewhere/web/x", "10.9.9.8:80").status, 200);
  StartRegistrator({}, absl::StrCat("consulkv://127.0.0.1:", consul_->port(), "/", prefix));
  const int port = FreeLoopbackPort();
  RunContainer("e2e-w-kv", {"-p", Publish(port), "-e", "SERVICE_NAME=web"});
  const std::string key = absl::StrCat(prefix, "/web/", Id("e2e-w-kv"));
  const std::string value = absl::StrCat("127.0.0.1:", port);
  ASSERT_TRUE(WaitFor([&] { return consul_->KvValue(key) == value; }, absl::Seconds(20)));
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const RecordedRequest& r : consul_->requests()) {
          if (absl::StrContains(r.query, "index=")) return true;
        }
        return false;
      },
      absl::Seconds(20)));

  ASSERT_EQ(Behind("DELETE", "/v1/kv/" + key).status, 200);
  EXPECT_TRUE(WaitFor([&] { return consul_->KvValue(key) == value; }, absl::Seconds(20),
                      absl::Milliseconds(10)));
  ASSERT_EQ(Behind("PUT", "/v1/kv/" + key, "6.6.6.6:1").status, 200);
  EXPECT_TRUE(WaitFor([&] { return consul_->KvValue(key) == value; }, absl::Seconds(20),
                      absl::Milliseconds(10)));

  EXPECT_EQ(consul_->KvValue(foreign), "10.9.9.9:80");
  EXPECT_EQ(consul_->KvValue("elsewhere/web/x"), "10.9.9.8:80");
  EXPECT_EQ(WritesNaming("otherhost"), 1);
}

TEST_F(ConsulWatchEndToEndTest, AgentRestartBreaksTheWatchOnceThenItRepairsAgain) {
  StartRegistrator({}, Uri());
  RunContainer("e2e-w-restart", {"-p", Publish(FreeLoopbackPort()), "-e", "SERVICE_NAME=web"});
  const std::string id = Id("e2e-w-restart");
  ASSERT_TRUE(WaitForService(id));
  const int port = consul_->port();

  // The agent goes away: the parked query is answered, the next one is refused.
  consul_.reset();
  ASSERT_TRUE(registrator_.WaitForOutput(kBrokenLine));
  // Long enough for several reconnect attempts (backoff starts at 200 ms): still one line.
  absl::SleepFor(absl::Seconds(1));
  // The agent comes back on the same address without its data, as a restarted dev agent.
  consul_ = std::make_unique<ConsulStandin>();
  ASSERT_THAT(consul_->ListenTcp("127.0.0.1", port), IsOk());
  ASSERT_TRUE(registrator_.WaitForOutput("watch of /v1/agent/services re-established"));
  EXPECT_EQ(registrator_.CountOccurrences(kBrokenLine), 1);
  // Nothing else tells registrator the agent forgot the service (no -resync, no -ttl).
  EXPECT_TRUE(WaitForService(id));

  // And the re-established watch repairs as before.
  ASSERT_EQ(Behind("PUT", "/v1/agent/service/deregister/" + id).status, 200);
  EXPECT_TRUE(WaitForService(id));
  EXPECT_EQ(registrator_.CountOccurrences(kBrokenLine), 1);
}

}  // namespace
}  // namespace registrator
