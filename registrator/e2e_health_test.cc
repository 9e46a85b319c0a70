// End to end, Docker HEALTHCHECK (issue 15): the registrator binary against a real dockerd and
// the Consul stand-in, with a busybox container whose healthcheck (`test -f /tmp/ok`, every
// second) is flipped with `docker exec ... touch/rm /tmp/ok`. Consul's "Docker health" check
// follows Docker's status (without the service being registered again), and with
// -require-healthy the service exists only while the container is healthy.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "testing/consul_standin/consul_standin.h"
#include "testing/dockerd_fixture.h"
#include "testing/e2e_test_base.h"
#include "testing/process.h"

namespace registrator {
namespace {

using fakes::ConsulStandin;
using fakes::FreeLoopbackPort;
using fakes::RecordedRequest;
using fakes::WaitFor;

class HealthEndToEndTest : public fakes::EndToEndTest {
 protected:
  void SetUp() override {
    EndToEndTest::SetUp();
    consul_ = std::make_unique<ConsulStandin>();
    ASSERT_TRUE(consul_->ListenTcp().ok());
  }
  std::string BackendState() override {
    std::string requests;
    for (const RecordedRequest& r : consul_->requests()) {
      absl::StrAppend(&requests, r.method, " ", r.path, " ", r.body.substr(0, 300), "\n");
    }
    return absl::StrCat("\nrequests:\n", requests);
  }
  std::string Uri() const { return absl::StrCat("consul://127.0.0.1:", consul_->port()); }
  bool HasService(const std::string& id) const {
    std::vector<std::string> ids = consul_->ServiceIds();
    return std::find(ids.begin(), ids.end(), id) != ids.end();
  }
  bool WaitForService(const std::string& id, bool present) const {
    return WaitFor([&] { return HasService(id) == present; }, absl::Seconds(30),
                   absl::Milliseconds(50));
  }
  bool WaitForCheck(const std::string& check_id, const std::string& status) const {
    return WaitFor([&] { return consul_->CheckStatus(check_id) == status; }, absl::Seconds(30),
                   absl::Milliseconds(50));
  }
  // The healthcheck of the issue: healthy exactly while /tmp/ok exists (a tmpfs: the test
  // image has no /tmp). One failure makes it unhealthy, so each flip shows within seconds.
  std::string RunFlippable(const std::string& name, int port) {
    return RunContainer(
        name,
        {"--tmpfs", "/tmp", "-p", Publish(port), "-e", absl::StrCat("SERVICE_NAME=", name),
         "--health-cmd", "test -f /tmp/ok", "--health-interval", "1s", "--health-retries", "1"});
  }
  void Flip(const std::string& name, bool healthy) {
    ASSERT_EQ(docker_->Docker({"exec", name, "busybox", healthy ? "touch" : "rm", "-f", "/tmp/ok"})
                  .exit_code,
              0);
  }
  int RegistersOf(const std::string& id) const {
    int count = 0;
    for (const std::string& body : consul_->BodiesOf("PUT", "/v1/agent/service/register")) {
      count += absl::StartsWith(body, absl::StrCat("{\"ID\":\"", id, "\","));
    }
    return count;
  }

  std::unique_ptr<ConsulStandin> consul_;
};

TEST_F(HealthEndToEndTest, ConsulDockerHealthCheckFollowsDocker) {
  StartRegistrator({}, Uri());
  RunFlippable("e2e-h-flip", FreeLoopbackPort());
  const std::string id = Id("e2e-h-flip");
  const std::string check = absl::StrCat("service:", id, ":docker-health");
  ASSERT_TRUE(WaitForService(id, true));
  // "starting" is critical.
  EXPECT_EQ(consul_->CheckStatus(check), "critical");

  Flip("e2e-h-flip", true);
  EXPECT_TRUE(WaitForCheck(check, "passing"));
  EXPECT_TRUE(registrator_.WaitForOutput(absl::StrCat("Docker health of ", id, ": healthy")));
  Flip("e2e-h-flip", false);
  EXPECT_TRUE(WaitForCheck(check, "critical"));
  EXPECT_TRUE(registrator_.WaitForOutput(absl::StrCat("Docker health of ", id, ": unhealthy")));
  Flip("e2e-h-flip", true);
  EXPECT_TRUE(WaitForCheck(check, "passing"));
  // Each flip was a check update, never a re-registration.
  EXPECT_EQ(RegistersOf(id), 1);
  EXPECT_GE(consul_->BodiesOf("PUT", absl::StrCat("/v1/agent/check/update/", check)).size(), 3u);

  // A container without a healthcheck gets no such check.
  RunContainer("e2e-h-plain", {"-p", Publish(FreeLoopbackPort()), "-e", "SERVICE_NAME=plain"});
  ASSERT_TRUE(WaitForService(Id("e2e-h-plain"), true));
  const std::vector<std::string> checks = consul_->CheckIds();
  EXPECT_EQ(std::count(checks.begin(), checks.end(),
                       absl::StrCat("service:", Id("e2e-h-plain"), ":docker-health")),
            0);

  // Stopping the container removes the service and its check.
  ASSERT_EQ(docker_->Docker({"stop", "-t", "1", "e2e-h-flip"}).exit_code, 0);
  EXPECT_TRUE(WaitForService(id, false));
  EXPECT_FALSE(consul_->CheckStatus(check).has_value());
}

TEST_F(HealthEndToEndTest, RequireHealthyRegistersOnlyWhileHealthy) {
  StartRegistrator({"-require-healthy"}, Uri());
  RunFlippable("e2e-h-gate", FreeLoopbackPort());
  const std::string id = Id("e2e-h-gate");
  // "starting" until the first probe fails, then "unhealthy": either keeps it out.
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string out = registrator_.Output();
        return absl::StrContains(out, "(e2e-h-gate) is starting; not registering") ||
               absl::StrContains(out, "(e2e-h-gate) is unhealthy; not registering");
      },
      absl::Seconds(30), absl::Milliseconds(50)))
      << registrator_.Output();
  // A container without a healthcheck is registered as ever.
  RunContainer("e2e-h-nocheck", {"-p", Publish(FreeLoopbackPort()), "-e", "SERVICE_NAME=nc"});
  ASSERT_TRUE(WaitForService(Id("e2e-h-nocheck"), true));
  EXPECT_FALSE(HasService(id));

  Flip("e2e-h-gate", true);
  ASSERT_TRUE(WaitForService(id, true));
  EXPECT_EQ(consul_->CheckStatus(absl::StrCat("service:", id, ":docker-health")), "passing");
  Flip("e2e-h-gate", false);
  EXPECT_TRUE(WaitForService(id, false));
  EXPECT_TRUE(registrator_.WaitForOutput("(e2e-h-gate) is unhealthy; not registering"));
  Flip("e2e-h-gate", true);
  EXPECT_TRUE(WaitForService(id, true));
  EXPECT_TRUE(HasService(Id("e2e-h-nocheck")));
}

}  // namespace
}  // namespace registrator
