// The one interface every backend implements. The bridge calls it from worker threads, never
// while holding its own locks; implementations must be thread-safe.
#ifndef REGISTRATOR_MODEL_REGISTRY_ADAPTER_H_
#define REGISTRATOR_MODEL_REGISTRY_ADAPTER_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "registrator/model/service.h"

namespace registrator {

// One service as the backend holds it.
struct RegisteredService {
  // At least id and name; and ip/port where the backend stores them. Enough to Deregister it.
  Service service;
  // A canonical summary of what the backend holds for this entry. It equals
  // RegistryAdapter::Fingerprint(s) exactly when the backend holds what Register(s) writes,
  // which is how a resync of an unchanged host makes no writes.
  std::string fingerprint;
  // RegistryAdapter::HealthFingerprint of the Docker health the backend holds for this entry;
  // "" when it holds none (or keeps no health at all).
  std::string health_fingerprint;
};

class RegistryAdapter {
 public:
  virtual ~RegistryAdapter() = default;

  // Is the backend reachable and usable?
  virtual absl::Status Ping() = 0;
  // Creates or replaces the entry for `service` (idempotent).
  virtual absl::Status Register(const Service& service) = 0;
  // Removes the entry; an entry that is already gone is success. Only id, name, ip and port of
  // `service` are guaranteed to be set (it may come from Services()).
  virtual absl::Status Deregister(const Service& service) = 0;
  // Renews the TTL of every live service of this host (called every -ttl-refresh). Services
  // not in the list must be left to expire.
  virtual absl::Status Refresh(const std::vector<Service>& services) = 0;
  // Every entry under this adapter's prefix (the bridge keeps only this host's IDs).
  // UNIMPLEMENTED when the backend cannot list.
  virtual absl::StatusOr<std::vector<RegisteredService>> Services() = 0;
  // See RegisteredService::fingerprint.
  virtual std::string Fingerprint(const Service& service) const = 0;
  // Where the backend keeps the entry of `service`: two services with the same ID and the same
  // EntryKey share one entry (Register of one replaces the other's). Backends that put the name
  // or the IP in the key (consulkv, etcd, skydns2: "<Name>/<ID>"; ZooKeeper:
  // "<Name>/<IP>:<Port>") give a new key when those change, and the bridge then deregisters the
  // old entry after registering the new one, or it would stay behind. Pure and cheap (the
  // bridge calls it under its lock). Default: one entry per ID.
  virtual std::string EntryKey(const Service& service) const { return service.id; }

  // Docker health (service.docker_health), for backends that keep a health status per entry
  // (Consul's "Docker health" check). Register writes it too; SetHealth updates only it, for an
  // entry whose registration is unchanged. NOT_FOUND: the backend lacks the entry's health
  // check (the entry must be registered again). The defaults are for backends without one.
  virtual absl::Status SetHealth(const Service& service) {
    (void)service;
    return absl::OkStatus();
  }
  // A canonical summary of the health SetHealth(service) writes (see
  // RegisteredService::health_fingerprint); "" when there is none to write, in which case the
  // bridge never calls SetHealth.
  virtual std::string HealthFingerprint(const Service& service) const {
    (void)service;
    return "";
  }
  // The backend may have lost this host's entries (ZooKeeper session expired, etcd lease lost):
  // the adapter calls `request` from any thread, and the bridge rewrites what is missing.
  // Passing nullptr clears it: once this returns, the old callback is not called again (calls
  // already in progress may still finish). Implementations keep it in a StateLostNotifier
  // (registrator/model/state_lost_notifier.h).
  virtual void SetStateLostCallback(std::function<void()> request) { (void)request; }
  // The second half of -cleanup, after this host's dangling entries were deregistered: remove
  // what this host's entries left behind in the backend once they were gone without a
  // Deregister (ZooKeeper: a Name node left empty by a dead session). Never another host's
  // entries. Default: nothing is left behind.
  virtual absl::Status CleanupLeftovers() { return absl::OkStatus(); }
  // Shutdown: make every call in progress, and every later one, return promptly with an error
  // instead of waiting for the backend (Bridge::Stop calls it at its deadline). Needed where a
  // backend's calls are not plain libcurl transfers, which AbortHttpTransfers() already ends
  // (ZooKeeper: the C client's requests). Irreversible. Default: nothing to abort.
  virtual void AbortCalls() {}

  // Drift watching (issue 16): the adapter watches this adapter's entries with long polls only
  // (etcd watch stream, ZooKeeper watches, Consul blocking queries) and calls `drifted` from any
  // thread whenever an entry may have been deleted, altered or added behind the bridge's back
  // (also after its own writes: the bridge coalesces). When the watch breaks it logs once, calls
  // `drifted` (the bridge then re-checks everything) and re-establishes it with backoff.
  // UNIMPLEMENTED: this backend cannot watch (the bridge keeps relying on refresh/resync).
  virtual absl::Status StartWatch(std::function<void()> drifted) {
    (void)drifted;
    return absl::UnimplementedError("this backend cannot watch its entries");
  }
  // Stops the watch; once it returns `drifted` is never called again. Idempotent; also called
  // by Bridge::Stop before the adapter is destroyed.
  virtual void StopWatch() {}
};

}  // namespace registrator

#endif  // REGISTRATOR_MODEL_REGISTRY_ADAPTER_H_
