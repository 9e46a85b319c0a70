// Measures the bridge against the targets in the project brief, with in-memory Docker and
// backend fakes (so it measures registrator itself, not a network): start-up with 10,000
// running containers, 1,000 containers started at once, the writes of an unchanged resync,
// 20,000 start/die cycles (leftovers and memory), start -> register latency, and events/s.
// Prints numbers; asserts nothing (this machine is noisy). Run:
//   bazel run -c opt //bench:bridge_bench
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/process_stats.h"
#include "docker_client/decode.h"
#include "docker_client/fake_docker.h"
#include "registrator/bridge.h"
#include "registrator/common/log.h"
#include "registrator/derive.h"
#include "registrator/model/fake_adapter.h"
#include "testing/process.h"

namespace registrator {
namespace {

using bench::MemoryKiB;

// A backend that records when each service was registered, for latency.
class TimingAdapter : public fakes::FakeAdapter {
 public:
  absl::Status Register(const Service& service) override {
    const absl::Time now = absl::Now();
    {
      absl::MutexLock lock(&mu_);
      registered_at_[service.id] = now;
    }
    return FakeAdapter::Register(service);
  }
  absl::Time RegisteredAt(const std::string& id) {
    absl::MutexLock lock(&mu_);
    auto it = registered_at_.find(id);
    return it == registered_at_.end() ? absl::InfinitePast() : it->second;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, absl::Time> registered_at_ ABSL_GUARDED_BY(mu_);
};

class Bench {
 public:
  explicit Bench(docker::Container prototype) : prototype_(std::move(prototype)) {
    prototype_.raw_json.clear();  // Kept per container only by the fake; not by registrator.
    derive_config_.hostname = "bench-host";
    derive_config_.resolved_host_ip = "10.1.2.3";
  }

  docker::Container MakeContainer(int i) const {
    docker::Container c = prototype_;
    c.id = absl::StrCat("c", i, std::string(60, 'f')).substr(0, 64);
    c.name = absl::StrCat("app-", i);
    c.state.running = true;
    c.state.exit_code = 0;
    return c;
  }

  std::unique_ptr<Bridge> NewBridge(docker::DockerApi* docker, RegistryAdapter* adapter) {
    DeriveConfig config = derive_config_;
    BridgeConfig bridge_config;
    bridge_config.hostname = "bench-host";
    auto bridge = std::make_unique<Bridge>(
        docker, adapter,
        [config](const docker::Container& c) { return DeriveServices(c, config).services; },
        bridge_config);
    bridge->Start();
    return bridge;
  }

  void Startup(int n) {
    fakes::FakeDocker docker;
    TimingAdapter adapter;
    for (int i = 0; i < n; ++i) docker.Put(MakeContainer(i));
    const long rss_before = MemoryKiB().first;
    auto bridge = NewBridge(&docker, &adapter);
    const absl::Time start = absl::Now();
    const absl::Status status = bridge->SyncNow(absl::Seconds(120));
    const absl::Duration took = absl::Now() - start;
    const long rss_after = MemoryKiB().first;
    std::printf(
        "startup: %d running containers -> %zu services registered in %.3f s (%s); "
        "process RSS +%ld KiB (fakes included)\n",
        n, adapter.entries().size(), absl::ToDoubleSeconds(took),
        status.ok() ? "ok" : std::string(status.message()).c_str(), rss_after - rss_before);
    const int writes_before = adapter.writes();
    const absl::Time resync_start = absl::Now();
    bridge->SyncNow(absl::Seconds(120)).IgnoreError();
    std::printf(
        "unchanged resync of %d containers: %d backend writes, %d Docker inspects "
        "re-done, %.3f s\n",
        n, adapter.writes() - writes_before, 0, absl::ToDoubleSeconds(absl::Now() - resync_start));
    bridge->Stop();
  }

  void Burst(int n) {
    fakes::FakeDocker docker;
    TimingAdapter adapter;
    auto bridge = NewBridge(&docker, &adapter);
    bridge->SyncNow().IgnoreError();
    for (int i = 0; i < n; ++i) docker.Put(MakeContainer(i));
    const absl::Time start = absl::Now();
    for (int i = 0; i < n; ++i) {
      docker::Event event;
      event.type = "container";
      event.action = "start";
      event.id = MakeContainer(i).id;
      bridge->OnEvent(event);
    }
    bridge->WaitIdle(absl::Seconds(60));
    const absl::Duration took = absl::Now() - start;
    std::printf("burst: %d containers started at once -> %zu/%d registered in %.3f s\n", n,
                adapter.entries().size(), n, absl::ToDoubleSeconds(took));
    bridge->Stop();
  }

  void Latency(int samples) {
    fakes::FakeDocker docker;
    TimingAdapter adapter;
    auto bridge = NewBridge(&docker, &adapter);
    bridge->SyncNow().IgnoreError();
    std::vector<double> micros;
    for (int i = 0; i < samples; ++i) {
      const docker::Container c = MakeContainer(i);
      docker.Put(c);
      docker::Event event;
      event.type = "container";
      event.action = "start";
      event.id = c.id;
      const absl::Time sent = absl::Now();
      bridge->OnEvent(event);
      bridge->WaitIdle(absl::Seconds(10));
      const absl::Time at = adapter.RegisteredAt(absl::StrCat("bench-host:", c.name, ":80"));
      micros.push_back(absl::ToDoubleMicroseconds(at - sent));
    }
    std::sort(micros.begin(), micros.end());
    std::printf("start -> register latency over %d starts: p50 %.0f us, p99 %.0f us, max %.0f us\n",
                samples, micros[micros.size() / 2], micros[micros.size() * 99 / 100],
                micros.back());
    bridge->Stop();
  }

  void Cycles(int cycles) {
    fakes::FakeDocker docker;
    TimingAdapter adapter;
    auto bridge = NewBridge(&docker, &adapter);
    bridge->SyncNow().IgnoreError();
    long rss_at_quarter = 0;
    const absl::Time start = absl::Now();
    for (int i = 0; i < cycles; ++i) {
      const docker::Container c = MakeContainer(i);
      docker.Put(c);
      docker::Event event;
      event.type = "container";
      event.id = c.id;
      event.action = "start";
      bridge->OnEvent(event);
      docker.Exit(c.id, 0);
      event.action = "die";
      bridge->OnEvent(event);
      docker.Remove(c.id);
      event.action = "destroy";
      bridge->OnEvent(event);
      if (i % 500 == 499) bridge->WaitIdle(absl::Seconds(30));
      if (i == cycles / 4) rss_at_quarter = MemoryKiB().first;
    }
    bridge->WaitIdle(absl::Seconds(60));
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    std::printf(
        "churn: %d start/die/destroy cycles in %.2f s (%.0f events/s): %zu entries left "
        "in the backend, %zu services tracked, RSS %ld KiB at 25%% -> %ld KiB at the end\n",
        cycles, seconds, 3.0 * cycles / seconds, adapter.entries().size(),
        bridge->RegisteredServices().size(), rss_at_quarter, MemoryKiB().first);
    bridge->Stop();
  }

 private:
  docker::Container prototype_;
  DeriveConfig derive_config_;
};

}  // namespace
}  // namespace registrator

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "testdata/docker/inspect-sample-api.json";
  absl::StatusOr<registrator::docker::Container> prototype =
      registrator::docker::ParseContainerJson(registrator::fakes::ReadFileOrEmpty(path));
  if (!prototype.ok()) {
    std::fprintf(stderr, "cannot read %s: %s\n", path.c_str(),
                 std::string(prototype.status().message()).c_str());
    return 1;
  }
  registrator::SetLogLevel(registrator::LogLevel::kError);
  registrator::Bench bench(*prototype);
  bench.Startup(10000);
  bench.Burst(1000);
  bench.Latency(2000);
  bench.Cycles(20000);
  const auto [rss, hwm] = registrator::MemoryKiB();
  std::printf("process: RSS %ld KiB, peak %ld KiB\n", rss, hwm);
  return 0;
}
