#include "registrator/bridge.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "registrator/common/log.h"

namespace registrator {
namespace {

// Actions after which a container's services may have changed. Others (exec_*, attach, top,
// health_status, kill, stop...) are followed by one of these when they matter.
bool IsRelevantAction(absl::string_view action) {
  return action == "start" || action == "restart" || action == "unpause" || action == "die" ||
         action == "destroy" || action == "rename";
}

std::string ShortId(absl::string_view id) { return std::string(id.substr(0, 12)); }

bool IsContainerNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
}

}  // namespace

Bridge::Bridge(docker::DockerApi* docker, RegistryAdapter* adapter, ServiceDeriver derive,
               BridgeConfig config, std::function<absl::Time()> clock)
    : docker_(docker),
      adapter_(adapter),
      derive_(std::move(derive)),
      config_(std::move(config)),
      clock_(clock ? std::move(clock) : [] { return absl::Now(); }) {
  adapter_->SetStateLostCallback([this] {
    REG_LOG_WARN("backend lost this host's entries; rewriting everything");
    {
      absl::MutexLock lock(&mu_);
      for (auto& [id, entry] : entries_) entry.registered = false;
      backend_snapshot_.clear();
      for (const auto& [container_id, record] : containers_) {
        MarkDirtyLocked(container_id, Work::kRewrite);
      }
    }
  });
}

Bridge::~Bridge() { Stop(); }

absl::Time Bridge::Now() const { return clock_(); }

void Bridge::Start() {
  absl::MutexLock lock(&mu_);
  if (started_) return;
  started_ = true;
  for (int i = 0; i < std::max(1, config_.workers); ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
  scheduler_ = std::thread([this] { SchedulerLoop(); });
}

void Bridge::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    work_cv_.SignalAll();
    sched_cv_.SignalAll();
    idle_cv_.SignalAll();
  }
  // Workers finish the container they hold (its writes complete); queued work is dropped:
  // the next start resyncs from scratch anyway.
  for (std::thread& worker : workers_) worker.join();
  if (scheduler_.joinable()) scheduler_.join();
  workers_.clear();
  if (config_.deregister_on_exit) DeregisterAll();
}

void Bridge::OnEvent(const docker::Event& event) {
  absl::MutexLock lock(&mu_);
  ++stats_.events;
  if (!event.type.empty() && event.type != "container") return;
  if (event.id.empty() || !IsRelevantAction(event.action)) return;
  REG_LOG_DEBUG("event ", event.action, " container ", ShortId(event.id), " (", event.name, ")");
  if (dirty_.size() >= config_.max_pending && !dirty_.contains(event.id)) {
    // Never grow without bound behind a slow backend: the resync will find this container.
    ++stats_.events_dropped;
    if (!resync_requested_) {
      REG_LOG_WARN("event queue full (", config_.max_pending,
                   " containers pending); dropping events and scheduling a resync");
    }
    resync_requested_ = true;
    sched_cv_.Signal();
    return;
  }
  MarkDirtyLocked(event.id, Work::kInspect);
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
  sched_cv_.Signal();
}

void Bridge::MarkDirtyLocked(const std::string& id, Work work) {
  auto it = dirty_.find(id);
  if (it != dirty_.end()) {
    if (work == Work::kInspect) it->second = Work::kInspect;
    return;
  }
  dirty_.emplace(id, work);
  queue_.push_back(id);
  work_cv_.Signal();
}

void Bridge::WorkerLoop() {
  while (true) {
    std::string id;
    Work work;
    {
      absl::MutexLock lock(&mu_);
      while (true) {
        while (!stopping_ && queue_.empty()) work_cv_.Wait(&mu_);
        if (stopping_) return;
        id = std::move(queue_.front());
        queue_.pop_front();
        auto it = dirty_.find(id);
        // Busy containers stay dirty; the worker holding them requeues them when done.
        if (it == dirty_.end() || in_flight_.contains(id)) continue;
        work = it->second;
        dirty_.erase(it);
        in_flight_.insert(id);
        break;
      }
    }
    ProcessContainer(id, work);
    {
      absl::MutexLock lock(&mu_);
      in_flight_.erase(id);
      ++stats_.reconciles;
      if (dirty_.contains(id)) {
        queue_.push_back(id);
        work_cv_.Signal();
      }
      idle_cv_.SignalAll();
    }
  }
}

void Bridge::ProcessContainer(const std::string& id, Work work) {
  if (work == Work::kRewrite) {
    Rewrite(id);
    return;
  }
  absl::StatusOr<docker::Container> container = docker_->InspectContainer(id);
  if (!container.ok()) {
    if (absl::IsNotFound(container.status())) {
      REG_LOG_DEBUG("container ", ShortId(id), " is gone");
      {
        absl::MutexLock lock(&mu_);
        inspect_retry_.erase(id);
      }
      Apply(id, /*name=*/"", /*running=*/false, {});
      return;
    }
    REG_LOG_WARN("inspect of container ", ShortId(id), " failed: ", container.status().message(),
                 "; will retry");
    absl::MutexLock lock(&mu_);
    const absl::Time due = Now() + config_.retry_initial;
    inspect_retry_[id] = due;
    earliest_retry_ = std::min(earliest_retry_, due);
    sched_cv_.Signal();
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    inspect_retry_.erase(id);
  }
  const docker::ContainerState& state = container->state;
  // A restarting container's process is dead (Docker still reports Running); treat it as a die.
  if (state.running && !state.restarting) {
    std::vector<Service> wanted = derive_(*container);
    if (wanted.empty()) {
      REG_LOG_DEBUG("container ", ShortId(id), " (", container->name, ") has no services");
    }
    Apply(id, container->name, /*running=*/true, std::move(wanted));
    return;
  }
  // Not running: die rules. on-success keeps a failed container's services; they stop being
  // refreshed and expire where the backend has TTLs.
  const int64_t code = state.exit_code;
  if (config_.deregister_on_success && code != 0 && (code & 128) == 0) {
    Keep(id, container->name, code);
    return;
  }
  Apply(id, container->name, /*running=*/false, {});
}

void Bridge::Keep(const std::string& id, const std::string& name, int64_t exit_code) {
  absl::MutexLock lock(&mu_);
  auto it = containers_.find(id);
  if (it == containers_.end()) return;
  bool any = false;
  for (const std::string& service_id : it->second.service_ids) {
    auto entry = entries_.find(service_id);
    if (entry == entries_.end() || entry->second.deleting || entry->second.kept) continue;
    entry->second.kept = true;
    any = true;
  }
  if (any) {
    REG_LOG_INFO("container ", ShortId(id), " (", name, ") exited with code ", exit_code,
                 "; keeping its services (-deregister=on-success)");
  }
}

void Bridge::Apply(const std::string& id, const std::string& name, bool running,
                   std::vector<Service> wanted) {
  // Fingerprints are pure; compute them before taking the lock.
  std::vector<std::string> fingerprints;
  fingerprints.reserve(wanted.size());
  for (const Service& service : wanted) fingerprints.push_back(adapter_->Fingerprint(service));

  std::vector<std::pair<Service, std::string>> to_register;
  std::vector<Service> to_deregister;
  {
    absl::MutexLock lock(&mu_);
    if (!running && !containers_.contains(id)) return;
    ContainerRecord& record = containers_[id];
    record.running = running;
    if (!name.empty()) record.name = name;
    absl::flat_hash_set<std::string> wanted_ids;
    for (size_t i = 0; i < wanted.size(); ++i) {
      Service& service = wanted[i];
      const std::string& fingerprint = fingerprints[i];
      if (!wanted_ids.insert(service.id).second) {
        REG_LOG_WARN("container ", ShortId(id), " (", record.name, "): duplicate service ID \"",
                     service.id, "\"; registering the first only");
        continue;
      }
      auto [it, inserted] = entries_.try_emplace(service.id);
      Entry& entry = it->second;
      if (inserted) record.service_ids.push_back(service.id);
      entry.kept = false;
      entry.deleting = false;
      const bool unchanged = entry.registered && entry.fingerprint == fingerprint;
      entry.service = std::move(service);
      if (unchanged || entry.rejected == fingerprint) continue;
      entry.rejected.clear();
      entry.fingerprint = fingerprint;
      auto snap = backend_snapshot_.find(entry.service.id);
      if (snap != backend_snapshot_.end() && snap->second == fingerprint) {
        // The backend already holds exactly this (e.g. from before a restart): no write.
        entry.registered = true;
        backend_snapshot_.erase(snap);
        continue;
      }
      entry.registered = false;
      to_register.emplace_back(entry.service, fingerprint);
    }
    for (const std::string& service_id : record.service_ids) {
      if (wanted_ids.contains(service_id)) continue;
      auto it = entries_.find(service_id);
      if (it == entries_.end()) continue;
      it->second.deleting = true;
      to_deregister.push_back(it->second.service);
    }
  }
  Write(id, to_register, to_deregister);
}

void Bridge::Rewrite(const std::string& id) {
  std::vector<std::pair<Service, std::string>> to_register;
  std::vector<Service> to_deregister;
  {
    absl::MutexLock lock(&mu_);
    auto record = containers_.find(id);
    if (record == containers_.end()) return;
    for (const std::string& service_id : record->second.service_ids) {
      auto it = entries_.find(service_id);
      if (it == entries_.end()) continue;
      const Entry& entry = it->second;
      if (entry.deleting) {
        to_deregister.push_back(entry.service);
      } else if (!entry.registered && !entry.kept && entry.rejected != entry.fingerprint) {
        to_register.emplace_back(entry.service, entry.fingerprint);
      }
    }
  }
  Write(id, to_register, to_deregister);
}

void Bridge::Write(const std::string& id,
                   const std::vector<std::pair<Service, std::string>>& to_register,
                   const std::vector<Service>& to_deregister) {
  for (const auto& [service, fingerprint] : to_register) WriteRegister(id, service, fingerprint);
  for (const Service& service : to_deregister) WriteDeregister(service);
  // Forget the container once nothing of it is left.
  absl::MutexLock lock(&mu_);
  auto record = containers_.find(id);
  if (record == containers_.end()) return;
  std::vector<std::string>& ids = record->second.service_ids;
  ids.erase(std::remove_if(
                ids.begin(), ids.end(),
                [this](const std::string& service_id) { return !entries_.contains(service_id); }),
            ids.end());
  if (ids.empty() && !record->second.running) containers_.erase(record);
}

void Bridge::WriteRegister(const std::string& container_id, const Service& service,
                           const std::string& fingerprint) {
  const absl::Status status = adapter_->Register(service);
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(service.id);
  if (it == entries_.end() || it->second.fingerprint != fingerprint) return;  // Superseded.
  Entry& entry = it->second;
  if (status.ok()) {
    REG_LOG_INFO("registered ", service.id, " (", service.name, " ", service.ip, ":", service.port,
                 ") for container ", ShortId(container_id), " (", service.container_name, ")");
    entry.registered = true;
    entry.failures = 0;
    ++stats_.registers;
    stats_.last_backend_ok = Now();
    return;
  }
  REG_LOG_ERROR("register ", service.id, " for container ", ShortId(container_id), " (",
                service.container_name, ") failed: ", status.message());
  ++stats_.register_failures;
  RecordFailure(&entry, status);
  if (absl::IsInvalidArgument(status)) {
    // The backend will reject this exact body again; wait for the service to change.
    entry.rejected = fingerprint;
    REG_LOG_ERROR("not retrying ", service.id, " until its definition changes");
  }
}

void Bridge::WriteDeregister(const Service& service) {
  const absl::Status status = adapter_->Deregister(service);
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(service.id);
  if (status.ok()) {
    REG_LOG_INFO("deregistered ", service.id, " (", service.name, ") of container ",
                 ShortId(service.container_id), " (", service.container_name, ")");
    if (it != entries_.end() && it->second.deleting) entries_.erase(it);
    ++stats_.deregisters;
    stats_.last_backend_ok = Now();
    return;
  }
  REG_LOG_ERROR("deregister ", service.id, " failed: ", status.message(), "; will retry");
  ++stats_.deregister_failures;
  if (it != entries_.end()) RecordFailure(&it->second, status);
}

void Bridge::RecordFailure(Entry* entry, const absl::Status& status) {
  ++stats_.write_failures;
  stats_.last_backend_error = status;
  ++entry->failures;
  const int shift = std::min(entry->failures - 1, 20);
  const absl::Duration delay = std::min(config_.retry_max, config_.retry_initial * (1LL << shift));
  entry->next_retry = Now() + delay;
  earliest_retry_ = std::min(earliest_retry_, entry->next_retry);
  sched_cv_.Signal();
}

void Bridge::RetryDueNow() {
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  absl::Time earliest = absl::InfiniteFuture();
  for (auto& [service_id, entry] : entries_) {
    if (entry.failures == 0) continue;
    if (entry.rejected == entry.fingerprint && !entry.registered && !entry.deleting) continue;
    if (entry.next_retry > now) {
      earliest = std::min(earliest, entry.next_retry);
      continue;
    }
    entry.next_retry = absl::InfiniteFuture();  // Until this attempt reports back.
    ++stats_.retries;
    MarkDirtyLocked(entry.service.container_id, Work::kRewrite);
  }
  for (auto it = inspect_retry_.begin(); it != inspect_retry_.end();) {
    if (it->second <= now) {
      ++stats_.retries;
      MarkDirtyLocked(it->first, Work::kInspect);
      inspect_retry_.erase(it++);
    } else {
      earliest = std::min(earliest, it->second);
      ++it;
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
  absl::StatusOr<std::vector<docker::ContainerSummary>> running =
      docker_->ListContainers(/*all=*/false);
  if (!running.ok()) {
    REG_LOG_WARN("resync: listing containers failed: ", running.status().message());
    return running.status();
  }
  absl::StatusOr<std::vector<RegisteredService>> held = adapter_->Services();
  if (!held.ok() && !absl::IsUnimplemented(held.status())) {
    REG_LOG_WARN("resync: listing the backend failed: ", held.status().message());
  }

  absl::MutexLock lock(&mu_);
  ++stats_.resyncs;
  stats_.last_sync = Now();
  absl::flat_hash_set<std::string> running_ids;
  running_ids.reserve(running->size());
  for (const docker::ContainerSummary& summary : *running) running_ids.insert(summary.id);

  if (held.ok()) {
    stats_.last_backend_ok = Now();
    backend_snapshot_.clear();
    backend_snapshot_.reserve(held->size());
    for (const RegisteredService& entry : *held) {
      backend_snapshot_[entry.service.id] = entry.fingerprint;
    }
    // Drift: what we believe is registered but the backend lost or holds differently.
    for (auto& [service_id, entry] : entries_) {
      if (!entry.registered || entry.kept || entry.deleting) continue;
      auto snap = backend_snapshot_.find(service_id);
      if (snap != backend_snapshot_.end() && snap->second == entry.fingerprint) continue;
      REG_LOG_INFO("resync: backend ", snap == backend_snapshot_.end() ? "lost " : "changed ",
                   service_id, "; rewriting");
      entry.registered = false;
      entry.failures = 0;
      MarkDirtyLocked(entry.service.container_id, Work::kRewrite);
    }
  }
  // New containers, and tracked ones that stopped running without us seeing the event.
  for (const std::string& id : running_ids) {
    if (!containers_.contains(id)) MarkDirtyLocked(id, Work::kInspect);
  }
  for (const auto& [id, record] : containers_) {
    if (!running_ids.contains(id)) MarkDirtyLocked(id, Work::kInspect);
  }
  return absl::OkStatus();
}

absl::Status Bridge::SyncNow(absl::Duration timeout) {
  {
    absl::MutexLock lock(&mu_);
    resync_running_ = true;
  }
  absl::Status status = RunResync();
  const bool idle = status.ok() && WaitUntilDrained(timeout, /*include_resync=*/false);
  std::vector<Service> dangling;
  {
    absl::MutexLock lock(&mu_);
    resync_running_ = false;
    idle_cv_.SignalAll();
    // Cleanup only from a complete picture: every container reconciled, none failing inspect.
    if (config_.cleanup && idle && inspect_retry_.empty()) {
      for (auto it = backend_snapshot_.begin(); it != backend_snapshot_.end();) {
        if (!entries_.contains(it->first) && IsThisHostsId(it->first)) {
          Service service;
          service.id = it->first;
          dangling.push_back(std::move(service));
          backend_snapshot_.erase(it++);
        } else {
          ++it;
        }
      }
    }
  }
  if (!dangling.empty()) {
    // Deregister needs the entry as the backend listed it (name, ip, port for path layouts).
    absl::StatusOr<std::vector<RegisteredService>> held = adapter_->Services();
    if (held.ok()) {
      absl::flat_hash_set<std::string> ids;
      for (const Service& service : dangling) ids.insert(service.id);
      for (const RegisteredService& entry : *held) {
        if (!ids.contains(entry.service.id)) continue;
        {
          absl::MutexLock lock(&mu_);
          if (entries_.contains(entry.service.id)) continue;  // Claimed meanwhile.
        }
        const absl::Status removed = adapter_->Deregister(entry.service);
        if (removed.ok()) {
          REG_LOG_INFO("cleanup: removed dangling ", entry.service.id);
          absl::MutexLock lock(&mu_);
          ++stats_.deregisters;
        } else {
          REG_LOG_WARN("cleanup: removing ", entry.service.id, " failed: ", removed.message());
        }
      }
    }
  }
  if (status.ok() && !idle) return absl::DeadlineExceededError("resync did not finish in time");
  return status;
}

absl::Status Bridge::RefreshNow() {
  std::vector<Service> live;
  {
    absl::MutexLock lock(&mu_);
    live.reserve(entries_.size());
    for (const auto& [id, entry] : entries_) {
      if (entry.registered && !entry.kept) live.push_back(entry.service);
    }
  }
  std::sort(live.begin(), live.end(),
            [](const Service& a, const Service& b) { return a.id < b.id; });
  const absl::Status status = adapter_->Refresh(live);
  absl::MutexLock lock(&mu_);
  ++stats_.refreshes;
  if (!status.ok()) {
    stats_.last_backend_error = status;
    REG_LOG_WARN("TTL refresh failed: ", status.message());
  } else {
    stats_.last_backend_ok = Now();
  }
  return status;
}

bool Bridge::WaitIdle(absl::Duration timeout) { return WaitUntilDrained(timeout, true); }

bool Bridge::WaitUntilDrained(absl::Duration timeout, bool include_resync) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  auto drained = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return queue_.empty() && dirty_.empty() && in_flight_.empty() &&
           !(include_resync && (resync_requested_ || resync_running_));
  };
  while (!drained()) {
    if (stopping_) return false;
    if (idle_cv_.WaitWithDeadline(&mu_, deadline) && !drained()) return false;
  }
  return true;
}

void Bridge::SchedulerLoop() {
  absl::Time next_resync = config_.resync_interval > absl::ZeroDuration()
                               ? absl::Now() + config_.resync_interval
                               : absl::InfiniteFuture();
  absl::Time next_refresh = config_.refresh_interval > absl::ZeroDuration()
                                ? absl::Now() + config_.refresh_interval
                                : absl::InfiniteFuture();
  absl::Time resync_backoff_until = absl::InfinitePast();
  while (true) {
    bool do_resync = false;
    bool do_refresh = false;
    {
      absl::MutexLock lock(&mu_);
      // Sleep until the next timer, resync request or retry; every failure signals sched_cv_,
      // so a retry scheduled while sleeping is never missed.
      while (!stopping_) {
        const absl::Time now = absl::Now();
        absl::Time wake = std::min(next_resync, next_refresh);
        if (resync_requested_) wake = std::min(wake, resync_backoff_until);
        if (earliest_retry_ != absl::InfiniteFuture()) {
          // Retry times follow the injected clock; sleep by the distance to it.
          wake = std::min(wake, now + std::max(absl::ZeroDuration(), earliest_retry_ - Now()));
        }
        if (now >= wake) break;
        sched_cv_.WaitWithDeadline(&mu_, wake);
      }
      if (stopping_) return;
      const absl::Time now = absl::Now();
      if (resync_requested_ && now >= resync_backoff_until) do_resync = true;
      if (now >= next_resync) {
        do_resync = true;
        next_resync = now + config_.resync_interval;
      }
      if (now >= next_refresh) {
        do_refresh = true;
        next_refresh = now + config_.refresh_interval;
      }
      if (do_resync) {
        resync_requested_ = false;
        resync_running_ = true;  // So WaitIdle never sees a gap before SyncNow starts.
      }
    }
    RetryDueNow();
    if (do_resync) {
      const absl::Status status = SyncNow(absl::Seconds(60));
      if (!status.ok() && !absl::IsDeadlineExceeded(status)) {
        // Docker unreachable: try again soon (the event stream's reconnect also asks).
        absl::MutexLock lock(&mu_);
        resync_requested_ = true;
        resync_backoff_until = absl::Now() + absl::Seconds(2);
      }
    }
    if (do_refresh) RefreshNow().IgnoreError();
  }
}

void Bridge::DeregisterAll() {
  std::vector<Service> all;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, entry] : entries_) {
      if (entry.registered) all.push_back(entry.service);
    }
  }
  for (const Service& service : all) WriteDeregister(service);
}

BridgeStats Bridge::stats() const {
  absl::MutexLock lock(&mu_);
  BridgeStats stats = stats_;
  stats.services = 0;
  for (const auto& [id, entry] : entries_) stats.services += entry.registered ? 1 : 0;
  return stats;
}

std::vector<Service> Bridge::RegisteredServices() const {
  std::vector<Service> result;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, entry] : entries_) {
      if (entry.registered) result.push_back(entry.service);
    }
  }
  std::sort(result.begin(), result.end(),
            [](const Service& a, const Service& b) { return a.id < b.id; });
  return result;
}

}  // namespace registrator
