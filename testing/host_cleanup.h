// Building blocks shared by the fixtures that run a container engine as root on this machine:
// quoting for the shell, the busybox test image's rootfs, and the host cleanup a killed test run
// leaves to the next one (processes by PID, mounts under a fixture dir).
#ifndef TESTING_HOST_CLEANUP_H_
#define TESTING_HOST_CLEANUP_H_

#include <string>

#include "absl/status/statusor.h"

namespace registrator::fakes {

// 'text' quoted for sh.
std::string ShellQuote(const std::string& text);

// The rootfs tar of the test image (built once per machine under /tmp/registrator-test-cache):
// /bin/busybox from busybox-static with sh, httpd, sleep, nc, wget, cat and ls links, and
// /www/index.html. The same file the dockerd fixture imports.
absl::StatusOr<std::string> BusyboxRootfsTar();

// SIGKILLs, by PID, every process whose command line mentions `dir` + "/" (never this process).
void KillProcessesMentioning(const std::string& dir);

// Unmounts (lazily) every mount below `dir`, deepest first, so that removing the dir never
// deletes through a mount.
void UnmountUnder(const std::string& dir);

}  // namespace registrator::fakes

#endif  // TESTING_HOST_CLEANUP_H_
