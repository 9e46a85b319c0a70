// The service model: what registrator registers in a backend for one published port of one
// container. Produced by the derivation (registrator/derive.h), consumed by the adapters.
#ifndef REGISTRATOR_MODEL_SERVICE_H_
#define REGISTRATOR_MODEL_SERVICE_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace registrator {

// A Consul health check built from the check_* attributes. Empty strings / empty vectors mean
// "not set" and are left out of the JSON sent to Consul.
struct ServiceCheck {
  std::string http;    // "http://ip:port/path" or "https://..."
  std::string method;  // check_http_method / check_https_method
  std::string tcp;     // "ip:port"
  std::string grpc;    // "ip:port"
  bool grpc_use_tls = false;
  bool tls_skip_verify = false;
  std::vector<std::string> script_args;  // check_script split like a shell command line.
  std::string ttl;                       // "30s"
  std::string interval;                  // Default "10s" for HTTP/TCP/script/gRPC checks.
  std::string timeout;
  std::string initial_status;    // check_initial_status -> Status
  std::string deregister_after;  // DeregisterCriticalServiceAfter
  bool operator==(const ServiceCheck&) const = default;
};

// Docker's HEALTHCHECK state of the service's container (State.Health of its inspect).
struct DockerHealth {
  // "starting", "healthy" or "unhealthy"; "" when the container has no healthcheck.
  std::string status;
  // The output of Docker's last probe (State.Health.Log's last entry), cut to
  // kMaxDockerHealthOutput bytes and with the operator's secrets redacted.
  std::string output;
  bool operator==(const DockerHealth&) const = default;
};

// Consul keeps at most 4 KiB of a check's output (OutputMaxSize); we never send more.
inline constexpr size_t kMaxDockerHealthOutput = 4096;

struct Service {
  std::string id;  // "<hostname>:<container name>:<exposed port>[:udp]" unless SERVICE_ID.
  std::string name;
  std::string ip;                 // Address to register (IPv4 or IPv6, no brackets).
  int port = 0;                   // Port to register (host port, or exposed port with -internal).
  std::vector<std::string> tags;  // In the order the user gave them.
  // Every SERVICE_* key that is not name/id/tags/ignore, lower-cased without the prefix, sorted
  // by key (ZooKeeper's Attrs).
  std::vector<std::pair<std::string, std::string>> attrs;
  // The attrs Consul accepts as Meta (valid keys, no check_*, within limits), sorted by key.
  std::vector<std::pair<std::string, std::string>> meta;
  bool has_check = false;
  ServiceCheck check;
  int ttl = 0;  // Seconds; 0 = no TTL.
  // The container's Docker health. Not part of what a backend registers (Fingerprint): it
  // changes far more often than the definition, and Consul gets it through its check update
  // endpoint (RegistryAdapter::SetHealth) instead of a re-registration.
  DockerHealth docker_health;

  // Where it came from.
  std::string container_id;        // Full id.
  std::string container_name;      // Without "/".
  std::string container_hostname;  // Config.Hostname
  int exposed_port = 0;            // The container's port (PrivatePort).
  int host_port = 0;               // The published port (PublicPort), 0 if none.
  std::string protocol = "tcp";    // "tcp", "udp" or "sctp".

  bool operator==(const Service&) const = default;
};

}  // namespace registrator

#endif  // REGISTRATOR_MODEL_SERVICE_H_
