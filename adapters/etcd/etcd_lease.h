// The v3 lease keeper behind -ttl: one lease carries all of this host's keys and a refresh is one
// keepalive; keys of services no longer refreshed are moved once onto a lease nobody renews, so
// they expire on their own. It keeps the books of which key holds which value on the lease.
#ifndef ADAPTERS_ETCD_ETCD_LEASE_H_
#define ADAPTERS_ETCD_ETCD_LEASE_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "adapters/etcd/etcd_transport.h"

namespace registrator::etcd {

class LeaseKeeper {
 public:
  // `transport` must outlive the keeper. ttl_seconds > 0.
  LeaseKeeper(Transport* transport, int ttl_seconds);

  // The lease that carries this host's keys, granted on first need. One grant at a time: other
  // callers wait for it instead of granting leases of their own.
  absl::StatusOr<int64_t> Acquire(const ApiChoice& api);
  // The current lease, 0 while none is granted.
  int64_t Current();
  // `lease` turned out to be gone (expired or revoked; etcd deleted its keys): forget it and its
  // books. True only for the first caller to report a given lease, so a loss is handled once.
  bool Forget(int64_t lease);
  // key=value was put on `lease` (recorded only if that is still the current lease) / deleted.
  void Written(int64_t lease, const std::string& key, const std::string& value);
  void Deleted(const std::string& key);

  // One keepalive of the current lease (none: OK). When etcd no longer knows it, the lease is
  // forgotten and *lost is set; any other failure is returned.
  absl::Status KeepAlive(const ApiChoice& api, bool* lost);

  // Compares the books with `wanted` (key -> value): returns the wanted keys not on the books (to
  // be put), and takes the books' keys that are not wanted off them into *orphans.
  std::vector<std::pair<std::string, std::string>> Reconcile(
      const std::map<std::string, std::string>& wanted,
      std::map<std::string, std::string>* orphans);

  // Moves each orphan, if it still holds the value we wrote, onto a fresh lease that nobody
  // renews (it expires in ttl_seconds). A key etcd reports changed or gone since is left alone;
  // one that could not be moved goes back on the books, to be tried by the next refresh.
  absl::Status LetExpire(const ApiChoice& api, const std::map<std::string, std::string>& orphans);

 private:
  absl::StatusOr<int64_t> Grant(const ApiChoice& api);

  Transport* const transport_;
  const int ttl_seconds_;

  absl::Mutex mu_;
  absl::CondVar granted_cv_;
  int64_t lease_ ABSL_GUARDED_BY(mu_) = 0;  // 0 while none is granted.
  bool granting_ ABSL_GUARDED_BY(mu_) = false;
  // Keys written on lease_ (key -> value): what a keepalive keeps alive.
  std::map<std::string, std::string> on_lease_ ABSL_GUARDED_BY(mu_);
};

}  // namespace registrator::etcd

#endif  // ADAPTERS_ETCD_ETCD_LEASE_H_
