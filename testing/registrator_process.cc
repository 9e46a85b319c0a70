// Runs the registrator binary for end-to-end tests; see registrator_process.h.
#include "testing/registrator_process.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace registrator::fakes {

std::string RegistratorBinaryPath() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir == nullptr ? "." : srcdir, "/registrator/registrator/registrator");
}

std::string LocalHostname() {
  char name[256] = {0};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

int RegistratorResyncCount(int http_port) {
  std::string metrics;
  if (RunCommand(absl::StrCat("curl -sf http://127.0.0.1:", http_port, "/metrics"), &metrics) !=
      0) {
    return -1;
  }
  for (absl::string_view line : absl::StrSplit(metrics, '\n')) {
    if (absl::ConsumePrefix(&line, "registrator_resyncs_total ")) {
      int count = -1;
      return absl::SimpleAtoi(line, &count) ? count : -1;
    }
  }
  return -1;
}

absl::Status RegistratorProcess::Start(const std::vector<std::string>& flags,
                                       const std::string& uri, const std::string& docker_host,
                                       const std::string& log_path,
                                       const std::vector<std::string>& extra_env) {
  if (child_.running()) child_.Stop();
  std::vector<std::string> argv = {RegistratorBinaryPath()};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back(uri);
  std::vector<std::string> env = {absl::StrCat("DOCKER_HOST=", docker_host)};
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  absl::StatusOr<ChildProcess> child = ChildProcess::Start(argv, log_path, env);
  if (!child.ok()) return child.status();
  child_ = std::move(*child);
  log_path_ = log_path;
  return absl::OkStatus();
}

int RegistratorProcess::Stop(absl::Duration grace) { return child_.Stop(grace); }

void RegistratorProcess::Kill() {
  if (!child_.running()) return;
  child_.Signal(SIGKILL);
  (void)child_.Wait(absl::Seconds(5));
}

std::string RegistratorProcess::Output() const { return ReadFileOrEmpty(log_path_); }

int RegistratorProcess::CountOccurrences(const std::string& needle) const {
  const std::string output = Output();
  int count = 0;
  for (size_t at = output.find(needle); at != std::string::npos;
       at = output.find(needle, at + needle.size())) {
    ++count;
  }
  return count;
}

bool RegistratorProcess::WaitForOutput(const std::string& needle, absl::Duration timeout,
                                       int count) const {
  return WaitFor([&] { return CountOccurrences(needle) >= count; }, timeout,
                 absl::Milliseconds(50));
}

}  // namespace registrator::fakes
