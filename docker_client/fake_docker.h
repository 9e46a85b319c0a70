// An in-memory Docker Engine for the bridge's unit tests and benchmarks: containers are set
// directly, calls are counted, and failures can be injected.
#ifndef DOCKER_CLIENT_FAKE_DOCKER_H_
#define DOCKER_CLIENT_FAKE_DOCKER_H_

#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "docker_client/docker_api.h"

namespace registrator::fakes {

class FakeDocker : public docker::DockerApi {
 public:
  void Put(const docker::Container& container) {
    absl::MutexLock lock(&mu_);
    containers_[container.id] = container;
  }
  void Remove(const std::string& id) {
    absl::MutexLock lock(&mu_);
    containers_.erase(id);
  }
  // Marks a container exited with `exit_code`.
  void Exit(const std::string& id, int exit_code) {
    absl::MutexLock lock(&mu_);
    auto it = containers_.find(id);
    if (it == containers_.end()) return;
    it->second.state.running = false;
    it->second.state.status = "exited";
    it->second.state.exit_code = exit_code;
  }
  void SetUnavailable(bool unavailable) {
    absl::MutexLock lock(&mu_);
    unavailable_ = unavailable;
  }
  // Inspects of `id` (every container when empty) fail with `status` until cleared with OK.
  void FailInspect(const std::string& id, absl::Status status) {
    absl::MutexLock lock(&mu_);
    if (status.ok()) {
      inspect_failures_.erase(id);
    } else {
      inspect_failures_[id] = std::move(status);
    }
  }
  int inspects() const {
    absl::MutexLock lock(&mu_);
    return inspects_;
  }
  int lists() const {
    absl::MutexLock lock(&mu_);
    return lists_;
  }

  // The list entry Docker would show for `c`.
  static docker::ContainerSummary SummaryOf(const docker::Container& c) {
    docker::ContainerSummary s{c.id, c.name, c.image, c.state.status};
    // Docker's list shows health only for a running container (not paused, not restarting).
    if (c.state.status == "running") s.health = c.state.health;
    s.network_mode = c.network_mode;
    s.labels = c.labels;
    s.networks = c.networks;
    for (const auto& [key, bindings] : c.ports) {
      docker::SummaryPort port;
      const size_t slash = key.find('/');
      if (!absl::SimpleAtoi(key.substr(0, slash), &port.private_port)) continue;
      port.type = slash == std::string::npos ? "tcp" : key.substr(slash + 1);
      if (bindings.empty()) s.ports.push_back(port);
      for (const docker::PortBinding& binding : bindings) {
        docker::SummaryPort published = port;
        published.ip = binding.host_ip;
        if (!absl::SimpleAtoi(binding.host_port, &published.public_port)) {
          published.public_port = 0;
        }
        s.ports.push_back(published);
      }
    }
    return s;
  }

  absl::Status Ping() override {
    absl::MutexLock lock(&mu_);
    return unavailable_ ? absl::UnavailableError("docker down") : absl::OkStatus();
  }
  absl::StatusOr<docker::Version> GetVersion() override {
    return docker::Version{"20.10.24", "1.41", "1.12"};
  }
  absl::StatusOr<std::vector<docker::ContainerSummary>> ListContainers(
      bool all, absl::string_view status_filter) override {
    absl::MutexLock lock(&mu_);
    ++lists_;
    if (unavailable_) return absl::UnavailableError("docker down");
    std::vector<docker::ContainerSummary> result;
    for (const auto& [id, c] : containers_) {
      if (!all && !c.state.running) continue;
      result.push_back(SummaryOf(c));
    }
    return result;
  }
  absl::StatusOr<docker::Container> InspectContainer(absl::string_view id) override {
    absl::MutexLock lock(&mu_);
    ++inspects_;
    if (unavailable_) return absl::UnavailableError("docker down");
    for (const std::string& key : {std::string(id), std::string()}) {
      auto failure = inspect_failures_.find(key);
      if (failure != inspect_failures_.end()) return failure->second;
    }
    auto it = containers_.find(std::string(id));
    if (it == containers_.end())
      return absl::NotFoundError(absl::StrCat("No such container: ", id));
    return it->second;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, docker::Container> containers_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Status> inspect_failures_ ABSL_GUARDED_BY(mu_);
  bool unavailable_ ABSL_GUARDED_BY(mu_) = false;
  int inspects_ ABSL_GUARDED_BY(mu_) = 0;
  int lists_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace registrator::fakes

#endif  // DOCKER_CLIENT_FAKE_DOCKER_H_
