// The shared end-to-end fixture: a dockerd per suite, registrator and containers per test.
#include "testing/e2e_test_base.h"

#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace registrator::fakes {

DockerdFixture* EndToEndTest::docker_ = nullptr;

void EndToEndTest::SetUpTestSuite() {
  absl::StatusOr<std::unique_ptr<DockerdFixture>> docker = DockerdFixture::Start();
  ASSERT_TRUE(docker.ok()) << docker.status();
  docker_ = docker->release();
}

void EndToEndTest::TearDownTestSuite() {
  delete docker_;
  docker_ = nullptr;
}

void EndToEndTest::SetUp() {
  ASSERT_NE(docker_, nullptr);
  test_name_ =
      absl::AsciiStrToLower(::testing::UnitTest::GetInstance()->current_test_info()->name());
}

void EndToEndTest::TearDown() {
  registrator_.Stop();
  if (docker_ != nullptr) {
    for (const std::string& name : containers_) docker_->Docker({"rm", "-f", name});
  }
  if (HasFailure()) {
    ADD_FAILURE() << "registrator output:\n" << registrator_.Output() << BackendState();
  }
}

std::string EndToEndTest::LogPath(const std::string& suffix) const {
  return absl::StrCat(docker_->dir(), "/registrator-", test_name_, suffix, ".out");
}

void EndToEndTest::StartRegistrator(const std::vector<std::string>& flags, const std::string& uri,
                                    const std::vector<std::string>& env,
                                    const std::string& log_suffix) {
  ASSERT_TRUE(registrator_.Start(flags, uri, docker_->host(), LogPath(log_suffix), env).ok());
  ASSERT_TRUE(registrator_.WaitForOutput("listening for Docker events")) << registrator_.Output();
}

std::string EndToEndTest::RunContainer(const std::string& name,
                                       const std::vector<std::string>& extra,
                                       const std::vector<std::string>& command) {
  std::vector<std::string> args = {"run", "-d", "--name", name};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(DockerdFixture::kImage);
  args.insert(args.end(), command.begin(), command.end());
  containers_.push_back(name);
  DockerdFixture::Result result = docker_->Docker(args);
  EXPECT_EQ(result.exit_code, 0) << absl::StrJoin(args, " ") << ": " << result.output;
  return result.exit_code == 0 ? result.output : "";
}

std::string EndToEndTest::Publish(int host_port, const std::string& container_port) {
  return absl::StrCat("127.0.0.1:", host_port, ":", container_port);
}

std::string EndToEndTest::Id(const std::string& container, const std::string& port) {
  return absl::StrCat(LocalHostname(), ":", container, ":", port);
}

}  // namespace registrator::fakes
