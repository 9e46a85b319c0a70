// End to end against Podman: the registrator binary with the log:// backend, pointed at a real
// Podman 4.3 API service with DOCKER_HOST=unix://<dir>/podman.sock (testing/podman_fixture).
// Registers on start, deregisters on stop, syncs what ran before it started, survives a restart
// of the service, deregisters a kept (-deregister=on-success) service when Podman removes the
// container, and registers a --network host container's image-exposed port.
#include <sys/wait.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "testing/podman_fixture.h"
#include "testing/process.h"
#include "testing/registrator_process.h"

namespace registrator {
namespace {

using fakes::LocalHostname;
using fakes::PodmanFixture;

class PodmanEndToEndTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<PodmanFixture>> podman = PodmanFixture::Start();
    ASSERT_TRUE(podman.ok()) << podman.status();
    podman_ = podman->release();
  }
  static void TearDownTestSuite() {
    delete podman_;
    podman_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(podman_, nullptr);
    test_name_ =
        absl::AsciiStrToLower(::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  void TearDown() override {
    registrator_.Stop();
    for (const std::string& name : containers_) podman_->Podman({"rm", "-f", "-t", "0", name});
    if (HasFailure()) {
      ADD_FAILURE() << "registrator output:\n"
                    << registrator_.Output() << "\npodman service log:\n"
                    << podman_->ServiceLog();
    }
  }

  void StartRegistrator(const std::vector<std::string>& flags) {
    ASSERT_TRUE(registrator_
                    .Start(flags, "log://", podman_->host(),
                           absl::StrCat(podman_->dir(), "/registrator-", test_name_, ".out"))
                    .ok());
    ASSERT_TRUE(registrator_.WaitForOutput("listening for Docker events")) << registrator_.Output();
  }
  bool WaitForOutput(const std::string& needle, absl::Duration timeout = absl::Seconds(30),
                     int count = 1) {
    return registrator_.WaitForOutput(needle, timeout, count);
  }
  // podman run -d --name <name> <args...>; removed in TearDown.
  std::string Run(const std::string& name, const std::vector<std::string>& args) {
    std::vector<std::string> all = {"run", "-d", "--name", name};
    all.insert(all.end(), args.begin(), args.end());
    containers_.push_back(name);
    PodmanFixture::Result r = podman_->Podman(all);
    EXPECT_EQ(r.exit_code, 0) << absl::StrJoin(all, " ") << ": " << r.output;
    return r.output;
  }
  void Podman(const std::vector<std::string>& args) {
    PodmanFixture::Result r = podman_->Podman(args);
    EXPECT_EQ(r.exit_code, 0) << absl::StrJoin(args, " ") << ": " << r.output;
  }
  static std::string Publish(int host_port, const std::string& container_port = "80") {
    return absl::StrCat("127.0.0.1:", host_port, ":", container_port);
  }
  static std::string Id(const std::string& container, const std::string& port = "80") {
    return absl::StrCat(LocalHostname(), ":", container, ":", port);
  }

  static PodmanFixture* podman_;
  std::string test_name_;
  fakes::RegistratorProcess registrator_;
  std::vector<std::string> containers_;
};

PodmanFixture* PodmanEndToEndTest::podman_ = nullptr;

TEST_F(PodmanEndToEndTest, RegistersOnStartDeregistersOnStop) {
  StartRegistrator({"-resync", "30"});
  const int port = fakes::FreeLoopbackPort();
  Run("pe2e-web", {"-p", Publish(port), "-e", "SERVICE_NAME=files", "-e", "SERVICE_TAGS=a,b",
                   PodmanFixture::kImage});
  ASSERT_TRUE(WaitForOutput(absl::StrCat(R"({"action":"register","id":")", Id("pe2e-web"),
                                         R"(","name":"files","ip":"127.0.0.1","port":)", port,
                                         R"(,"tags":["a","b"])")))
      << registrator_.Output();
  Podman({"stop", "-t", "1", "pe2e-web"});
  ASSERT_TRUE(
      WaitForOutput(absl::StrCat(R"({"action":"deregister","id":")", Id("pe2e-web"), R"(")")))
      << registrator_.Output();
  EXPECT_EQ(registrator_.CountOccurrences(R"("action":"register")"), 1);

  const int status = registrator_.Stop();  // SIGTERM.
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(PodmanEndToEndTest, SyncsContainersThatRanBeforeItStarted) {
  const int tcp = fakes::FreeLoopbackPort();
  const int udp = fakes::FreeLoopbackPort();
  Run("pe2e-early", {"-p", Publish(tcp), "-p", Publish(udp, "81/udp"), PodmanFixture::kImage});
  StartRegistrator({});
  EXPECT_TRUE(WaitForOutput(absl::StrCat(R"("id":")", Id("pe2e-early"),
                                         R"(","name":"busybox-80","ip":"127.0.0.1","port":)", tcp)))
      << registrator_.Output();
  EXPECT_TRUE(WaitForOutput(absl::StrCat(R"("id":")", Id("pe2e-early", "81:udp"),
                                         R"(","name":"busybox-81","ip":"127.0.0.1","port":)", udp,
                                         R"(,"tags":["udp"])")))
      << registrator_.Output();
  Podman({"rm", "-f", "-t", "0", "pe2e-early"});
  EXPECT_TRUE(WaitForOutput(R"("action":"deregister")", absl::Seconds(30), 2))
      << registrator_.Output();
}

TEST_F(PodmanEndToEndTest, SurvivesARestartOfThePodmanService) {
  StartRegistrator({});
  ASSERT_TRUE(podman_->StopService().ok());
  ASSERT_TRUE(WaitForOutput("Docker event stream lost")) << registrator_.Output();
  // Started while the API is down: found when the stream resumes.
  const int during = fakes::FreeLoopbackPort();
  Run("pe2e-during", {"-p", Publish(during), "-e", "SERVICE_NAME=during", PodmanFixture::kImage});
  ASSERT_TRUE(podman_->StartService().ok()) << podman_->ServiceLog();
  ASSERT_TRUE(WaitForOutput("reconnected")) << registrator_.Output();
  EXPECT_TRUE(WaitForOutput(absl::StrCat(R"("id":")", Id("pe2e-during"), R"(","name":"during")")))
      << registrator_.Output();
  // And the live stream works again.
  const int after = fakes::FreeLoopbackPort();
  Run("pe2e-after", {"-p", Publish(after), "-e", "SERVICE_NAME=late", PodmanFixture::kImage});
  EXPECT_TRUE(WaitForOutput(absl::StrCat(R"("id":")", Id("pe2e-after"), R"(","name":"late")")))
      << registrator_.Output();
  EXPECT_TRUE(registrator_.running());
}

TEST_F(PodmanEndToEndTest, RemovingAKeptContainerDeregistersIt) {
  StartRegistrator({"-deregister", "on-success"});
  const int port = fakes::FreeLoopbackPort();
  // httpd daemonizes; the shell exits 3 once the test creates /www/exit.
  Run("pe2e-fail",
      {"-p", Publish(port), "-e", "SERVICE_NAME=fail", PodmanFixture::kImage, "sh", "-c",
       "httpd -p 80 -h /www; while [ ! -e /www/exit ]; do sleep 0.1; done; exit 3"});
  ASSERT_TRUE(WaitForOutput(absl::StrCat(R"({"action":"register","id":")", Id("pe2e-fail"))))
      << registrator_.Output();
  Podman({"exec", "pe2e-fail", "sh", "-c", ": > /www/exit"});
  ASSERT_TRUE(WaitForOutput("exited with code 3; keeping its services")) << registrator_.Output();
  EXPECT_EQ(registrator_.CountOccurrences(R"("action":"deregister")"), 0);
  // Podman's "remove" event (Docker's "destroy") drops the kept service.
  Podman({"rm", "pe2e-fail"});
  EXPECT_TRUE(
      WaitForOutput(absl::StrCat(R"({"action":"deregister","id":")", Id("pe2e-fail"), R"(")")))
      << registrator_.Output();
}

TEST_F(PodmanEndToEndTest, HostNetworkContainerRegistersItsImagesExposedPort) {
  StartRegistrator({});
  const int port = fakes::FreeLoopbackPort();
  // Podman's inspect drops the image's EXPOSE 80 for --network host; registrator asks the image.
  Run("pe2e-host",
      {"--network", "host", "-e", "SERVICE_NAME=hostsvc", PodmanFixture::kImage, "/bin/busybox",
       "httpd", "-f", "-p", absl::StrCat("127.0.0.1:", port), "-h", "/www"});
  EXPECT_TRUE(WaitForOutput(absl::StrCat(R"({"action":"register","id":")", Id("pe2e-host"),
                                         R"(","name":"hostsvc","ip":")")))
      << registrator_.Output();
  EXPECT_TRUE(WaitForOutput(R"(,"port":80,)")) << registrator_.Output();
}

}  // namespace
}  // namespace registrator
