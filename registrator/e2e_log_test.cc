// End to end: the registrator binary against a real dockerd with the log:// backend. Starts and
// stops containers, restarts the daemon under it, and stops it with SIGTERM.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/dockerd_fixture.h"
#include "testing/process.h"

namespace registrator {
namespace {

using testing::ChildProcess;
using testing::DockerdFixture;
using testing::ReadFileOrEmpty;
using testing::WaitFor;

std::string BinaryPath() {
  return absl::StrCat(getenv("TEST_SRCDIR"), "/registrator/registrator/registrator");
}

std::string Hostname() {
  char name[256] = {0};
  gethostname(name, sizeof(name) - 1);
  return name;
}

class LogEndToEndTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<DockerdFixture>> docker = DockerdFixture::Start();
    ASSERT_TRUE(docker.ok()) << docker.status();
    docker_ = docker->release();
  }
  static void TearDownTestSuite() {
    delete docker_;
    docker_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(docker_, nullptr);
    out_ = absl::StrCat(docker_->dir(), "/registrator-",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name(), ".out");
  }
  void StartRegistrator(std::vector<std::string> flags) {
    std::vector<std::string> argv = {BinaryPath()};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.push_back("log://");
    // stdout (the JSON lines) and stderr (the log) both go to out_.
    absl::StatusOr<ChildProcess> child =
        ChildProcess::Start(argv, out_, {absl::StrCat("DOCKER_HOST=", docker_->host())});
    ASSERT_TRUE(child.ok()) << child.status();
    registrator_ = std::move(*child);
  }
  bool WaitForOutput(const std::string& needle, absl::Duration timeout = absl::Seconds(20)) {
    return WaitFor([&] { return absl::StrContains(ReadFileOrEmpty(out_), needle); }, timeout);
  }
  int CountLines(const std::string& needle) {
    int count = 0;
    for (absl::string_view line : absl::StrSplit(ReadFileOrEmpty(out_), '\n')) {
      if (absl::StrContains(line, needle)) ++count;
    }
    return count;
  }
  std::string Run(std::vector<std::string> args) {
    DockerdFixture::Result result = docker_->Docker(args);
    EXPECT_EQ(result.exit_code, 0) << absl::StrJoin(args, " ");
    return result.output;
  }

  static DockerdFixture* docker_;
  std::string out_;
  ChildProcess registrator_;
};

DockerdFixture* LogEndToEndTest::docker_ = nullptr;

TEST_F(LogEndToEndTest, RegistersOnStartDeregistersOnStopExitsOnSigterm) {
  StartRegistrator({"-resync", "30"});
  ASSERT_TRUE(WaitForOutput("listening for Docker events")) << ReadFileOrEmpty(out_);
  Run({"run", "-d", "--name", "e2e-web", "-p", "127.0.0.1:18380:80", "-e", "SERVICE_NAME=files",
       "-e", "SERVICE_TAGS=a,b", DockerdFixture::kImage});
  const std::string id = absl::StrCat(Hostname(), ":e2e-web:80");
  const std::string registered = absl::StrCat(
      "{\"action\":\"register\",\"id\":\"", id,
      "\",\"name\":\"files\",\"ip\":\"127.0.0.1\",\"port\":18380,\"tags\":[\"a\",\"b\"]");
  ASSERT_TRUE(WaitForOutput(registered)) << ReadFileOrEmpty(out_);
  Run({"stop", "-t", "1", "e2e-web"});
  ASSERT_TRUE(WaitForOutput(absl::StrCat("{\"action\":\"deregister\",\"id\":\"", id)))
      << ReadFileOrEmpty(out_);
  Run({"rm", "e2e-web"});
  EXPECT_EQ(CountLines("\"action\":\"register\""), 1);

  const absl::Time before = absl::Now();
  registrator_.Signal(SIGTERM);
  absl::StatusOr<int> status = registrator_.Wait(absl::Seconds(5));
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 0);
  EXPECT_LT(absl::Now() - before, absl::Seconds(2));
}

TEST_F(LogEndToEndTest, SyncsContainersThatRanBeforeItStarted) {
  Run({"run", "-d", "--name", "e2e-early", "-p", "127.0.0.1:18381:80", "-p",
       "127.0.0.1:18382:81/udp", DockerdFixture::kImage});
  StartRegistrator({});
  const std::string host = Hostname();
  EXPECT_TRUE(
      WaitForOutput(absl::StrCat("\"id\":\"", host, ":e2e-early:80\",\"name\":\"busybox-80\"")))
      << ReadFileOrEmpty(out_);
  EXPECT_TRUE(WaitForOutput(absl::StrCat("\"id\":\"", host,
                                         ":e2e-early:81:udp\",\"name\":\"busybox-81\","
                                         "\"ip\":\"127.0.0.1\",\"port\":18382,\"tags\":[\"udp\"]")))
      << ReadFileOrEmpty(out_);
  Run({"rm", "-f", "e2e-early"});
  EXPECT_TRUE(WaitForOutput("\"action\":\"deregister\"")) << ReadFileOrEmpty(out_);
}

TEST_F(LogEndToEndTest, RecoversWhenDockerRestarts) {
  StartRegistrator({});
  ASSERT_TRUE(WaitForOutput("listening for Docker events")) << ReadFileOrEmpty(out_);
  ASSERT_TRUE(docker_->RestartDaemon().ok()) << docker_->DaemonLog();
  ASSERT_TRUE(WaitForOutput("reconnected", absl::Seconds(30))) << ReadFileOrEmpty(out_);
  Run({"run", "-d", "--name", "e2e-after", "-p", "127.0.0.1:18383:80", "-e", "SERVICE_NAME=late",
       DockerdFixture::kImage});
  EXPECT_TRUE(
      WaitForOutput(absl::StrCat("\"id\":\"", Hostname(), ":e2e-after:80\",\"name\":\"late\"")))
      << ReadFileOrEmpty(out_);
  EXPECT_TRUE(registrator_.running());
  Run({"rm", "-f", "e2e-after"});
}

TEST_F(LogEndToEndTest, BadCommandLinesExitTwo) {
  std::string output;
  EXPECT_EQ(testing::RunCommand(absl::StrCat(BinaryPath(), " 2>&1"), &output), 2);
  EXPECT_THAT(output, ::testing::HasSubstr("Missing required argument for registry URI"));
  output.clear();
  EXPECT_EQ(testing::RunCommand(absl::StrCat(BinaryPath(), " log:// extra 2>&1"), &output), 2);
  EXPECT_THAT(output, ::testing::HasSubstr("Extra unparsed arguments"));
  output.clear();
  EXPECT_EQ(testing::RunCommand(absl::StrCat(BinaryPath(), " -tags '{{.Bad' log:// 2>&1"), &output),
            2);
  output.clear();
  EXPECT_EQ(testing::RunCommand(absl::StrCat(BinaryPath(), " nope://x 2>&1"), &output), 1);
  EXPECT_THAT(output, ::testing::HasSubstr("unrecognized adapter"));
}

}  // namespace
}  // namespace registrator
