// Host cleanup helpers for the engine fixtures; see host_cleanup.h.
#include "testing/host_cleanup.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "testing/process.h"

namespace registrator::fakes {
namespace {

constexpr char kCacheDir[] = "/tmp/registrator-test-cache";
// Bump when the rootfs content changes (the dockerd fixture uses the same name and content).
constexpr char kRootfsName[] = "busybox-rootfs-v1.tar";

}  // namespace

std::string ShellQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  out += "'";
  return out;
}

absl::StatusOr<std::string> BusyboxRootfsTar() {
  const std::string tar = absl::StrCat(kCacheDir, "/", kRootfsName);
  struct stat st;
  if (::stat(tar.c_str(), &st) == 0 && st.st_size > 0) return tar;
  ::mkdir(kCacheDir, 0755);
  TempDir build("rfs");
  const std::string root = build.path() + "/root";
  // Written to a temp name and renamed: another fixture may build it at the same time.
  const std::string script = absl::StrCat(
      "set -e; mkdir -p ", root, "/bin ", root, "/www; cp /bin/busybox ", root,
      "/bin/busybox; for l in sh httpd sleep nc wget cat ls; do ln -s busybox ", root,
      "/bin/$l; done; echo 'registrator test page' > ", root, "/www/index.html; tar -C ", root,
      " -cf ", tar, ".tmp.$$ . && mv ", tar, ".tmp.$$ ", tar);
  if (RunCommand(absl::StrCat("sh -c ", ShellQuote(script), " 1>&2")) != 0) {
    return absl::InternalError(
        "building the test image rootfs failed (is busybox-static installed at /bin/busybox?)");
  }
  return tar;
}

void KillProcessesMentioning(const std::string& dir) {
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return;
  const pid_t self = ::getpid();
  while (dirent* entry = ::readdir(proc)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(entry->d_name, &pid) || pid <= 1 || pid == self) continue;
    std::string cmdline = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/cmdline"));
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (absl::StrContains(cmdline, dir + "/")) ::kill(pid, SIGKILL);
  }
  ::closedir(proc);
}

void UnmountUnder(const std::string& dir) {
  std::vector<std::string> mounts;
  std::ifstream in("/proc/self/mounts");
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    if (fields.size() > 1 && absl::StartsWith(fields[1], dir + "/")) mounts.push_back(fields[1]);
  }
  std::sort(mounts.begin(), mounts.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const std::string& m : mounts) RunCommand(absl::StrCat("umount -l ", ShellQuote(m)));
}

}  // namespace registrator::fakes
