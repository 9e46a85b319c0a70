// The Consul agent RegistryAdapter: register/deregister/list through /v1/agent, TTL check refresh.
#include "adapters/consul/consul_adapter.h"

#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "adapters/consul/consul_codec.h"
#include "adapters/consul/consul_transport.h"
#include "adapters/consul/consul_watch.h"
#include "registrator/common/http_client.h"
#include "registrator/common/log.h"
#include "registrator/model/state_lost_notifier.h"

namespace registrator {
namespace consul {
namespace {

constexpr char kJson[] = "application/json";

class ConsulAdapter : public RegistryAdapter {
 public:
  ConsulAdapter(HttpEndpoint endpoint, AdapterOptions options, BlockingWatchOptions watch)
      : agent_(endpoint, options),
        options_(std::move(options)),
        // Why the agent's /v1/agent/services and not the catalog's
        // /v1/catalog/node-services/<node>: it is exactly what Register writes and Services()
        // lists, so a deletion is seen the moment the agent applies it, not after anti-entropy
        // syncs it to the servers (and an agent that restarted without its state shows up even
        // though the catalog still lists the services). Its hash-based blocking wakes only when
        // this agent's services change; the catalog's index moves with every service write in
        // the cluster (X-Consul-Index is per table), which would wake every host's watch. And it
        // needs no node name and keeps working when the servers have no leader. What it does not
        // see, check status, is not what drift watching is about (TTL refresh keeps that).
        watch_(std::move(endpoint), options_, "/v1/agent/services", BlockOn::kHash, "consul",
               watch) {}

  absl::Status Ping() override { return agent_.PingLeader("consul ping"); }

  absl::Status Register(const Service& service) override {
    absl::StatusOr<HttpResponse> response = agent_.Send("PUT", "/v1/agent/service/register",
                                                        RegisterBody(service, options_.ttl), kJson);
    watch_.NoteOwnWrite();
    if (!response.ok()) return response.status();
    absl::Status status =
        StatusFromResponse(*response, absl::StrCat("consul register service ", service.id));
    if (!status.ok() || service.docker_health.status.empty()) return status;
    // The register body sets the check's status; only the update endpoint sets its Output.
    return SetHealth(service);
  }

  absl::Status SetHealth(const Service& service) override {
    const std::string check_id = DockerHealthCheckId(service.id);
    absl::StatusOr<HttpResponse> response =
        agent_.Send("PUT", absl::StrCat("/v1/agent/check/update/", UrlEncode(check_id)),
                    CheckUpdateBody(service), kJson);
    if (!response.ok()) return response.status();
    const std::string what = absl::StrCat("consul update check ", check_id);
    if (response->status == 404) {
      return absl::NotFoundError(absl::StrCat(what, ": the agent does not know the check"));
    }
    return StatusFromResponse(*response, what);
  }

  std::string HealthFingerprint(const Service& service) const override {
    return DockerHealthFingerprint(service);
  }

  absl::Status Deregister(const Service& service) override {
    absl::StatusOr<HttpResponse> response =
        agent_.Send("PUT", absl::StrCat("/v1/agent/service/deregister/", UrlEncode(service.id)));
    watch_.NoteOwnWrite();
    if (!response.ok()) return response.status();
    // Already gone is success.
    if (response->status == 404) return absl::OkStatus();
    return StatusFromResponse(*response, absl::StrCat("consul deregister service ", service.id));
  }

  absl::Status Refresh(const std::vector<Service>& services) override {
    if (options_.ttl <= 0) return absl::OkStatus();
    absl::Status first_error;
    bool lost = false;
    for (const Service& service : services) {
      const std::string check_id = TtlCheckId(service.id);
      absl::StatusOr<HttpResponse> response =
          agent_.Send("PUT", absl::StrCat("/v1/agent/check/pass/", UrlEncode(check_id)));
      const std::string what = absl::StrCat("consul pass TTL check ", check_id);
      absl::Status status = response.ok() ? StatusFromResponse(*response, what) : response.status();
      // The agent forgot the check (restarted without state, or the service was removed
      // behind our back): the bridge must register it again.
      if (response.ok() && response->status == 404) {
        lost = true;
        status = absl::NotFoundError(absl::StrCat(what, ": the agent does not know the check"));
      }
      // Every refresh also re-asserts the Docker health check's status and output.
      if (status.ok() && !service.docker_health.status.empty()) {
        status = SetHealth(service);
        if (absl::IsNotFound(status)) lost = true;
      }
      if (!status.ok() && first_error.ok()) first_error = status;
    }
    if (lost) {
      REG_LOG_WARN("consul: agent lost TTL checks of registered services; re-registering");
      state_lost_.Notify();
    }
    return first_error;
  }

  absl::StatusOr<std::vector<RegisteredService>> Services() override {
    absl::StatusOr<HttpResponse> response = agent_.Send("GET", "/v1/agent/services");
    if (!response.ok()) return response.status();
    if (absl::Status s = StatusFromResponse(*response, "consul list services"); !s.ok()) return s;
    absl::StatusOr<std::vector<RegisteredService>> services =
        ParseAgentServices(std::move(response->body));
    if (!services.ok()) return services;
    // The Docker health checks' status and output, so a resync re-asserts what differs.
    bool any_health = false;
    for (const RegisteredService& entry : *services) {
      for (const auto& [key, value] : entry.service.meta) any_health |= key == kCheckHashMetaKey;
    }
    if (!any_health) return services;
    absl::StatusOr<HttpResponse> checks = agent_.Send("GET", "/v1/agent/checks");
    if (!checks.ok()) return checks.status();
    if (absl::Status s = StatusFromResponse(*checks, "consul list checks"); !s.ok()) return s;
    absl::StatusOr<std::map<std::string, std::string>> health =
        ParseDockerHealthChecks(checks->body);
    if (!health.ok()) return health.status();
    for (RegisteredService& entry : *services) {
      auto it = health->find(entry.service.id);
      if (it != health->end()) entry.health_fingerprint = it->second;
    }
    return services;
  }

  std::string Fingerprint(const Service& service) const override {
    return ServiceFingerprint(service, options_.ttl);
  }

  void SetStateLostCallback(std::function<void()> request) override {
    state_lost_.Set(std::move(request));
  }

  absl::Status StartWatch(std::function<void()> drifted) override {
    return watch_.Start(std::move(drifted));
  }
  void StopWatch() override { watch_.Stop(); }

 private:
  AgentClient agent_;
  const AdapterOptions options_;
  StateLostNotifier state_lost_;
  BlockingWatch watch_;
};

}  // namespace
}  // namespace consul

absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewConsulAdapter(const BackendUri& uri,
                                                                  const AdapterOptions& options) {
  return NewConsulAdapterWithWatch(uri, options, consul::BlockingWatchOptions());
}

absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewConsulAdapterWithWatch(
    const BackendUri& uri, const AdapterOptions& options,
    const consul::BlockingWatchOptions& watch) {
  consul::Transport transport;
  if (uri.scheme == "consul") {
    transport = consul::Transport::kHttp;
  } else if (uri.scheme == "consul-tls") {
    transport = consul::Transport::kHttps;
  } else if (uri.scheme == "consul-unix") {
    transport = consul::Transport::kUnix;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("consul adapter: unsupported scheme \"",
                                                   uri.scheme,
                                                   "\" (consul, consul-tls, consul-unix)"));
  }
  if (transport == consul::Transport::kUnix && !uri.host.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("consul-unix URI must have an empty host and the socket as path "
                     "(consul-unix:///run/consul.sock), got host \"",
                     uri.host, "\""));
  }
  absl::StatusOr<HttpEndpoint> endpoint =
      consul::ResolveEndpoint(transport, uri.host, uri.path, options);
  if (!endpoint.ok()) return endpoint.status();
  return std::unique_ptr<RegistryAdapter>(
      std::make_unique<consul::ConsulAdapter>(*std::move(endpoint), options, watch));
}

}  // namespace registrator
