// Cross-checks the stand-in with a real third-party client: runs the stand-in binary as a
// process and drives it with Debian's python3-consul (python_consul_check.py).
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/process.h"

namespace registrator::testing {
namespace {

std::string Runfile(const std::string& path) {
  const char* root = std::getenv("TEST_SRCDIR");
  return absl::StrCat(root != nullptr ? root : ".", "/registrator/", path);
}

TEST(PythonConsulTest, ThirdPartyClientWorksAgainstStandin) {
  if (RunCommand("/usr/bin/python3 -c 'import consul' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3-consul is not installed (apt-get install python3-consul)";
  }
  TempDir dir("pyc");
  const std::string log = dir.path() + "/standin.log";
  const int port = FreeLoopbackPort();
  auto child =
      ChildProcess::Start({Runfile("testing/consul_standin/consul_standin"),
                           absl::StrCat("--addr=127.0.0.1:", port), "--acl-token=py-token"},
                          log);
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(ReadFileOrEmpty(log), "listening on"); },
                      absl::Seconds(10)))
      << ReadFileOrEmpty(log);

  std::string output;
  const int status = RunCommand(
      absl::StrCat("/usr/bin/python3 ", Runfile("testing/consul_standin/python_consul_check.py"),
                   " ", port, " py-token 2>&1"),
      &output);
  EXPECT_EQ(status, 0) << output;
  EXPECT_THAT(output, ::testing::HasSubstr("python-consul OK"));
  EXPECT_EQ(child->Stop(), 0) << ReadFileOrEmpty(log);
}

}  // namespace
}  // namespace registrator::testing
