// DockerdFixture: a private dockerd for end-to-end tests (own socket, data root, exec root and
// pidfile under a short temp dir, loopback-only publishing), with a locally built test image
// and RAII teardown that removes containers, stops the daemon and its containerd by PID, and
// cleans the host (its bridge, netns mounts) even when a test fails.
//
// The daemon's default bridge network uses a private interface "regdk0" (10.213.7.0/24), not
// docker0, so a dockerd someone else runs on the machine cannot collide with it. The fixture
// holds an exclusive flock on /tmp/registrator-dockerd.lock for its whole life: fixtures (and
// thus tests using one) serialize machine-wide, since they share that bridge name.
#ifndef TESTING_DOCKERD_FIXTURE_H_
#define TESTING_DOCKERD_FIXTURE_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "testing/process.h"

namespace registrator::fakes {

class DockerdFixture {
 public:
  // The test image: busybox httpd serving /www on port 80 (CMD), EXPOSE 80/tcp. Also has sh,
  // sleep, nc and wget.
  static constexpr const char* kImage = "registrator-test/busybox:1";

  // Takes the machine-wide lock (waiting up to `lock_timeout`), starts dockerd, waits for
  // /_ping and imports kImage. The default wait fits a test with timeout = "moderate".
  static absl::StatusOr<std::unique_ptr<DockerdFixture>> Start(
      absl::Duration lock_timeout = absl::Minutes(3));
  ~DockerdFixture();
  DockerdFixture(const DockerdFixture&) = delete;
  DockerdFixture& operator=(const DockerdFixture&) = delete;

  const std::string& socket_path() const { return socket_path_; }
  std::string host() const { return "unix://" + socket_path_; }
  const std::string& dir() const { return dir_->path(); }

  struct Result {
    int exit_code = -1;
    std::string output;  // stdout, trailing newline removed.
  };
  // Runs `docker -H unix://<sock> args...`; stderr goes to the test log.
  Result Docker(const std::vector<std::string>& args);

  // Stops dockerd with SIGTERM (it stops its containers and containerd), waits for it to exit.
  absl::Status StopDaemon();
  // Starts dockerd again on the same data root and waits for /_ping.
  absl::Status StartDaemon();
  absl::Status RestartDaemon();
  bool daemon_running();

  // The dockerd log so far (for failure messages).
  std::string DaemonLog() const;

 private:
  DockerdFixture() = default;
  absl::Status WaitForPing(absl::Duration timeout);
  absl::Status ImportImage();
  void Teardown();

  int lock_fd_ = -1;
  bool owns_bridge_ = false;
  std::unique_ptr<TempDir> dir_;
  std::string socket_path_;
  ChildProcess dockerd_;
};

}  // namespace registrator::fakes

#endif  // TESTING_DOCKERD_FIXTURE_H_
