// The bridge (see bridge.h): dirty marking, the container and service-ID workers, resync,
// refresh and retry loops, and the bounded stop.
#include "registrator/bridge.h"

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "docker_client/fingerprint.h"
#include "registrator/common/backoff.h"
#include "registrator/common/log.h"

namespace registrator {
namespace {

// Actions after which a container's services may have changed ("health_status: <status>"
// changes their Docker health and, with -require-healthy, whether they exist). Others (exec_*,
// attach, top, kill, stop...) are followed by one of these when they matter; network
// connect/disconnect arrive as network events (OnNetworkEventLocked), and what has no event at
// all is found by the resync's fingerprints.
bool IsRelevantAction(absl::string_view action) {
  return action == "start" || action == "restart" || action == "unpause" || action == "die" ||
         action == "destroy" || action == "rename" || absl::StartsWith(action, "health_status");
}

std::string ShortId(absl::string_view id) { return std::string(id.substr(0, 12)); }

bool IsContainerNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
}

// Docker's "Created" (RFC 3339 with nanoseconds); unknown sorts first.
absl::Time ParseCreated(const std::string& text) {
  absl::Time t;
  std::string error;
  if (text.empty() || !absl::ParseTime(absl::RFC3339_full, text, &t, &error)) {
    return absl::InfinitePast();
  }
  return t;
}

// While a worker processes a container, the slot work it queues is not signalled right away:
// the worker itself takes the first item when it returns to the queue, so a start's register
// runs on the thread that inspected the container, without waking a second worker (a futex
// wake and a context switch on the start -> register path). Further items are signalled when
// the container is done. -1: not deferring (any other thread, or slot work).
thread_local int t_deferred_signals = -1;

// Names a follower's registry in the lines logged in its scope, on a thread that is not its own
// (the tracker handing over claims, an adapter's callback). Slot work queued meanwhile is
// signalled at once: the deferral above only helps the bridge whose worker this thread is, and
// a follower's workers would never hear of it otherwise.
class ScopedLogContext {
 public:
  explicit ScopedLogContext(const std::string& context)
      : previous_(ThreadLogContext()), deferred_(t_deferred_signals) {
    SetThreadLogContext(context);
    t_deferred_signals = -1;
  }
  ~ScopedLogContext() {
    SetThreadLogContext(std::move(previous_));
    t_deferred_signals = deferred_;
  }
  ScopedLogContext(const ScopedLogContext&) = delete;
  ScopedLogContext& operator=(const ScopedLogContext&) = delete;

 private:
  std::string previous_;
  int deferred_;
};

// Gives the memory of a large listing back to the kernel once it is freed. Without this, glibc
// keeps freed heap pages resident; the next listing's buffers rarely fit the holes exactly, so
// each drift check after a 10,000-container start-up raised the peak RSS further (62.8 MB
// against 40 at the last register, issue 14). Small listings (a resync of 1,000 every second)
// keep their pages: faulting them in anew each time cost 2.5 times the CPU of the resync.
struct ReleaseAfterLargeListing {
  static constexpr size_t kLarge = 2000;
  size_t entries = 0;
  ReleaseAfterLargeListing() = default;
  ReleaseAfterLargeListing(const ReleaseAfterLargeListing&) = delete;
  ReleaseAfterLargeListing& operator=(const ReleaseAfterLargeListing&) = delete;
  ~ReleaseAfterLargeListing() {
    if (entries >= kLarge) malloc_trim(0);
  }
};

}  // namespace

Bridge::Bridge(docker::DockerApi* docker, RegistryAdapter* adapter, ServiceDeriver derive,
               BridgeConfig config, std::function<absl::Time()> clock)
    : docker_(docker),
      adapter_(adapter),
      derive_(std::move(derive)),
      config_(std::move(config)),
      clock_(clock ? std::move(clock) : [] { return absl::Now(); }),
      rng_(config_.jitter_seed != 0 ? config_.jitter_seed : std::random_device{}()) {
  if (adapter_ == nullptr) return;  // A tracker: the Docker side only.
  if (docker_ == nullptr) {
    absl::MutexLock lock(&mu_);
    holding_writes_ = true;  // Until the first backend listing (RunResync).
  }
  adapter_->SetStateLostCallback([this] {
    ScopedLogContext context(config_.log_context);
    REG_LOG_WARN("backend lost this host's entries; rewriting everything");
    absl::MutexLock lock(&mu_);
    backend_snapshot_.clear();
    for (auto& [service_id, slot] : slots_) {
      // Some entries may have survived (a Consul agent restores its services): whatever the
      // backend holds now is unknown, so every slot writes what its owner wants once more.
      slot.held_fingerprint.clear();
      slot.held_health.clear();
      slot.failures = 0;
      if (busy_slots_.contains(service_id)) slot.state_lost_raced = true;
      MarkSlotDirtyLocked(service_id);
    }
  });
}

Bridge::~Bridge() { Stop(); }

absl::Time Bridge::Now() const { return clock_(); }

void Bridge::AddFollower(Bridge* follower) {
  absl::MutexLock lock(&mu_);
  if (started_) return;
  followers_.push_back(follower);
}

void Bridge::SpawnLocked(std::function<void()> body) {
  ++live_threads_;
  threads_.emplace_back([this, body = std::move(body)] {
    SetThreadLogContext(config_.log_context);
    body();
  });
}

void Bridge::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_ || stopping_) return;
    started_ = true;
    // A follower lists its backend at once: what it holds is adopted, not rewritten (the tracker
    // asks again after each of its resyncs, which also runs -cleanup).
    if (is_follower()) resync_requested_ = true;
    for (int i = 0; i < std::max(1, config_.workers); ++i) SpawnLocked([this] { WorkerLoop(); });
    SpawnLocked([this] { ResyncLoop(); });
    SpawnLocked([this] { RefreshLoop(); });
    SpawnLocked([this] { RetryLoop(); });
    // A tracker (several registries) has no backend to watch.
    if (adapter_ == nullptr) return;
    // Always there (it sleeps unless the watch reports): Stop() then joins a fixed set of threads
    // however StartWatch turns out.
    SpawnLocked([this] { DriftLoop(); });
  }
  // Not under mu_: an adapter may report drift from within StartWatch.
  const absl::Status watch = adapter_->StartWatch([this] { OnDrift(); });
  if (watch.ok()) {
    REG_LOG_INFO(
        "watching the backend: entries changed behind registrator's back are repaired "
        "at once");
    absl::MutexLock lock(&mu_);
    stats_.watching = true;
  } else if (absl::IsUnimplemented(watch)) {
    REG_LOG_DEBUG("backend cannot be watched (", watch.message(),
                  "); drift is repaired by -resync and -ttl-refresh only");
  } else {
    REG_LOG_WARN("cannot watch the backend: ", watch.message(),
                 "; drift is repaired by -resync and -ttl-refresh only");
  }
}

void Bridge::OnDrift() {
  absl::MutexLock lock(&mu_);
  if (drift_requested_ || stopping_) return;
  drift_requested_ = true;
  drift_cv_.Signal();
}

void Bridge::DriftLoop() {
  // Real time, like the resync period: the rate limit is about the backend's load.
  absl::Time not_before = absl::InfinitePast();
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      // While the bridge's own writes are queued or running, the watch mostly reports those
      // (10,000 at start): a listing then is wasted work (a 10,000-service listing costs ~0.1
      // CPU-s and tens of MB) and is soon out of date. So a check waits for them to drain, but
      // no longer than drift_busy_max_delay after it was asked for: under endless churn drift
      // is still repaired.
      absl::Time busy_until = absl::InfiniteFuture();
      while (true) {
        if (stopping_) break;
        if (!drift_requested_) {
          busy_until = absl::InfiniteFuture();
          drift_cv_.Wait(&mu_);
          continue;
        }
        const absl::Time now = absl::Now();
        if (now < not_before) {
          drift_cv_.WaitWithDeadline(&mu_, not_before);
          continue;
        }
        // (Held writes wait for a listing themselves: nothing to wait for.)
        if (holding_writes_ || !WritesPendingLocked()) break;
        if (busy_until == absl::InfiniteFuture()) busy_until = now + config_.drift_busy_max_delay;
        if (now >= busy_until) break;
        drift_waits_for_writes_ = true;
        drift_cv_.WaitWithDeadline(&mu_, busy_until);
        drift_waits_for_writes_ = false;
      }
      if (stopping_) break;
      // Triggers from now on ask for another check: they may report what this listing misses.
      drift_requested_ = false;
      drift_running_ = true;
    }
    const absl::Time started = absl::Now();
    CheckBackend();
    const absl::Time finished = absl::Now();
    // A slow listing (a large backend) is asked for less often, so that listings never take more
    // than about a third of the time however busy the watch is.
    not_before =
        finished + std::clamp(2 * (finished - started), config_.drift_min_interval,
                              std::max(config_.drift_min_interval, config_.drift_max_interval));
    absl::MutexLock lock(&mu_);
    drift_running_ = false;
    idle_cv_.SignalAll();
  }
  ThreadExited();
}

void Bridge::CheckBackend() {
  ReleaseAfterLargeListing release;  // Declared first: runs after the listing is freed.
  uint64_t listed_at = 0;
  {
    absl::MutexLock lock(&mu_);
    listed_at = write_seq_;
    ++listings_in_flight_;
  }
  absl::StatusOr<std::vector<RegisteredService>> held = adapter_->Services();
  if (held.ok()) release.entries = held->size();
  if (!held.ok()) {
    // The watch saw the backend moments ago; when it breaks it reports again once it is back,
    // and -resync/-ttl-refresh still run meanwhile.
    REG_LOG_WARN("drift check: listing the backend failed: ", held.status().message());
  }
  absl::MutexLock lock(&mu_);
  --listings_in_flight_;
  ++stats_.drift_checks;
  if (held.ok())
    ApplyListingLocked(*std::move(held), listed_at, "drift", /*retry_backed_off=*/false);
  if (listings_in_flight_ == 0) erased_at_.clear();
}

bool Bridge::WritesPendingLocked() const {
  return !dirty_containers_.empty() || !dirty_slots_.empty() || !busy_containers_.empty() ||
         !busy_slots_.empty();
}

void Bridge::ThreadExited() {
  absl::MutexLock lock(&mu_);
  --live_threads_;
  stop_cv_.SignalAll();
}

void Bridge::Stop() {
  const absl::Time deadline = absl::Now() + config_.stop_timeout;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    work_cv_.SignalAll();
    sched_cv_.SignalAll();
    idle_cv_.SignalAll();
    slot_done_cv_.SignalAll();
    drift_cv_.SignalAll();
  }
  // Workers finish the call they are in and take no more work; queued work is dropped: the
  // next start resyncs from scratch anyway.
  std::shared_ptr<std::deque<std::string>> left;
  if (config_.deregister_on_exit) left = DeregisterOnExit(deadline);
  // While those run: after this the adapter never calls OnDrift (which only sets a flag now).
  if (adapter_ != nullptr) adapter_->StopWatch();
  bool stuck = false;
  {
    absl::MutexLock lock(&mu_);
    while (live_threads_ > 0 && !stop_cv_.WaitWithDeadline(&mu_, deadline)) {
    }
    stuck = live_threads_ > 0;
    if (stuck) {
      REG_LOG_WARN("stopping: ", live_threads_, " threads still busy after ",
                   absl::FormatDuration(config_.stop_timeout), "; aborting their calls");
    }
  }
  if (stuck) {
    if (config_.cancel_calls) config_.cancel_calls();
    // Backend calls that are not HTTP transfers (ZooKeeper's) are only reached this way.
    if (adapter_ != nullptr) adapter_->AbortCalls();
  }
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  if (left != nullptr && !left->empty()) {
    REG_LOG_WARN("stopping: ", left->size(),
                 " services left registered (-deregister-on-exit ran out of time)");
  }
  // The adapter outlives the bridge in main: it must not call back into a destroyed bridge.
  if (adapter_ != nullptr) adapter_->SetStateLostCallback(nullptr);
}

std::shared_ptr<std::deque<std::string>> Bridge::DeregisterOnExit(absl::Time deadline) {
  // Shared with the threads, which Stop() joins (after aborting their calls if need be).
  auto pending = std::make_shared<std::deque<std::string>>();
  size_t parallel = 0;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [service_id, slot] : slots_) {
      if (!slot.claims.empty() && slot.held) pending->push_back(service_id);
    }
    if (pending->empty()) return pending;
    // In parallel, under the one deadline: N services must not take N round trips.
    parallel = std::min(pending->size(), static_cast<size_t>(std::max(1, config_.workers)));
    live_threads_ += static_cast<int>(parallel);
  }
  for (size_t i = 0; i < parallel; ++i) {
    threads_.emplace_back([this, pending, deadline] {
      SetThreadLogContext(config_.log_context);
      absl::MutexLock lock(&mu_);
      while (!pending->empty() && absl::Now() < deadline) {
        // A slot a worker still writes waits for that write: ours must land after it.
        auto next = std::find_if(pending->begin(), pending->end(),
                                 [this](const std::string& id) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                   return !busy_slots_.contains(id);
                                 });
        if (next == pending->end()) {
          slot_done_cv_.WaitWithDeadline(&mu_, deadline);
          continue;
        }
        const std::string id = std::move(*next);
        pending->erase(next);
        auto slot = slots_.find(id);
        if (slot == slots_.end() || !slot->second.held) continue;
        const Service service = *slot->second.held;
        busy_slots_.insert(id);
        mu_.Unlock();
        const absl::Status status = adapter_->Deregister(service);
        mu_.Lock();
        busy_slots_.erase(id);
        SignalWorkDoneLocked(/*slot_released=*/true);
        if (status.ok()) {
          ++stats_.deregisters;
          slot = slots_.find(id);
          if (slot != slots_.end()) slot->second.held.reset();
          REG_LOG_INFO("deregistered ", id, " on exit");
        } else {
          ++stats_.deregister_failures;
          REG_LOG_WARN("deregister ", id, " on exit failed: ", status.message());
        }
      }
      --live_threads_;
      stop_cv_.SignalAll();
    });
  }
  return pending;
}

void Bridge::OnEvent(const docker::Event& event) {
  absl::MutexLock lock(&mu_);
  ++stats_.events;
  if (event.type == "network") {
    OnNetworkEventLocked(event);
    return;
  }
  if (!event.type.empty() && event.type != "container") return;
  if (event.id.empty() || !IsRelevantAction(event.action)) return;
  REG_LOG_DEBUG("event ", event.action, " container ", ShortId(event.id), " (", event.name, ")");
  if (dirty_containers_.size() >= config_.max_pending && !dirty_containers_.contains(event.id)) {
    // Never grow without bound behind a slow backend: the resync will find this container.
    ++stats_.events_dropped;
    if (!resync_requested_) {
      REG_LOG_WARN("event queue full (", config_.max_pending,
                   " containers pending); dropping events and scheduling a resync");
    }
    resync_requested_ = true;
    sched_cv_.SignalAll();
    return;
  }
  MarkContainerDirtyLocked(event.id);
}

void Bridge::OnNetworkEventLocked(const docker::Event& event) {
  if (event.action != "connect" && event.action != "disconnect") return;
  // Docker names the container in Attributes.container (its Actor is the network). Podman's
  // compat API, going by its source (not captured here), has no such attribute and makes the
  // container the Actor. A Docker network ID is never a tracked container, so either is safe.
  const std::string& id = event.container.empty() ? event.id : event.container;
  // Only containers already tracked (or being inspected): a container connected before it
  // starts is derived at its start event, with every network it has by then.
  if (id.empty() || !(containers_.contains(id) || dirty_containers_.contains(id) ||
                      busy_containers_.contains(id))) {
    return;
  }
  REG_LOG_DEBUG("event network ", event.action, " ", event.name, " container ", ShortId(id));
  if (dirty_containers_.size() >= config_.max_pending && !dirty_containers_.contains(id)) {
    ++stats_.events_dropped;
    resync_requested_ = true;
    sched_cv_.SignalAll();
    return;
  }
  // Re-inspected like after a start: its addresses, and so the registered ones, follow.
  MarkContainerDirtyLocked(id);
}

void Bridge::OnConnected(bool first) {
  {
    absl::MutexLock lock(&mu_);
    stats_.docker_connected = true;
    if (!first) ++stats_.docker_reconnects;
  }
  REG_LOG_INFO(first ? "listening for Docker events"
                     : "Docker event stream reconnected; resyncing");
  RequestResync();
}

void Bridge::OnDisconnected(const absl::Status& why) {
  absl::MutexLock lock(&mu_);
  stats_.docker_connected = false;
  REG_LOG_WARN("Docker event stream lost: ", why.message(), "; reconnecting");
}

void Bridge::RequestResync() {
  absl::MutexLock lock(&mu_);
  resync_requested_ = true;
  sched_cv_.SignalAll();
}

void Bridge::MarkContainerDirtyLocked(const std::string& id) {
  if (!dirty_containers_.insert(id).second) return;
  container_queue_.push_back(id);
  work_cv_.Signal();
}

void Bridge::MarkSlotDirtyLocked(const std::string& id) {
  if (!dirty_slots_.insert(id).second) return;
  slot_queue_.push_back(id);
  if (t_deferred_signals >= 0) {
    ++t_deferred_signals;
    return;
  }
  work_cv_.Signal();
}

void Bridge::WorkerLoop() {
  while (true) {
    Kind kind = Kind::kContainer;
    std::string id;
    {
      absl::MutexLock lock(&mu_);
      while (true) {
        while (!stopping_ &&
               ((slot_queue_.empty() && container_queue_.empty()) || holding_writes_)) {
          work_cv_.Wait(&mu_);
        }
        if (stopping_) break;
        kind = slot_queue_.empty() ? Kind::kContainer : Kind::kSlot;
        auto& queue = kind == Kind::kSlot ? slot_queue_ : container_queue_;
        id = std::move(queue.front());
        queue.pop_front();
        auto& dirty = kind == Kind::kContainer ? dirty_containers_ : dirty_slots_;
        auto& busy = kind == Kind::kContainer ? busy_containers_ : busy_slots_;
        // Busy work stays dirty; the worker holding it requeues it when done.
        if (!dirty.contains(id) || busy.contains(id)) continue;
        dirty.erase(id);
        busy.insert(id);
        break;
      }
      if (stopping_) break;
    }
    if (kind == Kind::kContainer) {
      t_deferred_signals = 0;
      ProcessContainer(id);
    } else {
      ProcessSlot(id);
    }
    absl::MutexLock lock(&mu_);
    // This worker goes back to the queue next and takes one item itself; wake others for the
    // rest.
    for (int i = 1; i < t_deferred_signals; ++i) work_cv_.Signal();
    t_deferred_signals = -1;
    auto& dirty = kind == Kind::kContainer ? dirty_containers_ : dirty_slots_;
    auto& busy = kind == Kind::kContainer ? busy_containers_ : busy_slots_;
    busy.erase(id);
    if (kind == Kind::kContainer) {
      ++stats_.reconciles;
    } else {
      MaybeEraseSlotLocked(id);
    }
    if (dirty.contains(id)) {
      (kind == Kind::kSlot ? slot_queue_ : container_queue_).push_back(id);
      work_cv_.Signal();
    }
    SignalWorkDoneLocked(/*slot_released=*/kind == Kind::kSlot);
  }
  ThreadExited();
}

void Bridge::SignalWorkDoneLocked(bool slot_released) {
  if (slot_released) slot_done_cv_.SignalAll();
  if (WritesPendingLocked()) return;
  if (drift_waits_for_writes_) drift_cv_.Signal();
  idle_cv_.SignalAll();
}

void Bridge::ProcessContainer(const std::string& id) {
  absl::StatusOr<docker::Container> container = docker_->InspectContainer(id);
  if (!container.ok()) {
    absl::MutexLock lock(&mu_);
    if (absl::IsNotFound(container.status())) {
      REG_LOG_DEBUG("container ", ShortId(id), " is gone");
      inspect_retry_.erase(id);
      Release(id);
      return;
    }
    InspectRetry& retry = inspect_retry_[id];
    ++retry.failures;
    const absl::Duration delay = NextDelayLocked(retry.failures);
    retry.due = Now() + delay;
    ScheduleRetryLocked(retry.due);
    REG_LOG_WARN("inspect of container ", ShortId(id), " failed: ", container.status().message(),
                 "; retrying in ", absl::FormatDuration(delay));
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    inspect_retry_.erase(id);
  }
  const docker::ContainerState& state = container->state;
  // A restarting container's process is dead (Docker still reports Running); treat it as a die.
  if (state.running && !state.restarting) {
    if (config_.require_healthy && !state.health.empty() && state.health != "healthy") {
      // Tracked as running, claiming nothing: what it had registered is deregistered.
      REG_LOG_INFO("container ", ShortId(id), " (", container->name, ") is ", state.health,
                   "; not registering its services until Docker reports it healthy "
                   "(-require-healthy)");
      ClaimServices(id, *container, {});
      return;
    }
    std::vector<Service> wanted = derive_(*container);
    if (wanted.empty()) {
      REG_LOG_DEBUG("container ", ShortId(id), " (", container->name, ") has no services");
    }
    ClaimServices(id, *container, std::move(wanted));
    return;
  }
  // Not running: die rules. on-success keeps a failed container's services; they stop being
  // refreshed and expire where the backend has TTLs.
  const int64_t code = state.exit_code;
  if (config_.deregister_on_success && code != 0 && (code & 128) == 0) {
    Keep(id, container->name, code);
    return;
  }
  absl::MutexLock lock(&mu_);
  Release(id);
}

void Bridge::ClaimServices(const std::string& id, const docker::Container& container,
                           std::vector<Service> wanted) {
  if (is_tracker()) {
    absl::MutexLock lock(&mu_);
    TrackClaimsLocked(id, container, wanted);
    // Each follower fingerprints and queues its own writes; nothing here waits for a backend.
    for (Bridge* follower : followers_) {
      ScopedLogContext context(follower->config_.log_context);
      follower->ClaimServices(id, container, wanted);
    }
    return;
  }
  // Fingerprints are pure; compute them before taking the lock.
  std::vector<std::string> fingerprints;
  std::vector<std::string> health_fingerprints;
  fingerprints.reserve(wanted.size());
  health_fingerprints.reserve(wanted.size());
  for (const Service& service : wanted) {
    fingerprints.push_back(adapter_->Fingerprint(service));
    health_fingerprints.push_back(adapter_->HealthFingerprint(service));
  }
  const absl::Time created = ParseCreated(container.created);
  std::string state_fingerprint = docker::StateFingerprint(container);

  absl::MutexLock lock(&mu_);
  ContainerRecord& record = containers_[id];
  record.running = true;
  record.name = container.name;
  record.state_fingerprint = std::move(state_fingerprint);
  std::vector<std::string> claimed;
  absl::flat_hash_set<std::string> wanted_ids;
  for (size_t i = 0; i < wanted.size(); ++i) {
    Service& service = wanted[i];
    if (!wanted_ids.insert(service.id).second) {
      if (is_follower()) continue;  // The tracker said so once for every registry.
      REG_LOG_WARN("container ", ShortId(id), " (", record.name, "): duplicate service ID \"",
                   service.id, "\"; registering the first only");
      continue;
    }
    claimed.push_back(service.id);
    Slot& slot = SlotLocked(service.id);
    slot.managed = true;
    auto claim = std::find_if(slot.claims.begin(), slot.claims.end(),
                              [&id](const Claim& c) { return c.container_id == id; });
    if (claim == slot.claims.end()) {
      if (!slot.claims.empty()) {
        REG_LOG_INFO("service ID ", service.id, " is claimed by containers ", ShortId(id), " (",
                     record.name, ") and ", ShortId(slot.claims.front().container_id),
                     "; the most recently created running one owns it");
      }
      claim = slot.claims.insert(slot.claims.end(), Claim{id});
    } else if (!claim->kept && claim->fingerprint == fingerprints[i] && claim->service &&
               *claim->service == service) {
      continue;  // Unchanged: nothing to do for this ID.
    }
    claim->kept = false;
    claim->created = created;
    claim->fingerprint = fingerprints[i];
    claim->health_fingerprint = std::move(health_fingerprints[i]);
    claim->service = std::make_shared<const Service>(std::move(service));
    MarkSlotDirtyLocked(claim->service->id);
  }
  for (const std::string& service_id : record.claimed) {
    if (!wanted_ids.contains(service_id)) DropClaimLocked(service_id, id);
  }
  record.claimed = std::move(claimed);
}

void Bridge::TrackClaimsLocked(const std::string& id, const docker::Container& container,
                               const std::vector<Service>& wanted) {
  ContainerRecord& record = containers_[id];
  record.running = true;
  record.name = container.name;
  record.state_fingerprint = docker::StateFingerprint(container);
  record.claimed.clear();
  absl::flat_hash_set<std::string> wanted_ids;
  for (const Service& service : wanted) {
    if (!wanted_ids.insert(service.id).second) {
      REG_LOG_WARN("container ", ShortId(id), " (", record.name, "): duplicate service ID \"",
                   service.id, "\"; registering the first only");
      continue;
    }
    record.claimed.push_back(service.id);
  }
}

void Bridge::Keep(const std::string& id, const std::string& name, int64_t exit_code) {
  if (is_tracker()) {
    absl::MutexLock lock(&mu_);
    auto record = containers_.find(id);
    if (record == containers_.end()) return;
    record->second.running = false;
    record->second.state_fingerprint.clear();
    if (record->second.claimed.empty()) containers_.erase(record);
    for (Bridge* follower : followers_) {
      ScopedLogContext context(follower->config_.log_context);
      follower->Keep(id, name, exit_code);
    }
    return;
  }
  absl::MutexLock lock(&mu_);
  auto record = containers_.find(id);
  if (record == containers_.end()) return;
  record->second.running = false;
  record->second.state_fingerprint.clear();
  bool any = false;
  for (const std::string& service_id : record->second.claimed) {
    auto slot = slots_.find(service_id);
    if (slot == slots_.end()) continue;
    for (Claim& claim : slot->second.claims) {
      if (claim.container_id != id || claim.kept) continue;
      claim.kept = true;
      any = true;
      // Another running claimant may own the ID now.
      MarkSlotDirtyLocked(service_id);
    }
  }
  if (any) {
    REG_LOG_INFO("container ", ShortId(id), " (", name, ") exited with code ", exit_code,
                 "; keeping its services (-deregister=on-success)");
  }
  if (record->second.claimed.empty()) containers_.erase(record);
}

void Bridge::Release(const std::string& id) {
  for (Bridge* follower : followers_) {
    ScopedLogContext context(follower->config_.log_context);
    absl::MutexLock lock(&follower->mu_);
    follower->Release(id);
  }
  auto record = containers_.find(id);
  if (record == containers_.end()) return;
  for (const std::string& service_id : record->second.claimed) {
    DropClaimLocked(service_id, id);
  }
  containers_.erase(record);
}

void Bridge::DropClaimLocked(const std::string& service_id, const std::string& container_id) {
  auto slot = slots_.find(service_id);
  if (slot == slots_.end()) return;
  std::vector<Claim>& claims = slot->second.claims;
  claims.erase(std::remove_if(claims.begin(), claims.end(),
                              [&](const Claim& c) { return c.container_id == container_id; }),
               claims.end());
  MarkSlotDirtyLocked(service_id);
}

const Bridge::Claim* Bridge::Owner(const Slot& slot) {
  const Claim* owner = nullptr;
  for (const Claim& claim : slot.claims) {
    if (claim.kept) continue;
    if (owner == nullptr || claim.created > owner->created ||
        (claim.created == owner->created && claim.container_id > owner->container_id)) {
      owner = &claim;
    }
  }
  return owner;
}

Bridge::Action Bridge::Decide(const Slot& slot, const Service** service) const {
  // Old entries at another key go once the current entry is what it should be (never before
  // it is written: the service must not vanish in between).
  auto moved = [&] {
    if (slot.moved_from.empty()) return Action::kNone;
    *service = &slot.moved_from.front();
    return Action::kDeregisterMoved;
  };
  if (const Claim* owner = Owner(slot)) {
    if (slot.held && slot.held_fingerprint == owner->fingerprint) {
      if (!owner->health_fingerprint.empty() && slot.held_health != owner->health_fingerprint) {
        *service = owner->service.get();
        return Action::kHealth;
      }
      return moved();
    }
    if (slot.rejected == owner->fingerprint) return Action::kNone;
    *service = owner->service.get();
    return Action::kRegister;
  }
  for (const Claim& claim : slot.claims) {
    // A kept claim leaves its own entry alone; anything else under the ID is stale.
    if (claim.kept && slot.held && slot.held_fingerprint == claim.fingerprint) return moved();
  }
  if ((slot.managed || slot.doomed) && slot.held) {
    *service = &*slot.held;
    return Action::kDeregister;
  }
  return moved();
}

void Bridge::NoteMoveLocked(Slot& slot, const Service& target) {
  const std::string target_key = adapter_->EntryKey(target);
  // Registering at a key replaces whatever this ID had there: not an old entry any more.
  std::erase_if(slot.moved_from,
                [&](const Service& old) { return adapter_->EntryKey(old) == target_key; });
  if (slot.held && adapter_->EntryKey(*slot.held) != target_key) AddMovedLocked(slot, *slot.held);
}

void Bridge::AddMovedLocked(Slot& slot, const Service& old) {
  const std::string old_key = adapter_->EntryKey(old);
  for (const Service& known : slot.moved_from) {
    if (adapter_->EntryKey(known) == old_key) return;
  }
  slot.moved_from.push_back(old);
}

Bridge::Slot& Bridge::SlotLocked(const std::string& service_id) {
  auto [it, inserted] = slots_.try_emplace(service_id);
  if (inserted) {
    erased_at_.erase(service_id);
    auto snap = backend_snapshot_.find(service_id);
    if (snap != backend_snapshot_.end()) {
      // The backend already holds an entry (e.g. from before a restart): adopt it, so an
      // identical registration needs no write.
      it->second.held = std::make_shared<const Service>(std::move(snap->second.service));
      it->second.held_fingerprint = std::move(snap->second.fingerprint);
      it->second.held_health = std::move(snap->second.health_fingerprint);
      backend_snapshot_.erase(snap);
    }
  }
  return it->second;
}

void Bridge::MaybeEraseSlotLocked(const std::string& service_id) {
  auto it = slots_.find(service_id);
  if (it == slots_.end()) return;
  const Slot& slot = it->second;
  if (!slot.claims.empty() || slot.held || !slot.moved_from.empty() ||
      busy_slots_.contains(service_id) || dirty_slots_.contains(service_id)) {
    return;
  }
  slots_.erase(it);
  if (listings_in_flight_ > 0) erased_at_[service_id] = write_seq_;
}

absl::Duration Bridge::NextDelayLocked(int failures) {
  std::uniform_real_distribution<double> jitter(0.0, 1.0);
  return BackoffDelay(config_.retry_initial, config_.retry_max, failures - 1, jitter(rng_));
}

void Bridge::ScheduleRetryLocked(absl::Time due) {
  if (due < earliest_retry_) {
    earliest_retry_ = due;
    sched_cv_.SignalAll();
  }
}

void Bridge::ProcessSlot(const std::string& id) {
  // What this write sends. A register or a health update sends the owner's Service and a
  // deregister the held one: both immutable, so they are shared, not copied, and a register's
  // or deregister's is what the slot holds after the write. An old entry (moved_from) is copied.
  std::shared_ptr<const Service> written;
  Action action;
  std::string fingerprint;
  {
    absl::MutexLock lock(&mu_);
    auto it = slots_.find(id);
    if (it == slots_.end()) return;
    const Service* target = nullptr;
    action = Decide(it->second, &target);
    if (action == Action::kNone) return;
    if (action == Action::kRegister || action == Action::kHealth) {
      written = Owner(it->second)->service;
    } else if (action == Action::kDeregister) {
      written = it->second.held;
    } else {
      written = std::make_shared<const Service>(*target);
    }
    // Only a refresh (or a state loss) that ends during this write counts for it.
    it->second.refresh_raced = false;
    it->second.state_lost_raced = false;
    // The new definition may live at another key (a new name or IP): the old entry would stay
    // behind unless it is deregistered after this write.
    // A register writes the owner's service; ClaimServices computed its fingerprint with it
    // (they are only ever set together), so the body is not built once more here.
    if (action == Action::kRegister) {
      NoteMoveLocked(it->second, *written);
      fingerprint = Owner(it->second)->fingerprint;
    }
  }
  const Service& service = *written;
  if (action == Action::kDeregisterMoved) {
    ProcessMoved(id, service);
    return;
  }
  if (action == Action::kHealth) {
    ProcessHealth(id, service);
    return;
  }
  const bool is_register = action == Action::kRegister;
  {
    absl::MutexLock lock(&mu_);
    // A refresh running now may re-create what this write replaces or removes: note what we
    // write, so the refresh can tell whether to write again after it.
    for (RefreshWatch& touched : refreshes_) {
      touched.written[id] = fingerprint;
      if (is_register) touched.health_written.insert(id);
    }
  }
  // What a register writes of the Docker health (Register writes it with the entry).
  const std::string health = is_register ? adapter_->HealthFingerprint(service) : "";
  const absl::Status status =
      is_register ? adapter_->Register(service) : adapter_->Deregister(service);

  absl::MutexLock lock(&mu_);
  ++write_seq_;
  Slot& slot = slots_[id];  // Never erased while busy.
  slot.last_write = write_seq_;
  const bool refresh_raced = std::exchange(slot.refresh_raced, false);
  const bool state_lost_raced = std::exchange(slot.state_lost_raced, false);
  // The old entries of a moved service come next (the worker requeues dirty work when done).
  if (status.ok() && !slot.moved_from.empty()) MarkSlotDirtyLocked(id);
  if (status.ok()) {
    slot.failures = 0;
    slot.next_retry = absl::InfinitePast();
    if (is_register) {
      REG_LOG_INFO("registered ", id, " (", service.name, " ", service.ip, ":", service.port,
                   ") for container ", ShortId(service.container_id), " (", service.container_name,
                   ")");
      ++stats_.registers;
      slot.held = written;
      slot.held_fingerprint = fingerprint;
      slot.held_health = health;
      slot.rejected.clear();
      if (state_lost_raced) {
        // Applied before the loss, maybe: what the backend holds is unknown, write it again.
        slot.held_fingerprint.clear();
        slot.held_health.clear();
        MarkSlotDirtyLocked(id);
      }
    } else {
      REG_LOG_INFO("deregistered ", id, " (", service.name, ") of container ",
                   ShortId(service.container_id), " (", service.container_name, ")");
      if (slot.doomed) REG_LOG_INFO("cleanup: removed dangling ", id);
      ++stats_.deregisters;
      slot.held_fingerprint.clear();
      slot.held_health.clear();
      // A refresh that ended meanwhile may have put the entry back after the delete (it found
      // the slot busy and marked it dirty): it stays held, so the delete is made once more.
      if (!refresh_raced) slot.held.reset();
    }
    return;
  }
  if (stopping_ && absl::IsCancelled(status)) {
    // Stop() aborted this call at its deadline: nothing is retried any more; the next start
    // resyncs. One line per call, so an operator (and the fault suites) can tell a hang cut
    // short by the shutdown from a backend error.
    REG_LOG_WARN("stopping: ", is_register ? "register " : "deregister ", id,
                 " abandoned: ", status.message());
    slot.held = written;
    slot.held_fingerprint.clear();
    return;
  }
  ++stats_.write_failures;
  ++(is_register ? stats_.register_failures : stats_.deregister_failures);
  ++slot.failures;
  const absl::Duration delay = NextDelayLocked(slot.failures);
  slot.next_retry = Now() + delay;
  ScheduleRetryLocked(slot.next_retry);
  // "<verb> <id> failed: ..." as before: operators (and the e2e tests) grep for it.
  REG_LOG_ERROR(is_register ? "register " : "deregister ", id, " failed: ", status.message(),
                " (container ", ShortId(service.container_id), " (", service.container_name,
                ")); retrying in ", absl::FormatDuration(delay));
  // A failed call may still have been applied: the backend holds this, or what it had.
  slot.held = written;
  slot.held_fingerprint.clear();
  slot.held_health.clear();
  if (is_register && absl::IsInvalidArgument(status)) {
    // The backend will reject this exact body again; wait for the service to change.
    slot.rejected = fingerprint;
    REG_LOG_ERROR("not retrying ", id, " until its definition changes");
  }
}

void Bridge::ProcessMoved(const std::string& id, const Service& old) {
  // Not noted for a running refresh: it only re-creates the current entry, never this one.
  const absl::Status status = adapter_->Deregister(old);
  absl::MutexLock lock(&mu_);
  ++write_seq_;
  Slot& slot = slots_[id];  // Never erased while busy.
  slot.last_write = write_seq_;
  const std::string old_key = adapter_->EntryKey(old);
  if (status.ok()) {
    REG_LOG_INFO("deregistered the old entry of ", id, " (", old.name, " ", old.ip, ":", old.port,
                 "): its name or address changed");
    ++stats_.deregisters;
    // A refresh that ended meanwhile may have put the old entry back after the delete (its
    // snapshot held it): it stays in moved_from and is deleted once more.
    if (!std::exchange(slot.refresh_raced, false)) {
      std::erase_if(slot.moved_from,
                    [&](const Service& s) { return adapter_->EntryKey(s) == old_key; });
    }
    slot.failures = 0;
    slot.next_retry = absl::InfinitePast();
    if (!slot.moved_from.empty()) MarkSlotDirtyLocked(id);
    return;
  }
  if (stopping_ && absl::IsCancelled(status)) {
    REG_LOG_WARN("stopping: deregister of the old entry of ", id, " abandoned: ", status.message());
    return;
  }
  ++stats_.write_failures;
  ++stats_.deregister_failures;
  ++slot.failures;
  const absl::Duration delay = NextDelayLocked(slot.failures);
  slot.next_retry = Now() + delay;
  ScheduleRetryLocked(slot.next_retry);
  REG_LOG_ERROR("deregister ", id, " failed: ", status.message(), " (its old entry ", old.name, " ",
                old.ip, ":", old.port, "); retrying in ", absl::FormatDuration(delay));
}

void Bridge::ProcessHealth(const std::string& id, const Service& service) {
  const std::string health = adapter_->HealthFingerprint(service);
  {
    absl::MutexLock lock(&mu_);
    for (RefreshWatch& touched : refreshes_) touched.health_written.insert(id);
  }
  const absl::Status status = adapter_->SetHealth(service);

  absl::MutexLock lock(&mu_);
  ++write_seq_;
  Slot& slot = slots_[id];  // Never erased while busy.
  slot.last_write = write_seq_;
  if (status.ok()) {
    REG_LOG_INFO("Docker health of ", id, ": ", service.docker_health.status, " (container ",
                 ShortId(service.container_id), " (", service.container_name, "))");
    ++stats_.health_updates;
    slot.failures = 0;
    slot.next_retry = absl::InfinitePast();
    slot.held_health = health;
    if (slot.held) {
      auto updated = std::make_shared<Service>(*slot.held);
      updated->docker_health = service.docker_health;
      slot.held = std::move(updated);
    }
    return;
  }
  slot.held_health.clear();
  if (stopping_ && absl::IsCancelled(status)) {
    REG_LOG_WARN("stopping: Docker health update of ", id, " abandoned: ", status.message());
    return;
  }
  if (absl::IsNotFound(status)) {
    // The backend lost the entry's health check: register the entry again, which writes it.
    REG_LOG_WARN("Docker health of ", id, ": ", status.message(), "; registering it again");
    slot.held_fingerprint.clear();
    MarkSlotDirtyLocked(id);
    return;
  }
  ++stats_.health_update_failures;
  ++slot.failures;
  const absl::Duration delay = NextDelayLocked(slot.failures);
  slot.next_retry = Now() + delay;
  ScheduleRetryLocked(slot.next_retry);
  REG_LOG_ERROR("Docker health update of ", id, " failed: ", status.message(), " (container ",
                ShortId(service.container_id), " (", service.container_name, ")); retrying in ",
                absl::FormatDuration(delay));
}

void Bridge::RetryDueNow() {
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  absl::Time earliest = absl::InfiniteFuture();
  for (auto& [service_id, slot] : slots_) {
    if (slot.failures == 0 || slot.next_retry == absl::InfiniteFuture()) continue;
    if (slot.next_retry > now) {
      earliest = std::min(earliest, slot.next_retry);
      continue;
    }
    slot.next_retry = absl::InfiniteFuture();  // Until this attempt reports back.
    ++stats_.retries;
    MarkSlotDirtyLocked(service_id);
  }
  for (auto& [id, retry] : inspect_retry_) {
    if (retry.due == absl::InfiniteFuture()) continue;
    if (retry.due <= now) {
      ++stats_.retries;
      retry.due = absl::InfiniteFuture();
      MarkContainerDirtyLocked(id);
    } else {
      earliest = std::min(earliest, retry.due);
    }
  }
  earliest_retry_ = earliest;
}

bool Bridge::IsThisHostsId(absl::string_view id) const {
  // Upstream's pattern: ^(.+?):([a-zA-Z0-9][a-zA-Z0-9_.-]+):[0-9]+(?::udp)?$ with group 1 ==
  // this hostname.
  if (config_.hostname.empty() || !absl::StartsWith(id, config_.hostname) ||
      id.size() <= config_.hostname.size() || id[config_.hostname.size()] != ':') {
    return false;
  }
  absl::string_view rest = id.substr(config_.hostname.size() + 1);
  absl::ConsumeSuffix(&rest, ":udp");
  const size_t colon = rest.rfind(':');
  if (colon == absl::string_view::npos || colon < 2) return false;
  absl::string_view name = rest.substr(0, colon);
  absl::string_view port = rest.substr(colon + 1);
  if (port.empty() || !std::all_of(port.begin(), port.end(), [](char c) {
        return absl::ascii_isdigit(static_cast<unsigned char>(c));
      })) {
    return false;
  }
  if (!absl::ascii_isalnum(static_cast<unsigned char>(name[0]))) return false;
  if (!std::all_of(name.begin(), name.end(), IsContainerNameChar)) return false;
  return true;
}

absl::Status Bridge::RunResync() {
  ReleaseAfterLargeListing release;  // Declared first: runs after both listings are freed.
  // A follower compares its backend only: the tracker lists Docker for every registry.
  absl::StatusOr<std::vector<docker::ContainerSummary>> running =
      std::vector<docker::ContainerSummary>();
  if (docker_ != nullptr) running = docker_->ListContainers(/*all=*/false);
  if (running.ok()) release.entries = running->size();
  if (!running.ok()) {
    REG_LOG_WARN("resync: listing containers failed: ", running.status().message());
    return running.status();
  }
  uint64_t listed_at = 0;
  {
    absl::MutexLock lock(&mu_);
    listed_at = write_seq_;
    ++listings_in_flight_;
  }
  absl::StatusOr<std::vector<RegisteredService>> held =
      adapter_ != nullptr ? adapter_->Services()
                          : absl::UnimplementedError("a tracker has no backend");
  if (held.ok()) release.entries = std::max(release.entries, held->size());
  if (!held.ok() && !absl::IsUnimplemented(held.status())) {
    REG_LOG_WARN("resync: listing the backend failed: ", held.status().message());
  }

  absl::MutexLock lock(&mu_);
  --listings_in_flight_;
  ++stats_.resyncs;
  stats_.last_sync = Now();
  if (held.ok())
    ApplyListingLocked(*std::move(held), listed_at, "resync", /*retry_backed_off=*/true);
  if (listings_in_flight_ == 0) erased_at_.clear();
  if (is_follower()) {
    // Listed (or failed to): what the backend held is adopted; the writes may start.
    holding_writes_ = false;
    work_cv_.SignalAll();
    return absl::OkStatus();
  }
  // New containers, tracked ones whose state changed without an event we saw (network
  // connect/disconnect, rename, a missed restart), and tracked ones that stopped running.
  listed_names_.clear();
  absl::flat_hash_set<std::string> running_ids;
  running_ids.reserve(running->size());
  for (const docker::ContainerSummary& summary : *running) {
    running_ids.insert(summary.id);
    listed_names_[summary.id] = summary.name;
    auto record = containers_.find(summary.id);
    if (record == containers_.end() || !record->second.running ||
        record->second.state_fingerprint != docker::StateFingerprint(summary)) {
      MarkContainerDirtyLocked(summary.id);
    }
  }
  for (const auto& [id, record] : containers_) {
    if (!running_ids.contains(id)) MarkContainerDirtyLocked(id);
  }
  return absl::OkStatus();
}

void Bridge::ApplyListingLocked(std::vector<RegisteredService> held, uint64_t listed_at,
                                absl::string_view why, bool retry_backed_off) {
  // Pointers into `held`, not copies: a map of whole entries (capacity ~1.6 x the listing, ~0.8 KB
  // a slot) added ~12 MB to the memory of a 10,000-service listing (issue 14). Keyed by views of
  // the entries' IDs, not copies of them (~0.7 MB more for 10,000): `held` is not resized here,
  // and an entry swapped with another of also_listed (below) gets an ID equal to its own.
  absl::flat_hash_map<absl::string_view, RegisteredService*> listed;
  listed.reserve(held.size());
  // A backend keyed by name lists an ID twice while an old entry (another name) is left:
  // the second and further entries, which must not be forgotten (see below).
  absl::flat_hash_map<std::string, std::vector<RegisteredService>> also_listed;
  for (RegisteredService& entry : held) {
    auto [it, inserted] = listed.try_emplace(entry.service.id, &entry);
    if (!inserted) also_listed[std::string(it->first)].push_back(std::move(entry));
  }
  for (auto& [service_id, slot] : slots_) {
    auto entry = listed.find(service_id);
    // A slot written since the listing was asked for knows better than the listing.
    if (!busy_slots_.contains(service_id) && slot.last_write <= listed_at) {
      auto extra = also_listed.empty() ? also_listed.end() : also_listed.find(service_id);
      if (extra != also_listed.end() && entry != listed.end() && slot.held) {
        // Of several entries, the one at the key the bridge believes current is `held`.
        const std::string key = adapter_->EntryKey(*slot.held);
        for (RegisteredService& other : extra->second) {
          if (adapter_->EntryKey(entry->second->service) != key &&
              adapter_->EntryKey(other.service) == key) {
            std::swap(*entry->second, other);
          }
        }
      }
      if (entry == listed.end()) {
        slot.held.reset();
        slot.held_fingerprint.clear();
        slot.held_health.clear();
      } else {
        if (!slot.held || slot.held_fingerprint != entry->second->fingerprint) {
          slot.held = std::make_shared<const Service>(entry->second->service);
          slot.held_fingerprint = entry->second->fingerprint;
        }
        // The entry held now is no old entry any more, even if it was one (the believed
        // current entry was gone and an old key still waited for its delete): deleting it as
        // one would remove what the owner may want -- and when it wants this very entry, no
        // register comes to take it out of moved_from.
        if (!slot.moved_from.empty()) {
          const std::string held_key = adapter_->EntryKey(*slot.held);
          std::erase_if(slot.moved_from,
                        [&](const Service& old) { return adapter_->EntryKey(old) == held_key; });
        }
        // Docker health is re-asserted where the backend's differs (set behind our back, or
        // a write lost).
        slot.held_health = entry->second->health_fingerprint;
        // The others are old entries at other keys: remembered, so they are deregistered
        // once the current one is right (instead of staying for good when `held` moves on).
        if (extra != also_listed.end()) {
          const std::string key = adapter_->EntryKey(*slot.held);
          for (const RegisteredService& other : extra->second) {
            if (adapter_->EntryKey(other.service) != key) AddMovedLocked(slot, other.service);
          }
        }
      }
      // A write still waiting out its backoff is tried now too: the listing just succeeded,
      // so the backend answers again (after an outage the backoff may have grown towards
      // retry_max, 60 s, and -resync would not have healed anything sooner). A backend that
      // lists but keeps refusing writes gets at most one more attempt per resync. Not per drift
      // check, which may come every drift_min_interval: there the backoff stands.
      const Service* target = nullptr;
      if ((retry_backed_off || slot.failures == 0) && Decide(slot, &target) != Action::kNone) {
        // A slot already queued (a service derived moments ago, not yet written) is no news.
        if (!dirty_slots_.contains(service_id)) {
          REG_LOG_INFO(why, ": backend ", entry == listed.end() ? "lacks " : "differs for ",
                       service_id, "; rewriting");
        }
        MarkSlotDirtyLocked(service_id);
      }
    }
    if (entry != listed.end()) listed.erase(entry);
  }
  backend_snapshot_.clear();
  for (auto& [service_id, entry] : listed) {
    auto erased = erased_at_.find(service_id);
    if (erased != erased_at_.end() && erased->second > listed_at) continue;
    // The key is copied before the entry (which holds the viewed ID) is moved.
    std::string id(service_id);
    backend_snapshot_.emplace(std::move(id), std::move(*entry));
  }
}

absl::flat_hash_set<std::string> Bridge::UnresolvedNamesLocked() const {
  absl::flat_hash_set<std::string> unresolved;
  for (const auto& [id, retry] : inspect_retry_) {
    auto name = listed_names_.find(id);
    if (name != listed_names_.end()) unresolved.insert(name->second);
  }
  return unresolved;
}

void Bridge::CleanupLocked() {
  // IDs named after a running container whose inspect keeps failing may be its own: spare them
  // until it can be inspected. Every other dangling ID of this host provably belongs to nobody.
  const absl::flat_hash_set<std::string> unresolved =
      is_follower() ? tracker_unresolved_ : UnresolvedNamesLocked();
  std::vector<std::string> dangling;
  for (const auto& [service_id, entry] : backend_snapshot_) {
    if (!IsThisHostsId(service_id)) continue;
    absl::string_view rest = absl::string_view(service_id).substr(config_.hostname.size() + 1);
    absl::ConsumeSuffix(&rest, ":udp");
    if (unresolved.contains(rest.substr(0, rest.rfind(':')))) continue;
    dangling.push_back(service_id);
  }
  for (const std::string& service_id : dangling) {
    REG_LOG_INFO("cleanup: ", service_id, " belongs to no container; removing it");
    Slot& slot = SlotLocked(service_id);
    slot.doomed = true;
    MarkSlotDirtyLocked(service_id);
  }
}

absl::Status Bridge::SyncNow(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  {
    absl::MutexLock lock(&mu_);
    ++resyncs_running_;
    resync_starting_ = false;
  }
  absl::Status status = RunResync();
  bool idle = status.ok() && WaitUntilDrained(deadline - absl::Now(), /*include_resync=*/false);
  bool cleanup = config_.cleanup;
  if (is_tracker()) {
    cleanup = false;  // Every follower cleans its own backend, after this resync.
    if (idle) {
      absl::MutexLock lock(&mu_);
      for (Bridge* follower : followers_) follower->OnTrackerSynced(UnresolvedNamesLocked());
    }
  } else if (is_follower()) {
    // Only once the tracker has derived every running container: before, an entry of a
    // container not yet handed over would look dangling.
    absl::MutexLock lock(&mu_);
    cleanup = cleanup && tracker_synced_;
  }
  if (idle && cleanup) {
    {
      absl::MutexLock lock(&mu_);
      CleanupLocked();
    }
    idle = WaitUntilDrained(deadline - absl::Now(), /*include_resync=*/false);
    if (idle) {
      if (absl::Status left = adapter_->CleanupLeftovers(); !left.ok()) {
        REG_LOG_WARN("cleanup: ", left.message());
      }
    }
  }
  {
    absl::MutexLock lock(&mu_);
    --resyncs_running_;
    idle_cv_.SignalAll();
  }
  if (status.ok() && !idle) return absl::DeadlineExceededError("resync did not finish in time");
  return status;
}

absl::Status Bridge::RefreshNow() {
  std::vector<Service> live;
  // What the bridge believed each entry of `live` to be (the owner's fingerprint).
  std::vector<std::string> live_fingerprints;
  std::list<RefreshWatch>::iterator touched;
  {
    absl::MutexLock lock(&mu_);
    live.reserve(slots_.size());
    live_fingerprints.reserve(slots_.size());
    for (const auto& [service_id, slot] : slots_) {
      // Only what the backend holds for a running owner; never what is being written or
      // removed (a refresh would re-create it).
      const Claim* owner = Owner(slot);
      if (owner == nullptr || !slot.held || slot.held_fingerprint != owner->fingerprint ||
          busy_slots_.contains(service_id) || dirty_slots_.contains(service_id)) {
        continue;
      }
      live.push_back(*slot.held);
      live_fingerprints.push_back(slot.held_fingerprint);
      // Re-asserts the Docker health Docker reports now (also after a failed health write).
      live.back().docker_health = owner->service->docker_health;
    }
    touched = refreshes_.emplace(refreshes_.end());
  }
  {
    // Sorted by ID (adapters and tests rely on it), the fingerprints kept alongside.
    std::vector<size_t> order(live.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&live](size_t a, size_t b) { return live[a].id < live[b].id; });
    std::vector<Service> sorted;
    std::vector<std::string> sorted_fingerprints;
    sorted.reserve(live.size());
    sorted_fingerprints.reserve(live.size());
    for (size_t i : order) {
      sorted.push_back(std::move(live[i]));
      sorted_fingerprints.push_back(std::move(live_fingerprints[i]));
    }
    live = std::move(sorted);
    live_fingerprints = std::move(sorted_fingerprints);
  }
  absl::Status status = adapter_->Refresh(live);  // Not const: returned by move.
  absl::MutexLock lock(&mu_);
  ++stats_.refreshes;
  // The refresh may have re-created any entry of its snapshot, like a write: a listing asked
  // for before now must not tell these slots the backend lacks them (resync's last_write rule).
  ++write_seq_;
  for (size_t i = 0; i < live.size(); ++i) {
    const Service& service = live[i];
    const std::string& fingerprint = live_fingerprints[i];
    if (touched->health_written.contains(service.id) && !service.docker_health.status.empty()) {
      // The refresh may have put back an older Docker health: write the current one again.
      auto slot = slots_.find(service.id);
      if (slot != slots_.end()) {
        slot->second.held_health.clear();
        MarkSlotDirtyLocked(service.id);
      }
    }
    // Harmless only if the bridge still believes the backend holds exactly this entry, and no
    // write since the snapshot replaced or removed it. A write is not the only way that belief
    // changes: a resync listing that ran after a state loss (or a key vanishing behind our
    // back) finds no entry and forgets it without a write; when its owner then goes there is
    // nothing to deregister, the slot is erased, and the entry this refresh re-created would
    // stay for good.
    auto written = touched->written.find(service.id);
    auto known = slots_.find(service.id);
    if (known != slots_.end()) known->second.last_write = write_seq_;
    if ((written == touched->written.end() || written->second == fingerprint) &&
        known != slots_.end() && known->second.held &&
        known->second.held_fingerprint == fingerprint) {
      continue;
    }
    Slot& slot = SlotLocked(service.id);
    // A delete in flight (started after the snapshot) may be done already, and this refresh have
    // put the entry back after it: its success must not make the bridge forget the entry.
    if (busy_slots_.contains(service.id)) slot.refresh_raced = true;
    // A slot erased meanwhile (its entry deregistered) is re-created here with no write on
    // record; a listing asked for before the refresh put the entry back would then tell it the
    // backend lacks the entry, and the bridge would forget it before deleting it again.
    slot.last_write = write_seq_;
    if (!slot.held) {
      slot.held = std::make_shared<const Service>(service);
    } else if (adapter_->EntryKey(*slot.held) != adapter_->EntryKey(service)) {
      // The write moved the entry to another key (a new name or IP): what the refresh put
      // back is the old entry, which must go again.
      AddMovedLocked(slot, service);
    }
    slot.held_fingerprint.clear();
    slot.managed = true;
    MarkSlotDirtyLocked(service.id);
  }
  refreshes_.erase(touched);
  if (!status.ok()) REG_LOG_WARN("TTL refresh failed: ", status.message());
  return status;
}

void Bridge::OnTrackerSynced(absl::flat_hash_set<std::string> unresolved) {
  absl::MutexLock lock(&mu_);
  tracker_synced_ = true;
  tracker_unresolved_ = std::move(unresolved);
  resync_requested_ = true;
  sched_cv_.SignalAll();
}

bool Bridge::WaitIdle(absl::Duration timeout) { return WaitUntilDrained(timeout, true); }

bool Bridge::WaitUntilDrained(absl::Duration timeout, bool include_resync) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  auto drained = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // The queues are not looked at: besides what is dirty they hold only stale entries, which a
    // worker drops without signalling anyone.
    return dirty_containers_.empty() && dirty_slots_.empty() && busy_containers_.empty() &&
           busy_slots_.empty() &&
           !(include_resync && (resync_requested_ || resync_starting_ || resyncs_running_ > 0 ||
                                drift_requested_ || drift_running_));
  };
  while (!drained()) {
    if (stopping_) return false;
    if (idle_cv_.WaitWithDeadline(&mu_, deadline) && !drained()) return false;
  }
  return true;
}

void Bridge::ResyncLoop() {
  absl::Time next_resync = config_.resync_interval > absl::ZeroDuration()
                               ? absl::Now() + config_.resync_interval
                               : absl::InfiniteFuture();
  absl::Time backoff_until = absl::InfinitePast();
  int failures = 0;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      while (!stopping_) {
        const absl::Time now = absl::Now();
        if (now >= next_resync || (resync_requested_ && now >= backoff_until)) break;
        absl::Time wake = next_resync;
        if (resync_requested_) wake = std::min(wake, backoff_until);
        sched_cv_.WaitWithDeadline(&mu_, wake);
      }
      if (stopping_) break;
      resync_requested_ = false;
      // Until SyncNow counts itself, so WaitIdle never sees a gap.
      resync_starting_ = true;
    }
    const absl::Status status = SyncNow(absl::Seconds(60));
    absl::MutexLock lock(&mu_);
    // The period runs from the end of a resync: a resync slower than the period never runs
    // back to back with the next one.
    if (config_.resync_interval > absl::ZeroDuration()) {
      next_resync = absl::Now() + config_.resync_interval;
    }
    if (!status.ok() && !absl::IsDeadlineExceeded(status)) {
      // Docker unreachable: try again with backoff (the event stream's reconnect also asks).
      resync_requested_ = true;
      backoff_until = absl::Now() + NextDelayLocked(++failures);
    } else {
      failures = 0;
    }
  }
  ThreadExited();
}

void Bridge::RefreshLoop() {
  if (config_.refresh_interval > absl::ZeroDuration()) {
    absl::Time next = absl::Now() + config_.refresh_interval;
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        while (!stopping_ && absl::Now() < next) sched_cv_.WaitWithDeadline(&mu_, next);
        if (stopping_) break;
      }
      // Period kept from the planned time, not from the end of a slow call.
      next = std::max(next + config_.refresh_interval, absl::Now());
      RefreshNow().IgnoreError();
    }
  }
  ThreadExited();
}

void Bridge::RetryLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      // Retry times follow the injected clock; sleep by the distance to the earliest one. Every
      // new retry time signals sched_cv_, so one set while sleeping is never missed.
      while (!stopping_) {
        if (earliest_retry_ == absl::InfiniteFuture()) {
          sched_cv_.Wait(&mu_);
          continue;
        }
        const absl::Duration left = earliest_retry_ - Now();
        if (left <= absl::ZeroDuration()) break;
        sched_cv_.WaitWithTimeout(&mu_, left);
      }
      if (stopping_) break;
    }
    RetryDueNow();
  }
  ThreadExited();
}

std::string Bridge::PendingWork() const {
  absl::MutexLock lock(&mu_);
  std::string out = absl::StrCat(
      "queue=", slot_queue_.size() + container_queue_.size(),
      " dirty_containers=", dirty_containers_.size(), " dirty_slots=", dirty_slots_.size(),
      " busy_containers=", busy_containers_.size(), " busy_slots=", busy_slots_.size(),
      " resync_requested=", resync_requested_, " resync_starting=", resync_starting_,
      " resyncs_running=", resyncs_running_, " slots:");
  for (const auto& id : busy_slots_) absl::StrAppend(&out, " busy:", id);
  for (const auto& id : dirty_slots_) absl::StrAppend(&out, " dirty:", id);
  for (const auto& id : busy_containers_) absl::StrAppend(&out, " busy-container:", id);
  return out;
}

BridgeStats Bridge::stats() const {
  absl::MutexLock lock(&mu_);
  BridgeStats stats = stats_;
  stats.services = 0;
  for (const auto& [id, slot] : slots_) {
    stats.services += !slot.claims.empty() && slot.held && !slot.held_fingerprint.empty();
  }
  return stats;
}

std::vector<Service> Bridge::RegisteredServices() const {
  std::vector<Service> result;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, slot] : slots_) {
      if (!slot.claims.empty() && slot.held && !slot.held_fingerprint.empty()) {
        result.push_back(*slot.held);
      }
    }
  }
  std::sort(result.begin(), result.end(),
            [](const Service& a, const Service& b) { return a.id < b.id; });
  return result;
}

}  // namespace registrator
