// The log:// RegistryAdapter: prints each write as a JSON line and remembers what it printed.
#include "adapters/log/log_adapter.h"

#include <unistd.h>

#include <map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "adapters/log/log_codec.h"

namespace registrator {
namespace {

void WriteStdout(const std::string& line) {
  const std::string with_newline = line + "\n";
  // One write per line: lines stay whole even when several threads print.
  [[maybe_unused]] ssize_t ignored =
      ::write(STDOUT_FILENO, with_newline.data(), with_newline.size());
}

class LogAdapter : public RegistryAdapter {
 public:
  explicit LogAdapter(std::function<void(const std::string&)> write_line)
      : write_line_(std::move(write_line)) {}

  absl::Status Ping() override { return absl::OkStatus(); }

  absl::Status Register(const Service& service) override {
    {
      absl::MutexLock lock(&mu_);
      held_[service.id] = service;
    }
    write_line_(log_backend::LogLine("register", service));
    return absl::OkStatus();
  }

  absl::Status Deregister(const Service& service) override {
    {
      absl::MutexLock lock(&mu_);
      held_.erase(service.id);
    }
    write_line_(log_backend::LogLine("deregister", service));
    return absl::OkStatus();
  }

  absl::Status Refresh(const std::vector<Service>& services) override {
    (void)services;  // Nothing expires in a log.
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<RegisteredService>> Services() override {
    absl::MutexLock lock(&mu_);
    std::vector<RegisteredService> result;
    result.reserve(held_.size());
    for (const auto& [id, service] : held_) result.push_back({service, Fingerprint(service)});
    return result;
  }

  std::string Fingerprint(const Service& service) const override {
    return log_backend::ServiceFingerprint(service);
  }

 private:
  const std::function<void(const std::string&)> write_line_;
  absl::Mutex mu_;
  std::map<std::string, Service> held_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewLogAdapter(const BackendUri& uri,
                                                               const AdapterOptions& options) {
  (void)uri;
  (void)options;
  return std::make_unique<LogAdapter>(WriteStdout);
}

std::unique_ptr<RegistryAdapter> NewLogAdapterForTesting(
    std::function<void(const std::string&)> write_line) {
  return std::make_unique<LogAdapter>(std::move(write_line));
}

}  // namespace registrator
