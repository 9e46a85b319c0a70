// Delivery figures of registrator binaries (printed, never asserted): start-up to first
// registration and idle RSS with one registered service. For each binary given: a private
// dockerd (testing/dockerd_fixture) runs one container with a published port; registrator is
// started with log:// against it, the time until its register line appears is taken (median of
// --runs runs), then after --settle_ms the VmRSS/RssAnon/RssFile of the last run are read from
// /proc, with the resident memory per mapping (smaps). Run by bench/delivery.sh; root only
// (dockerd).
//
//   delivery_bench --binary=PATH [--binary=PATH2 ...] [--runs=5] [--settle_ms=3000]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "testing/dockerd_fixture.h"
#include "testing/process.h"

namespace registrator {
namespace {

using fakes::ChildProcess;
using fakes::DockerdFixture;
using fakes::ReadFileOrEmpty;
using fakes::TempDir;

// "VmRSS:     3712 kB" -> 3712.
long StatusKb(const std::string& status, const std::string& key) {
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (!absl::ConsumePrefix(&line, key + ":")) continue;
    line = absl::StripAsciiWhitespace(line);
    absl::ConsumeSuffix(&line, " kB");
    long kb = -1;
    return absl::SimpleAtoi(line, &kb) ? kb : -1;
  }
  return -1;
}

// Where the resident memory is: /proc/PID/smaps summed per mapping name ([heap], [stack],
// [anon] for unnamed anonymous mappings -- thread stacks and malloc arenas --, the binary),
// largest first, plus the number of threads. Printed so a change in RSS can be traced.
std::string SmapsSummary(int pid) {
  const std::string smaps = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/smaps"));
  std::vector<std::pair<std::string, long>> totals;  // name -> Rss kB, first-seen order
  std::string current;
  int anon_mappings = 0;
  for (absl::string_view line : absl::StrSplit(smaps, '\n')) {
    if (line.empty()) continue;
    // A mapping header: "start-end perms offset dev inode [name]"; its first field has a '-'
    // and no ':' (field lines are "Name:   value").
    const absl::string_view first = line.substr(0, line.find(' '));
    if (!absl::StrContains(first, ':') && absl::StrContains(first, '-')) {
      std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
      current = fields.size() >= 6 ? std::string(fields[5]) : "[anon]";
      // The binary's segments apart: text, read-only data and writable data differ in cause.
      if (fields.size() >= 6 && fields[5][0] == '/') absl::StrAppend(&current, " ", fields[1]);
      if (current == "[anon]") ++anon_mappings;
      continue;
    }
    if (!absl::ConsumePrefix(&line, "Rss:")) continue;
    line = absl::StripAsciiWhitespace(line);
    absl::ConsumeSuffix(&line, " kB");
    long kb = 0;
    if (!absl::SimpleAtoi(line, &kb)) continue;
    auto it = std::find_if(totals.begin(), totals.end(),
                           [&](const auto& entry) { return entry.first == current; });
    if (it == totals.end()) {
      totals.emplace_back(current, kb);
    } else {
      it->second += kb;
    }
  }
  std::sort(totals.begin(), totals.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string out;
  for (const auto& [name, kb] : totals) {
    if (kb == 0) continue;
    absl::StrAppend(&out, "    ", kb, " kB ", name, "\n");
  }
  const std::string status = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/status"));
  absl::StrAppend(
      &out, "    (", anon_mappings, " anonymous mappings, threads: ",
      [&] {
        for (absl::string_view line : absl::StrSplit(status, '\n')) {
          if (absl::ConsumePrefix(&line, "Threads:"))
            return std::string(absl::StripAsciiWhitespace(line));
        }
        return std::string("?");
      }(),
      ")\n");
  return out;
}

int Run(int argc, char** argv) {
  std::vector<std::string> binaries;
  int runs = 5;
  int settle_ms = 3000;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (absl::ConsumePrefix(&arg, "--binary=")) {
      binaries.emplace_back(arg);
    } else if (absl::ConsumePrefix(&arg, "--runs=")) {
      if (!absl::SimpleAtoi(arg, &runs) || runs < 1) return 2;
    } else if (absl::ConsumePrefix(&arg, "--settle_ms=")) {
      if (!absl::SimpleAtoi(arg, &settle_ms)) return 2;
    } else {
      std::fprintf(stderr, "usage: delivery_bench --binary=PATH... [--runs=N] [--settle_ms=MS]\n");
      return 2;
    }
  }
  if (binaries.empty()) {
    std::fprintf(stderr, "delivery_bench: no --binary\n");
    return 2;
  }

  absl::StatusOr<std::unique_ptr<DockerdFixture>> docker = DockerdFixture::Start(absl::Minutes(20));
  if (!docker.ok()) {
    std::fprintf(stderr, "delivery_bench: %s\n", std::string(docker.status().message()).c_str());
    return 1;
  }
  const int port = fakes::FreeLoopbackPort();
  DockerdFixture::Result run = (*docker)->Docker(
      {"run", "-d", "--name", "bench-web", "-p", absl::StrCat("127.0.0.1:", port, ":80"), "-e",
       "SERVICE_NAME=bench-web", DockerdFixture::kImage});
  if (run.exit_code != 0) {
    std::fprintf(stderr, "delivery_bench: docker run failed\n");
    return 1;
  }
  const std::string needle = "\"action\":\"register\"";
  TempDir dir("regbench");
  int status_code = 0;
  for (size_t b = 0; b < binaries.size(); ++b) {
    const std::string& binary = binaries[b];
    std::vector<double> ms;
    std::string last_status;
    std::string last_smaps;
    for (int r = 0; r < runs; ++r) {
      const std::string log = absl::StrCat(dir.path(), "/run-", b, "-", r, ".out");
      const absl::Time start = absl::Now();
      absl::StatusOr<ChildProcess> child =
          ChildProcess::Start({binary, "log://"}, log, {"DOCKER_HOST=" + (*docker)->host()});
      if (!child.ok()) {
        std::fprintf(stderr, "delivery_bench: %s\n", std::string(child.status().message()).c_str());
        return 1;
      }
      const bool seen =
          fakes::WaitFor([&] { return absl::StrContains(ReadFileOrEmpty(log), needle); },
                         absl::Seconds(20), absl::Milliseconds(1));
      const absl::Duration took = absl::Now() - start;
      if (!seen) {
        std::fprintf(stderr, "delivery_bench: %s never registered:\n%s\n", binary.c_str(),
                     ReadFileOrEmpty(log).c_str());
        status_code = 1;
        break;
      }
      ms.push_back(absl::ToDoubleMilliseconds(took));
      if (r == runs - 1) {
        absl::SleepFor(absl::Milliseconds(settle_ms));
        last_status = ReadFileOrEmpty(absl::StrCat("/proc/", child->pid(), "/status"));
        last_smaps = SmapsSummary(child->pid());
      }
      child->Stop();
    }
    if (ms.empty()) continue;
    std::sort(ms.begin(), ms.end());
    std::printf("%s\n", binary.c_str());
    std::printf(
        "  start-up to first registration: median %.1f ms, min %.1f ms, max %.1f ms (%zu runs)\n",
        ms[ms.size() / 2], ms.front(), ms.back(), ms.size());
    std::printf(
        "  idle RSS with one service (%d ms after): VmRSS %ld kB (RssAnon %ld kB, RssFile %ld "
        "kB)\n",
        settle_ms, StatusKb(last_status, "VmRSS"), StatusKb(last_status, "RssAnon"),
        StatusKb(last_status, "RssFile"));
    std::printf("  resident by mapping:\n%s", last_smaps.c_str());
  }
  (*docker)->Docker({"rm", "-f", "bench-web"});
  return status_code;
}

}  // namespace
}  // namespace registrator

int main(int argc, char** argv) { return registrator::Run(argc, argv); }
