// An in-memory backend for the bridge's unit tests and benchmarks: holds entries by ID,
// counts every write, and can fail, hang, be slow or lose its state on demand.
#ifndef REGISTRATOR_MODEL_FAKE_ADAPTER_H_
#define REGISTRATOR_MODEL_FAKE_ADAPTER_H_

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "registrator/model/registry_adapter.h"

namespace registrator::fakes {

class FakeAdapter : public RegistryAdapter {
 public:
  ~FakeAdapter() override { StopWatch(); }
  absl::Status Ping() override { return Fail("ping"); }
  absl::Status Register(const Service& service) override {
    Delay();
    OnReturn on_return(this, "register", service.id);
    absl::MutexLock lock(&mu_);
    ++registers_;
    Concurrency busy(this, "register");
    if (std::optional<absl::Status> s = HangLocked("register", service.id)) {
      if (apply_hung_) entries_[KeyLocked(service)] = service;
      return *s;
    }
    if (absl::Status s = FailLocked("register", service.id); !s.ok()) return s;
    entries_[KeyLocked(service)] = service;
    NotifyWatchLocked();
    return absl::OkStatus();
  }
  absl::Status Deregister(const Service& service) override {
    Delay();
    OnReturn on_return(this, "deregister", service.id);
    absl::MutexLock lock(&mu_);
    ++deregisters_;
    Concurrency busy(this, "deregister");
    if (std::optional<absl::Status> s = HangLocked("deregister", service.id)) {
      if (apply_hung_) entries_.erase(KeyLocked(service));
      return *s;
    }
    if (absl::Status s = FailLocked("deregister", service.id); !s.ok()) return s;
    entries_.erase(KeyLocked(service));
    NotifyWatchLocked();
    return absl::OkStatus();
  }
  // Renews TTLs and re-asserts Docker health; with SetRefreshRecreates, also re-creates missing
  // entries, as ZooKeeper's refresh re-creates deleted ephemeral nodes and an etcd keepalive
  // re-puts lost keys.
  absl::Status Refresh(const std::vector<Service>& services) override {
    Delay();
    OnReturn on_return(this, "refresh", "");
    absl::MutexLock lock(&mu_);
    ++refreshes_;
    last_refresh_.clear();
    for (const Service& s : services) last_refresh_.push_back(s.id);
    std::optional<absl::Status> hung = HangLocked("refresh", "");
    if (hung && !apply_hung_) return *hung;
    if (absl::Status s = FailLocked("refresh", ""); !s.ok()) return s;
    if (refresh_recreates_) {
      for (const Service& s : services) entries_.try_emplace(KeyLocked(s), s);
    }
    // Like Consul's adapter, a refresh re-asserts each entry's Docker health.
    for (const Service& s : services) {
      auto it = entries_.find(KeyLocked(s));
      if (it != entries_.end()) it->second.docker_health = s.docker_health;
    }
    return hung ? *hung : absl::OkStatus();
  }
  absl::StatusOr<std::vector<RegisteredService>> Services() override {
    Delay();
    OnReturn on_return(this, "services", "");
    absl::MutexLock lock(&mu_);
    ++lists_;
    if (!can_list_) return absl::UnimplementedError("no listing");
    if (absl::Status s = FailLocked("services", ""); !s.ok()) return s;
    std::vector<RegisteredService> result;
    for (const auto& [id, service] : entries_) {
      result.push_back({service, FingerprintOf(service), HealthOf(service)});
    }
    return result;
  }
  std::string Fingerprint(const Service& service) const override { return FingerprintOf(service); }
  std::string EntryKey(const Service& service) const override {
    absl::MutexLock lock(&mu_);
    return KeyLocked(service);
  }
  // Like Consul: an entry keeps its Docker health; Register writes it, SetHealth updates it.
  absl::Status SetHealth(const Service& service) override {
    Delay();
    absl::MutexLock lock(&mu_);
    ++health_writes_;
    if (absl::Status s = FailLocked("health", service.id); !s.ok()) return s;
    auto it = entries_.find(KeyLocked(service));
    if (it == entries_.end()) return absl::NotFoundError("no such entry");
    it->second.docker_health = service.docker_health;
    return absl::OkStatus();
  }
  std::string HealthFingerprint(const Service& service) const override { return HealthOf(service); }
  static std::string HealthOf(const Service& s) {
    if (s.docker_health.status.empty()) return "";
    return absl::StrCat(s.docker_health.status, "|", s.docker_health.output);
  }
  void SetStateLostCallback(std::function<void()> callback) override {
    absl::MutexLock lock(&mu_);
    state_lost_ = std::move(callback);
  }

  static std::string FingerprintOf(const Service& s) {
    return absl::StrCat(s.id, "|", s.name, "|", s.ip, "|", s.port, "|", absl::StrJoin(s.tags, ","));
  }

  // Test controls.
  // Fails every call of `op` ("register", "deregister", "health", "refresh", "services", "ping")
  // with `status` until cleared (OkStatus). `id` restricts it to one service ID when non-empty.
  void FailOp(const std::string& op, absl::Status status, const std::string& id = "") {
    absl::MutexLock lock(&mu_);
    failures_[op + "|" + id] = std::move(status);
  }
  // Calls of `op` (all ops when empty; one service ID when `id` is set) block from now on until
  // ReleaseHung, which ends every blocked call with `result` (applied to the backend when
  // `apply`, like a timeout after the server did the work) and stops hanging new ones.
  void Hang(const std::string& op, const std::string& id = "") {
    absl::MutexLock lock(&mu_);
    hang_.insert(op + "|" + id);
  }
  void ReleaseHung(absl::Status result, bool apply) {
    absl::MutexLock lock(&mu_);
    hang_.clear();
    hang_result_ = std::move(result);
    apply_hung_ = apply;
    ++release_generation_;
    hang_cv_.SignalAll();
  }
  // What Bridge::Stop does at its deadline (directly, or through a test's cancel_calls): every
  // blocked call returns CANCELLED.
  void AbortCalls() override {
    {
      absl::MutexLock lock(&mu_);
      ++aborts_;
    }
    ReleaseHung(absl::CancelledError("aborted"), /*apply=*/false);
  }
  // Records the IDs held when it was called (so a test sees what -cleanup had removed by then).
  absl::Status CleanupLeftovers() override {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> ids;
    for (const auto& [id, service] : entries_) ids.push_back(id);
    leftover_cleanups_.push_back(std::move(ids));
    return absl::OkStatus();
  }
  // The IDs held at each CleanupLeftovers call.
  std::vector<std::vector<std::string>> leftover_cleanups() const {
    absl::MutexLock lock(&mu_);
    return leftover_cleanups_;
  }
  // How often AbortCalls ran.
  int aborts() const {
    absl::MutexLock lock(&mu_);
    return aborts_;
  }
  // Calls blocked in Hang right now.
  int hung() const {
    absl::MutexLock lock(&mu_);
    return hung_;
  }
  // The most calls of `op` that ran at once.
  int max_concurrent(const std::string& op) const {
    absl::MutexLock lock(&mu_);
    auto it = max_concurrent_.find(op);
    return it == max_concurrent_.end() ? 0 : it->second;
  }
  // Called by every register, deregister, refresh and listing ("services"; `id` is "" but for
  // register and deregister) once it has done its work on the backend and before it returns,
  // without the fake's lock: a test blocks in it to hold a call's reply on its way back (a
  // listing that answered before a later change arrives after it). nullptr: none.
  void SetReturnHook(std::function<void(const std::string& op, const std::string& id)> hook) {
    absl::MutexLock lock(&mu_);
    return_hook_ = std::move(hook);
  }
  // Every call sleeps this long first (real time), to let other threads interleave.
  void SetLatency(absl::Duration latency) {
    absl::MutexLock lock(&mu_);
    latency_ = latency;
  }
  // Keys entries by "<name>/<ID>" (as consulkv, etcd and skydns2 do) instead of by ID: a
  // changed name moves the entry, and entries() is keyed that way too. Set before any write.
  void SetKeyByName(bool key_by_name) {
    absl::MutexLock lock(&mu_);
    key_by_name_ = key_by_name;
  }
  void SetRefreshRecreates(bool recreates) {
    absl::MutexLock lock(&mu_);
    refresh_recreates_ = recreates;
  }
  bool has_state_lost_callback() const {
    absl::MutexLock lock(&mu_);
    return static_cast<bool>(state_lost_);
  }
  void SetCanList(bool can_list) {
    absl::MutexLock lock(&mu_);
    can_list_ = can_list;
  }
  // Changes the backend behind the bridge's back (drift, another host's entry).
  void Seed(const Service& service) {
    absl::MutexLock lock(&mu_);
    entries_[KeyLocked(service)] = service;
    NotifyWatchLocked();
  }
  void Drop(const std::string& id) {
    absl::MutexLock lock(&mu_);
    entries_.erase(id);
    NotifyWatchLocked();
  }

  // The drift watch (RegistryAdapter::StartWatch), off by default (UNIMPLEMENTED, like a
  // backend that cannot watch). When on, every change of the entries (the bridge's writes,
  // Seed, Drop) reports drift on a thread of its own, as a real watch's stream thread does.
  void SetWatchable(bool watchable) {
    absl::MutexLock lock(&mu_);
    watchable_ = watchable;
  }
  absl::Status StartWatch(std::function<void()> drifted) override {
    absl::MutexLock lock(&mu_);
    if (!watchable_) return absl::UnimplementedError("fake: no watch");
    if (watch_thread_.joinable()) return absl::FailedPreconditionError("fake: already watching");
    ++watch_starts_;
    watch_stop_ = false;
    watch_pending_ = false;
    watch_thread_ = std::thread([this, drifted = std::move(drifted)] {
      absl::MutexLock lock(&mu_);
      while (true) {
        mu_.Await(absl::Condition(
            +[](FakeAdapter* fake) ABSL_NO_THREAD_SAFETY_ANALYSIS {
              return fake->watch_stop_ || fake->watch_pending_;
            },
            this));
        if (watch_stop_) return;
        watch_pending_ = false;
        ++watch_events_;
        mu_.Unlock();
        drifted();
        mu_.Lock();
      }
    });
    return absl::OkStatus();
  }
  void StopWatch() override {
    std::thread thread;
    {
      absl::MutexLock lock(&mu_);
      watch_stop_ = true;
      thread = std::move(watch_thread_);
    }
    if (thread.joinable()) thread.join();
  }
  // A change the watch misses (it is down): no drift is reported.
  void DropUnseen(const std::string& id) {
    absl::MutexLock lock(&mu_);
    entries_.erase(id);
  }
  // What an adapter does when its watch breaks and is re-established: report drift once.
  void BreakWatch() {
    absl::MutexLock lock(&mu_);
    NotifyWatchLocked();
  }
  bool watching() const {
    absl::MutexLock lock(&mu_);
    return watch_thread_.joinable() && !watch_stop_;
  }
  int watch_starts() const {
    absl::MutexLock lock(&mu_);
    return watch_starts_;
  }
  // Drift reports delivered so far.
  int watch_events() const {
    absl::MutexLock lock(&mu_);
    return watch_events_;
  }
  // Services() calls so far.
  int lists() const {
    absl::MutexLock lock(&mu_);
    return lists_;
  }
  void LoseState() {
    std::function<void()> callback;
    {
      absl::MutexLock lock(&mu_);
      entries_.clear();
      callback = state_lost_;
    }
    if (callback) callback();
  }
  std::map<std::string, Service> entries() const {
    absl::MutexLock lock(&mu_);
    return entries_;
  }
  int registers() const {
    absl::MutexLock lock(&mu_);
    return registers_;
  }
  int deregisters() const {
    absl::MutexLock lock(&mu_);
    return deregisters_;
  }
  int writes() const {
    absl::MutexLock lock(&mu_);
    return registers_ + deregisters_;
  }
  int refreshes() const {
    absl::MutexLock lock(&mu_);
    return refreshes_;
  }
  int health_writes() const {
    absl::MutexLock lock(&mu_);
    return health_writes_;
  }
  // The Docker health the backend holds for `id` (nullopt: no such entry).
  std::optional<DockerHealth> health(const std::string& id) const {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return std::nullopt;
    return it->second.docker_health;
  }
  // Changes an entry's health behind the bridge's back.
  void SeedHealth(const std::string& id, DockerHealth health) {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it != entries_.end()) it->second.docker_health = std::move(health);
  }
  std::vector<std::string> last_refresh() const {
    absl::MutexLock lock(&mu_);
    return last_refresh_;
  }

 private:
  // Counts calls of one op running at once (hung ones included).
  class Concurrency {
   public:
    Concurrency(FakeAdapter* fake, std::string op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(fake->mu_)
        : fake_(fake), operation_(std::move(op)) {
      int& now = fake_->concurrent_[operation_];
      ++now;
      int& max = fake_->max_concurrent_[operation_];
      max = std::max(max, now);
    }
    ~Concurrency() { --fake_->concurrent_[operation_]; }  // Runs with mu_ still held.

   private:
    FakeAdapter* fake_;
    std::string operation_;
  };

  // Declared before a call's MutexLock, so that it runs the return hook after the lock is
  // released and the result is built.
  class OnReturn {
   public:
    OnReturn(FakeAdapter* fake, std::string op, std::string id)
        : fake_(fake), op_(std::move(op)), id_(std::move(id)) {}
    ~OnReturn() {
      std::function<void(const std::string&, const std::string&)> hook;
      {
        absl::MutexLock lock(&fake_->mu_);
        hook = fake_->return_hook_;
      }
      if (hook) hook(op_, id_);
    }
    OnReturn(const OnReturn&) = delete;
    OnReturn& operator=(const OnReturn&) = delete;

   private:
    FakeAdapter* fake_;
    std::string op_;
    std::string id_;
  };

  void NotifyWatchLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (watch_thread_.joinable() && !watch_stop_) watch_pending_ = true;
  }
  void Delay() {
    absl::Duration latency;
    {
      absl::MutexLock lock(&mu_);
      latency = latency_;
    }
    if (latency > absl::ZeroDuration()) absl::SleepFor(latency);
  }
  std::string KeyLocked(const Service& service) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return key_by_name_ ? absl::StrCat(service.name, "/", service.id) : service.id;
  }
  // Blocks while `op` hangs; then the result ReleaseHung chose. nullopt: not hanging.
  std::optional<absl::Status> HangLocked(const std::string& op, const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!hang_.contains(op + "|" + id) && !hang_.contains(op + "|") && !hang_.contains("|")) {
      return std::nullopt;
    }
    const uint64_t generation = release_generation_;
    ++hung_;
    while (release_generation_ == generation) hang_cv_.Wait(&mu_);
    --hung_;
    return hang_result_;
  }
  absl::Status Fail(const std::string& op) {
    absl::MutexLock lock(&mu_);
    return FailLocked(op, "");
  }
  absl::Status FailLocked(const std::string& op, const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = failures_.find(op + "|" + id);
    if (it != failures_.end() && !it->second.ok()) return it->second;
    it = failures_.find(op + "|");
    if (it != failures_.end() && !it->second.ok()) return it->second;
    return absl::OkStatus();
  }

  mutable absl::Mutex mu_;
  absl::CondVar hang_cv_;
  int aborts_ ABSL_GUARDED_BY(mu_) = 0;
  bool key_by_name_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::vector<std::string>> leftover_cleanups_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> hang_ ABSL_GUARDED_BY(mu_);
  uint64_t release_generation_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status hang_result_ ABSL_GUARDED_BY(mu_);
  bool apply_hung_ ABSL_GUARDED_BY(mu_) = false;
  int hung_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, int> concurrent_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> max_concurrent_ ABSL_GUARDED_BY(mu_);
  absl::Duration latency_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
  std::function<void(const std::string&, const std::string&)> return_hook_ ABSL_GUARDED_BY(mu_);
  bool refresh_recreates_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Service> entries_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Status> failures_ ABSL_GUARDED_BY(mu_);
  std::function<void()> state_lost_ ABSL_GUARDED_BY(mu_);
  bool can_list_ ABSL_GUARDED_BY(mu_) = true;
  int registers_ ABSL_GUARDED_BY(mu_) = 0;
  int deregisters_ ABSL_GUARDED_BY(mu_) = 0;
  int refreshes_ ABSL_GUARDED_BY(mu_) = 0;
  int health_writes_ ABSL_GUARDED_BY(mu_) = 0;
  int lists_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> last_refresh_ ABSL_GUARDED_BY(mu_);
  bool watchable_ ABSL_GUARDED_BY(mu_) = false;
  bool watch_stop_ ABSL_GUARDED_BY(mu_) = false;
  bool watch_pending_ ABSL_GUARDED_BY(mu_) = false;
  int watch_starts_ ABSL_GUARDED_BY(mu_) = 0;
  int watch_events_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread watch_thread_ ABSL_GUARDED_BY(mu_);
};

}  // namespace registrator::fakes

#endif  // REGISTRATOR_MODEL_FAKE_ADAPTER_H_
