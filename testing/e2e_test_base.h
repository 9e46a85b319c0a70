// The shared fixture of the end-to-end suites (registrator/e2e_*_test.cc): one private dockerd
// per suite, the registrator binary as a child process per test, and the containers a test ran,
// removed again in TearDown. A failing test gets registrator's output and the backend's state
// (BackendState(), per suite) in its failure message.
#ifndef TESTING_E2E_TEST_BASE_H_
#define TESTING_E2E_TEST_BASE_H_

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "testing/dockerd_fixture.h"
#include "testing/registrator_process.h"

namespace registrator::fakes {

class EndToEndTest : public ::testing::Test {
 protected:
  // Starts the suite's dockerd. A suite with its own servers defines SetUpTestSuite() and
  // TearDownTestSuite() that call these first / last.
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;
  void TearDown() override;

  // What the backend holds, for the failure message of a failed test ("" = nothing to add).
  virtual std::string BackendState() { return ""; }

  // Where this test's registrator writes its output ("registrator-<test><suffix>.out").
  std::string LogPath(const std::string& suffix = "") const;
  // Starts `registrator <flags...> <uri>` against the suite's dockerd and waits until it
  // listens for Docker events.
  void StartRegistrator(const std::vector<std::string>& flags, const std::string& uri,
                        const std::vector<std::string>& env = {},
                        const std::string& log_suffix = "");
  // docker run -d --name <name> <extra...> <image> <command...>; removed in TearDown. Returns
  // the container's full ID ("" and a test failure when docker run fails).
  std::string RunContainer(const std::string& name, const std::vector<std::string>& extra,
                           const std::vector<std::string>& command = {});
  // "127.0.0.1:<host_port>:<container_port>", for "-p".
  static std::string Publish(int host_port, const std::string& container_port = "80");
  // The ID registrator generates: "<hostname>:<container>:<port>".
  static std::string Id(const std::string& container, const std::string& port = "80");

  static DockerdFixture* docker_;
  std::string test_name_;  // Lower-cased, usable in keys and paths.
  RegistratorProcess registrator_;
  std::vector<std::string> containers_;
};

}  // namespace registrator::fakes

#endif  // TESTING_E2E_TEST_BASE_H_
