// End-to-end test helper: runs the registrator binary (a data dependency of the test) against a
// private dockerd, with its whole output in a file that tests poll for log lines.
#ifndef TESTING_REGISTRATOR_PROCESS_H_
#define TESTING_REGISTRATOR_PROCESS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "testing/process.h"

namespace registrator::fakes {

// The binary in the test's runfiles ($TEST_SRCDIR/registrator/registrator/registrator).
std::string RegistratorBinaryPath();

// gethostname(), the first part of every service ID registrator writes.
std::string LocalHostname();

// registrator_resyncs_total from the daemon's /metrics (-http 127.0.0.1:<http_port>), or -1
// when it cannot be read.
int RegistratorResyncCount(int http_port);

class RegistratorProcess {
 public:
  RegistratorProcess() = default;
  RegistratorProcess(const RegistratorProcess&) = delete;
  RegistratorProcess& operator=(const RegistratorProcess&) = delete;

  // Starts `registrator <flags...> <uri>` with DOCKER_HOST=`docker_host` and `extra_env`;
  // stdout and stderr are appended to `log_path`. Stops a previous run first.
  absl::Status Start(const std::vector<std::string>& flags, const std::string& uri,
                     const std::string& docker_host, const std::string& log_path,
                     const std::vector<std::string>& extra_env = {});
  // SIGTERM, then waits (SIGKILL after `grace`).
  int Stop(absl::Duration grace = absl::Seconds(5));
  // SIGKILL: a crash, nothing is cleaned up by registrator.
  void Kill();
  bool running() { return child_.running(); }

  // The output so far, and waiting for a substring of it to appear `count` times.
  std::string Output() const;
  int CountOccurrences(const std::string& needle) const;
  bool WaitForOutput(const std::string& needle, absl::Duration timeout = absl::Seconds(20),
                     int count = 1) const;

 private:
  ChildProcess child_;
  std::string log_path_;
};

}  // namespace registrator::fakes

#endif  // TESTING_REGISTRATOR_PROCESS_H_
