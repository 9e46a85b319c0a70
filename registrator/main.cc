// registrator [options] <registry URI>: wires the Docker client, the derivation, the bridge and
// the chosen backend together, then runs until SIGTERM/SIGINT.
#include <malloc.h>
#include <netdb.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "adapters/adapter_factory.h"
#include "docker_client/docker_client.h"
#include "docker_client/event_stream.h"
#include "registrator/bridge.h"
#include "registrator/common/http_client.h"
#include "registrator/common/log.h"
#include "registrator/config.h"
#include "registrator/derive.h"
#include "registrator/model/backend_uri.h"
#include "registrator/startup_pages.h"
#include "registrator/status_server.h"
#include "registrator/tags_template.h"

extern char** environ;

namespace registrator {
namespace {

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq == nullptr) continue;
    env.emplace(std::string(*e, eq - *e), std::string(eq + 1));
  }
  return env;
}

std::string Hostname() {
  char name[256] = {0};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

// The host's own address for bindings on 0.0.0.0, as upstream resolves it: the hostname
// through the resolver (normally /etc/hosts). Empty when it does not resolve.
std::string ResolveHostIp(const std::string& hostname) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  addrinfo* result = nullptr;
  if (::getaddrinfo(hostname.c_str(), nullptr, &hints, &result) != 0 || result == nullptr) {
    return "";
  }
  char text[INET6_ADDRSTRLEN] = {0};
  ::getnameinfo(result->ai_addr, result->ai_addrlen, text, sizeof(text), nullptr, 0,
                NI_NUMERICHOST);
  ::freeaddrinfo(result);
  return text;
}

// Waits up to `timeout` for SIGINT/SIGTERM (blocked in every thread). True if one arrived.
bool WaitForStopSignal(absl::Duration timeout) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (timeout == absl::InfiniteDuration()) {
    int signal = 0;
    while (sigwait(&set, &signal) != 0) {
    }
    REG_LOG_INFO("received signal ", signal, "; stopping");
    return true;
  }
  const timespec ts = absl::ToTimespec(timeout);
  const int signal = sigtimedwait(&set, nullptr, &ts);
  if (signal > 0) {
    REG_LOG_INFO("received signal ", signal, "; stopping");
    return true;
  }
  return false;
}

int Run(const Config& config) {
  LogLevel level = LogLevel::kInfo;
  ParseLogLevel(config.log_level, &level);
  SetLogLevel(level);
  SetLogJson(config.log_json);

  // Block the stop signals before any thread starts, so only WaitForStopSignal receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  if (absl::Status status = ValidateTagsTemplate(config.tags); !status.ok()) {
    std::fprintf(stderr, "-tags: %s\n", std::string(status.message()).c_str());
    return 2;
  }

  const std::map<std::string, std::string> env = ProcessEnvironment();
  const std::string hostname = Hostname();

  // The positional registry first, then every -extra-registry (README "Several registries at
  // once").
  std::vector<std::string> uris = {config.registry_uri};
  uris.insert(uris.end(), config.extra_registries.begin(), config.extra_registries.end());
  // Secrets never leave: the URI is only ever shown redacted, and the logger scrubs the
  // operator's secrets from every line as a second wall (README "Security model").
  std::vector<std::string> shown_uris;
  {
    std::vector<std::string> secrets;
    for (const std::string& uri : uris) {
      shown_uris.push_back(RedactUri(uri));
      secrets.push_back(UriSecret(uri));
    }
    if (auto it = env.find("CONSUL_HTTP_TOKEN"); it != env.end()) secrets.push_back(it->second);
    SetLogSecrets(std::move(secrets));
  }

  AdapterOptions adapter_options;
  adapter_options.hostname = hostname;
  adapter_options.ttl = config.ttl;
  adapter_options.ttl_refresh = config.ttl_refresh;
  adapter_options.env = env;
  std::vector<std::unique_ptr<RegistryAdapter>> adapters;
  for (const std::string& uri : uris) {
    absl::StatusOr<std::unique_ptr<RegistryAdapter>> adapter = CreateAdapter(uri, adapter_options);
    if (!adapter.ok()) {
      REG_LOG_ERROR(adapter.status().message());
      return 1;
    }
    adapters.push_back(*std::move(adapter));
  }

  // The first ping follows -retry-attempts / -retry-interval like upstream, for each registry in
  // turn; after that every failure is retried per service by that registry's bridge.
  for (size_t i = 0; i < adapters.size(); ++i) {
    const std::string& shown_uri = shown_uris[i];
    for (int attempt = 0;; ++attempt) {
      const absl::Status ping = adapters[i]->Ping();
      if (ping.ok()) break;
      if (config.retry_attempts != -1 && attempt >= config.retry_attempts) {
        REG_LOG_ERROR("backend ", shown_uri, " unreachable: ", ping.message());
        return 1;
      }
      REG_LOG_WARN("backend ", shown_uri, " unreachable (", ping.message(), "); retrying in ",
                   config.retry_interval_ms, " ms");
      if (WaitForStopSignal(absl::Milliseconds(config.retry_interval_ms))) return 0;
    }
    REG_LOG_INFO("using ", shown_uri);
  }

  absl::StatusOr<std::unique_ptr<docker::DockerClient>> docker =
      docker::DockerClient::FromEnvironment(env);
  if (!docker.ok()) {
    REG_LOG_ERROR("DOCKER_HOST: ", docker.status().message());
    return 1;
  }

  DeriveConfig derive_config;
  derive_config.host_ip = config.ip;
  derive_config.hostname = hostname;
  derive_config.resolved_host_ip = config.ip.empty() ? ResolveHostIp(hostname) : config.ip;
  derive_config.internal = config.internal;
  derive_config.explicit_only = config.explicit_only;
  derive_config.use_ip_from_label = config.use_ip_from_label;
  derive_config.tags_template = config.tags;
  derive_config.ttl = config.ttl;
  derive_config.network = config.network;

  docker::DockerClient* docker_client = docker->get();
  auto lookup_ip = [docker_client](absl::string_view ref,
                                   absl::string_view network) -> std::string {
    absl::StatusOr<docker::Container> other = docker_client->InspectContainer(ref);
    if (!other.ok()) return "";
    if (!network.empty()) {
      // The chosen network's address or none: the sidecar shares this container's networks.
      for (const docker::NetworkEndpoint& endpoint : other->networks) {
        if (endpoint.name != network) continue;
        return endpoint.ip_address.empty() ? endpoint.global_ipv6_address : endpoint.ip_address;
      }
      return "";
    }
    if (!other->ip_address.empty()) return other->ip_address;
    for (const docker::NetworkEndpoint& network : other->networks) {
      if (!network.ip_address.empty()) return network.ip_address;
    }
    return "";
  };
  ServiceDeriver derive = [derive_config, lookup_ip](const docker::Container& container) {
    DeriveResult result = DeriveServices(container, derive_config, lookup_ip);
    for (const std::string& warning : result.warnings) REG_LOG_WARN(warning);
    if (result.services.empty() && !result.skipped_reason.empty()) {
      REG_LOG_INFO("ignored container ", container.id.substr(0, 12), " (", container.name,
                   "): ", result.skipped_reason);
    }
    return std::move(result.services);
  };

  BridgeConfig bridge_config;
  bridge_config.hostname = hostname;
  bridge_config.deregister_on_success = config.deregister_on_success;
  bridge_config.cleanup = config.cleanup;
  bridge_config.resync_interval = absl::Seconds(config.resync);
  bridge_config.refresh_interval = absl::Seconds(config.ttl_refresh);
  bridge_config.deregister_on_exit = config.deregister_on_exit;
  bridge_config.require_healthy = config.require_healthy;
  bridge_config.workers = config.workers;
  // Stop() is bounded: what still runs at its deadline is aborted.
  bridge_config.cancel_calls = [] { AbortHttpTransfers(); };

  // One registry: one bridge with both sides, as ever. Several: a tracker for the Docker side
  // feeding one follower bridge per registry (bridge.h), each with its own workers and threads.
  std::unique_ptr<Bridge> docker_side;
  std::vector<std::unique_ptr<Bridge>> followers;
  if (adapters.size() == 1) {
    docker_side = std::make_unique<Bridge>(docker_client, adapters[0].get(), std::move(derive),
                                           bridge_config);
  } else {
    for (size_t i = 0; i < adapters.size(); ++i) {
      BridgeConfig follower_config = bridge_config;
      follower_config.log_context = shown_uris[i];
      // Its backend resync follows each of the tracker's (-resync), after the claims are known.
      follower_config.resync_interval = absl::ZeroDuration();
      followers.push_back(
          std::make_unique<Bridge>(nullptr, adapters[i].get(), nullptr, follower_config));
    }
    BridgeConfig tracker_config = bridge_config;
    tracker_config.refresh_interval = absl::ZeroDuration();
    tracker_config.deregister_on_exit = false;
    docker_side =
        std::make_unique<Bridge>(docker_client, nullptr, std::move(derive), tracker_config);
    for (const auto& follower : followers) {
      docker_side->AddFollower(follower.get());
      follower->Start();
    }
  }
  docker_side->Start();
  // Every bridge stops in parallel, each within its stop timeout: a registry that hangs does not
  // make the others' -deregister-on-exit wait.
  auto stop_bridges = [&] {
    std::vector<std::thread> stopping;
    stopping.reserve(followers.size());
    for (const auto& follower : followers) {
      stopping.emplace_back([bridge = follower.get()] { bridge->Stop(); });
    }
    docker_side->Stop();
    for (std::thread& thread : stopping) thread.join();
  };
  std::unique_ptr<StatusServer> status_server;
  if (followers.empty()) {
    RegistryAdapter* backend = adapters[0].get();
    status_server =
        std::make_unique<StatusServer>(docker_side.get(), [backend] { return backend->Ping(); });
  } else {
    std::vector<RegistryStatus> registries;
    for (size_t i = 0; i < followers.size(); ++i) {
      RegistryAdapter* backend = adapters[i].get();
      registries.push_back(
          {shown_uris[i], followers[i].get(), [backend] { return backend->Ping(); }});
    }
    status_server = std::make_unique<StatusServer>(docker_side.get(), std::move(registries));
  }
  if (!config.http_addr.empty()) {
    if (absl::Status started = status_server->Start(config.http_addr); !started.ok()) {
      REG_LOG_ERROR(started.message());
      stop_bridges();
      return 1;
    }
  }
  // Events first: the stream's first connect triggers the initial sync, so nothing that
  // happens during the sync is missed.
  docker::EventStream events(*docker_client);
  if (absl::Status started = events.Start(docker_side.get()); !started.ok()) {
    REG_LOG_ERROR("cannot follow Docker events: ", started.message());
    stop_bridges();
    return 1;
  }

  // Once idle -- the first sync has run and no work is left, or after a minute whatever state a
  // slow or failing start is in -- hand back the memory only start-up needed (most of the
  // binary's code is resident after start-up; idle needs a small part of it).
  const absl::Time settle_deadline = absl::Now() + absl::Minutes(1);
  bool stopped = false;
  while (!(stopped = WaitForStopSignal(absl::Milliseconds(200)))) {
    bool idle = docker_side->stats().last_sync != absl::InfinitePast() &&
                docker_side->WaitIdle(absl::ZeroDuration());
    for (const auto& follower : followers) idle = idle && follower->WaitIdle(absl::ZeroDuration());
    if (absl::Now() > settle_deadline || idle) {
      ReleaseStartupPages();
      break;
    }
  }
  if (!stopped) WaitForStopSignal(absl::InfiniteDuration());
  events.Stop();
  status_server->Stop();
  stop_bridges();
  REG_LOG_INFO("stopped");
  return 0;
}

}  // namespace
}  // namespace registrator

int main(int argc, char** argv) {
  // Two malloc arenas instead of glibc's default of up to 8 per core: the workers' short-lived
  // allocations (HTTP bodies, parsed containers) otherwise each leave free memory stranded in
  // their own arena. Measured (bench/binary_bench, 10,000 containers at start): 4 MB less
  // peak RSS and no more CPU.
  mallopt(M_ARENA_MAX, 2);
  const registrator::ParseOutcome outcome = registrator::ParseCommandLine(argc, argv);
  if (!outcome.run) {
    std::fputs(outcome.message.c_str(), outcome.exit_code == 0 ? stdout : stderr);
    return outcome.exit_code;
  }
  return registrator::Run(outcome.config);
}
