// What the benchmarks read about their own process: memory (VmRSS, VmHWM), CPU time.
#ifndef BENCH_PROCESS_STATS_H_
#define BENCH_PROCESS_STATS_H_

#include <sys/resource.h>

#include <fstream>
#include <string>
#include <utility>

namespace registrator::bench {

// VmRSS and VmHWM of this process in KiB.
inline std::pair<long, long> MemoryKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  long rss = 0, hwm = 0;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) rss = std::stol(line.substr(6));
    if (line.rfind("VmHWM:", 0) == 0) hwm = std::stol(line.substr(6));
  }
  return {rss, hwm};
}

// Resets VmHWM to the current RSS (Linux >= 4.0), so the next peak is this phase's own.
inline void ResetPeakRss() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
}

// User + system CPU seconds of the whole process.
inline double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

}  // namespace registrator::bench

#endif  // BENCH_PROCESS_STATS_H_
