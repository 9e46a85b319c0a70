// Test fixtures' building blocks: a child process owned by RAII (killed and reaped on
// destruction, even when a test fails), free loopback ports, short temp dirs, and waiting for a
// condition with a deadline instead of sleeping.
#ifndef TESTING_PROCESS_H_
#define TESTING_PROCESS_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace registrator::fakes {

class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts argv[0] (searched in PATH) with extra "KEY=value" entries added to the environment.
  // stdout and stderr go to `log_path` (appended), or are inherited when empty. The child gets
  // its own process group, so Kill() also reaches what it started.
  static absl::StatusOr<ChildProcess> Start(const std::vector<std::string>& argv,
                                            const std::string& log_path = "",
                                            const std::vector<std::string>& extra_env = {});

  pid_t pid() const { return pid_; }
  bool running();
  // Sends `signal` to the child only.
  void Signal(int signal);
  // Sends SIGTERM to the group, waits up to `grace`, then SIGKILL; reaps. Returns the exit
  // status as waitpid reported it (or -1 if there was no child).
  int Stop(absl::Duration grace = absl::Seconds(5));
  // Waits up to `timeout` for the child to exit by itself; returns its waitpid status, or
  // DEADLINE_EXCEEDED.
  absl::StatusOr<int> Wait(absl::Duration timeout);

 private:
  pid_t pid_ = -1;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read, close).
int FreeLoopbackPort();

// mkdtemp under /tmp with a short name (unix socket paths must stay under 108 bytes).
// Removed recursively on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "reg");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Polls `condition` every `interval` until it is true or `timeout` passes.
bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout,
             absl::Duration interval = absl::Milliseconds(20));

// Runs a shell command, returns its exit status and (optionally) its stdout.
int RunCommand(const std::string& command, std::string* output = nullptr);

// Reads a whole file; "" when missing.
std::string ReadFileOrEmpty(const std::string& path);

}  // namespace registrator::fakes

#endif  // TESTING_PROCESS_H_
