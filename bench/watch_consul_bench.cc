// Drift watching on Consul (issue 16), measured on the registrator binary (opt build, a child
// process) against the fake Docker Engine (bench/fake_engine.h) and the Consul stand-in, both in
// this process, with no -resync and no -ttl: only the watch can repair anything.
//   bazel run -c opt //bench:watch_consul_bench [-- -n 10 -deletions 20 -idle 330]
// For each backend (consul:// watching /v1/agent/services by hash, consulkv:// watching the
// prefix by index):
//   idle: every request the stand-in receives over -idle seconds once start-up is done
//     (requests per minute, writes, the child's CPU-s), i.e. what a parked long poll costs;
//   repair: -deletions times, one of our entries is deleted behind registrator's back (stand-in
//     Handle(), not HTTP) and the time until the stand-in holds it again is taken; median, max.
// Asserts nothing (the machine is noisy).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/fake_engine.h"
#include "testing/consul_standin/consul_standin.h"
#include "testing/process.h"

namespace registrator {
namespace {

struct Options {
  std::string binary = "registrator/registrator";
  std::string sample = "testdata/docker/inspect-sample-api.json";
  int n = 10;
  int deletions = 20;
  int idle = 330;  // Covers one 5-minute wait (+ jitter) of the parked query.
  // Between a repair and the next deletion. The watch pauses up to 100 ms after each change it
  // saw (the repair's own write is one), so a deletion within that pause waits for its end.
  int gap_ms = 1000;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// utime + stime of the child, all threads.
double CpuSeconds(pid_t pid) {
  const std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream in(stat.substr(paren + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int f = 3; f <= 15 && (in >> field); ++f) {
    if (f == 14) utime = std::atol(field.c_str());
    if (f == 15) stime = std::atol(field.c_str());
  }
  return static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

// Writes the stand-in answered, and the KV keys it was asked to write.
struct Traffic {
  absl::Mutex mu;
  int64_t writes ABSL_GUARDED_BY(mu) = 0;
  std::set<std::string> kv_keys ABSL_GUARDED_BY(mu);

  void On(const std::string& method, const std::string& path, int status) {
    absl::MutexLock lock(&mu);
    if (method == "PUT" || method == "DELETE") ++writes;
    if (method == "PUT" && status == 200 && absl::StartsWith(path, "/v1/kv/")) {
      kv_keys.insert(path.substr(7));
    }
  }
};

int Bench(const Options& options, bench::Engine* engine, bool kv) {
  const char* label = kv ? "consulkv" : "consul";
  Traffic traffic;
  fakes::ConsulStandinOptions consul_options;
  consul_options.on_reply = [&traffic](const std::string& method, const std::string& path,
                                       int status,
                                       const std::string&) { traffic.On(method, path, status); };
  fakes::ConsulStandin consul(consul_options);
  if (!consul.ListenTcp("127.0.0.1", 0).ok()) return 1;
  engine->ClearEvents();
  const std::string uri = kv ? absl::StrCat("consulkv://127.0.0.1:", consul.port(), "/services")
                             : absl::StrCat("consul://127.0.0.1:", consul.port());
  fakes::TempDir dir("wcb");
  const std::string log = dir.path() + "/registrator.log";
  auto child =
      fakes::ChildProcess::Start({options.binary, uri}, log, {"DOCKER_HOST=" + engine->host()});
  if (!child.ok()) {
    std::fprintf(stderr, "cannot start %s\n", options.binary.c_str());
    return 1;
  }
  // Our entries: service IDs (agent) or keys (KV).
  auto entries = [&]() -> std::vector<std::string> {
    if (!kv) return consul.ServiceIds();
    std::vector<std::string> keys;
    absl::MutexLock lock(&traffic.mu);
    for (const std::string& key : traffic.kv_keys) {
      if (consul.KvValue(key).has_value()) keys.push_back(key);
    }
    return keys;
  };
  if (!fakes::WaitFor([&] { return static_cast<int>(entries().size()) >= options.n; },
                      absl::Seconds(60), absl::Milliseconds(5))) {
    std::printf("%s: start-up FAILED (%zu of %d registered); log %s\n", label, entries().size(),
                options.n, log.c_str());
    return 1;
  }
  // Let the start-up's own triggers settle before measuring the idle cost.
  absl::SleepFor(absl::Seconds(2));
  // Requests are counted on arrival (the stand-in's log), so the parked query counts when it
  // is sent, not when its 5-minute wait ends; writes on their answer.
  const size_t requests0 = consul.requests().size();
  int64_t writes0 = 0;
  {
    absl::MutexLock lock(&traffic.mu);
    writes0 = traffic.writes;
  }
  const double cpu0 = CpuSeconds(child->pid());
  absl::SleepFor(absl::Seconds(options.idle));
  const size_t requests1 = consul.requests().size();
  int64_t writes1 = 0;
  {
    absl::MutexLock lock(&traffic.mu);
    writes1 = traffic.writes;
  }
  const double cpu1 = CpuSeconds(child->pid());
  // One parked query per 5 minutes (+ up to wait/16 jitter): a window under 5 min may show 0.
  std::printf("%s idle over %d s: %.2f requests/min, %lld writes, child CPU %.3f s/min\n", label,
              options.idle, static_cast<double>(requests1 - requests0) * 60.0 / options.idle,
              static_cast<long long>(writes1 - writes0), (cpu1 - cpu0) * 60.0 / options.idle);

  const std::vector<std::string> ours = entries();
  std::vector<double> repair_ms;
  int failed = 0;
  for (int d = 0; d < options.deletions; ++d) {
    const std::string& entry = ours[d % ours.size()];
    const absl::Time start = absl::Now();
    const fakes::StandinReply reply =
        kv ? consul.Handle("DELETE", "/v1/kv/" + entry, {}, "", {})
           : consul.Handle("PUT", "/v1/agent/service/deregister/" + entry, {}, "", {});
    if (reply.status != 200) {
      std::printf("%s: deleting %s answered %d\n", label, entry.c_str(), reply.status);
      return 1;
    }
    auto back = [&] {
      if (kv) return consul.KvValue(entry).has_value();
      const std::vector<std::string> ids = consul.ServiceIds();
      return std::find(ids.begin(), ids.end(), entry) != ids.end();
    };
    if (fakes::WaitFor(back, absl::Seconds(30), absl::Microseconds(500))) {
      repair_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    } else {
      ++failed;
    }
    absl::SleepFor(absl::Milliseconds(options.gap_ms));
  }
  std::printf("%s repair over %d deletions: median %.1f ms, max %.1f ms%s\n", label,
              options.deletions, Percentile(repair_ms, 0.5), Percentile(repair_ms, 1.0),
              failed > 0 ? absl::StrCat(" (", failed, " NOT repaired within 30 s)").c_str() : "");
  child->Stop();
  return failed > 0 ? 1 : 0;
}

int Main(int argc, char** argv) {
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    int number = 0;
    if (flag == "-binary") {
      options.binary = value;
    } else if (absl::SimpleAtoi(value, &number) && flag == "-n") {
      options.n = number;
    } else if (absl::SimpleAtoi(value, &number) && flag == "-deletions") {
      options.deletions = number;
    } else if (absl::SimpleAtoi(value, &number) && flag == "-idle") {
      options.idle = number;
    } else if (absl::SimpleAtoi(value, &number) && flag == "-gap-ms") {
      options.gap_ms = number;
    } else {
      std::fprintf(stderr, "unknown flag %s %s\n", flag.c_str(), value.c_str());
      return 2;
    }
  }
  if (options.n < 1 || options.deletions < 1 || options.idle < 1) return 2;
  const std::string sample = ReadFile(options.sample);
  if (sample.empty()) {
    std::fprintf(stderr, "cannot read %s (run with bazel run)\n", options.sample.c_str());
    return 2;
  }
  bench::Engine engine(sample);
  if (!engine.Start()) return 1;
  engine.SetRunning(0, options.n, true);
  int rc = Bench(options, &engine, /*kv=*/false);
  rc |= Bench(options, &engine, /*kv=*/true);
  return rc;
}

}  // namespace
}  // namespace registrator

int main(int argc, char** argv) { return registrator::Main(argc, argv); }
