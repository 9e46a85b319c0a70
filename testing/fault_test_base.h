// The shared fixture of the fault suites (registrator/e2e_faults_*_test.cc): app containers with
// one published port and a service name each, and the one check every fault scenario ends with:
// after the fault heals, the backend's entries for this test equal exactly the expected services
// of the containers Docker reports running (nothing lost, nothing stale). Each suite says how to
// list its backend (Held) and how one container's entry looks there (ExpectedEntry).
#ifndef TESTING_FAULT_TEST_BASE_H_
#define TESTING_FAULT_TEST_BASE_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "testing/e2e_test_base.h"

namespace registrator::fakes {

class FaultTest : public EndToEndTest {
 protected:
  // EndToEndTest::SetUpTestSuite with a longer wait for the machine-wide dockerd lock: a fault
  // suite runs for minutes and so do the suites queued before it (its timeout is "long").
  static void SetUpTestSuite();
  struct App {
    std::string service;  // SERVICE_NAME
    int port = 0;         // Published on 127.0.0.1, container port 80.
  };

  // Every entry the backend holds under this test's prefix / base path, one canonical string per
  // service, or an error description as the only element when the backend cannot be read.
  virtual std::set<std::string> Held() = 0;
  // The canonical string of the entry a running `container` must have.
  virtual std::string ExpectedEntry(const std::string& container, const App& app) const = 0;
  // The backend's name in the report ("etcd", "zookeeper", "consul").
  virtual std::string BackendName() const = 0;

  // docker run an app container with SERVICE_NAME=`service` on a fresh loopback port.
  void StartApp(const std::string& container, const std::string& service,
                const std::vector<std::string>& extra = {});
  // docker stop -t 1 (the container stays, exited, until TearDown).
  void StopApp(const std::string& container);
  // The expected entries of the app containers `docker ps` reports running now.
  std::set<std::string> ExpectedNow();

  struct Convergence {
    bool converged = false;
    absl::Duration elapsed;          // From `healed` to the first exact match (or the deadline).
    std::vector<std::string> lost;   // Expected but not held, at the end.
    std::vector<std::string> stale;  // Held but not expected, at the end.
    int lost_at_heal = 0;
    int stale_at_heal = 0;
  };
  // Records what the backend lacks and holds extra right before the heal (the "at heal" numbers
  // of the next ExpectConverges), where the backend can be read then (a restart of registrator,
  // a killed cluster member). Without it they are read right after the heal.
  void NoteBeforeHeal();
  // Polls until Held() == ExpectedNow() (and stays so for `settle`, so a late write that undoes
  // the match is caught), or `timeout` after `healed`. Prints one "FAULT-RESULT" line for the
  // README's table and fails the test (naming lost and stale entries) if it did not converge.
  // Never asserts on the time it took: that is measured and reported.
  Convergence ExpectConverges(const std::string& scenario, absl::Time healed,
                              absl::Duration timeout = absl::Seconds(120),
                              absl::Duration settle = absl::Seconds(2));
  // Waits for the starting state to hold exactly (not a measurement: the precondition).
  void AwaitSteadyState();

  // SIGTERM to registrator; returns the time until it exited, and expects exit status 0 within
  // `grace` (then it is SIGKILLed).
  absl::Duration StopRegistratorMeasured(const std::string& scenario,
                                         absl::Duration grace = absl::Seconds(15));
  // SIGTERM while the backend hangs: the shutdown must be bounded by registrator itself, not by
  // the backend's timeouts. Asserted without a wall-clock bound (this machine is too noisy for
  // the 1 s promise; the time is measured and printed): exit status 0 within `docker stop`'s
  // default grace of 10 s (after it Docker SIGKILLs registrator, mid-way through whatever it
  // was doing), and every write still running at Stop()'s deadline was ended by the abort
  // ("stopping: <verb> <id> abandoned"), none by its own timeout or connection loss ("<verb>
  // <id> failed" after "aborting their calls") -- which is how a backend the abort cannot reach
  // shows. Returns the measured time.
  absl::Duration StopDuringHang(const std::string& scenario);

  std::map<std::string, App> apps_;

 private:
  int noted_lost_ = -1;
  int noted_stale_ = -1;
};

}  // namespace registrator::fakes

#endif  // TESTING_FAULT_TEST_BASE_H_
