// The bridge keeps the backend equal to what is running, like a controller: Docker events, the
// resync timer, stream reconnects and write retries only mark containers dirty; workers then
// inspect each dirty container, derive its services and write only the differences.
//
// Event path: Docker event -> OnEvent marks the container dirty -> a worker inspects it ->
// derive() -> Register/Deregister on the adapter. One container is handled by at most one
// worker at a time, so its events apply in order; no lock is held across a network call.
#ifndef REGISTRATOR_BRIDGE_H_
#define REGISTRATOR_BRIDGE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "docker_client/docker_api.h"
#include "docker_client/types.h"
#include "registrator/model/registry_adapter.h"
#include "registrator/model/service.h"

namespace registrator {

struct BridgeConfig {
  // This host's name: the first part of generated service IDs; -cleanup only touches IDs
  // that start with it.
  std::string hostname;
  // -deregister=on-success: keep services of a container that exited non-zero (not by signal).
  bool deregister_on_success = false;
  // -cleanup: also remove backend entries of this host that no live container explains.
  bool cleanup = false;
  // -resync seconds (0 = never) and -ttl-refresh seconds (0 = never); drive the scheduler.
  absl::Duration resync_interval = absl::ZeroDuration();
  absl::Duration refresh_interval = absl::ZeroDuration();
  // Remove every registered service when the bridge stops (-deregister-on-exit).
  bool deregister_on_exit = false;
  // Parallel workers for inspect + backend writes.
  int workers = 8;
  // Containers waiting to be reconciled; past this, events are dropped and a resync scheduled.
  size_t max_pending = 65536;
  // Retry backoff for failed backend writes and Docker inspects.
  absl::Duration retry_initial = absl::Milliseconds(500);
  absl::Duration retry_max = absl::Seconds(60);
};

// Turns one inspected container into the services it should have. Pure; may log warnings.
using ServiceDeriver = std::function<std::vector<Service>(const docker::Container& container)>;

struct BridgeStats {
  uint64_t events = 0;
  uint64_t events_dropped = 0;
  uint64_t reconciles = 0;  // containers processed
  uint64_t registers = 0;
  uint64_t deregisters = 0;
  uint64_t write_failures = 0;  // register_failures + deregister_failures
  uint64_t register_failures = 0;
  uint64_t deregister_failures = 0;
  uint64_t retries = 0;
  uint64_t resyncs = 0;
  uint64_t refreshes = 0;
  uint64_t docker_reconnects = 0;
  uint64_t services = 0;  // currently registered
  absl::Time last_sync = absl::InfinitePast();
  bool docker_connected = false;
  absl::Status last_backend_error;
  absl::Time last_backend_ok = absl::InfinitePast();
};

class Bridge : public docker::EventSink {
 public:
  Bridge(docker::DockerApi* docker, RegistryAdapter* adapter, ServiceDeriver derive,
         BridgeConfig config, std::function<absl::Time()> clock = nullptr);
  ~Bridge() override;
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;

  // Starts the workers and the scheduler (resync, TTL refresh, retries).
  void Start();
  // Stops taking work, lets in-flight writes finish, joins every thread. With
  // deregister_on_exit, removes what is registered first. Idempotent.
  void Stop();

  // docker::EventSink: called from the event stream's thread; never blocks on the network.
  void OnEvent(const docker::Event& event) override;
  void OnConnected(bool first) override;
  void OnDisconnected(const absl::Status& why) override;

  // Schedules a full resync: list running containers, reconcile them, compare with the backend
  // (rewrite what drifted; with cleanup, remove dangling entries of this host).
  void RequestResync();

  // Runs one resync now on the caller's thread and waits until every container it found dirty
  // has been reconciled (or `timeout`). For tests and for the first sync.
  absl::Status SyncNow(absl::Duration timeout = absl::Seconds(60));
  // Renews TTLs of every registered service that is not kept for expiry.
  absl::Status RefreshNow();
  // Requeues the failed services whose retry time has come (by the injected clock).
  void RetryDueNow();
  // True once nothing is dirty, in flight or waiting for a resync.
  bool WaitIdle(absl::Duration timeout);

  BridgeStats stats() const;
  // What this bridge believes is registered, sorted by service ID.
  std::vector<Service> RegisteredServices() const;

 private:
  struct Entry {
    Service service;
    std::string fingerprint;  // Of what we wrote; empty until written.
    bool registered = false;  // The backend holds `fingerprint`.
    bool kept = false;        // Container exited non-zero with on-success: left to expire.
    bool deleting = false;    // To be deregistered (retried until it succeeds).
    std::string rejected;     // Fingerprint the backend rejected as invalid: not retried.
    int failures = 0;
    absl::Time next_retry = absl::InfinitePast();
  };
  struct ContainerRecord {
    std::string name;
    std::vector<std::string> service_ids;  // Entries owned by this container.
    // Running at the last inspect. Running containers stay tracked even without services, so a
    // resync does not inspect them again.
    bool running = false;
  };
  enum class Work { kInspect, kRewrite };

  void WorkerLoop();
  void SchedulerLoop();
  // Marks a container dirty; `inspect` false means its derived services are still current and
  // only the backend needs to catch up (retry, drift).
  void MarkDirtyLocked(const std::string& id, Work work) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ProcessContainer(const std::string& id, Work work);
  // Makes `wanted` the services of container `id` (empty = none) and writes the differences.
  void Apply(const std::string& id, const std::string& name, bool running,
             std::vector<Service> wanted);
  // -deregister=on-success after a failed exit: keep the services but stop refreshing them.
  void Keep(const std::string& id, const std::string& name, int64_t exit_code);
  // Writes what is owed for container `id` without inspecting it again (retry, drift).
  void Rewrite(const std::string& id);
  void Write(const std::string& id, const std::vector<std::pair<Service, std::string>>& to_register,
             const std::vector<Service>& to_deregister);
  void WriteRegister(const std::string& id, const Service& service, const std::string& fingerprint);
  void WriteDeregister(const Service& service);
  void RecordFailure(Entry* entry, const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RunResync();
  bool WaitUntilDrained(absl::Duration timeout, bool include_resync);
  void DeregisterAll();
  // Upstream's pattern for IDs registrator generated on this host: the only ones -cleanup
  // may remove.
  bool IsThisHostsId(absl::string_view id) const;
  absl::Time Now() const;

  docker::DockerApi* const docker_;
  RegistryAdapter* const adapter_;
  const ServiceDeriver derive_;
  const BridgeConfig config_;
  const std::function<absl::Time()> clock_;

  mutable absl::Mutex mu_;
  absl::CondVar work_cv_;   // Workers: queue_ or stopping_ changed.
  absl::CondVar sched_cv_;  // Scheduler: a resync was requested or stopping_ changed.
  absl::CondVar idle_cv_;   // Signalled when a container finishes.
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool resync_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool resync_running_ ABSL_GUARDED_BY(mu_) = false;
  // Dirty containers in arrival order, with the strongest work asked for each.
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Work> dirty_ ABSL_GUARDED_BY(mu_);
  // Containers a worker is processing, and those made dirty again meanwhile.
  absl::flat_hash_set<std::string> in_flight_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, ContainerRecord> containers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  // What the backend held at the last listing, by service ID: lets a fresh start or a resync
  // skip writes the backend already has.
  absl::flat_hash_map<std::string, std::string> backend_snapshot_ ABSL_GUARDED_BY(mu_);
  // Containers whose inspect failed (Docker unreachable): retried with backoff.
  absl::flat_hash_map<std::string, absl::Time> inspect_retry_ ABSL_GUARDED_BY(mu_);
  // The earliest retry due (injected clock), so the scheduler sleeps exactly until then.
  absl::Time earliest_retry_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  BridgeStats stats_ ABSL_GUARDED_BY(mu_);

  std::vector<std::thread> workers_;
  std::thread scheduler_;
};

}  // namespace registrator

#endif  // REGISTRATOR_BRIDGE_H_
