// A fast fake Docker Engine for benchmarks that run the registrator binary as a child process:
// unix socket, unlimited keep-alive, /_ping, /version, the container list, inspect and a live
// /events stream, for containers 0..n made from one inspect sample (id, name and HostPort
// substituted). Shared by binary_bench and watch_consul_bench.
#ifndef BENCH_FAKE_ENGINE_H_
#define BENCH_FAKE_ENGINE_H_

#include <httplib.h>
#include <sys/socket.h>

#include <cstdint>
#include <deque>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "testing/process.h"

namespace registrator::bench {

inline constexpr char kSampleId[] =
    "d7fc15186570a5c8affd413e7e5e09cc9dea217d68a3292470e0cfdca36fde24";

inline std::string Id(int i) { return absl::StrFormat("%08x%s", i, std::string(56, 'e')); }
inline std::string Name(int i) { return absl::StrCat("app-", i); }

// The engine: container i's inspect body is the sample with its id, name and HostPort
// substituted, made on request (20,000 cycles would otherwise hold 100 MB of bodies here).
class Engine {
 public:
  explicit Engine(std::string sample) : sample_(std::move(sample)) {
    server_.set_address_family(AF_UNIX);
    server_.set_keep_alive_timeout(1);
    server_.set_keep_alive_max_count(1000000);  // dockerd keeps connections alive.
    server_.new_task_queue = [] { return new httplib::ThreadPool(32); };
    server_.Get("/_ping", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("OK", "text/plain");
    });
    server_.Get("/version", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"Version":"20.10.24","ApiVersion":"1.41","MinAPIVersion":"1.12"})",
                      "application/json");
    });
    server_.Get("/v1.41/containers/json", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(ListBody(), "application/json");
    });
    server_.Get(R"(/v1\.41/containers/([0-9a-f]+)/json)",
                [this](const httplib::Request& req, httplib::Response& res) {
                  const std::string id = req.matches[1].str();
                  int i = -1;
                  if (id.size() == 64) {
                    uint32_t v = 0;
                    if (absl::SimpleHexAtoi(id.substr(0, 8), &v)) i = static_cast<int>(v);
                  }
                  bool running = false;
                  {
                    absl::MutexLock lock(&mu_);
                    running = i >= 0 && running_.count(i) > 0;
                  }
                  if (!running) {
                    res.status = 404;
                    res.set_content(R"({"message":"No such container"})", "application/json");
                    return;
                  }
                  res.set_content(Inspect(i), "application/json");
                });
    server_.Get(R"(/v1\.41/events)", [this](const httplib::Request&, httplib::Response& res) {
      int generation = 0;
      {
        absl::MutexLock lock(&mu_);
        ++streams_;
        generation = generation_;
      }
      res.set_chunked_content_provider(
          "application/json", [this, generation](size_t, httplib::DataSink& sink) {
            absl::MutexLock lock(&mu_);
            auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
              return stopping_ || generation != generation_ || !events_.empty();
            };
            // The bench's own wake-ups, not registrator's: httplib calls again on return.
            mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(200));
            // A stream of an earlier registrator process must not take this one's events.
            if (stopping_ || generation != generation_) return false;
            while (!events_.empty()) {
              std::string chunk = std::move(events_.front());
              events_.pop_front();
              if (!sink.write(chunk.data(), chunk.size())) return false;
            }
            return true;
          });
    });
  }
  ~Engine() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  bool Start() {
    if (!server_.bind_to_port(socket_path_.c_str(), 80)) return false;
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) absl::SleepFor(absl::Milliseconds(1));
    return true;
  }
  std::string host() const { return "unix://" + socket_path_; }

  void SetRunning(int first, int count, bool running) {
    absl::MutexLock lock(&mu_);
    for (int i = first; i < first + count; ++i) {
      if (running) {
        running_.insert(i);
      } else {
        running_.erase(i);
      }
    }
    list_body_.clear();
  }
  // Queues one event line for the open stream; returns when it is queued (the stream thread
  // writes it at once).
  void Event(int i, const std::string& action) {
    const int64_t nanos = absl::GetCurrentTimeNanos();
    std::string line = absl::StrCat(
        R"({"status":")", action, R"(","id":")", Id(i),
        R"(","from":"local/busybox:test","Type":"container","Action":")", action,
        R"(","Actor":{"ID":")", Id(i), R"(","Attributes":{"image":"local/busybox:test","name":")",
        Name(i), R"("}},"scope":"local","time":)", nanos / 1000000000, R"(,"timeNano":)", nanos,
        "}\n");
    absl::MutexLock lock(&mu_);
    events_.push_back(std::move(line));
  }
  int streams() {
    absl::MutexLock lock(&mu_);
    return streams_;
  }
  void ClearEvents() {
    absl::MutexLock lock(&mu_);
    events_.clear();
    streams_ = 0;
    ++generation_;
  }

 private:
  std::string Inspect(int i) const {
    return absl::StrReplaceAll(sample_,
                               {{kSampleId, Id(i)},
                                {std::string(kSampleId).substr(0, 12), Id(i).substr(0, 12)},
                                {"\"/files1\"", absl::StrCat("\"/", Name(i), "\"")},
                                {"\"18080\"", absl::StrCat("\"", Port(i), "\"")}});
  }
  // The files1 entry of testdata/docker/containers-json-sample.json (what dockerd lists for the
  // sample: ports, labels, network mode and networks, so the state fingerprint of the list
  // matches the inspect's and a resync re-inspects nothing), with i's id, name and port.
  static std::string ListEntry(int i) {
    return absl::StrCat(
        R"({"Id":")", Id(i), R"(","Names":["/)", Name(i),
        R"("],"Image":"local/busybox:test","ImageID":"sha256:e69c3d5ac5da0c886ba047b6533cdbb2d152c499eb8f57864ef1a3f489c85b16",)",
        R"("Command":"/bin/busybox httpd -f -p 80 -h /www","Created":1795767505,)",
        R"("Ports":[{"IP":"127.0.0.1","PrivatePort":80,"PublicPort":)", Port(i),
        R"(,"Type":"tcp"}],"Labels":{"com.example.role":"web"},"State":"running",)",
        R"("Status":"Up 6 seconds","HostConfig":{"NetworkMode":"default"},)",
        R"("NetworkSettings":{"Networks":{"bridge":{"IPAMConfig":null,"Links":null,)",
        R"("Aliases":null,"NetworkID":"1629c71c5153d9414ad45d9ea4bafa6e022b6f753b4cfc8132be282eedfb8299",)",
        R"("EndpointID":"0a037ebf77a359e2764a884bc83001218c86859b79f7371ca5d1bf039a4a22be",)",
        R"("Gateway":"172.17.0.1","IPAddress":"172.17.0.2","IPPrefixLen":16,"IPv6Gateway":"",)",
        R"("GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"MacAddress":"02:42:ac:11:00:02",)",
        R"("DriverOpts":null}}},"Mounts":[]})");
  }
  static int Port(int i) { return 20000 + i % 40000; }
  std::string ListBody() {
    absl::MutexLock lock(&mu_);
    if (list_body_.empty()) {
      std::string body = "[";
      for (int i : running_) {
        if (body.size() > 1) body.push_back(',');
        body.append(ListEntry(i));
      }
      body.push_back(']');
      list_body_ = std::move(body);
    }
    return list_body_;
  }

  const std::string sample_;
  fakes::TempDir dir_{"bb"};
  const std::string socket_path_ = dir_.path() + "/docker.sock";
  httplib::Server server_;
  std::thread thread_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::set<int> running_ ABSL_GUARDED_BY(mu_);
  std::string list_body_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> events_ ABSL_GUARDED_BY(mu_);
  int streams_ ABSL_GUARDED_BY(mu_) = 0;
  int generation_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace registrator::bench

#endif  // BENCH_FAKE_ENGINE_H_
