// The daemon's own small HTTP endpoint (opt-in with -http ADDR): /health for supervisors and
// load balancers, /metrics in Prometheus text format, /services listing what this host has
// registered. Served by cpp-httplib on its own threads; it only reads the bridge's state.
#ifndef REGISTRATOR_STATUS_SERVER_H_
#define REGISTRATOR_STATUS_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "registrator/bridge.h"

namespace httplib {
class Server;
}

namespace registrator {

// One registry's view for the status pages (several registries: one per follower bridge).
struct RegistryStatus {
  std::string name;  // The redacted URI: the `registry` label and the /health line.
  const Bridge* bridge = nullptr;
  std::function<absl::Status()> ping;  // Called at most every ping_cache by /health.
};

class StatusServer {
 public:
  // One registry: `bridge` has both sides; the pages are upstream-shaped (no registry label).
  // `backend_ping` is called at most every `ping_cache` by /health.
  StatusServer(const Bridge* bridge, std::function<absl::Status()> backend_ping,
               absl::Duration ping_cache = absl::Seconds(5));
  // Several registries: `docker_side` is the tracker (events, inspects, Docker connection);
  // every per-registry metric carries a registry="<name>" label, /health has one line per
  // registry (their pings run in parallel) and /services tags each entry with its registry.
  StatusServer(const Bridge* docker_side, std::vector<RegistryStatus> registries,
               absl::Duration ping_cache = absl::Seconds(5));
  ~StatusServer();
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  // Listens on "host:port" ("[::1]:9090" for IPv6; port 0 picks a free one) and serves on a
  // background thread. INVALID_ARGUMENT for a bad address, UNAVAILABLE when it cannot bind.
  absl::Status Start(const std::string& address);
  void Stop();
  int port() const { return port_; }

  // The response bodies, for tests and for the handlers.
  std::string MetricsText() const;
  std::string ServicesJson() const;
  // 200 with "ok" or 503 with the reasons.
  std::pair<int, std::string> Health();

 private:
  struct PingCache {
    absl::Time last = absl::InfinitePast();
    absl::Status status;
    bool in_flight = false;
  };
  // Each registry's ping, answered from its cache unless it is due (see Health()).
  std::vector<absl::Status> PingAll();

  const Bridge* const bridge_;  // The Docker side (the one bridge with one registry).
  const std::vector<RegistryStatus> registries_;
  const bool labelled_;  // Several registries: label per-registry metrics.
  const absl::Duration ping_cache_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  absl::Mutex mu_;
  std::vector<PingCache> pings_ ABSL_GUARDED_BY(mu_);
};

}  // namespace registrator

#endif  // REGISTRATOR_STATUS_SERVER_H_
