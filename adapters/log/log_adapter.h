// log:// — a dry-run backend: prints every register and deregister as one JSON line on stdout
// and remembers what it printed, so resync, cleanup and zero-write diffing behave as with a real
// backend. Users try registrator with it before pointing it at Consul; tests read its lines.
#ifndef ADAPTERS_LOG_LOG_ADAPTER_H_
#define ADAPTERS_LOG_LOG_ADAPTER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"
#include "registrator/model/registry_adapter.h"

namespace registrator {

class LogAdapter : public RegistryAdapter {
 public:
  // `write_line` receives each line without the newline; by default lines go to stdout.
  explicit LogAdapter(std::function<void(const std::string&)> write_line = nullptr);

  absl::Status Ping() override;
  absl::Status Register(const Service& service) override;
  absl::Status Deregister(const Service& service) override;
  absl::Status Refresh(const std::vector<Service>& services) override;
  absl::StatusOr<std::vector<RegisteredService>> Services() override;
  std::string Fingerprint(const Service& service) const override;

 private:
  void Emit(const std::string& action, const Service& service);

  const std::function<void(const std::string&)> write_line_;
  absl::Mutex mu_;
  std::map<std::string, Service> held_ ABSL_GUARDED_BY(mu_);
};

// Factory for the "log" scheme: log:// (anything after the scheme is ignored).
absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewLogAdapter(const BackendUri& uri,
                                                               const AdapterOptions& options);

}  // namespace registrator

#endif  // ADAPTERS_LOG_LOG_ADAPTER_H_
