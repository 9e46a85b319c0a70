// The transport floor of a start-up (issue 14): what the two HTTP exchanges per container cost by
// themselves, with registrator's own HttpClient (libcurl, pooled kept-alive handles) and nothing
// else -- no JSON decoding, no derivation, no bridge, no logging. binary_bench runs it as a child
// process against the same fake engine and Consul stand-in as registrator (-only floor) and reads
// its CPU time from /proc, so "registrator minus floor" is what the product adds on top.
//
// It lists /containers/json once (as registrator does at start-up), then `-workers` threads each
// take the next container: GET its inspect (the body is read and dropped) and PUT a register body
// of the size registrator sends. Exits 0 when every exchange succeeded.
//   transport_floor [-workers 8] consul://127.0.0.1:<port>      (DOCKER_HOST=unix:///...)
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "docker_client/decode.h"
#include "registrator/common/http_client.h"

namespace registrator {
namespace {

// The size and shape of what registrator's Consul adapter sends for the bench's sample container
// (one port, SERVICE_NAME=files, two tags); only the id differs per container.
std::string RegisterBody(int i) {
  return absl::StrCat(R"({"ID":"host:floor-)", i,
                      R"(:80","Name":"files","Tags":["a","b"],"Address":"127.0.0.1","Port":)",
                      30000 + i % 30000, R"(,"Meta":{}})");
}

int Main(int argc, char** argv) {
  int workers = 8;
  std::string consul;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-workers" && i + 1 < argc && absl::SimpleAtoi(argv[i + 1], &workers) &&
        workers > 0) {
      ++i;
    } else if (absl::StartsWith(arg, "consul://")) {
      consul = arg.substr(std::string("consul://").size());
    } else {
      std::fprintf(stderr, "usage: transport_floor [-workers 8] consul://host:port\n");
      return 2;
    }
  }
  const char* docker_host = std::getenv("DOCKER_HOST");
  if (consul.empty() || docker_host == nullptr || !absl::StartsWith(docker_host, "unix://")) {
    std::fprintf(stderr, "need consul://host:port and DOCKER_HOST=unix://<socket>\n");
    return 2;
  }
  HttpEndpoint docker_endpoint;
  docker_endpoint.unix_socket = std::string(docker_host).substr(std::string("unix://").size());
  HttpClient docker(docker_endpoint);
  HttpEndpoint consul_endpoint;
  consul_endpoint.base_url = absl::StrCat("http://", consul);
  HttpClient agent(consul_endpoint);

  HttpRequest list;
  list.path = "/v1.41/containers/json";
  absl::StatusOr<HttpResponse> listed = docker.Send(list);
  if (!listed.ok() || listed->status != 200) {
    std::fprintf(stderr, "list failed\n");
    return 1;
  }
  absl::StatusOr<std::vector<docker::ContainerSummary>> containers =
      docker::ParseContainerListJson(listed->body, listed->body.capacity());
  if (!containers.ok()) {
    std::fprintf(stderr, "list: %s\n", std::string(containers.status().message()).c_str());
    return 1;
  }
  // Per container: inspect sent -> register answered (with -workers 1, the round trips of a
  // single start with nothing queued, the floor under start -> register latency).
  std::vector<double> micros(containers->size());
  std::atomic<size_t> next{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&] {
      for (size_t i = next++; i < containers->size(); i = next++) {
        const absl::Time started = absl::Now();
        HttpRequest inspect;
        inspect.path = absl::StrCat("/v1.41/containers/", (*containers)[i].id, "/json");
        absl::StatusOr<HttpResponse> got = docker.Send(inspect);
        HttpRequest put;
        put.method = "PUT";
        put.path = "/v1/agent/service/register";
        put.headers.push_back("Content-Type: application/json");
        put.body = RegisterBody(static_cast<int>(i));
        absl::StatusOr<HttpResponse> written = agent.Send(put);
        micros[i] = absl::ToDoubleMicroseconds(absl::Now() - started);
        if (!got.ok() || got->status != 200 || !written.ok() || written->status != 200) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::sort(micros.begin(), micros.end());
  const double p50_ms = micros.empty() ? 0 : micros[micros.size() / 2] / 1000;
  const double p99_ms = micros.empty() ? 0 : micros[micros.size() * 99 / 100] / 1000;
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double cpu_s = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                       static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  // binary_bench reads this line.
  std::printf(
      "floor: %zu containers, %d failed, cpu_s=%.3f user_s=%.3f peak_kib=%ld "
      "context_switches=%ld exchange_p50_ms=%.3f exchange_p99_ms=%.3f\n",
      containers->size(), failures.load(), cpu_s,
      static_cast<double>(usage.ru_utime.tv_sec) + usage.ru_utime.tv_usec / 1e6, usage.ru_maxrss,
      usage.ru_nvcsw + usage.ru_nivcsw, p50_ms, p99_ms);
  return failures.load() == 0 ? 0 : 1;
}

}  // namespace
}  // namespace registrator

int main(int argc, char** argv) { return registrator::Main(argc, argv); }
