#include "adapters/log/log_adapter.h"

#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "registrator/common/json.h"
#include "registrator/model/service_json.h"

namespace registrator {
namespace {

void WriteStdout(const std::string& line) {
  const std::string with_newline = line + "\n";
  // One write per line: lines stay whole even when several threads print.
  [[maybe_unused]] ssize_t ignored =
      ::write(STDOUT_FILENO, with_newline.data(), with_newline.size());
}

}  // namespace

LogAdapter::LogAdapter(std::function<void(const std::string&)> write_line)
    : write_line_(write_line ? std::move(write_line) : WriteStdout) {}

void LogAdapter::Emit(const std::string& action, const Service& service) {
  std::string line = "{\"action\":";
  AppendJsonString(&line, action);
  line.push_back(',');
  line.append(ServiceJsonMembers(service));
  if (!service.container_id.empty()) {
    line.append(",\"container\":");
    AppendJsonString(&line, service.container_id.substr(0, 12));
  }
  line.push_back('}');
  write_line_(line);
}

absl::Status LogAdapter::Ping() { return absl::OkStatus(); }

absl::Status LogAdapter::Register(const Service& service) {
  {
    absl::MutexLock lock(&mu_);
    held_[service.id] = service;
  }
  Emit("register", service);
  return absl::OkStatus();
}

absl::Status LogAdapter::Deregister(const Service& service) {
  {
    absl::MutexLock lock(&mu_);
    held_.erase(service.id);
  }
  Emit("deregister", service);
  return absl::OkStatus();
}

absl::Status LogAdapter::Refresh(const std::vector<Service>& services) {
  (void)services;  // Nothing expires in a log.
  return absl::OkStatus();
}

absl::StatusOr<std::vector<RegisteredService>> LogAdapter::Services() {
  absl::MutexLock lock(&mu_);
  std::vector<RegisteredService> result;
  result.reserve(held_.size());
  for (const auto& [id, service] : held_) result.push_back({service, Fingerprint(service)});
  return result;
}

std::string LogAdapter::Fingerprint(const Service& service) const {
  return ServiceJsonMembers(service);
}

absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewLogAdapter(const BackendUri& uri,
                                                               const AdapterOptions& options) {
  (void)uri;
  (void)options;
  return std::make_unique<LogAdapter>();
}

}  // namespace registrator
