// An in-memory backend for the bridge's unit tests and benchmarks: holds entries by ID,
// counts every write, and can fail on demand.
#ifndef REGISTRATOR_MODEL_FAKE_ADAPTER_H_
#define REGISTRATOR_MODEL_FAKE_ADAPTER_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "registrator/model/registry_adapter.h"

namespace registrator::fakes {

class FakeAdapter : public RegistryAdapter {
 public:
  absl::Status Ping() override { return Fail("ping"); }
  absl::Status Register(const Service& service) override {
    absl::MutexLock lock(&mu_);
    ++registers_;
    if (absl::Status s = FailLocked("register", service.id); !s.ok()) return s;
    entries_[service.id] = service;
    return absl::OkStatus();
  }
  absl::Status Deregister(const Service& service) override {
    absl::MutexLock lock(&mu_);
    ++deregisters_;
    if (absl::Status s = FailLocked("deregister", service.id); !s.ok()) return s;
    entries_.erase(service.id);
    return absl::OkStatus();
  }
  absl::Status Refresh(const std::vector<Service>& services) override {
    absl::MutexLock lock(&mu_);
    ++refreshes_;
    last_refresh_.clear();
    for (const Service& s : services) last_refresh_.push_back(s.id);
    return FailLocked("refresh", "");
  }
  absl::StatusOr<std::vector<RegisteredService>> Services() override {
    absl::MutexLock lock(&mu_);
    ++lists_;
    if (!can_list_) return absl::UnimplementedError("no listing");
    if (absl::Status s = FailLocked("services", ""); !s.ok()) return s;
    std::vector<RegisteredService> result;
    for (const auto& [id, service] : entries_) {
      result.push_back({service, FingerprintOf(service)});
    }
    return result;
  }
  std::string Fingerprint(const Service& service) const override { return FingerprintOf(service); }
  void SetStateLostCallback(std::function<void()> callback) override {
    absl::MutexLock lock(&mu_);
    state_lost_ = std::move(callback);
  }

  static std::string FingerprintOf(const Service& s) {
    return absl::StrCat(s.id, "|", s.name, "|", s.ip, "|", s.port, "|", absl::StrJoin(s.tags, ","));
  }

  // Test controls.
  // Fails every call of `op` ("register", "deregister", "refresh", "services", "ping") with
  // `status` until cleared (OkStatus). `id` restricts it to one service ID when non-empty.
  void FailOp(const std::string& op, absl::Status status, const std::string& id = "") {
    absl::MutexLock lock(&mu_);
    failures_[op + "|" + id] = std::move(status);
  }
  void SetCanList(bool can_list) {
    absl::MutexLock lock(&mu_);
    can_list_ = can_list;
  }
  // Changes the backend behind the bridge's back (drift, another host's entry).
  void Seed(const Service& service) {
    absl::MutexLock lock(&mu_);
    entries_[service.id] = service;
  }
  void Drop(const std::string& id) {
    absl::MutexLock lock(&mu_);
    entries_.erase(id);
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
  std::vector<std::string> last_refresh() const {
    absl::MutexLock lock(&mu_);
    return last_refresh_;
  }

 private:
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
  std::map<std::string, Service> entries_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Status> failures_ ABSL_GUARDED_BY(mu_);
  std::function<void()> state_lost_ ABSL_GUARDED_BY(mu_);
  bool can_list_ ABSL_GUARDED_BY(mu_) = true;
  int registers_ ABSL_GUARDED_BY(mu_) = 0;
  int deregisters_ ABSL_GUARDED_BY(mu_) = 0;
  int refreshes_ ABSL_GUARDED_BY(mu_) = 0;
  int lists_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> last_refresh_ ABSL_GUARDED_BY(mu_);
};

}  // namespace registrator::fakes

#endif  // REGISTRATOR_MODEL_FAKE_ADAPTER_H_
