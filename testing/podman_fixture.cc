// PodmanFixture; see podman_fixture.h.
#include "testing/podman_fixture.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <fstream>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "testing/host_cleanup.h"

namespace registrator::fakes {
namespace {

constexpr char kLockPath[] = "/tmp/registrator-podman.lock";
// Fixture dirs are /tmp/<kDirPrefix>XXXXXX holding kMarker.
constexpr char kDirPrefix[] = "pmd";
constexpr char kMarker[] = "registrator-podman-fixture";
constexpr char kNetwork[] = "regpm";

// The podman command line (environment and global flags) for the fixture rooted at `dir`.
// Everything Podman would otherwise keep under /var/lib/containers, /run/containers, /run/libpod
// and /etc/cni is redirected into `dir`.
std::vector<std::string> PodmanCommand(const std::string& dir) {
  return {"env",
          "CONTAINERS_CONF=" + dir + "/containers.conf",
          "CONTAINERS_STORAGE_CONF=" + dir + "/storage.conf",
          "podman",
          "--root",
          dir + "/root",
          "--runroot",
          dir + "/run",
          "--storage-driver",
          "vfs",
          "--cgroup-manager",
          "cgroupfs",
          "--runtime",
          "/usr/sbin/runc",
          "--network-config-dir",
          dir + "/net",
          "--tmpdir",
          dir + "/tmp",
          "--events-backend",
          "file"};
}

int RunPodman(const std::string& dir, const std::vector<std::string>& args,
              std::string* output = nullptr) {
  std::vector<std::string> quoted;
  for (const std::string& arg : PodmanCommand(dir)) quoted.push_back(ShellQuote(arg));
  for (const std::string& arg : args) quoted.push_back(ShellQuote(arg));
  return RunCommand(absl::StrJoin(quoted, " "), output);
}

// Removes every container of the fixture rooted at `dir` (twice: a container another one shares
// a namespace with can only go after it) and its user-defined networks (podman removes their
// bridges), so no netns, CNI address, iptables rule or interface outlives the fixture.
void RemoveContainersAndNetworks(const std::string& dir) {
  for (int pass = 0; pass < 2; ++pass) RunPodman(dir, {"rm", "-af", "-t", "0"});
  RunPodman(dir, {"network", "prune", "-f"});
}

void RemoveHostState(const std::string& dir) {
  KillProcessesMentioning(dir);
  RunCommand(absl::StrCat("ip link del ", PodmanFixture::kBridge, " 2>/dev/null"));
  UnmountUnder(dir);
}

// A test binary killed by a timeout never runs its destructors: its service, containers and
// dir outlive it. Called with the lock held, so every other fixture dir is such a leftover.
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
    std::cerr << "podman fixture: cleaning up after a killed run in " << dir << "\n";
    std::string pid_text = ReadFileOrEmpty(dir + "/service.pid");
    absl::StripAsciiWhitespace(&pid_text);
    pid_t pid = 0;
    if (absl::SimpleAtoi(pid_text, &pid) && pid > 1 &&
        absl::StrContains(ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/cmdline")), dir + "/")) {
      ::kill(pid, SIGKILL);
    }
    RemoveContainersAndNetworks(dir);
    RemoveHostState(dir);
    RunCommand(absl::StrCat("rm -rf ", ShellQuote(dir)));
  }
}

bool WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::trunc);
  out << content;
  return static_cast<bool>(out);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PodmanFixture>> PodmanFixture::Start(absl::Duration lock_timeout) {
  std::unique_ptr<PodmanFixture> f(new PodmanFixture());
  f->lock_fd_ = ::open(kLockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (f->lock_fd_ < 0) return absl::InternalError(absl::StrCat("cannot open ", kLockPath));
  const absl::Time begin = absl::Now();
  const absl::Time deadline = begin + lock_timeout;
  while (::flock(f->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("another test holds ", kLockPath, " (a private Podman is running)"));
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  const absl::Duration lock_wait = absl::Now() - begin;
  CleanStaleFixtures();
  f->dir_ = std::make_unique<TempDir>(kDirPrefix);
  if (f->dir_->path().empty()) return absl::InternalError("mkdtemp failed");
  absl::Status status = f->WriteConfig();
  if (!status.ok()) return status;
  f->socket_path_ = f->dir_->path() + "/podman.sock";

  absl::StatusOr<std::string> tar = BusyboxRootfsTar();
  if (!tar.ok()) return tar.status();
  Result imported =
      f->Podman({"import", "-c", R"(CMD ["/bin/busybox","httpd","-f","-p","80","-h","/www"])", "-c",
                 "EXPOSE 80/tcp", *tar, kImage});
  if (imported.exit_code != 0) {
    return absl::InternalError(absl::StrCat("podman import of ", kImage, " failed (exit ",
                                            imported.exit_code, "); see the test log"));
  }
  const absl::Time image_ready = absl::Now();
  status = f->StartService();
  if (!status.ok()) return status;
  std::cerr << "podman fixture: lock wait " << lock_wait << ", image ready after "
            << (image_ready - begin - lock_wait) << ", service up after "
            << (absl::Now() - image_ready) << "\n";
  return f;
}

absl::Status PodmanFixture::WriteConfig() {
  const std::string& d = dir_->path();
  for (const char* sub : {"/net", "/tmp", "/cni-ipam"}) {
    if (RunCommand(absl::StrCat("mkdir -p ", ShellQuote(d + sub))) != 0) {
      return absl::InternalError(absl::StrCat("cannot create ", d, sub));
    }
  }
  // No ulimits and no pids limit: this sandbox refuses to set RLIMIT_NOFILE and RLIMIT_NPROC
  // (crun: "setrlimit RLIMIT_NOFILE: Operation not permitted"; runc: "error setting rlimit
  // type 7"). Our CNI network is the default one, so nothing touches /etc/cni's "podman".
  const std::string containers_conf = absl::StrCat(
      "[containers]\ndefault_ulimits = []\npids_limit = 0\n\n[network]\ndefault_network = \"",
      kNetwork, "\"\n");
  const std::string storage_conf = absl::StrCat("[storage]\ndriver = \"vfs\"\nrunroot = \"", d,
                                                "/run\"\ngraphroot = \"", d, "/root\"\n");
  // Podman's stock bridge network, renamed, on its own bridge and subnet, with its IPAM state
  // in our dir instead of /var/lib/cni.
  const std::string conflist = absl::StrCat(R"({
  "cniVersion": "0.4.0",
  "name": ")",
                                            kNetwork, R"(",
  "plugins": [
    {"type": "bridge", "bridge": ")",
                                            kBridge, R"(", "isGateway": true, "ipMasq": true,
     "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": ")",
                                            d, R"(/cni-ipam", "routes": [{"dst": "0.0.0.0/0"}],
              "ranges": [[{"subnet": ")",
                                            kSubnet, R"(", "gateway": "10.213.8.1"}]]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "firewall"},
    {"type": "tuning"}
  ]
}
)");
  if (!WriteFile(d + "/" + kMarker, "") || !WriteFile(d + "/containers.conf", containers_conf) ||
      !WriteFile(d + "/storage.conf", storage_conf) ||
      !WriteFile(absl::StrCat(d, "/net/", kNetwork, ".conflist"), conflist)) {
    return absl::InternalError(absl::StrCat("cannot write the Podman configuration in ", d));
  }
  return absl::OkStatus();
}

absl::Status PodmanFixture::StartService() {
  if (service_.running()) return absl::FailedPreconditionError("podman service already running");
  const std::string& d = dir_->path();
  std::vector<std::string> argv = PodmanCommand(d);
  argv.insert(argv.end(), {"system", "service", "--time=0", "unix://" + socket_path_});
  absl::StatusOr<ChildProcess> child = ChildProcess::Start(argv, d + "/service.log");
  if (!child.ok()) return child.status();
  service_ = *std::move(child);
  // For the next fixture's cleanup if this test binary is killed (`env` execs podman: same PID).
  WriteFile(d + "/service.pid", absl::StrCat(service_.pid(), "\n"));
  return WaitForPing(absl::Seconds(60));
}

absl::Status PodmanFixture::WaitForPing(absl::Duration timeout) {
  const std::string cmd = absl::StrCat("curl -sf --max-time 2 --unix-socket ",
                                       ShellQuote(socket_path_), " http://localhost/_ping");
  bool exited = false;
  const bool up = WaitFor(
      [&] {
        if (!service_.running()) {
          exited = true;
          return true;
        }
        std::string out;
        return RunCommand(cmd, &out) == 0 && out == "OK";
      },
      timeout, absl::Milliseconds(100));
  if (exited) {
    return absl::InternalError(
        absl::StrCat("podman system service exited during startup:\n", ServiceLog()));
  }
  if (!up) {
    return absl::DeadlineExceededError(
        absl::StrCat("podman system service did not answer /_ping:\n", ServiceLog()));
  }
  return absl::OkStatus();
}

PodmanFixture::Result PodmanFixture::Podman(const std::vector<std::string>& args) {
  Result result;
  result.exit_code = RunPodman(dir_->path(), args, &result.output);
  absl::StripTrailingAsciiWhitespace(&result.output);
  return result;
}

absl::Status PodmanFixture::StopService() {
  if (!service_.running()) return absl::OkStatus();
  service_.Signal(SIGTERM);
  absl::StatusOr<int> status = service_.Wait(absl::Seconds(30));
  if (!status.ok()) {
    service_.Stop(absl::Seconds(1));
    return absl::DeadlineExceededError("podman system service did not stop within 30 s");
  }
  return absl::OkStatus();
}

absl::Status PodmanFixture::RestartService() {
  absl::Status status = StopService();
  if (!status.ok()) return status;
  return StartService();
}

bool PodmanFixture::service_running() { return service_.running(); }

std::string PodmanFixture::ServiceLog() const {
  std::string log = ReadFileOrEmpty(dir_->path() + "/service.log");
  if (log.size() > 8000) log = "...\n" + log.substr(log.size() - 8000);
  return log;
}

void PodmanFixture::Teardown() {
  if (dir_ == nullptr) return;
  const absl::Time begin = absl::Now();
  const std::string& d = dir_->path();
  // The CLI works without the service; containers go first so that their netns, CNI addresses,
  // iptables rules and conmon processes are released by Podman itself.
  RemoveContainersAndNetworks(d);
  (void)StopService();
  service_.Stop(absl::Seconds(5));
  RemoveHostState(d);
  dir_.reset();
  std::cerr << "podman fixture: teardown took " << (absl::Now() - begin) << "\n";
}

PodmanFixture::~PodmanFixture() {
  Teardown();
  if (lock_fd_ >= 0) ::close(lock_fd_);  // Releases the flock.
}

}  // namespace registrator::fakes
