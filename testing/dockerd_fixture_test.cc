// The dockerd fixture itself: it runs containers from its test image, survives RestartDaemon()
// with its data, and leaves nothing behind (processes, mounts, bridge, dir, lock).
#include "testing/dockerd_fixture.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>

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

TEST(DockerdFixture, RunsRestartsAndCleansUp) {
  std::string dir;
  {
    absl::StatusOr<std::unique_ptr<DockerdFixture>> f = DockerdFixture::Start();
    ASSERT_TRUE(f.ok()) << f.status();
    DockerdFixture& d = **f;
    dir = d.dir();
    EXPECT_EQ(d.host(), "unix://" + d.socket_path());
    EXPECT_LT(d.socket_path().size(), 100u);

    DockerdFixture::Result r = d.Docker(
        {"run", "--rm", DockerdFixture::kImage, "/bin/busybox", "sh", "-c", "echo hi; exit 0"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.output, "hi");
    r = d.Docker({"run", "--rm", DockerdFixture::kImage, "sh", "-c", "exit 7"});
    EXPECT_EQ(r.exit_code, 7);
    r = d.Docker(
        {"image", "inspect", "-f", "{{json .Config.ExposedPorts}}", DockerdFixture::kImage});
    EXPECT_EQ(r.output, R"({"80/tcp":{}})");

    // A container left running: teardown must remove it.
    r = d.Docker(
        {"run", "-d", "--name", "left-running", "--stop-timeout", "1", DockerdFixture::kImage});
    ASSERT_EQ(r.exit_code, 0) << r.output;

    ASSERT_TRUE(d.RestartDaemon().ok()) << d.DaemonLog();
    EXPECT_TRUE(d.daemon_running());
    r = d.Docker({"inspect", "-f", "{{.State.Status}}", "left-running"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.output, "exited");  // dockerd stops its containers when it stops.
    r = d.Docker({"start", "left-running"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_FALSE(ProcessesMentioning(dir + "/").empty());
    EXPECT_TRUE(ReadFileOrEmpty("/proc/self/mounts").find(dir + "/") != std::string::npos);
  }
  // Everything is gone.
  EXPECT_TRUE(ProcessesMentioning(dir + "/").empty());
  EXPECT_EQ(ReadFileOrEmpty("/proc/self/mounts").find(dir + "/"), std::string::npos);
  EXPECT_NE(::access(dir.c_str(), F_OK), 0);
  EXPECT_NE(RunCommand("ip link show regdk0 >/dev/null 2>&1"), 0);
  // The machine-wide lock is free again.
  const int fd = ::open("/tmp/registrator-dockerd.lock", O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  ::close(fd);
}

}  // namespace
}  // namespace registrator::fakes
