// The daemon's own small HTTP endpoint (opt-in with -http ADDR): /health for supervisors and
// load balancers, /metrics in Prometheus text format, /services listing what this host has
// registered. Served by cpp-httplib on its own threads; it only reads the bridge's state.
#ifndef REGISTRATOR_STATUS_SERVER_H_
#define REGISTRATOR_STATUS_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "registrator/bridge.h"

namespace httplib {
class Server;
}

namespace registrator {

class StatusServer {
 public:
  // `backend_ping` is called at most every `ping_cache` by /health.
  StatusServer(const Bridge* bridge, std::function<absl::Status()> backend_ping,
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
  const Bridge* const bridge_;
  const std::function<absl::Status()> backend_ping_;
  const absl::Duration ping_cache_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  absl::Mutex mu_;
  absl::Time last_ping_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Status last_ping_status_ ABSL_GUARDED_BY(mu_);
  bool ping_in_flight_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace registrator

#endif  // REGISTRATOR_STATUS_SERVER_H_
