// The bridge keeps the backend equal to what is running, like a controller: Docker events, the
// resync timer, stream reconnects and write retries only mark things dirty; workers then make
// them right. Two kinds of work, each handled by at most one worker at a time:
//   - a container: inspect it, derive its services, and update its claims on service IDs;
//   - a service ID: make the backend hold exactly what its owner wants (one write).
//
// Ownership: every service ID is claimed by the containers whose derivation yields it. Among the
// running claimants the most recently created container owns the ID (ties: the larger container
// ID); its service is what the backend must hold. A container that exited non-zero under
// -deregister=on-success keeps a "kept" claim: the backend entry it left is neither rewritten
// nor refreshed nor removed, until another container owns the ID or the container goes. An ID
// nobody claims any more is deregistered. Because writes are per ID, a deregistration in flight
// for an old container and a registration for its successor can never cross: the worker finishes
// one and then writes what the ID's owner wants now.
//
// No lock is held across a network call. Stop() is bounded by BridgeConfig::stop_timeout.
//
// Several registries (-extra-registry; README "Several registries at once"): one Bridge without
// an adapter, the tracker, owns the Docker side (events, listing, inspect, derivation, container
// records, inspect retries) and hands every container's claims to one Bridge per registry, the
// followers, built without Docker: each owns its slots, writes, retries, TTL refresh, backend
// resync compare, cleanup and -deregister-on-exit, with its own workers and threads. Handing
// over claims never touches the network, so a follower whose backend hangs delays no other. A
// lone registry keeps one Bridge with both sides, as before.
#ifndef REGISTRATOR_BRIDGE_H_
#define REGISTRATOR_BRIDGE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
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
  // -resync seconds (0 = never) and -ttl-refresh seconds (0 = never). Each has its own thread:
  // a long resync never delays a refresh.
  absl::Duration resync_interval = absl::ZeroDuration();
  absl::Duration refresh_interval = absl::ZeroDuration();
  // -require-healthy: a container with a Docker healthcheck has services only while Docker
  // reports it "healthy" ("starting" and "unhealthy" deregister them).
  bool require_healthy = false;
  // Remove every registered service when the bridge stops (-deregister-on-exit).
  bool deregister_on_exit = false;
  // Parallel workers for inspects and backend writes (and for -deregister-on-exit).
  int workers = 8;
  // Containers waiting to be reconciled; past this, events are dropped and a resync scheduled.
  size_t max_pending = 65536;
  // Retry backoff (common/backoff.h, with jitter) for failed backend writes and Docker inspects.
  absl::Duration retry_initial = absl::Milliseconds(500);
  absl::Duration retry_max = absl::Seconds(60);
  // Stop() returns within about this long: calls in flight may finish and -deregister-on-exit
  // runs (in parallel) until then; whatever is still running then is aborted via cancel_calls and
  // RegistryAdapter::AbortCalls.
  absl::Duration stop_timeout = absl::Milliseconds(800);
  // Aborts every Docker and backend call in flight so that it returns promptly (main wires
  // AbortHttpTransfers()). Called by Stop() at its deadline, only if something still runs.
  std::function<void()> cancel_calls;
  // Seeds the retry jitter; 0 = from std::random_device. For reproducible tests.
  uint64_t jitter_seed = 0;
  // A follower's registry as logs name it (the redacted URI): every line logged on its threads
  // says which registry it is about.
  std::string log_context;
  // Drift watching (RegistryAdapter::StartWatch): after the adapter reports possible drift, the
  // backend is listed and compared at once, then not again before this long (or twice the last
  // listing's duration, whichever is longer, up to drift_max_interval): a burst of triggers (the
  // bridge's own writes at start) costs a bounded number of listings, and a deleted entry is
  // still back within about drift_max_interval plus a listing and a write.
  absl::Duration drift_min_interval = absl::Milliseconds(100);
  absl::Duration drift_max_interval = absl::Milliseconds(500);
  // A drift check asked for while the bridge's own writes are queued or running waits for them
  // to drain, at most this long: the watch then mostly reports those writes, and listing a large
  // backend again and again during a start-up burst cost a third of its CPU and its peak memory
  // (issue 14).
  absl::Duration drift_busy_max_delay = absl::Seconds(5);
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
  uint64_t health_updates = 0;          // Docker health written on its own (SetHealth)
  uint64_t health_update_failures = 0;  // not counted in write_failures
  uint64_t retries = 0;
  uint64_t resyncs = 0;
  uint64_t refreshes = 0;
  uint64_t drift_checks = 0;  // Backend listings the drift watch asked for.
  uint64_t docker_reconnects = 0;
  uint64_t services = 0;  // currently registered
  absl::Time last_sync = absl::InfinitePast();
  bool docker_connected = false;
  bool watching = false;  // The adapter watches the backend for drift (StartWatch succeeded).
};

class Bridge : public docker::EventSink {
 public:
  Bridge(docker::DockerApi* docker, RegistryAdapter* adapter, ServiceDeriver derive,
         BridgeConfig config, std::function<absl::Time()> clock = nullptr);
  ~Bridge() override;
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;

  // Several registries: `follower` (built with docker == nullptr and derive == nullptr) gets
  // the claims of every container this tracker (built with adapter == nullptr) derives, and a
  // backend resync (with -cleanup's pass) after every tracker resync. Before Start(); the
  // follower must outlive this bridge's Stop().
  void AddFollower(Bridge* follower);

  // Starts the workers, the resync, refresh, retry and drift-check threads, then the adapter's
  // drift watch (RegistryAdapter::StartWatch).
  void Start();
  // Stops taking work and returns within about config.stop_timeout: calls in flight may finish
  // until then, -deregister-on-exit removes what is registered in parallel until then, and
  // whatever still runs at the deadline is aborted (config.cancel_calls, adapter AbortCalls) and
  // joined. Stops the adapter's drift watch and clears its state-lost callback. Idempotent.
  void Stop();

  // docker::EventSink: called from the event stream's thread; never blocks on the network.
  void OnEvent(const docker::Event& event) override;
  void OnConnected(bool first) override;
  void OnDisconnected(const absl::Status& why) override;

  // Schedules a full resync: list running containers (re-inspect new ones and those whose
  // state fingerprint changed), compare with the backend (rewrite what drifted; with cleanup,
  // remove dangling entries of this host).
  void RequestResync();

  // Runs one resync now on the caller's thread and waits until every container it found dirty
  // has been reconciled (or `timeout`). For tests and for the first sync.
  absl::Status SyncNow(absl::Duration timeout = absl::Seconds(60));
  // Renews TTLs of every service whose owner is running and whose entry is written.
  absl::Status RefreshNow();
  // Requeues the failed writes and inspects whose retry time has come (by the injected clock).
  void RetryDueNow();
  // True once nothing is dirty, in flight or waiting for a resync.
  bool WaitIdle(absl::Duration timeout);

  BridgeStats stats() const;
  // A one-line summary of pending work (queue, dirty, busy, resync flags), for test reports.
  std::string PendingWork() const;
  // What this bridge believes is registered, sorted by service ID.
  std::vector<Service> RegisteredServices() const;

 private:
  // One container's claim on a service ID.
  struct Claim {
    std::string container_id;
    // Immutable and shared with Slot::held once written: a second copy of every registered
    // Service (~1 KB) was a quarter of the memory per container (issue 14). Never null once the
    // claim is set up (ClaimServices).
    std::shared_ptr<const Service> service;
    std::string fingerprint;
    std::string health_fingerprint;  // adapter_->HealthFingerprint(service); "" = none.
    absl::Time created = absl::InfinitePast();
    bool kept = false;  // Exited non-zero under on-success: leave its entry, do not refresh it.
  };
  // Everything about one service ID.
  struct Slot {
    std::vector<Claim> claims;
    // What the backend may hold for this ID (nullopt: nothing). `held_fingerprint` is exactly
    // what it holds, or "" when unknown (after a failed write, a lost state, a refresh that
    // raced a write): then any wanted state needs a write.
    // Immutable (replaced, never changed in place): after a register it is the owner's
    // Claim::service itself.
    std::shared_ptr<const Service> held;
    std::string held_fingerprint;
    // Entries this ID may still have at another key (RegistryAdapter::EntryKey): what the
    // backend held before the service's name or IP changed. Deregistered once the current
    // entry is written (a key-by-ID backend never has any).
    std::vector<Service> moved_from;
    // The HealthFingerprint of the Docker health the backend holds; "" when unknown or none.
    std::string held_health;
    bool managed = false;  // Claimed in this process: once nobody claims it, deregister it.
    bool doomed = false;   // -cleanup found it dangling: deregister it unless claimed.
    std::string rejected;  // Fingerprint the backend rejected as invalid: not retried.
    int failures = 0;
    absl::Time next_retry = absl::InfinitePast();
    uint64_t last_write = 0;  // write_seq_ when its last write finished.
    // A refresh ended while a delete of this slot was in flight and may have put the entry back
    // after it: a successful delete then proves nothing (RefreshNow sets it, ProcessSlot reads).
    bool refresh_raced = false;
    // The backend lost this host's entries while a write of this slot was in flight: a
    // register may have been applied before the loss, so its success proves nothing (the
    // state-lost callback sets it, ProcessSlot reads).
    bool state_lost_raced = false;
  };
  struct ContainerRecord {
    std::string name;
    // Running at the last inspect. Running containers stay tracked even without services.
    bool running = false;
    // docker::StateFingerprint of the last inspect while running: a resync re-inspects the
    // container only when its list entry's fingerprint differs.
    std::string state_fingerprint;
    std::vector<std::string> claimed;  // Service IDs this container claims.
  };
  struct InspectRetry {
    int failures = 0;
    absl::Time due = absl::InfiniteFuture();
  };
  // kDeregisterMoved: remove an entry of moved_from (the slot's current entry stays). kHealth:
  // the registration is what the owner wants, its Docker health is not.
  enum class Action { kNone, kRegister, kDeregister, kDeregisterMoved, kHealth };
  // Writes that happened while one refresh ran (see refreshes_).
  struct RefreshWatch {
    // Service ID -> the fingerprint written ("" = deregistered).
    absl::flat_hash_map<std::string, std::string> written;
    // IDs whose Docker health was written (a register writes it too).
    absl::flat_hash_set<std::string> health_written;
  };
  enum class Kind { kContainer, kSlot };

  void WorkerLoop();
  void ResyncLoop();
  void RefreshLoop();
  void RetryLoop();
  // Runs CheckBackend when the drift watch asked, rate-limited (BridgeConfig::drift_*).
  void DriftLoop();
  void ThreadExited();
  // Containers or service IDs queued or being processed (what WaitIdle waits for, resync aside).
  bool WritesPendingLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A piece of work finished (a worker's item, an exit deregister): wakes DeregisterOnExit when
  // a busy slot was released and, once nothing is dirty or busy, WaitUntilDrained and a drift
  // check waiting for the writes to drain.
  void SignalWorkDoneLocked(bool slot_released) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // RegistryAdapter::StartWatch's callback: any thread, any time until StopWatch returns.
  void OnDrift();
  // The backend half of a resync, for the drift watch: lists the backend and rewrites the slots
  // whose entries differ. No Docker calls; entries nobody here claims are never written.
  void CheckBackend();
  // Compares a backend listing (requested at write_seq_ `listed_at`) with the slots, marks
  // those whose entry differs dirty and keeps the rest as backend_snapshot_. Slots whose last
  // write failed are retried at once only with `retry_backed_off`.
  void ApplyListingLocked(std::vector<RegisteredService> held, uint64_t listed_at,
                          absl::string_view why, bool retry_backed_off)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // A network connect/disconnect of a tracked container: re-derive it (SERVICE_NETWORK).
  void OnNetworkEventLocked(const docker::Event& event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MarkContainerDirtyLocked(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MarkSlotDirtyLocked(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ProcessContainer(const std::string& id);
  void ProcessSlot(const std::string& id);
  // Deregisters `old`, an entry of the slot's moved_from.
  void ProcessMoved(const std::string& id, const Service& old);
  // Before registering `target`: if the backend holds this ID at another key, remember that
  // entry in moved_from; forget old entries at `target`'s key (the write replaces them).
  void NoteMoveLocked(Slot& slot, const Service& target) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds `old` to moved_from unless an entry at its key is already there.
  void AddMovedLocked(Slot& slot, const Service& old) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes `service`'s Docker health (Action::kHealth) for slot `id`, which the caller holds busy.
  void ProcessHealth(const std::string& id, const Service& service);

  // Replaces the claims of container `id` by `wanted` (running).
  void ClaimServices(const std::string& id, const docker::Container& container,
                     std::vector<Service> wanted);
  // -deregister=on-success after a failed exit: its claims become kept.
  void Keep(const std::string& id, const std::string& name, int64_t exit_code);
  // The container is gone or exited: it claims nothing any more.
  void Release(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A tracker's side of ClaimServices: the container record only; the followers get the rest.
  void TrackClaimsLocked(const std::string& id, const docker::Container& container,
                         const std::vector<Service>& wanted) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A follower: the tracker's resync is done; run a backend resync (and -cleanup, sparing the
  // services of `unresolved` container names).
  void OnTrackerSynced(absl::flat_hash_set<std::string> unresolved);
  // Names of listed running containers whose inspect keeps failing (-cleanup spares them).
  absl::flat_hash_set<std::string> UnresolvedNamesLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool is_tracker() const { return adapter_ == nullptr; }
  bool is_follower() const { return docker_ == nullptr; }
  // Runs `body` as a bridge thread (log context set, ThreadExited at the end).
  void SpawnLocked(std::function<void()> body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes `container_id`'s claim on `service_id` and lets the slot settle who owns it now.
  void DropClaimLocked(const std::string& service_id, const std::string& container_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The running claim that owns the slot, or null.
  static const Claim* Owner(const Slot& slot);
  // The write that makes the backend hold what the slot's owner wants (service to write in
  // `service`).
  Action Decide(const Slot& slot, const Service** service) const;
  Slot& SlotLocked(const std::string& service_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeEraseSlotLocked(const std::string& service_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration NextDelayLocked(int failures) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ScheduleRetryLocked(absl::Time due) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Status RunResync();
  void CleanupLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool WaitUntilDrained(absl::Duration timeout, bool include_resync);
  // Starts threads that deregister every claimed service until `deadline`; returns the IDs not
  // yet taken (final once Stop() has joined the threads).
  std::shared_ptr<std::deque<std::string>> DeregisterOnExit(absl::Time deadline);
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
  absl::CondVar work_cv_;   // Workers: a queue or stopping_ changed.
  absl::CondVar sched_cv_;  // Resync/refresh/retry threads: a request, a retry or stopping_.
  // WaitUntilDrained: the queued and running work drained, or a resync or drift check ended.
  // Not signalled per finished item: each one would wake the waiting resync twice per container
  // during start-up (a context switch costs ~10 us on this VM; issue 14).
  absl::CondVar idle_cv_;
  absl::CondVar slot_done_cv_;  // DeregisterOnExit: a busy slot was released.
  absl::CondVar stop_cv_;       // A thread exited.
  absl::CondVar drift_cv_;      // The drift-check thread: drift_requested_ or stopping_.
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int live_threads_ ABSL_GUARDED_BY(mu_) = 0;
  bool resync_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool resync_starting_ ABSL_GUARDED_BY(mu_) = false;
  int resyncs_running_ ABSL_GUARDED_BY(mu_) = 0;
  // The drift watch reported a change not yet looked at; a check is running.
  bool drift_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool drift_running_ ABSL_GUARDED_BY(mu_) = false;
  // The drift thread waits for the bridge's writes to drain (DriftLoop); a worker that drains
  // them wakes it.
  bool drift_waits_for_writes_ ABSL_GUARDED_BY(mu_) = false;
  // Dirty work in arrival order, a key queued once while dirty; backend writes (slots) go first.
  // With one queue, a start-up with 10,000 containers inspected all of them before the first
  // register: the backend stayed empty for a second or more, and a drift check meanwhile saw
  // every derived service as missing. Now a container's services are written right after its
  // inspect; the total work is the same.
  std::deque<std::string> container_queue_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> slot_queue_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> dirty_containers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> dirty_slots_ ABSL_GUARDED_BY(mu_);
  // Work a worker holds; made dirty again meanwhile, it is requeued when the worker is done.
  absl::flat_hash_set<std::string> busy_containers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> busy_slots_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, ContainerRecord> containers_ ABSL_GUARDED_BY(mu_);
  // Node-based: a Slot holds two Services (~1 KB); a flat table of 10,000 would move them all
  // on every growth and keep a third of its capacity empty at Slot size.
  absl::node_hash_map<std::string, Slot> slots_ ABSL_GUARDED_BY(mu_);
  // Entries the backend listed that no slot knows, by ID: a claim adopts them without a write
  // (restart over a populated backend), -cleanup removes this host's dangling ones.
  absl::flat_hash_map<std::string, RegisteredService> backend_snapshot_ ABSL_GUARDED_BY(mu_);
  // Counts finished writes; a listing requested at sequence S says nothing about a slot written
  // after S. Slots erased while a listing is in flight are remembered here (with the sequence)
  // so that listing cannot bring them back.
  uint64_t write_seq_ ABSL_GUARDED_BY(mu_) = 0;
  int listings_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, uint64_t> erased_at_ ABSL_GUARDED_BY(mu_);
  // Per refresh in progress: the IDs written since it took its snapshot. Refresh re-creates
  // missing entries (ZooKeeper, etcd) and re-asserts Docker health (Consul), so an ID removed or
  // replaced meanwhile is written again after the refresh, and so is a health written meanwhile.
  std::list<RefreshWatch> refreshes_ ABSL_GUARDED_BY(mu_);
  // Containers whose inspect failed (Docker unreachable): retried with backoff.
  absl::flat_hash_map<std::string, InspectRetry> inspect_retry_ ABSL_GUARDED_BY(mu_);
  // Names of the running containers at the last listing (for -cleanup's guard).
  absl::flat_hash_map<std::string, std::string> listed_names_ ABSL_GUARDED_BY(mu_);
  // The earliest retry due (injected clock), so the retry thread sleeps exactly until then.
  absl::Time earliest_retry_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  std::minstd_rand rng_ ABSL_GUARDED_BY(mu_);
  BridgeStats stats_ ABSL_GUARDED_BY(mu_);
  // A tracker's followers (fixed before Start; lock order: tracker mu_, then a follower's).
  std::vector<Bridge*> followers_;
  // A follower: no slot is written before its first backend listing has answered (or failed),
  // so what the backend already holds is adopted without a write, as in a lone bridge's sync.
  bool holding_writes_ ABSL_GUARDED_BY(mu_) = false;
  // A follower: the tracker has finished a resync (so -cleanup knows every container's claims)
  // and the container names it could not inspect.
  bool tracker_synced_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<std::string> tracker_unresolved_ ABSL_GUARDED_BY(mu_);

  std::vector<std::thread> threads_;
};

}  // namespace registrator

#endif  // REGISTRATOR_BRIDGE_H_
