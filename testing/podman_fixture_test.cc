// The Podman fixture itself: it runs containers from its test image with loopback-published
// ports, survives RestartService() (containers keep running), and leaves nothing behind
// (processes, mounts, bridge, dir, lock).
#include "testing/podman_fixture.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/process.h"
#include "testing/status_matchers.h"

namespace registrator::fakes {
namespace {

// PIDs whose command line mentions `text`.
std::vector<pid_t> ProcessesMentioning(const std::string& text) {
  std::vector<pid_t> pids;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return pids;
  while (dirent* entry = ::readdir(proc)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(entry->d_name, &pid) || pid == ::getpid()) continue;
    std::string cmdline = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/cmdline"));
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (absl::StrContains(cmdline, text)) pids.push_back(pid);
  }
  ::closedir(proc);
  return pids;
}

// The lock file every Podman fixture on the machine flocks (podman_fixture.cc).
constexpr char kLockPath[] = "/tmp/registrator-podman.lock";

// This process's open descriptors of `path`, each with whether it holds an exclusive flock
// (/proc/self/fdinfo lists the locks of an open file description). Other processes' locks on
// the same file (Podman tests running in parallel) do not show here.
std::vector<std::pair<int, bool>> OwnDescriptorsOf(const std::string& path) {
  std::vector<std::pair<int, bool>> fds;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return fds;
  while (dirent* entry = ::readdir(dir)) {
    int fd = -1;
    if (!absl::SimpleAtoi(entry->d_name, &fd)) continue;
    char target[4096];
    const ssize_t n =
        ::readlink(absl::StrCat("/proc/self/fd/", fd).c_str(), target, sizeof(target) - 1);
    if (n <= 0 || std::string(target, static_cast<size_t>(n)) != path) continue;
    const std::string info = ReadFileOrEmpty(absl::StrCat("/proc/self/fdinfo/", fd));
    const bool locked = absl::StrContains(info, "FLOCK") && absl::StrContains(info, "WRITE");
    fds.emplace_back(fd, locked);
  }
  ::closedir(dir);
  return fds;
}

TEST(PodmanFixture, RunsRestartsAndCleansUp) {
  std::string dir;
  {
    absl::StatusOr<std::unique_ptr<PodmanFixture>> f = PodmanFixture::Start();
    ASSERT_THAT(f, IsOk()) << f.status();
    PodmanFixture& p = **f;
    dir = p.dir();
    // The fixture holds the machine-wide lock through one descriptor of its own.
    const std::vector<std::pair<int, bool>> held = OwnDescriptorsOf(kLockPath);
    ASSERT_EQ(held.size(), 1u);
    EXPECT_TRUE(held[0].second) << "descriptor " << held[0].first << " holds no exclusive flock";
    EXPECT_EQ(p.host(), "unix://" + p.socket_path());
    EXPECT_LT(p.socket_path().size(), 100u);

    PodmanFixture::Result r = p.Podman(
        {"run", "--rm", PodmanFixture::kImage, "/bin/busybox", "sh", "-c", "echo hi; exit 0"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.output, "hi");
    r = p.Podman({"run", "--rm", PodmanFixture::kImage, "sh", "-c", "exit 7"});
    EXPECT_EQ(r.exit_code, 7);
    r = p.Podman(
        {"image", "inspect", "-f", "{{json .Config.ExposedPorts}}", PodmanFixture::kImage});
    EXPECT_EQ(r.output, R"({"80/tcp":{}})");

    // A published container on the fixture's own bridge, left running: teardown removes it.
    const int port = FreeLoopbackPort();
    r = p.Podman({"run", "-d", "--name", "left-running", "-p",
                  absl::StrCat("127.0.0.1:", port, ":80"), PodmanFixture::kImage});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const std::string curl = absl::StrCat("curl -sf --max-time 2 http://127.0.0.1:", port, "/");
    std::string page;
    EXPECT_TRUE(WaitFor([&] { return RunCommand(curl, &page) == 0; }, absl::Seconds(20),
                        absl::Milliseconds(100)));
    EXPECT_EQ(page, "registrator test page\n");
    r = p.Podman({"inspect", "-f", "{{.NetworkSettings.IPAddress}}", "left-running"});
    EXPECT_TRUE(absl::StartsWith(r.output, "10.213.8.")) << r.output;
    EXPECT_EQ(RunCommand(absl::StrCat("ip link show ", PodmanFixture::kBridge, " >/dev/null")), 0);

    // The API service restarts on the same storage; conmon keeps the container running.
    ASSERT_THAT(p.RestartService(), IsOk()) << p.ServiceLog();
    EXPECT_TRUE(p.service_running());
    r = p.Podman({"inspect", "-f", "{{.State.Status}}", "left-running"});
    EXPECT_EQ(r.output, "running");
    EXPECT_FALSE(ProcessesMentioning(dir + "/").empty());
  }
  // Everything is gone.
  EXPECT_TRUE(ProcessesMentioning(dir + "/").empty());
  EXPECT_EQ(ReadFileOrEmpty("/proc/self/mounts").find(dir + "/"), std::string::npos);
  EXPECT_NE(::access(dir.c_str(), F_OK), 0);
  EXPECT_NE(RunCommand(absl::StrCat("ip link show ", PodmanFixture::kBridge, " >/dev/null 2>&1")),
            0);
  // The fixture released its lock: this process has no descriptor of the lock file left (a
  // flock lives as long as its descriptor; the fixture's is close-on-exec, so no child inherits
  // it). Whether the lock is free machine-wide is not ours to assert: another Podman test may
  // hold it right now.
  EXPECT_THAT(OwnDescriptorsOf(kLockPath), ::testing::IsEmpty());
}

}  // namespace
}  // namespace registrator::fakes
