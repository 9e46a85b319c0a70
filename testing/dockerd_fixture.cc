// Starts, checks and tears down a private dockerd for end-to-end tests (see dockerd_fixture.h).
#include "testing/dockerd_fixture.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "testing/host_cleanup.h"

namespace registrator::fakes {
namespace {

constexpr char kLockPath[] = "/tmp/registrator-dockerd.lock";
// The default "bridge" network's interface and its gateway address (outside Docker's address
// pools, so user-defined networks never overlap it).
constexpr char kBridge[] = "regdk0";
constexpr char kBridgeCidr[] = "10.213.7.1/24";
// Fixture dirs are /tmp/<kDirPrefix>XXXXXX holding kMarker.
constexpr char kDirPrefix[] = "dkd";
constexpr char kMarker[] = "registrator-dockerd-fixture";

// A test binary killed by a timeout never runs its destructors: its dockerd, mounts and dir
// outlive it. Called with the lock held, so every other fixture dir is such a leftover.
void CleanStaleFixtures() {
  DIR* tmp = ::opendir("/tmp");
  if (tmp == nullptr) return;
  std::vector<std::string> stale;
  while (dirent* entry = ::readdir(tmp)) {
    const std::string name = entry->d_name;
    const std::string dir = "/tmp/" + name;
    if (absl::StartsWith(name, kDirPrefix) && ::access((dir + "/" + kMarker).c_str(), F_OK) == 0) {
      stale.push_back(dir);
    }
  }
  ::closedir(tmp);
  for (const std::string& dir : stale) {
    std::cerr << "dockerd fixture: cleaning up after a killed run in " << dir << "\n";
    pid_t pid = 0;
    std::string pid_text = ReadFileOrEmpty(dir + "/dockerd.pid");
    absl::StripAsciiWhitespace(&pid_text);
    if (absl::SimpleAtoi(pid_text, &pid) && pid > 1 &&
        absl::StrContains(ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/cmdline")), dir + "/")) {
      // Let it stop its containers, then make sure.
      ::kill(pid, SIGTERM);
      WaitFor([pid] { return ::kill(pid, 0) != 0; }, absl::Seconds(15), absl::Milliseconds(100));
    }
    KillProcessesMentioning(dir);
    UnmountUnder(dir);
    RunCommand(absl::StrCat("rm -rf ", ShellQuote(dir)));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<DockerdFixture>> DockerdFixture::Start(absl::Duration lock_timeout) {
  std::unique_ptr<DockerdFixture> f(new DockerdFixture());
  f->lock_fd_ = ::open(kLockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (f->lock_fd_ < 0) return absl::InternalError(absl::StrCat("cannot open ", kLockPath));
  const absl::Time begin = absl::Now();
  const absl::Time deadline = begin + lock_timeout;
  while (::flock(f->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("another test holds ", kLockPath, " (a private dockerd is running)"));
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  const absl::Duration lock_wait = absl::Now() - begin;
  CleanStaleFixtures();
  f->dir_ = std::make_unique<TempDir>(kDirPrefix);
  if (f->dir_->path().empty()) return absl::InternalError("mkdtemp failed");
  if (RunCommand(absl::StrCat("touch ", ShellQuote(f->dir_->path() + "/" + kMarker))) != 0) {
    return absl::InternalError("cannot write the fixture marker");
  }
  f->socket_path_ = f->dir_->path() + "/docker.sock";
  // Our own bridge, not docker0: another dockerd on this machine (outside this fixture's lock)
  // may own docker0 and 172.17/16. We hold the lock, so an existing one is a crashed run's.
  const std::string bridge_setup =
      absl::StrCat("ip link del ", kBridge, " 2>/dev/null; ip link add ", kBridge,
                   " type bridge && ip addr add ", kBridgeCidr, " dev ", kBridge,
                   " && ip link set ", kBridge, " up");
  if (RunCommand(absl::StrCat("sh -c ", ShellQuote(bridge_setup), " 1>&2")) != 0) {
    return absl::InternalError(absl::StrCat("cannot create bridge ", kBridge));
  }
  f->owns_bridge_ = true;
  absl::Status status = f->StartDaemon();
  if (!status.ok()) return status;
  const absl::Time daemon_up = absl::Now();
  status = f->ImportImage();
  if (!status.ok()) return status;
  std::cerr << "dockerd fixture: lock wait " << lock_wait << ", dockerd up after "
            << (daemon_up - begin - lock_wait) << ", image ready after "
            << (absl::Now() - daemon_up) << "\n";
  return f;
}

absl::Status DockerdFixture::StartDaemon() {
  if (dockerd_.running()) return absl::FailedPreconditionError("dockerd already running");
  const std::string& d = dir_->path();
  absl::StatusOr<ChildProcess> child =
      ChildProcess::Start({"dockerd", "--host", host(), "--data-root", d + "/data", "--exec-root",
                           d + "/exec", "--pidfile", d + "/dockerd.pid", "--bridge", kBridge,
                           "--iptables=false", "--ip-forward=false", "--ip=127.0.0.1"},
                          d + "/dockerd.log");
  if (!child.ok()) return child.status();
  dockerd_ = *std::move(child);
  return WaitForPing(absl::Seconds(60));
}

absl::Status DockerdFixture::WaitForPing(absl::Duration timeout) {
  const std::string cmd = absl::StrCat("curl -sf --max-time 2 --unix-socket ",
                                       ShellQuote(socket_path_), " http://localhost/_ping");
  bool exited = false;
  const bool up = WaitFor(
      [&] {
        if (!dockerd_.running()) {
          exited = true;
          return true;
        }
        std::string out;
        return RunCommand(cmd, &out) == 0 && out == "OK";
      },
      timeout, absl::Milliseconds(100));
  if (exited) {
    return absl::InternalError(absl::StrCat("dockerd exited during startup:\n", DaemonLog()));
  }
  if (!up) {
    return absl::DeadlineExceededError(
        absl::StrCat("dockerd did not answer /_ping:\n", DaemonLog()));
  }
  return absl::OkStatus();
}

absl::Status DockerdFixture::ImportImage() {
  absl::StatusOr<std::string> tar = BusyboxRootfsTar();
  if (!tar.ok()) return tar.status();
  Result r = Docker({"import", "-c", R"(CMD ["/bin/busybox","httpd","-f","-p","80","-h","/www"])",
                     "-c", "EXPOSE 80/tcp", *tar, kImage});
  if (r.exit_code != 0) {
    return absl::InternalError(absl::StrCat("docker import of ", kImage, " failed"));
  }
  return absl::OkStatus();
}

DockerdFixture::Result DockerdFixture::Docker(const std::vector<std::string>& args) {
  std::vector<std::string> quoted = {"docker", "-H", ShellQuote(host())};
  for (const std::string& arg : args) quoted.push_back(ShellQuote(arg));
  // The CLI must not pick up a user's contexts or config.
  const std::string cmd = absl::StrCat("DOCKER_CONFIG=", ShellQuote(dir_->path() + "/cli"), " ",
                                       absl::StrJoin(quoted, " "));
  Result result;
  result.exit_code = RunCommand(cmd, &result.output);
  absl::StripTrailingAsciiWhitespace(&result.output);
  return result;
}

absl::Status DockerdFixture::StopDaemon() {
  if (!dockerd_.running()) return absl::OkStatus();
  // SIGTERM to dockerd only: it stops its containers and then its containerd itself.
  dockerd_.Signal(SIGTERM);
  absl::StatusOr<int> status = dockerd_.Wait(absl::Seconds(30));
  if (!status.ok()) {
    dockerd_.Stop(absl::Seconds(1));
    return absl::DeadlineExceededError("dockerd did not stop within 30 s of SIGTERM");
  }
  return absl::OkStatus();
}

absl::Status DockerdFixture::RestartDaemon() {
  absl::Status status = StopDaemon();
  if (!status.ok()) return status;
  return StartDaemon();
}

bool DockerdFixture::daemon_running() { return dockerd_.running(); }

std::string DockerdFixture::DaemonLog() const {
  std::string log = ReadFileOrEmpty(dir_->path() + "/dockerd.log");
  if (log.size() > 8000) log = "...\n" + log.substr(log.size() - 8000);
  return log;
}

void DockerdFixture::Teardown() {
  if (dir_ == nullptr) return;
  const absl::Time begin = absl::Now();
  const std::string& d = dir_->path();
  if (dockerd_.running()) {
    Result ids = Docker({"ps", "-aq"});
    if (ids.exit_code == 0 && !ids.output.empty()) {
      std::vector<std::string> args = {"rm", "-f"};
      for (absl::string_view id : absl::StrSplit(ids.output, '\n', absl::SkipEmpty())) {
        args.emplace_back(id);
      }
      Docker(args);
    }
    Docker({"network", "prune", "-f"});
  }
  // dockerd and the containerd it started share the child's process group; Stop() also
  // SIGKILLs whatever is left of the group.
  (void)StopDaemon();
  dockerd_.Stop(absl::Seconds(5));
  // Containerd shims live outside the group; any still running under our exec root go too.
  KillProcessesMentioning(d);
  if (owns_bridge_) RunCommand(absl::StrCat("ip link del ", kBridge, " 2>/dev/null"));
  UnmountUnder(d);
  dir_.reset();
  std::cerr << "dockerd fixture: teardown took " << (absl::Now() - begin) << "\n";
}

DockerdFixture::~DockerdFixture() {
  Teardown();
  if (lock_fd_ >= 0) ::close(lock_fd_);  // Releases the flock.
}

}  // namespace registrator::fakes
