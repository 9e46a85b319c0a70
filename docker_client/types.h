// Plain structs holding exactly what registrator needs from the Docker Engine API, decoded from
// /containers/<id>/json, /containers/json and /events. Nothing here knows about services.
#ifndef DOCKER_CLIENT_TYPES_H_
#define DOCKER_CLIENT_TYPES_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace registrator::docker {

// One entry of NetworkSettings.Ports["80/tcp"]: where the port is published on the host.
struct PortBinding {
  std::string host_ip;    // "" or "0.0.0.0" means all addresses; "::" for IPv6.
  std::string host_port;  // As Docker sends it: a decimal string, may be empty.
  bool operator==(const PortBinding&) const = default;
};

// One entry of NetworkSettings.Networks.
struct NetworkEndpoint {
  std::string name;  // The network's name, e.g. "bridge", "appnet".
  std::string ip_address;
  std::string global_ipv6_address;
  bool operator==(const NetworkEndpoint&) const = default;
};

struct ContainerState {
  std::string status;  // "created", "running", "paused", "restarting", "exited", "dead", ...
  bool running = false;
  bool paused = false;
  bool restarting = false;
  bool dead = false;
  int64_t exit_code = 0;
  std::string health;  // State.Health.Status: "", "starting", "healthy", "unhealthy".
  bool operator==(const ContainerState&) const = default;
};

// GET /containers/<id>/json, reduced.
struct Container {
  std::string id;    // Full 64-hex id.
  std::string name;  // Without the leading "/".
  // Config
  std::string image;             // Config.Image as the user gave it, e.g. "gliderlabs/foo:1.2".
  std::string image_id;          // Top-level "Image": the image's ID, "sha256:<hex>".
  std::string hostname;          // Config.Hostname
  std::vector<std::string> env;  // Config.Env, "KEY=value" in order.
  std::vector<std::pair<std::string, std::string>> labels;  // Config.Labels, sorted by key.
  std::vector<std::string> exposed_ports;                   // Config.ExposedPorts keys, "80/tcp".
  // HostConfig
  // "default", "bridge", "host", "none", "container:<id>", "<net>", always in Docker's terms:
  // Podman's "bridge" for a container on one user-defined network is decoded as "<net>".
  std::string network_mode;
  // NetworkSettings
  std::map<std::string, std::vector<PortBinding>> ports;  // "80/tcp" -> bindings (may be empty).
  std::string ip_address;                                 // NetworkSettings.IPAddress
  std::vector<NetworkEndpoint> networks;                  // NetworkSettings.Networks
  ContainerState state;
  std::string created;  // "Created", RFC 3339 with nanoseconds; orders containers by age.
  // The raw inspect document, for -tags templates that look up arbitrary fields. Callers drop
  // it once services are derived; it is never kept per container.
  std::string raw_json;
};

// One entry of "Ports" in GET /containers/json: a port and where it is published.
struct SummaryPort {
  int private_port = 0;
  int public_port = 0;  // 0 when not published.
  std::string type;     // "tcp", "udp", "sctp".
  std::string ip;       // The binding's host IP, "" when not published.
  bool operator==(const SummaryPort&) const = default;
};

// One entry of GET /containers/json. Besides identity, it keeps what a running container's
// services may change with (name, state, published ports, labels, networks and their IPs), so a
// resync can tell which containers changed without inspecting each one (fingerprint.h).
struct ContainerSummary {
  std::string id;
  std::string name;  // First of Names, without "/".
  std::string image;
  std::string state;                                        // "running", "exited", ...
  std::string network_mode;                                 // HostConfig.NetworkMode
  std::vector<std::pair<std::string, std::string>> labels;  // Sorted by key.
  std::vector<SummaryPort> ports;
  std::vector<NetworkEndpoint> networks;  // NetworkSettings.Networks, sorted by name.
  bool operator==(const ContainerSummary&) const = default;
};

// One line of GET /events (container events only).
struct Event {
  std::string type;       // "container"
  std::string action;     // "start", "die", "destroy", "health_status: healthy", ... (Docker's
                          // names: Podman's "remove" is decoded as "destroy").
  std::string id;         // Actor.ID
  std::string name;       // Actor.Attributes.name
  std::string image;      // Actor.Attributes.image
  std::string exit_code;  // Actor.Attributes.exitCode on "die", else "".
  int64_t time = 0;       // Seconds since the epoch.
  int64_t time_nano = 0;  // Nanoseconds since the epoch.
  bool operator==(const Event&) const = default;
};

// GET /images/<id>/json, reduced: what a container inherits from its image.
struct Image {
  std::string id;
  std::vector<std::string> exposed_ports;  // Config.ExposedPorts keys, "80/tcp".
};

// GET /version, reduced.
struct Version {
  std::string version;      // "20.10.24+dfsg1"
  std::string api_version;  // "1.41"
  std::string min_api_version;
};

}  // namespace registrator::docker

#endif  // DOCKER_CLIENT_TYPES_H_
