// PodmanFixture: a private, rootful Podman 4.3 serving the Docker-compatible API
// (`podman system service --time=0 unix://<dir>/podman.sock`) for end-to-end tests, with the same
// busybox test image as the dockerd fixture (`podman import`), and RAII teardown that removes its
// containers and networks, stops the service by PID and removes its dirs even when a test fails.
//
// Everything Podman keeps lives under a short temp dir: vfs storage (graph root and run root),
// the tmp dir (its events log, the `file` events backend), the CNI network config dir and the
// IPAM state. Its default network "regpm" is a CNI bridge "regpm0" on 10.213.8.0/24: not the
// dockerd fixture's regdk0/10.213.7.0/24, nor Podman's stock cni-podman0/10.88.0.0/16, so it
// collides with neither. Two Podman fixtures would share regpm0, so each holds an exclusive flock
// on /tmp/registrator-podman.lock for its whole life.
//
// What this machine needs (found by trial, see README "Podman"): containers.conf with
// `default_ulimits = []` and `pids_limit = 0` (the sandbox forbids raising RLIMIT_NOFILE /
// RLIMIT_NPROC), `--cgroup-manager cgroupfs` and `--runtime /usr/sbin/runc` (crun refuses this
// host's hybrid cgroups).
#ifndef TESTING_PODMAN_FIXTURE_H_
#define TESTING_PODMAN_FIXTURE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "testing/process.h"

namespace registrator::fakes {

class PodmanFixture {
 public:
  // busybox httpd serving /www on port 80 (CMD), EXPOSE 80/tcp. Podman names it
  // "localhost/registrator-test/busybox:1".
  static constexpr const char* kImage = "registrator-test/busybox:1";
  // The default network's bridge and subnet.
  static constexpr const char* kBridge = "regpm0";
  static constexpr const char* kSubnet = "10.213.8.0/24";

  // Takes the machine-wide lock (waiting up to `lock_timeout`), writes the configuration,
  // imports kImage and starts the service; returns when /_ping answers.
  static absl::StatusOr<std::unique_ptr<PodmanFixture>> Start(
      absl::Duration lock_timeout = absl::Minutes(3));
  ~PodmanFixture();
  PodmanFixture(const PodmanFixture&) = delete;
  PodmanFixture& operator=(const PodmanFixture&) = delete;

  const std::string& socket_path() const { return socket_path_; }
  std::string host() const { return "unix://" + socket_path_; }
  const std::string& dir() const { return dir_->path(); }

  struct Result {
    int exit_code = -1;
    std::string output;  // stdout, trailing newline removed.
  };
  // Runs the podman CLI with this fixture's storage, network and events configuration (the
  // service streams the events the CLI writes); stderr goes to the test log.
  Result Podman(const std::vector<std::string>& args);

  // Stops the API service with SIGTERM (containers keep running: conmon owns them).
  absl::Status StopService();
  absl::Status StartService();
  absl::Status RestartService();
  bool service_running();

  // The service's log so far (for failure messages).
  std::string ServiceLog() const;

 private:
  PodmanFixture() = default;
  absl::Status WriteConfig();
  absl::Status WaitForPing(absl::Duration timeout);
  void Teardown();

  int lock_fd_ = -1;
  std::unique_ptr<TempDir> dir_;
  std::string socket_path_;
  ChildProcess service_;
};

}  // namespace registrator::fakes

#endif  // TESTING_PODMAN_FIXTURE_H_
