// The Podman fixture itself: it runs containers from its test image with loopback-published
// ports, survives RestartService() (containers keep running), and leaves nothing behind
// (processes, mounts, bridge, dir, lock).
#include "testing/podman_fixture.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "testing/process.h"

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

TEST(PodmanFixture, RunsRestartsAndCleansUp) {
  std::string dir;
  {
    absl::StatusOr<std::unique_ptr<PodmanFixture>> f = PodmanFixture::Start();
    ASSERT_TRUE(f.ok()) << f.status();
    PodmanFixture& p = **f;
    dir = p.dir();
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
    ASSERT_TRUE(p.RestartService().ok()) << p.ServiceLog();
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
  // The machine-wide lock is free again.
  const int fd = ::open("/tmp/registrator-podman.lock", O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  ::close(fd);
}

}  // namespace
}  // namespace registrator::fakes
