// Measures the bridge over its real transports: the real DockerClient (libcurl over a unix
// socket) against a fast fake Docker Engine (cpp-httplib, precomputed bodies), and the real
// Consul adapter (consul://) against the in-process Consul stand-in over TCP on 127.0.0.1.
// The same scenarios as bridge_bench: start-up with 10,000 running containers (time, peak
// memory), an unchanged resync (writes), 1,000 containers started at once, start -> register
// latency, and start-up with 4/8/16 workers. Also says where the time goes (inspect, derive,
// register per call, CPU vs wall). Prints numbers; asserts nothing (this machine is noisy). Run:
//   bazel run -c opt //bench:http_bench [-- -n 10000 -burst 1000 -latency 1000 -workers 4,8,16]
// Both servers run in this process: CPU time and memory include them.
#include <httplib.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "adapters/adapter_factory.h"
#include "bench/process_stats.h"
#include "docker_client/decode.h"
#include "docker_client/docker_client.h"
#include "registrator/bridge.h"
#include "registrator/common/log.h"
#include "registrator/derive.h"
#include "testing/consul_standin/consul_standin.h"
#include "testing/process.h"

namespace registrator {
namespace {

using bench::CpuSeconds;
using bench::MemoryKiB;
using bench::ResetPeakRss;

// A Docker Engine that only answers what the bridge asks, from bodies computed up front:
// GET /version, /_ping, /v1.41/containers/json and /v1.41/containers/<id>/json. Containers
// 0..total-1 are prepared; SetRunning(i) makes container i visible (listed and inspectable).
class FakeEngine {
 public:
  // `httplib_defaults`: keep cpp-httplib's 8 server threads and 5 requests per connection (as
  // the Consul stand-in does) instead of 32 threads and unlimited keep-alive.
  FakeEngine(const std::string& inspect_template, int total, bool httplib_defaults) {
    // The sample's identity, replaced per container.
    const std::string sample_id =
        "d7fc15186570a5c8affd413e7e5e09cc9dea217d68a3292470e0cfdca36fde24";
    ids_.reserve(total);
    inspect_.reserve(total);
    list_entries_.reserve(total);
    for (int i = 0; i < total; ++i) {
      const std::string id = Id(i);
      ids_.push_back(id);
      inspect_.push_back(absl::StrReplaceAll(inspect_template,
                                             {{sample_id, id},
                                              {sample_id.substr(0, 12), id.substr(0, 12)},
                                              {"\"/files1\"", absl::StrCat("\"/", Name(i), "\"")},
                                              {"\"18080\"", absl::StrCat("\"", Port(i), "\"")}}));
      list_entries_.push_back(absl::StrCat(R"({"Id":")", id, R"(","Names":["/)", Name(i),
                                           R"("],"Image":"local/busybox:test","State":"running",)",
                                           R"("Status":"Up 1 second"})"));
    }
    server_.set_address_family(AF_UNIX);
    server_.set_keep_alive_timeout(1);  // Stop() waits for idle connections this long.
    if (!httplib_defaults) {
      server_.set_keep_alive_max_count(1000000);  // dockerd does not close kept-alive connections.
      server_.new_task_queue = [] { return new httplib::ThreadPool(32); };
    }
    server_.Get("/_ping", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("OK", "text/plain");
    });
    server_.Get("/version", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"Version":"20.10.24","ApiVersion":"1.41","MinAPIVersion":"1.12"})",
                      "application/json");
    });
    server_.Get("/v1.41/containers/json", [this](const httplib::Request&, httplib::Response& res) {
      const std::shared_ptr<const std::string> body = ListBody();
      res.set_content(*body, "application/json");
    });
    server_.Get(R"(/v1\.41/containers/([0-9a-f]+)/json)",
                [this](const httplib::Request& req, httplib::Response& res) {
                  const std::string* body = nullptr;
                  {
                    absl::MutexLock lock(&mu_);
                    auto it = running_.find(req.matches[1].str());
                    if (it != running_.end()) body = &inspect_[it->second];
                  }
                  if (body == nullptr) {
                    res.status = 404;
                    res.set_content(R"({"message":"No such container"})", "application/json");
                    return;
                  }
                  res.set_content(*body, "application/json");
                });
  }
  ~FakeEngine() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  static std::string Id(int i) { return absl::StrFormat("%08x%s", i, std::string(56, 'e')); }
  static std::string Name(int i) { return absl::StrCat("app-", i); }
  static int Port(int i) { return 20000 + i; }
  static std::string ServiceId(int i) { return absl::StrCat("bench-host:", Name(i), ":80"); }

  absl::Status Start() {
    if (!server_.bind_to_port(socket_path_.c_str(), 80)) {
      return absl::UnavailableError(absl::StrCat("cannot bind ", socket_path_));
    }
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) absl::SleepFor(absl::Milliseconds(1));
    return absl::OkStatus();
  }
  std::string host() const { return "unix://" + socket_path_; }
  const std::string& id(int i) const { return ids_[i]; }

  void SetRunning(int i, bool running) {
    absl::MutexLock lock(&mu_);
    if (running) {
      running_[ids_[i]] = i;
    } else {
      running_.erase(ids_[i]);
    }
    list_body_.reset();
  }

 private:
  std::shared_ptr<const std::string> ListBody() {
    absl::MutexLock lock(&mu_);
    if (list_body_ == nullptr) {
      std::vector<int> indices;
      indices.reserve(running_.size());
      for (const auto& [id, i] : running_) indices.push_back(i);
      std::sort(indices.begin(), indices.end());
      std::string body = "[";
      for (int i : indices) {
        if (body.size() > 1) body.push_back(',');
        body.append(list_entries_[i]);
      }
      body.push_back(']');
      list_body_ = std::make_shared<const std::string>(std::move(body));
    }
    return list_body_;
  }

  fakes::TempDir dir_{"hb"};
  const std::string socket_path_ = dir_.path() + "/docker.sock";
  std::vector<std::string> ids_;
  std::vector<std::string> inspect_;
  std::vector<std::string> list_entries_;
  httplib::Server server_;
  std::thread thread_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, int> running_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const std::string> list_body_ ABSL_GUARDED_BY(mu_);
};

// CPU time of the calling thread, in nanoseconds.
int64_t ThreadCpuNanos() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Sums the wall and CPU time spent in calls on the calling threads, for "where the time goes":
// wall minus CPU is waiting (for the server's answer, or for a core).
struct CallTimer {
  std::atomic<int64_t> calls{0};
  std::atomic<int64_t> nanos{0};
  std::atomic<int64_t> cpu_nanos{0};

  // Times one call of `f` on this thread.
  template <typename F>
  auto Time(F&& f) {
    const absl::Time start = absl::Now();
    const int64_t cpu_start = ThreadCpuNanos();
    auto result = f();
    cpu_nanos.fetch_add(ThreadCpuNanos() - cpu_start, std::memory_order_relaxed);
    nanos.fetch_add(absl::ToInt64Nanoseconds(absl::Now() - start), std::memory_order_relaxed);
    calls.fetch_add(1, std::memory_order_relaxed);
    return result;
  }
  void Reset() {
    calls = 0;
    nanos = 0;
    cpu_nanos = 0;
  }
  std::string Summary(absl::Duration wall) const {
    const int64_t n = calls.load();
    const double total_s = nanos.load() / 1e9;
    const double cpu_s = cpu_nanos.load() / 1e9;
    return absl::StrFormat(
        "%6lld calls, %5.0f us/call (caller CPU %4.0f us/call), %.2f thread-s (%.1fx wall)",
        static_cast<long long>(n), n ? total_s * 1e6 / n : 0.0, n ? cpu_s * 1e6 / n : 0.0, total_s,
        total_s / std::max(1e-9, absl::ToDoubleSeconds(wall)));
  }
};

// The real DockerClient, timed.
class TimedDocker : public docker::DockerApi {
 public:
  explicit TimedDocker(docker::DockerApi* inner) : inner_(inner) {}
  absl::Status Ping() override { return inner_->Ping(); }
  absl::StatusOr<docker::Version> GetVersion() override { return inner_->GetVersion(); }
  absl::StatusOr<std::vector<docker::ContainerSummary>> ListContainers(
      bool all, absl::string_view status_filter) override {
    return list.Time([&] { return inner_->ListContainers(all, status_filter); });
  }
  absl::StatusOr<docker::Container> InspectContainer(absl::string_view id) override {
    return inspect.Time([&] { return inner_->InspectContainer(id); });
  }
  CallTimer list, inspect;

 private:
  docker::DockerApi* const inner_;
};

// The real Consul adapter, timed; records when each Register returned OK (the stand-in holds
// the service by then: it answers after storing it).
class TimedAdapter : public RegistryAdapter {
 public:
  explicit TimedAdapter(std::unique_ptr<RegistryAdapter> inner) : inner_(std::move(inner)) {}
  absl::Status Ping() override { return inner_->Ping(); }
  absl::Status Register(const Service& service) override {
    absl::Status status = reg.Time([&] { return inner_->Register(service); });
    const absl::Time now = absl::Now();
    if (status.ok()) {
      absl::MutexLock lock(&mu_);
      registered_at_[service.id] = now;
      last_register_ = std::max(last_register_, now);
    }
    return status;
  }
  absl::Status Deregister(const Service& service) override { return inner_->Deregister(service); }
  absl::Status Refresh(const std::vector<Service>& services) override {
    return inner_->Refresh(services);
  }
  absl::StatusOr<std::vector<RegisteredService>> Services() override {
    return list.Time([&] { return inner_->Services(); });
  }
  std::string Fingerprint(const Service& service) const override {
    return inner_->Fingerprint(service);
  }
  void SetStateLostCallback(std::function<void()> cb) override {
    inner_->SetStateLostCallback(std::move(cb));
  }

  absl::Time RegisteredAt(const std::string& id) {
    absl::MutexLock lock(&mu_);
    auto it = registered_at_.find(id);
    return it == registered_at_.end() ? absl::InfinitePast() : it->second;
  }
  absl::Time LastRegister() {
    absl::MutexLock lock(&mu_);
    return last_register_;
  }
  CallTimer reg, list;

 private:
  std::unique_ptr<RegistryAdapter> inner_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, absl::Time> registered_at_ ABSL_GUARDED_BY(mu_);
  absl::Time last_register_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// One bridge with its own stand-in, clients and adapters, over the shared engine.
struct Rig {
  fakes::ConsulStandin consul;
  std::unique_ptr<docker::DockerClient> docker_client;
  std::unique_ptr<TimedDocker> docker;
  std::unique_ptr<TimedAdapter> adapter;
  CallTimer derive;
  std::unique_ptr<Bridge> bridge;

  absl::Status Init(const FakeEngine& engine, int workers) {
    if (absl::Status s = consul.ListenTcp("127.0.0.1", 0); !s.ok()) return s;
    auto client = docker::DockerClient::ForHost(engine.host());
    if (!client.ok()) return client.status();
    docker_client = std::move(*client);
    docker = std::make_unique<TimedDocker>(docker_client.get());
    AdapterOptions options;
    options.hostname = "bench-host";
    auto consul_adapter =
        CreateAdapter(absl::StrCat("consul://127.0.0.1:", consul.port()), options);
    if (!consul_adapter.ok()) return consul_adapter.status();
    adapter = std::make_unique<TimedAdapter>(std::move(*consul_adapter));
    DeriveConfig config;
    config.hostname = "bench-host";
    config.resolved_host_ip = "10.1.2.3";
    BridgeConfig bridge_config;
    bridge_config.hostname = "bench-host";
    if (workers > 0) bridge_config.workers = workers;
    bridge = std::make_unique<Bridge>(
        docker.get(), adapter.get(),
        [config, this](const docker::Container& c) {
          return derive.Time([&] { return DeriveServices(c, config).services; });
        },
        bridge_config);
    bridge->Start();
    return absl::OkStatus();
  }
  ~Rig() {
    if (bridge) bridge->Stop();
    consul.Stop();
  }
  void ResetTimers() {
    docker->list.Reset();
    docker->inspect.Reset();
    adapter->reg.Reset();
    adapter->list.Reset();
    derive.Reset();
  }
  void PrintBreakdown(absl::Duration wall) {
    std::printf("    where the time goes (thread time summed over workers):\n");
    std::printf("      docker list     %s\n", docker->list.Summary(wall).c_str());
    std::printf("      docker inspect  %s\n", docker->inspect.Summary(wall).c_str());
    std::printf("      derive          %s\n", derive.Summary(wall).c_str());
    std::printf("      consul list     %s\n", adapter->list.Summary(wall).c_str());
    std::printf("      consul register %s\n", adapter->reg.Summary(wall).c_str());
  }
};

struct Options {
  int n = 10000;
  int burst = 1000;
  int latency = 1000;
  std::vector<int> workers = {4, 8, 16};
  bool breakdown = true;
  bool engine_httplib_defaults = false;
};

class Bench {
 public:
  Bench(FakeEngine* engine, const Options& options) : engine_(engine), options_(options) {}

  // Scenario 1 (+2 when `resync`); returns the start-up time in seconds.
  double Startup(Rig& rig, int workers, bool resync) {
    const int n = options_.n;
    rig.ResetTimers();
    const long rss_before = MemoryKiB().first;
    ResetPeakRss();
    const double cpu_before = CpuSeconds();
    const absl::Time start = absl::Now();
    const absl::Status status = rig.bridge->SyncNow(absl::Seconds(300));
    const absl::Duration took = absl::Now() - start;
    const double cpu = CpuSeconds() - cpu_before;
    const auto [rss_after, hwm] = MemoryKiB();
    const size_t in_consul = rig.consul.ServiceIds().size();
    const absl::Duration to_last = rig.adapter->LastRegister() - start;
    std::printf(
        "startup (workers %d): %d running containers -> %zu services in the stand-in; SyncNow "
        "%.3f s (last register at %.3f s) (%s); CPU %.2f s (%.0f%% of 2 cores); RSS +%ld KiB, "
        "peak +%ld KiB\n",
        workers, n, in_consul, absl::ToDoubleSeconds(took), absl::ToDoubleSeconds(to_last),
        status.ok() ? "ok" : std::string(status.message()).c_str(), cpu,
        100 * cpu / 2 / absl::ToDoubleSeconds(took), rss_after - rss_before, hwm - rss_before);
    if (options_.breakdown) rig.PrintBreakdown(took);
    if (resync) {
      rig.ResetTimers();
      const int writes_before = rig.consul.write_count();
      const absl::Time resync_start = absl::Now();
      const absl::Status resync_status = rig.bridge->SyncNow(absl::Seconds(300));
      const absl::Duration resync_took = absl::Now() - resync_start;
      std::printf(
          "unchanged resync of %d containers: %d stand-in writes, %lld Docker inspects, %.3f s "
          "(%s)\n",
          n, rig.consul.write_count() - writes_before,
          static_cast<long long>(rig.docker->inspect.calls.load()),
          absl::ToDoubleSeconds(resync_took),
          resync_status.ok() ? "ok" : std::string(resync_status.message()).c_str());
      if (options_.breakdown) rig.PrintBreakdown(resync_took);
    }
    return absl::ToDoubleSeconds(took);
  }

  // Scenario 3: containers [first, first+count) appear and their starts arrive at once.
  void Burst(Rig& rig, int first) {
    const int count = options_.burst;
    for (int i = first; i < first + count; ++i) engine_->SetRunning(i, true);
    rig.ResetTimers();
    const size_t before = rig.consul.ServiceIds().size();
    const absl::Time start = absl::Now();
    for (int i = first; i < first + count; ++i) {
      docker::Event event;
      event.type = "container";
      event.action = "start";
      event.id = engine_->id(i);
      rig.bridge->OnEvent(event);
    }
    const bool idle = rig.bridge->WaitIdle(absl::Seconds(120));
    const absl::Duration took = absl::Now() - start;
    const absl::Duration to_last = rig.adapter->LastRegister() - start;
    const size_t added = rig.consul.ServiceIds().size() - before;
    std::printf(
        "burst: %d containers started at once -> %zu/%d in the stand-in; last register at "
        "%.3f s, idle at %.3f s%s\n",
        count, added, count, absl::ToDoubleSeconds(to_last), absl::ToDoubleSeconds(took),
        idle ? "" : " (TIMED OUT)");
    if (options_.breakdown) rig.PrintBreakdown(took);
  }

  // Scenario 4: sequential single starts; OnEvent -> Register returned OK.
  void Latency(Rig& rig, int first) {
    const int samples = options_.latency;
    std::vector<double> micros;
    int missing = 0;
    rig.ResetTimers();
    const absl::Time start = absl::Now();
    for (int i = first; i < first + samples; ++i) {
      engine_->SetRunning(i, true);
      docker::Event event;
      event.type = "container";
      event.action = "start";
      event.id = engine_->id(i);
      const absl::Time sent = absl::Now();
      rig.bridge->OnEvent(event);
      rig.bridge->WaitIdle(absl::Seconds(10));
      const absl::Time at = rig.adapter->RegisteredAt(FakeEngine::ServiceId(i));
      if (at == absl::InfinitePast()) {
        ++missing;
        continue;
      }
      micros.push_back(absl::ToDoubleMicroseconds(at - sent));
    }
    if (micros.empty()) {
      std::printf("latency: nothing registered\n");
      return;
    }
    std::sort(micros.begin(), micros.end());
    std::printf(
        "start -> register latency over %d sequential starts: p50 %.0f us, p99 %.0f us, max "
        "%.0f us (%d not registered)\n",
        samples, micros[micros.size() / 2], micros[micros.size() * 99 / 100], micros.back(),
        missing);
    if (options_.breakdown) rig.PrintBreakdown(absl::Now() - start);
  }

 private:
  FakeEngine* const engine_;
  const Options options_;
};

Options ParseFlags(int argc, char** argv, std::string* sample_path) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const std::string value = i + 1 < argc ? argv[i + 1] : "";
    auto take_int = [&](int* out) {
      if (!absl::SimpleAtoi(value, out)) {
        std::fprintf(stderr, "%s needs a number, got \"%s\"\n", flag.c_str(), value.c_str());
        std::exit(2);
      }
      ++i;
    };
    if (flag == "-n") {
      take_int(&options.n);
    } else if (flag == "-burst") {
      take_int(&options.burst);
    } else if (flag == "-latency") {
      take_int(&options.latency);
    } else if (flag == "-workers") {
      options.workers.clear();
      for (absl::string_view w : absl::StrSplit(value, ',', absl::SkipEmpty())) {
        int n = 0;
        if (!absl::SimpleAtoi(w, &n) || n <= 0) {
          std::fprintf(stderr, "-workers: bad count \"%s\"\n", std::string(w).c_str());
          std::exit(2);
        }
        options.workers.push_back(n);
      }
      ++i;
    } else if (flag == "-engine-httplib-defaults") {
      options.engine_httplib_defaults = true;
    } else if (flag == "-no-breakdown") {
      options.breakdown = false;
    } else if (flag == "-sample") {
      *sample_path = value;
      ++i;
    } else {
      std::fprintf(stderr,
                   "usage: http_bench [-n N] [-burst N] [-latency N] [-workers 4,8,16] "
                   "[-no-breakdown] [-engine-httplib-defaults] [-sample inspect.json]\n");
      std::exit(2);
    }
  }
  return options;
}

int Main(int argc, char** argv) {
  std::string path = "testdata/docker/inspect-sample-api.json";
  const Options options = ParseFlags(argc, argv, &path);
  const std::string sample = registrator::fakes::ReadFileOrEmpty(path);
  if (absl::StatusOr<docker::Container> parsed = docker::ParseContainerJson(sample); !parsed.ok()) {
    std::fprintf(stderr, "cannot read %s: %s\n", path.c_str(),
                 std::string(parsed.status().message()).c_str());
    return 1;
  }
  SetLogLevel(LogLevel::kError);

  const int total = options.n + options.burst + options.latency;
  const absl::Time prepare_start = absl::Now();
  FakeEngine engine(sample, total, options.engine_httplib_defaults);
  if (absl::Status s = engine.Start(); !s.ok()) {
    std::fprintf(stderr, "fake engine: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  for (int i = 0; i < options.n; ++i) engine.SetRunning(i, true);
  std::printf("prepared %d inspect bodies in %.2f s; RSS %ld KiB\n", total,
              absl::ToDoubleSeconds(absl::Now() - prepare_start), MemoryKiB().first);

  Bench bench(&engine, options);
  {
    Rig rig;
    if (absl::Status s = rig.Init(engine, 0); !s.ok()) {
      std::fprintf(stderr, "setup: %s\n", std::string(s.message()).c_str());
      return 1;
    }
    bench.Startup(rig, BridgeConfig().workers, /*resync=*/true);
    bench.Burst(rig, options.n);
    bench.Latency(rig, options.n + options.burst);
  }
  for (int i = options.n; i < total; ++i) engine.SetRunning(i, false);

  double best = 0;
  int best_workers = 0;
  for (int workers : options.workers) {
    Rig rig;
    if (absl::Status s = rig.Init(engine, workers); !s.ok()) {
      std::fprintf(stderr, "setup: %s\n", std::string(s.message()).c_str());
      return 1;
    }
    const double took = bench.Startup(rig, workers, /*resync=*/false);
    if (best_workers == 0 || took < best) {
      best = took;
      best_workers = workers;
    }
  }
  if (best_workers > 0) {
    std::printf("best start-up: %.3f s with %d workers\n", best, best_workers);
  }
  const auto [rss, hwm] = MemoryKiB();
  std::printf("process: RSS %ld KiB, peak %ld KiB\n", rss, hwm);
  return 0;
}

}  // namespace
}  // namespace registrator

int main(int argc, char** argv) { return registrator::Main(argc, argv); }
