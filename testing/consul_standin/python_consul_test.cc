// Cross-checks the stand-in with a real third-party client: runs the stand-in binary as a
// process and drives it with Debian's python3-consul (python_consul_check.py).
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/consul_standin/test_certs.h"
#include "testing/process.h"

namespace registrator::fakes {
namespace {

// Starts the binary on a port it picks itself (no race for a "free" port) and returns that
// port from its "listening on 127.0.0.1:<port>" line, or 0.
int StartStandin(const std::vector<std::string>& flags, const std::string& log,
                 ChildProcess* child);

std::string Runfile(const std::string& path) {
  const char* root = std::getenv("TEST_SRCDIR");
  return absl::StrCat(root != nullptr ? root : ".", "/registrator/", path);
}

int StartStandin(const std::vector<std::string>& flags, const std::string& log,
                 ChildProcess* child) {
  std::vector<std::string> argv = {Runfile("testing/consul_standin/consul_standin"),
                                   "--addr=127.0.0.1:0"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  auto started = ChildProcess::Start(argv, log);
  if (!started.ok()) return 0;
  *child = *std::move(started);
  int port = 0;
  WaitFor(
      [&] {
        const std::string text = ReadFileOrEmpty(log);
        const size_t at = text.find("listening on 127.0.0.1:");
        if (at == std::string::npos || text.find('\n', at) == std::string::npos) return false;
        return absl::SimpleAtoi(text.substr(at + 23, text.find('\n', at) - at - 23), &port);
      },
      absl::Seconds(10));
  return port;
}

TEST(PythonConsulTest, ThirdPartyClientWorksAgainstStandin) {
  if (RunCommand("/usr/bin/python3 -c 'import consul' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3-consul is not installed (apt-get install python3-consul)";
  }
  TempDir dir("pyc");
  const std::string log = dir.path() + "/standin.log";
  ChildProcess child;
  const int port = StartStandin({"--acl-token=py-token"}, log, &child);
  ASSERT_GT(port, 0) << ReadFileOrEmpty(log);

  std::string output;
  const int status = RunCommand(
      absl::StrCat("/usr/bin/python3 ", Runfile("testing/consul_standin/python_consul_check.py"),
                   " ", port, " py-token 2>&1"),
      &output);
  EXPECT_EQ(status, 0) << output;
  EXPECT_THAT(output, ::testing::HasSubstr("python-consul OK"));
  EXPECT_EQ(child.Stop(), 0) << ReadFileOrEmpty(log);
}

// The TLS flags of the binary, checked with python-consul over HTTPS with client certificates.
TEST(PythonConsulTest, ThirdPartyClientOverTlsWithClientCertificate) {
  if (RunCommand("/usr/bin/python3 -c 'import consul' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3-consul is not installed (apt-get install python3-consul)";
  }
  TempDir dir("pyt");
  const std::string d = dir.path();
  absl::Status certs = MakeTestCertificates(d);
  ASSERT_TRUE(certs.ok()) << certs;
  const std::string log = d + "/standin.log";
  ChildProcess child;
  const int port = StartStandin({"--tls-cert=" + d + "/server.pem",
                                 "--tls-key=" + d + "/server.key", "--tls-ca=" + d + "/ca.pem"},
                                log, &child);
  ASSERT_GT(port, 0) << ReadFileOrEmpty(log);
  const std::string script = absl::StrCat(
      "import consul, requests\n", "d, port = '", d, "', ", port, "\n",
      "c = consul.Consul(host='127.0.0.1', port=port, scheme='https', verify=d + '/ca.pem',\n",
      "                  cert=(d + '/client.pem', d + '/client.key'))\n",
      "assert c.kv.put('k', 'v') is True\n", "assert c.kv.get('k')[1]['Value'] == b'v'\n", "try:\n",
      "    consul.Consul(host='127.0.0.1', port=port, scheme='https', verify=d + '/ca.pem')"
      ".kv.get('k')\n",
      "    raise SystemExit('no client certificate was accepted')\n",
      "except requests.exceptions.RequestException:\n", "    pass\n", "print('tls OK')\n");
  ASSERT_EQ(RunCommand(absl::StrCat("cat > ", d, "/check.py <<'EOF'\n", script, "EOF\n")), 0);
  std::string output;
  EXPECT_EQ(RunCommand(absl::StrCat("/usr/bin/python3 ", d, "/check.py 2>&1"), &output), 0)
      << output;
  EXPECT_THAT(output, ::testing::HasSubstr("tls OK"));
  EXPECT_EQ(child.Stop(), 0) << ReadFileOrEmpty(log);
}

}  // namespace
}  // namespace registrator::fakes
