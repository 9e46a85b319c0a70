// Measures the registrator binary itself (the opt build, as a child process) against a fast fake
// Docker Engine (unix socket, unlimited keep-alive, /events stream) and the Consul stand-in over
// TCP (connections kept alive), both in this process. Prints the table of issue 14; every CPU,
// memory and context-switch figure is the child's alone (/proc/<pid>), not the fakes'.
//   bazel run -c opt //bench:binary_bench [-- -runs 3 -idle 60]
// Scenarios, each with a fresh registrator process and a fresh stand-in:
//   start-up with -n (10,000) and -n-small (1,000) running containers: exec -> last register
//     seen by the stand-in (wall), the child's CPU-s and peak RSS (VmHWM) at that moment;
//   -singles (200) sequential starts: start event written -> the register request handled;
//   -cycles (20,000) start/die cycles in batches of 100: services left over, RSS before/after;
//   unchanged resync of -n-small services with -resync 1: writes and CPU-s per 10 s;
//   idle: context switches per second of all the child's threads over -idle seconds.
// Asserts nothing (the machine is noisy); prints medians over -runs.
#include <dirent.h>
#include <httplib.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/fake_engine.h"
#include "docker_client/decode.h"
#include "testing/consul_standin/consul_standin.h"
#include "testing/process.h"

namespace registrator {
namespace {

using bench::Engine;
using bench::Id;
using bench::Name;

// Counts the stand-in's answered registers and deregisters and when the last one was handled.
struct Writes {
  absl::Mutex mu;
  int registers ABSL_GUARDED_BY(mu) = 0;
  int deregisters ABSL_GUARDED_BY(mu) = 0;
  absl::Time last ABSL_GUARDED_BY(mu);

  void On(const std::string& method, const std::string& path, int status) {
    if (method != "PUT" || status != 200) return;
    const absl::Time now = absl::Now();
    absl::MutexLock lock(&mu);
    if (path == "/v1/agent/service/register") {
      ++registers;
    } else if (path.rfind("/v1/agent/service/deregister/", 0) == 0) {
      ++deregisters;
    } else {
      return;
    }
    last = now;
  }
  // Waits until registers >= r and deregisters >= d; the time of the last write, or
  // InfinitePast on timeout.
  absl::Time Await(int r, int d, absl::Duration timeout) {
    absl::MutexLock lock(&mu);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      return registers >= r && deregisters >= d;
    };
    if (!mu.AwaitWithTimeout(absl::Condition(&done), timeout)) return absl::InfinitePast();
    return last;
  }
};

// What /proc says about the child.
struct ProcStats {
  double cpu_s = 0;  // utime + stime, all threads (dead ones included).
  long rss_kib = 0;
  long hwm_kib = 0;
  long ctx_switches = 0;   // Voluntary + involuntary, summed over the live threads.
  std::string per_thread;  // "name:count ..." for the live threads.
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

long StatusField(const std::string& status, const std::string& name) {
  const size_t at = status.find(name + ":");
  if (at == std::string::npos) return 0;
  return std::strtol(status.c_str() + at + name.size() + 1, nullptr, 10);
}

ProcStats Stats(pid_t pid) {
  ProcStats s;
  const std::string dir = absl::StrCat("/proc/", pid);
  const std::string stat = ReadFile(dir + "/stat");
  // Fields after the ")" of comm: state is field 3; utime 14, stime 15.
  const size_t paren = stat.rfind(')');
  if (paren != std::string::npos) {
    std::istringstream in(stat.substr(paren + 2));
    std::string field;
    long utime = 0, stime = 0;
    for (int f = 3; f <= 15 && (in >> field); ++f) {
      if (f == 14) utime = std::atol(field.c_str());
      if (f == 15) stime = std::atol(field.c_str());
    }
    s.cpu_s = static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
  }
  const std::string status = ReadFile(dir + "/status");
  s.rss_kib = StatusField(status, "VmRSS");
  s.hwm_kib = StatusField(status, "VmHWM");
  if (DIR* tasks = opendir((dir + "/task").c_str())) {
    while (dirent* e = readdir(tasks)) {
      if (e->d_name[0] == '.') continue;
      const std::string t = absl::StrCat(dir, "/task/", e->d_name);
      const std::string ts = ReadFile(t + "/status");
      const long n = StatusField(ts, "voluntary_ctxt_switches") +
                     StatusField(ts, "nonvoluntary_ctxt_switches");
      s.ctx_switches += n;
      std::string comm = ReadFile(t + "/comm");
      if (!comm.empty() && comm.back() == '\n') comm.pop_back();
      absl::StrAppend(&s.per_thread, comm, "/", e->d_name, ":", n, " ");
    }
    closedir(tasks);
  }
  return s;
}

struct Options {
  std::string binary = "registrator/registrator";
  std::string floor = "bench/transport_floor";
  std::string sample = "testdata/docker/inspect-sample-api.json";
  int n = 10000;
  int n_small = 1000;
  int singles = 200;
  int cycles = 20000;
  int resync_window = 10;
  int idle = 60;
  int runs = 3;
  std::string only;  // Comma-separated scenario names; empty = all.
  std::string log;   // Where registrator's output goes (appended); default: a temporary dir.
};

// One registrator process with its own stand-in, over the shared engine.
class Run {
 public:
  Run(Engine* engine, const Options& options) : engine_(engine), options_(options) {}
  ~Run() {
    child_.Stop();
    consul_.reset();
  }
  bool Start(const std::vector<std::string>& flags, const std::string& program = "") {
    fakes::ConsulStandinOptions consul_options;
    consul_options.keep_alive_max_count = 1000000;
    consul_options.server_threads = 32;
    consul_options.on_reply = [this](const std::string& method, const std::string& path, int status,
                                     const std::string&) { writes_.On(method, path, status); };
    consul_ = std::make_unique<fakes::ConsulStandin>(consul_options);
    if (!consul_->ListenTcp("127.0.0.1", 0).ok()) return false;
    engine_->ClearEvents();
    std::vector<std::string> argv = {program.empty() ? options_.binary : program};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.push_back(absl::StrCat("consul://127.0.0.1:", consul_->port()));
    started_ = absl::Now();
    auto child = fakes::ChildProcess::Start(argv, log_path(), {"DOCKER_HOST=" + engine_->host()});
    if (!child.ok()) {
      std::fprintf(stderr, "cannot start %s: %s\n", options_.binary.c_str(),
                   std::string(child.status().message()).c_str());
      return false;
    }
    child_ = std::move(*child);
    return true;
  }
  // Waits for the event stream to be open and the initial sync's registers to be done.
  bool WaitReady(int registers) {
    if (!fakes::WaitFor([&] { return engine_->streams() > 0; }, absl::Seconds(30),
                        absl::Milliseconds(1))) {
      return false;
    }
    return writes_.Await(registers, 0, absl::Seconds(120)) != absl::InfinitePast();
  }
  pid_t pid() const { return child_.pid(); }
  fakes::ChildProcess& child() { return child_; }
  std::string log_path() const {
    return options_.log.empty() ? log_.path() + "/registrator.log" : options_.log;
  }
  absl::Time started() const { return started_; }
  Writes& writes() { return writes_; }
  fakes::ConsulStandin& consul() { return *consul_; }

 private:
  Engine* const engine_;
  const Options& options_;
  fakes::TempDir log_{"bbl"};
  std::unique_ptr<fakes::ConsulStandin> consul_;
  fakes::ChildProcess child_;
  absl::Time started_;
  Writes writes_;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

class Bench {
 public:
  Bench(Engine* engine, const Options& options) : engine_(engine), options_(options) {}

  // Start-up with n running containers: exec -> last register handled.
  // Also, 2 s later ("settled"): CPU and peak RSS including what follows the last register (the
  // drift check of the backend once the start-up's writes drained).
  void Startup(int n, std::vector<double>* wall, std::vector<double>* cpu,
               std::vector<double>* peak_mb, std::vector<double>* settled_cpu,
               std::vector<double>* settled_peak_mb) {
    engine_->SetRunning(0, n, true);
    Run run(engine_, options_);
    if (!run.Start({}) || !run.WaitReady(n)) {
      std::printf("  start-up %d: FAILED (%d registered)\n", n, Registers(run));
      engine_->SetRunning(0, n, false);
      return;
    }
    const absl::Time last = run.writes().Await(n, 0, absl::ZeroDuration());
    const ProcStats s = Stats(run.pid());
    wall->push_back(absl::ToDoubleSeconds(last - run.started()));
    cpu->push_back(s.cpu_s);
    peak_mb->push_back(s.hwm_kib / 1024.0);
    absl::SleepFor(absl::Seconds(2));
    const ProcStats settled = Stats(run.pid());
    settled_cpu->push_back(settled.cpu_s);
    settled_peak_mb->push_back(settled.hwm_kib / 1024.0);
    std::printf(
        "  start-up %d: %.3f s, %.2f CPU-s, peak RSS %.1f MB, RSS %.1f MB, %ld context "
        "switches; 2 s later: %.2f CPU-s, peak RSS %.1f MB, RSS %.1f MB\n",
        n, wall->back(), cpu->back(), peak_mb->back(), s.rss_kib / 1024.0, s.ctx_switches,
        settled.cpu_s, settled.hwm_kib / 1024.0, settled.rss_kib / 1024.0);
    engine_->SetRunning(0, n, false);
  }

  // Sequential single starts: event queued -> register handled.
  void Latency(std::vector<double>* p50, std::vector<double>* p99) {
    Run run(engine_, options_);
    if (!run.Start({}) || !run.WaitReady(0)) return;
    absl::SleepFor(absl::Milliseconds(300));  // The initial sync is done.
    std::vector<double> micros;
    const int base = 100000;
    const long switches_before = Stats(run.pid()).ctx_switches;
    for (int k = 0; k < options_.singles; ++k) {
      engine_->SetRunning(base + k, 1, true);
      const absl::Time sent = absl::Now();
      engine_->Event(base + k, "start");
      const absl::Time at = run.writes().Await(k + 1, 0, absl::Seconds(10));
      if (at == absl::InfinitePast()) break;
      micros.push_back(absl::ToDoubleMicroseconds(at - sent));
      absl::SleepFor(absl::Milliseconds(2));
    }
    const long switches = Stats(run.pid()).ctx_switches - switches_before;
    engine_->SetRunning(base, options_.singles, false);
    if (micros.empty()) return;
    std::sort(micros.begin(), micros.end());
    p50->push_back(micros[micros.size() / 2] / 1000);
    p99->push_back(micros[micros.size() * 99 / 100] / 1000);
    std::printf(
        "  latency over %zu singles: p50 %.3f ms, p99 %.3f ms, max %.3f ms; %.1f context "
        "switches per start\n",
        micros.size(), p50->back(), p99->back(), micros.back() / 1000,
        static_cast<double>(switches) / micros.size());
  }

  // Start/die cycles in batches of 100; every die deregisters what its start registered.
  void Churn(std::vector<double>* leaked, std::vector<double>* rss_before,
             std::vector<double>* rss_warm, std::vector<double>* rss_after,
             std::vector<double>* cpu) {
    Run run(engine_, options_);
    if (!run.Start({}) || !run.WaitReady(0)) return;
    absl::SleepFor(absl::Milliseconds(300));
    const ProcStats before = Stats(run.pid());
    const int batch = 100;
    const int base = 200000;
    int done = 0;
    ProcStats warm;
    for (int first = 0; first < options_.cycles; first += batch) {
      const int count = std::min(batch, options_.cycles - first);
      engine_->SetRunning(base + first, count, true);
      for (int i = 0; i < count; ++i) engine_->Event(base + first + i, "start");
      run.writes().Await(done + count, done, absl::Seconds(10));
      engine_->SetRunning(base + first, count, false);
      for (int i = 0; i < count; ++i) engine_->Event(base + first + i, "die");
      run.writes().Await(done + count, done + count, absl::Seconds(10));
      done += count;
      // Warm: every worker has parsed, connected and allocated its buffers by now; growth
      // after this point is what a long-running daemon would accumulate.
      if (done == std::min(1000, options_.cycles)) warm = Stats(run.pid());
    }
    absl::SleepFor(absl::Milliseconds(500));
    const ProcStats after = Stats(run.pid());
    leaked->push_back(run.consul().ServiceIds().size());
    rss_before->push_back(before.rss_kib / 1024.0);
    rss_after->push_back(after.rss_kib / 1024.0);
    rss_warm->push_back(warm.rss_kib / 1024.0);
    cpu->push_back(after.cpu_s - before.cpu_s);
    std::printf(
        "  %d start/die cycles: %.0f leaked, RSS %.1f -> %.1f MB (%+.1f%%; %.1f MB after the "
        "first 1,000: %+.1f%% since), %.2f CPU-s\n",
        options_.cycles, leaked->back(), rss_before->back(), rss_after->back(),
        100 * (rss_after->back() / rss_before->back() - 1), rss_warm->back(),
        100 * (rss_after->back() / rss_warm->back() - 1), cpu->back());
  }

  // -resync 1 with n_small services: writes and CPU over the window (scaled to 10 s).
  // Then, on a second process without -resync, idle context switches.
  void Resync(std::vector<double>* writes, std::vector<double>* cpu) {
    const int n = options_.n_small;
    engine_->SetRunning(0, n, true);
    Run run(engine_, options_);
    if (run.Start({"-resync", "1"}) && run.WaitReady(n)) {
      absl::SleepFor(absl::Milliseconds(1500));
      const int writes_before = run.consul().write_count();
      const ProcStats before = Stats(run.pid());
      absl::SleepFor(absl::Seconds(options_.resync_window));
      const ProcStats after = Stats(run.pid());
      writes->push_back(run.consul().write_count() - writes_before);
      cpu->push_back((after.cpu_s - before.cpu_s) * 10 / options_.resync_window);
      std::printf("  resync every 1 s of %d services: %.0f writes, %.3f CPU-s per 10 s\n", n,
                  writes->back(), cpu->back());
    }
    engine_->SetRunning(0, n, false);
  }

  // The transport alone (bench/transport_floor): the inspect and the register of each of n
  // containers with registrator's HttpClient and 8 threads, nothing else. Its CPU-s is the floor
  // under registrator's start-up figure on this machine.
  // With 1 worker (`sequential`), n_small containers one after the other: the round trips of
  // one start with nothing else queued, p50 in `wall` (ms), under the latency row.
  void Floor(bool sequential, std::vector<double>* wall, std::vector<double>* cpu) {
    const int n = sequential ? options_.n_small : options_.n;
    engine_->SetRunning(0, n, true);
    Run run(engine_, options_);
    if (run.Start({"-workers", sequential ? "1" : "8"}, options_.floor)) {
      absl::StatusOr<int> exit = run.child().Wait(absl::Seconds(120));
      const absl::Time last = run.writes().Await(n, 0, absl::ZeroDuration());
      const std::string log = fakes::ReadFileOrEmpty(run.log_path());
      const size_t at = log.rfind("cpu_s=");
      if (exit.ok() && *exit == 0 && at != std::string::npos && last != absl::InfinitePast()) {
        const size_t p50 = log.rfind("exchange_p50_ms=");
        wall->push_back(sequential ? std::atof(log.c_str() + p50 + 16)
                                   : absl::ToDoubleSeconds(last - run.started()));
        cpu->push_back(std::atof(log.c_str() + at + 6));
        std::printf(
            "  transport floor %d: %.3f s, %.2f CPU-s (%s)\n", n, wall->back(), cpu->back(),
            std::string(absl::StripAsciiWhitespace(log.substr(log.rfind("floor:")))).c_str());
      } else {
        std::printf("  transport floor %d: FAILED (exit %s)\n%s", n,
                    exit.ok() ? absl::StrCat(*exit).c_str() : "timeout", log.c_str());
      }
    }
    engine_->SetRunning(0, n, false);
  }

  void Idle(std::vector<double>* per_second) {
    const int n = options_.n_small;
    engine_->SetRunning(0, n, true);
    Run run(engine_, options_);
    if (run.Start({}) && run.WaitReady(n)) {
      absl::SleepFor(absl::Seconds(1));
      const ProcStats before = Stats(run.pid());
      absl::SleepFor(absl::Seconds(options_.idle));
      const ProcStats after = Stats(run.pid());
      per_second->push_back(static_cast<double>(after.ctx_switches - before.ctx_switches) /
                            options_.idle);
      std::printf(
          "  idle %d s with %d services: %.2f context switches/s\n    before: %s\n    after:  %s\n",
          options_.idle, n, per_second->back(), before.per_thread.c_str(),
          after.per_thread.c_str());
    }
    engine_->SetRunning(0, n, false);
  }

 private:
  static int Registers(Run& run) {
    absl::MutexLock lock(&run.writes().mu);
    return run.writes().registers;
  }
  Engine* const engine_;
  const Options& options_;
};

bool Wanted(const Options& o, const std::string& name) {
  return o.only.empty() ||
         absl::StrCat(",", o.only, ",").find(absl::StrCat(",", name, ",")) != std::string::npos;
}

int Main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const std::string value = i + 1 < argc ? argv[i + 1] : "";
    int* target = nullptr;
    if (flag == "-n") target = &o.n;
    if (flag == "-n-small") target = &o.n_small;
    if (flag == "-singles") target = &o.singles;
    if (flag == "-cycles") target = &o.cycles;
    if (flag == "-resync-window") target = &o.resync_window;
    if (flag == "-idle") target = &o.idle;
    if (flag == "-runs") target = &o.runs;
    if (target != nullptr && absl::SimpleAtoi(value, target) && *target >= 0) {
      ++i;
    } else if (flag == "-binary" || flag == "-sample" || flag == "-only" || flag == "-log" ||
               flag == "-floor") {
      (flag == "-binary"   ? o.binary
       : flag == "-floor"  ? o.floor
       : flag == "-sample" ? o.sample
       : flag == "-log"    ? o.log
                           : o.only) = value;
      ++i;
    } else {
      std::fprintf(stderr,
                   "usage: binary_bench [-runs 3] [-n 10000] [-n-small 1000] [-singles 200] "
                   "[-cycles 20000] [-resync-window 10] [-idle 60] [-binary path] [-floor path] "
                   "[-sample inspect.json] [-only startup,latency,churn,resync,idle,floor] "
                   "[-log file]\n");
      return 2;
    }
  }
  const std::string sample = fakes::ReadFileOrEmpty(o.sample);
  if (!docker::ParseContainerJson(sample).ok() || access(o.binary.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "need %s and an executable %s\n", o.sample.c_str(), o.binary.c_str());
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  Engine engine(sample);
  if (!engine.Start()) {
    std::fprintf(stderr, "fake engine: cannot bind\n");
    return 1;
  }
  Bench bench(&engine, o);
  std::vector<double> big_settled_cpu, big_settled_peak, small_settled_cpu, small_settled_peak;
  std::vector<double> big_wall, big_cpu, big_peak, small_wall, small_cpu, small_peak, p50, p99,
      leaked, rss_before, rss_warm, rss_after, churn_cpu, resync_writes, resync_cpu, idle_cs,
      floor_wall, floor_cpu, floor_p50, floor_seq_cpu;
  for (int r = 0; r < o.runs; ++r) {
    std::printf("run %d of %d\n", r + 1, o.runs);
    if (Wanted(o, "startup")) {
      bench.Startup(o.n, &big_wall, &big_cpu, &big_peak, &big_settled_cpu, &big_settled_peak);
      bench.Startup(o.n_small, &small_wall, &small_cpu, &small_peak, &small_settled_cpu,
                    &small_settled_peak);
    }
    if (Wanted(o, "latency")) bench.Latency(&p50, &p99);
    if (Wanted(o, "churn")) bench.Churn(&leaked, &rss_before, &rss_warm, &rss_after, &churn_cpu);
    if (Wanted(o, "resync")) bench.Resync(&resync_writes, &resync_cpu);
    if (Wanted(o, "idle") && r == 0) bench.Idle(&idle_cs);  // Once: it is long and stable.
    if (Wanted(o, "floor")) {
      bench.Floor(/*sequential=*/false, &floor_wall, &floor_cpu);
      bench.Floor(/*sequential=*/true, &floor_p50, &floor_seq_cpu);
    }
    std::fflush(stdout);
  }
  auto m = [](const std::vector<double>& v, const char* fmt) {
    if (v.empty()) return std::string("-");
    const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    const auto f = absl::ParsedFormat<'f'>::New(fmt);
    return absl::StrCat(absl::StrFormat(*f, Median(v)), " (", absl::StrFormat(*f, *lo), "..",
                        absl::StrFormat(*f, *hi), ")");
  };
  std::printf("\nmedian (min..max) of %d runs; registrator's own CPU and memory\n", o.runs);
  std::printf("| scenario | measured |\n|---|---|\n");
  std::printf("| %d at start | %s s, %s CPU-s, %s MB peak; 2 s later %s CPU-s, %s MB peak |\n", o.n,
              m(big_wall, "%.2f").c_str(), m(big_cpu, "%.2f").c_str(), m(big_peak, "%.1f").c_str(),
              m(big_settled_cpu, "%.2f").c_str(), m(big_settled_peak, "%.1f").c_str());
  std::printf("| %d at start | %s s, %s CPU-s, %s MB peak; 2 s later %s CPU-s, %s MB peak |\n",
              o.n_small, m(small_wall, "%.3f").c_str(), m(small_cpu, "%.2f").c_str(),
              m(small_peak, "%.1f").c_str(), m(small_settled_cpu, "%.2f").c_str(),
              m(small_settled_peak, "%.1f").c_str());
  std::printf("| start -> register, %d singles | p50 %s ms, p99 %s ms |\n", o.singles,
              m(p50, "%.3f").c_str(), m(p99, "%.3f").c_str());
  std::printf(
      "| %d start/die cycles | %s leaked, RSS %s -> %s MB (%s MB after the first 1,000), %s "
      "CPU-s |\n",
      o.cycles, m(leaked, "%.0f").c_str(), m(rss_before, "%.1f").c_str(),
      m(rss_after, "%.1f").c_str(), m(rss_warm, "%.1f").c_str(), m(churn_cpu, "%.2f").c_str());
  std::printf("| unchanged resync, %d services, every 1 s | %s writes, %s CPU-s / 10 s |\n",
              o.n_small, m(resync_writes, "%.0f").c_str(), m(resync_cpu, "%.3f").c_str());
  std::printf("| idle, %d s | %s context switches/s |\n", o.idle, m(idle_cs, "%.2f").c_str());
  std::printf("| transport floor, %d containers, 8 threads | %s s, %s CPU-s |\n", o.n,
              m(floor_wall, "%.2f").c_str(), m(floor_cpu, "%.2f").c_str());
  std::printf("| transport floor, one container at a time | inspect + register p50 %s ms |\n",
              m(floor_p50, "%.3f").c_str());
  return 0;
}

}  // namespace
}  // namespace registrator

int main(int argc, char** argv) { return registrator::Main(argc, argv); }
