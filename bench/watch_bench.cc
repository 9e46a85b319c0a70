// Issue 16's numbers: how fast the drift watch repairs a deleted entry, and what it costs while
// nothing happens. Per backend (etcd v3, etcd v2, ZooKeeper; real servers on loopback): the
// bridge with the real adapter and a fake Docker holding 20 containers, no -resync, no TTL
// refresh. 20 times: delete one entry behind the bridge's back (a client of our own), time until
// it is back (polled every 1 ms). Then an idle window: CPU seconds of this process, backend
// listings and adapter calls, and what the server saw (etcd: gRPC requests started, from its
// /metrics; ZooKeeper: watches held, from "wchs", and packets received, from "srvr").
//   bazel run -c opt //bench:watch_bench [-- --idle_seconds=60]
#include <zookeeper/zookeeper.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "adapters/adapter_factory.h"
#include "bench/process_stats.h"
#include "docker_client/fake_docker.h"
#include "registrator/bridge.h"
#include "registrator/common/http_client.h"
#include "registrator/common/log.h"
#include "testing/etcd_fixture.h"
#include "testing/zookeeper_client.h"
#include "testing/zookeeper_fixture.h"

namespace registrator {
namespace {

constexpr int kContainers = 20;
constexpr char kHost[] = "benchhost";

// Counts the calls the bridge makes (each one HTTP request on etcd without -ttl).
class CountingAdapter : public RegistryAdapter {
 public:
  explicit CountingAdapter(std::unique_ptr<RegistryAdapter> inner) : inner_(std::move(inner)) {}
  absl::Status Ping() override { return Count(inner_->Ping()); }
  absl::Status Register(const Service& s) override { return Count(inner_->Register(s)); }
  absl::Status Deregister(const Service& s) override { return Count(inner_->Deregister(s)); }
  absl::Status Refresh(const std::vector<Service>& s) override { return Count(inner_->Refresh(s)); }
  absl::StatusOr<std::vector<RegisteredService>> Services() override {
    ++calls;
    ++listings;
    return inner_->Services();
  }
  std::string Fingerprint(const Service& s) const override { return inner_->Fingerprint(s); }
  std::string EntryKey(const Service& s) const override { return inner_->EntryKey(s); }
  absl::Status StartWatch(std::function<void()> drifted) override {
    return inner_->StartWatch(std::move(drifted));
  }
  void StopWatch() override { inner_->StopWatch(); }

  std::atomic<int> calls{0};
  std::atomic<int> listings{0};

 private:
  absl::Status Count(absl::Status s) {
    ++calls;
    return s;
  }
  std::unique_ptr<RegistryAdapter> inner_;
};

std::vector<Service> Derive(const docker::Container& c) {
  Service s;
  s.id = absl::StrCat(kHost, ":", c.name, ":80");
  s.name = c.name;
  s.ip = "127.0.0.1";
  s.port = 20000 + std::stoi(c.name.substr(1));
  s.exposed_port = 80;
  s.container_id = c.id;
  s.container_name = c.name;
  return {s};
}

// How the bench reads and deletes entries behind the bridge's back.
struct Backend {
  std::string name;
  std::string uri;
  std::function<std::string(int i)> key;  // Entry key of container i.
  std::function<bool(const std::string& key)> exists;
  std::function<void(const std::string& key)> del;
  std::function<std::string()> server_counters;  // Idle cost as the server sees it.
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

void RunOne(const Backend& b, absl::Duration idle) {
  AdapterOptions options;
  options.hostname = kHost;
  absl::StatusOr<std::unique_ptr<RegistryAdapter>> inner = CreateAdapter(b.uri, options);
  if (!inner.ok()) {
    std::printf("%s: %s\n", b.name.c_str(), std::string(inner.status().message()).c_str());
    return;
  }
  CountingAdapter adapter(*std::move(inner));
  fakes::FakeDocker docker;
  for (int i = 0; i < kContainers; ++i) {
    docker::Container c;
    c.id = absl::StrCat("id", i);
    c.name = absl::StrCat("c", i);
    c.state.running = true;
    c.state.status = "running";
    docker.Put(c);
  }
  BridgeConfig config;
  config.hostname = kHost;
  Bridge bridge(&docker, &adapter, Derive, config);
  bridge.Start();
  if (absl::Status s = bridge.SyncNow(); !s.ok()) {
    std::printf("%s: first sync: %s\n", b.name.c_str(), std::string(s.message()).c_str());
    return;
  }
  bridge.WaitIdle(absl::Seconds(10));
  absl::SleepFor(absl::Seconds(1));  // Let the start-up's own watch events settle.
  std::vector<double> ms;
  for (int round = 0; round < 20; ++round) {
    const std::string key = b.key(round % kContainers);
    b.del(key);
    const absl::Time deleted = absl::Now();
    while (!b.exists(key) && absl::Now() - deleted < absl::Seconds(10)) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - deleted));
    bridge.WaitIdle(absl::Seconds(10));
    absl::SleepFor(absl::Milliseconds(200));  // Past the rate limit: each round starts idle.
  }
  bridge.WaitIdle(absl::Seconds(10));
  absl::SleepFor(absl::Seconds(1));
  const std::string before = b.server_counters();
  const double cpu = bench::CpuSeconds();
  const int calls = adapter.calls;
  const int listings = adapter.listings;
  absl::SleepFor(idle);
  const double idle_cpu = bench::CpuSeconds() - cpu;
  const std::string after = b.server_counters();
  const double minutes = absl::ToDoubleSeconds(idle) / 60;
  std::printf(
      "%-10s repair of 20 deletions: median %.1f ms, max %.1f ms | idle %.0f s: %.3f CPU-s/min, "
      "%.1f adapter calls/min, %.1f listings/min; server before: %s; after: %s\n",
      b.name.c_str(), Median(ms), *std::max_element(ms.begin(), ms.end()),
      absl::ToDoubleSeconds(idle), idle_cpu / minutes, (adapter.calls - calls) / minutes,
      (adapter.listings - listings) / minutes, before.c_str(), after.c_str());
  std::fflush(stdout);
  bridge.Stop();
}

// Sum of etcd's grpc_server_started_total (every request, the gateway's included).
std::string EtcdRequests(HttpClient& http) {
  HttpRequest request;
  request.path = "/metrics";
  absl::StatusOr<HttpResponse> reply = http.Send(request);
  if (!reply.ok()) return "?";
  double total = 0;
  for (absl::string_view line : absl::StrSplit(reply->body, '\n')) {
    if (!absl::StartsWith(line, "grpc_server_started_total{")) continue;
    double v = 0;
    if (absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &v)) total += v;
  }
  return absl::StrCat(total, " gRPC requests");
}

int Main(int argc, char** argv) {
  absl::Duration idle = absl::Seconds(30);
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    int seconds = 0;
    if (absl::ConsumePrefix(&arg, "--idle_seconds=") && absl::SimpleAtoi(arg, &seconds)) {
      idle = absl::Seconds(seconds);
    }
  }
  SetLogLevel(LogLevel::kWarning);
  zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
  for (bool v2 : {false, true}) {
    fakes::EtcdFixtureOptions options;
    options.enable_v2 = v2;
    absl::StatusOr<std::unique_ptr<fakes::EtcdFixture>> etcd = fakes::EtcdFixture::Start(options);
    if (!etcd.ok()) {
      std::printf("etcd: %s\n", std::string(etcd.status().message()).c_str());
      continue;
    }
    HttpEndpoint endpoint;
    endpoint.base_url = (*etcd)->base_url();
    HttpClient http(endpoint);
    Backend b;
    b.name = v2 ? "etcd v2" : "etcd v3";
    b.uri = absl::StrCat(v2 ? "etcd2://" : "etcd3://", (*etcd)->endpoint(), "/bench");
    b.key = [](int i) { return absl::StrCat("/bench/c", i, "/", kHost, ":c", i, ":80"); };
    b.exists = [&http](const std::string& key) {
      HttpRequest request;
      request.path = absl::StrCat("/v2/keys", key);
      absl::StatusOr<HttpResponse> reply = http.Send(request);
      return reply.ok() && reply->status == 200;
    };
    b.del = [&http](const std::string& key) {
      HttpRequest request;
      request.method = "DELETE";
      request.path = absl::StrCat("/v2/keys", key);
      (void)http.Send(request);
    };
    if (!v2) {
      // v3 through the gateway: base64 keys.
      b.exists = [&http](const std::string& key) {
        HttpRequest request;
        request.method = "POST";
        request.path = "/v3/kv/range";
        request.body =
            absl::StrCat("{\"key\":\"", absl::Base64Escape(key), "\",\"count_only\":true}");
        absl::StatusOr<HttpResponse> reply = http.Send(request);
        return reply.ok() && absl::StrContains(reply->body, "\"count\":\"1\"");
      };
      b.del = [&http](const std::string& key) {
        HttpRequest request;
        request.method = "POST";
        request.path = "/v3/kv/deleterange";
        request.body = absl::StrCat("{\"key\":\"", absl::Base64Escape(key), "\"}");
        (void)http.Send(request);
      };
    }
    b.server_counters = [&http] { return EtcdRequests(http); };
    RunOne(b, idle);
  }
  {
    absl::StatusOr<std::unique_ptr<fakes::ZookeeperServer>> zk = fakes::ZookeeperServer::Start();
    if (!zk.ok()) {
      std::printf("zookeeper: %s\n", std::string(zk.status().message()).c_str());
      return 0;
    }
    fakes::ZookeeperTestClient raw((*zk)->address());
    raw.WaitConnected();
    const int port = (*zk)->port();
    Backend b;
    b.name = "zookeeper";
    b.uri = absl::StrCat("zookeeper://", (*zk)->address(), "/bench");
    b.key = [](int i) { return absl::StrCat("/bench/c", i, "/127.0.0.1:", 20000 + i); };
    b.exists = [&raw](const std::string& key) { return raw.Exists(key); };
    b.del = [&raw](const std::string& key) { raw.Delete(key); };
    b.server_counters = [port] {
      std::string out;
      absl::StatusOr<std::string> wchs = fakes::ZookeeperFourLetter(port, "wchs");
      absl::StatusOr<std::string> srvr = fakes::ZookeeperFourLetter(port, "srvr");
      for (const absl::StatusOr<std::string>* s : {&wchs, &srvr}) {
        if (!s->ok()) continue;
        for (absl::string_view line : absl::StrSplit(**s, '\n')) {
          if (absl::StartsWith(line, "Total watches") || absl::StartsWith(line, "Received")) {
            absl::StrAppend(&out, out.empty() ? "" : ", ", line);
          }
        }
      }
      return out;
    };
    RunOne(b, idle);
  }
  return 0;
}

}  // namespace
}  // namespace registrator

int main(int argc, char** argv) { return registrator::Main(argc, argv); }
