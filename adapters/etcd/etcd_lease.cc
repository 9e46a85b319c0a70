// The one v3 lease that carries this host's keys with -ttl, and the books of what is on it.
#include "adapters/etcd/etcd_lease.h"

#include "absl/strings/str_cat.h"
#include "adapters/etcd/etcd_codec.h"
#include "registrator/common/log.h"

namespace registrator::etcd {

LeaseKeeper::LeaseKeeper(Transport* transport, int ttl_seconds)
    : transport_(transport), ttl_seconds_(ttl_seconds) {}

absl::StatusOr<int64_t> LeaseKeeper::Grant(const ApiChoice& api) {
  absl::StatusOr<std::string> body =
      transport_->V3Call(api, "lease/grant", V3LeaseGrantBody(ttl_seconds_), "lease/grant");
  if (!body.ok()) return body.status();
  return ParseV3LeaseGrant(*body);
}

absl::StatusOr<int64_t> LeaseKeeper::Acquire(const ApiChoice& api) {
  {
    absl::MutexLock lock(&mu_);
    while (granting_) granted_cv_.Wait(&mu_);
    if (lease_ != 0) return lease_;
    granting_ = true;
  }
  absl::StatusOr<int64_t> granted = Grant(api);
  absl::MutexLock lock(&mu_);
  granting_ = false;
  granted_cv_.SignalAll();
  if (!granted.ok()) return granted.status();
  lease_ = *granted;
  on_lease_.clear();
  REG_LOG_INFO(transport_->backend_name(), ": granted lease ", lease_, " (ttl ", ttl_seconds_,
               "s)");
  return lease_;
}

int64_t LeaseKeeper::Current() {
  absl::MutexLock lock(&mu_);
  return lease_;
}

bool LeaseKeeper::Forget(int64_t lease) {
  absl::MutexLock lock(&mu_);
  if (lease_ != lease || lease == 0) return false;
  REG_LOG_WARN(transport_->backend_name(), ": lease ", lease,
               " is gone (expired or revoked); its keys were deleted by etcd");
  lease_ = 0;
  on_lease_.clear();
  return true;
}

void LeaseKeeper::Written(int64_t lease, const std::string& key, const std::string& value) {
  absl::MutexLock lock(&mu_);
  if (lease_ == lease) on_lease_[key] = value;
}

void LeaseKeeper::Deleted(const std::string& key) {
  absl::MutexLock lock(&mu_);
  on_lease_.erase(key);
}

absl::Status LeaseKeeper::KeepAlive(const ApiChoice& api, bool* lost) {
  *lost = false;
  const int64_t lease = Current();
  if (lease == 0) return absl::OkStatus();
  absl::StatusOr<std::string> body = transport_->V3Call(
      api, "lease/keepalive", V3LeaseIdBody(lease), absl::StrCat("lease/keepalive ", lease));
  absl::StatusOr<int64_t> ttl = body.ok() ? ParseV3KeepAlive(*body) : body.status();
  if (!ttl.ok() && !IsLeaseNotFound(ttl.status())) return ttl.status();
  if (!ttl.ok() || *ttl == 0) {
    // Expired during an outage, or revoked: its keys are gone.
    Forget(lease);
    *lost = true;
  }
  return absl::OkStatus();
}

std::vector<std::pair<std::string, std::string>> LeaseKeeper::Reconcile(
    const std::map<std::string, std::string>& wanted, std::map<std::string, std::string>* orphans) {
  std::vector<std::pair<std::string, std::string>> missing;
  absl::MutexLock lock(&mu_);
  for (auto it = on_lease_.begin(); it != on_lease_.end();) {
    if (wanted.count(it->first) == 0) {
      orphans->insert(*it);
      it = on_lease_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [key, value] : wanted) {
    if (on_lease_.count(key) == 0) missing.emplace_back(key, value);
  }
  return missing;
}

absl::Status LeaseKeeper::LetExpire(const ApiChoice& api,
                                    const std::map<std::string, std::string>& orphans) {
  absl::StatusOr<int64_t> expiring = Grant(api);
  if (!expiring.ok()) {
    absl::MutexLock lock(&mu_);
    for (const auto& entry : orphans) on_lease_.insert(entry);
    return expiring.status();
  }
  absl::Status first_error;
  for (const auto& [key, value] : orphans) {
    const std::string what = absl::StrCat("move ", key, " to an expiring lease");
    absl::StatusOr<std::string> reply =
        transport_->V3Call(api, "kv/txn", V3MoveToLeaseBody(key, value, *expiring), what);
    absl::StatusOr<bool> moved = reply.ok() ? ParseV3TxnSucceeded(*reply) : reply.status();
    if (moved.ok() && *moved) {
      REG_LOG_INFO(transport_->backend_name(), ": ", key, " is no longer refreshed; expires in ",
                   ttl_seconds_, "s");
      continue;
    }
    if (moved.ok()) {
      // The compare failed: the key was deleted or rewritten since (by someone else, or by a
      // Register that already put it back on the books). Not ours to move.
      REG_LOG_INFO(transport_->backend_name(), ": ", key,
                   " changed or vanished before it could be let expire; left as it is");
      continue;
    }
    if (first_error.ok()) {
      first_error = reply.ok() ? absl::Status(moved.status().code(),
                                              absl::StrCat(what, ": ", moved.status().message()))
                               : moved.status();
    }
    // Try again on the next refresh (unless a Register wrote it meanwhile).
    absl::MutexLock lock(&mu_);
    on_lease_.insert({key, value});
  }
  return first_error;
}

}  // namespace registrator::etcd
