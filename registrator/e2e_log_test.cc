// End to end: the registrator binary against a real dockerd with the log:// backend. Starts and
// stops containers, restarts the daemon under it, and stops it with SIGTERM.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/dockerd_fixture.h"
#include "testing/e2e_test_base.h"
#include "testing/process.h"
#include "testing/registrator_process.h"

namespace registrator {
namespace {

using fakes::DockerdFixture;
using fakes::LocalHostname;
using fakes::RegistratorBinaryPath;
using fakes::RegistratorProcess;

class LogEndToEndTest : public fakes::EndToEndTest {
 protected:
  // stdout (the JSON lines) and stderr (the log) both go to the log file.
  void StartRegistrator(const std::vector<std::string>& flags) {
    EndToEndTest::StartRegistrator(flags, "log://");
  }
  bool WaitForOutput(const std::string& needle, absl::Duration timeout = absl::Seconds(20)) {
    return registrator_.WaitForOutput(needle, timeout);
  }
  std::string Run(std::vector<std::string> args) {
    DockerdFixture::Result result = docker_->Docker(args);
    EXPECT_EQ(result.exit_code, 0) << absl::StrJoin(args, " ");
    return result.output;
  }
};

TEST_F(LogEndToEndTest, RegistersOnStartDeregistersOnStopExitsOnSigterm) {
  StartRegistrator({"-resync", "30"});
  ASSERT_TRUE(WaitForOutput("listening for Docker events")) << registrator_.Output();
  Run({"run", "-d", "--name", "e2e-web", "-p", "127.0.0.1:18380:80", "-e", "SERVICE_NAME=files",
       "-e", "SERVICE_TAGS=a,b", DockerdFixture::kImage});
  const std::string id = absl::StrCat(LocalHostname(), ":e2e-web:80");
  const std::string registered = absl::StrCat(
      "{\"action\":\"register\",\"id\":\"", id,
      "\",\"name\":\"files\",\"ip\":\"127.0.0.1\",\"port\":18380,\"tags\":[\"a\",\"b\"]");
  ASSERT_TRUE(WaitForOutput(registered)) << registrator_.Output();
  Run({"stop", "-t", "1", "e2e-web"});
  ASSERT_TRUE(WaitForOutput(absl::StrCat("{\"action\":\"deregister\",\"id\":\"", id)))
      << registrator_.Output();
  Run({"rm", "e2e-web"});
  EXPECT_EQ(registrator_.CountOccurrences("\"action\":\"register\""), 1);

  const absl::Time before = absl::Now();
  const int status = registrator_.Stop();  // SIGTERM.
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_LT(absl::Now() - before, absl::Seconds(2));
}

TEST_F(LogEndToEndTest, SyncsContainersThatRanBeforeItStarted) {
  Run({"run", "-d", "--name", "e2e-early", "-p", "127.0.0.1:18381:80", "-p",
       "127.0.0.1:18382:81/udp", DockerdFixture::kImage});
  StartRegistrator({});
  const std::string host = LocalHostname();
  EXPECT_TRUE(
      WaitForOutput(absl::StrCat("\"id\":\"", host, ":e2e-early:80\",\"name\":\"busybox-80\"")))
      << registrator_.Output();
  EXPECT_TRUE(WaitForOutput(absl::StrCat("\"id\":\"", host,
                                         ":e2e-early:81:udp\",\"name\":\"busybox-81\","
                                         "\"ip\":\"127.0.0.1\",\"port\":18382,\"tags\":[\"udp\"]")))
      << registrator_.Output();
  Run({"rm", "-f", "e2e-early"});
  EXPECT_TRUE(WaitForOutput("\"action\":\"deregister\"")) << registrator_.Output();
}

TEST_F(LogEndToEndTest, RecoversWhenDockerRestarts) {
  StartRegistrator({});
  ASSERT_TRUE(WaitForOutput("listening for Docker events")) << registrator_.Output();
  ASSERT_TRUE(docker_->RestartDaemon().ok()) << docker_->DaemonLog();
  ASSERT_TRUE(WaitForOutput("reconnected", absl::Seconds(30))) << registrator_.Output();
  Run({"run", "-d", "--name", "e2e-after", "-p", "127.0.0.1:18383:80", "-e", "SERVICE_NAME=late",
       DockerdFixture::kImage});
  EXPECT_TRUE(WaitForOutput(
      absl::StrCat("\"id\":\"", LocalHostname(), ":e2e-after:80\",\"name\":\"late\"")))
      << registrator_.Output();
  EXPECT_TRUE(registrator_.running());
  Run({"rm", "-f", "e2e-after"});
}

TEST_F(LogEndToEndTest, BadCommandLinesExitTwo) {
  std::string output;
  EXPECT_EQ(fakes::RunCommand(absl::StrCat(RegistratorBinaryPath(), " 2>&1"), &output), 2);
  EXPECT_THAT(output, ::testing::HasSubstr("Missing required argument for registry URI"));
  output.clear();
  EXPECT_EQ(fakes::RunCommand(absl::StrCat(RegistratorBinaryPath(), " log:// extra 2>&1"), &output),
            2);
  EXPECT_THAT(output, ::testing::HasSubstr("Extra unparsed arguments"));
  output.clear();
  EXPECT_EQ(fakes::RunCommand(absl::StrCat(RegistratorBinaryPath(), " -tags '{{.Bad' log:// 2>&1"),
                              &output),
            2);
  output.clear();
  EXPECT_EQ(fakes::RunCommand(absl::StrCat(RegistratorBinaryPath(), " nope://x 2>&1"), &output), 1);
  EXPECT_THAT(output, ::testing::HasSubstr("unrecognized adapter"));
}

}  // namespace
}  // namespace registrator
