// Service derivation: one inspected container -> the services registrator registers for it.
// Pure code, no I/O: everything it needs about the host comes in DeriveConfig, and the one
// lookup it may need (the IP of the container whose network a "container:<ref>" container
// shares, on the chosen network if one is) comes in as a callback.
//
// Rules (upstream gliderlabs/registrator v7 behaviour, plus our documented fixes):
// - Ports: each Config.ExposedPorts key is first bound to the same host port (--net=host), then
//   NetworkSettings.Ports replaces that. A port without a host port (exposed only) is kept only
//   with -internal. "80" means "80/tcp"; tcp, udp and sctp are accepted. Several bindings for one
//   port: the first IPv4 one wins (IPv6 duplicates such as "::" are ignored); if there are only
//   IPv6 bindings, the first. Services come out sorted by exposed port, then tcp/udp/sctp.
// - NetworkMode "none": no services.
// - IP, in increasing precedence: the binding's HostIp ("", 0.0.0.0 and :: -> resolved_host_ip);
//   on a user-defined network (NetworkMode not ""/default/bridge/host/none/container:) that
//   network's IP (Networks[NetworkMode], else the first network with an IP); -ip (host_ip);
//   -internal: the container's IP (host IP for --net=host) and the exposed port; the
//   -useIpFromLabel label (anything from its last "/" dropped); for "container:<ref>" the IP
//   lookup_container_ip(ref, network) returns. This is upstream's order (-ip beats the network
//   IP).
// - Network choice (ours): SERVICE_<port>_NETWORK, else SERVICE_NETWORK, else -network names the
//   network whose address is registered wherever the container's own address would be: with
//   -internal (not --net=host), on a user-defined NetworkMode (instead of Networks[NetworkMode]
//   or the first network), and for "container:<ref>" (the other container's address on it). If
//   the container has no address on that network the service is skipped with one warning
//   naming the container and the network: a wrong address is worse than none. Where the
//   address is not the container's (a published port on the default bridge, -ip, the
//   -useIpFromLabel label, --net=host) the choice changes nothing. A name that is not a network
//   name (network_name.h) skips the service with a warning naming the field.
// - Metadata: Config.Env then Config.Labels (labels win), only keys starting with "SERVICE_",
//   the rest lower-cased. SERVICE_<port>_<KEY> applies to that exposed port only (tcp and udp
//   alike) and beats SERVICE_<KEY> whatever the order.
// - ignore (non-empty and not false/0/no, case-insensitive) skips the port. Name: the name key,
//   else the image's base name without registry, path, tag or @digest; -explicit skips ports
//   without a name key. With more than one kept port, a name not from a port-specific key gets
//   "-<exposed port>". ID: "<hostname>:<container name>:<exposed port>[:udp]" unless the id key.
//   A second service with an ID already used by this container is dropped with a warning.
// - Tags: the tags key (comma list, "\," is a comma, empty pieces dropped, order kept), then the
//   -tags template evaluated and split the same way, then "udp" for udp ports.
// - attrs: every other key, sorted. meta: attrs without check_* and without what Consul rejects
//   (key not [A-Za-z0-9_-], longer than 64, "consul-" prefix, value over 512 bytes, beyond 64
//   keys), each drop warned.
// - Check: first of check_http, check_https, check_script, check_ttl, check_tcp, check_grpc
//   (check_tcp/check_grpc = false/0/no mean no check). check_interval (default "10s", not for
//   TTL checks), check_timeout, check_initial_status (passing/warning/critical),
//   check_deregister_after. Durations use Go syntax; an invalid one is warned and dropped (the
//   interval falls back to "10s"; an invalid check_ttl drops the check). check_script is split
//   like a shell command line with $SERVICE_IP / $SERVICE_PORT (or ${...}) substituted.
//   IPv6 addresses are bracketed in the check's URL / address.
// - Docker health: every service carries the container's State.Health status and its last probe
//   output (at most 4 KiB, operator secrets redacted); "" status when it has no healthcheck.
// - Every service passes ValidateServiceKeys (registrator/model/service_validation.h): a name,
//   ID or IP that is not one safe key segment ("/", "." or "..", control characters, over 512
//   bytes...) skips that service with a warning; the container's other services stay.
// - Limits per container (a container is untrusted input): at most 256 services (the first
//   256 ports in the order above), 128 SERVICE_* keys, 256 bytes per key, 8 KiB per value, 64 KiB
//   of keys and values together, an evaluated -tags of at most 8 KiB, and 32 warning lines (plus
//   one saying how many more there were). Anything beyond is skipped with one warning.
// Bad input never fails the container as a whole: the bad port / key / value is skipped with a
// warning naming the container (short id and name), the field and the value (values in warnings
// are cut at 200 bytes).
#ifndef REGISTRATOR_DERIVE_H_
#define REGISTRATOR_DERIVE_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "docker_client/types.h"
#include "registrator/model/service.h"

namespace registrator {

struct DeriveConfig {
  std::string host_ip;            // -ip flag ("" = none).
  std::string resolved_host_ip;   // The host's own IP, used for 0.0.0.0/"" bindings without -ip.
  std::string hostname;           // This Docker host's name (first part of IDs).
  bool internal = false;          // -internal
  bool explicit_only = false;     // -explicit
  std::string use_ip_from_label;  // -useIpFromLabel
  std::string tags_template;      // Raw -tags flag value, evaluated per container.
  int ttl = 0;                    // -ttl, copied into every Service.
  // -network: the network whose address is registered, unless SERVICE_[<port>_]NETWORK says
  // otherwise ("" = upstream's rules).
  std::string network;
};

struct DeriveResult {
  std::vector<Service> services;
  // One line per problem, each naming the container (short id + name), the field and the value.
  std::vector<std::string> warnings;
  // Non-empty when the container yields no services: why (no ports, net=none, all ignored...).
  std::string skipped_reason;
};

// Resolves the IP of another container for NetworkMode "container:<id-or-name>": its address
// on `network`, or with `network` "" its default one (NetworkSettings.IPAddress, else the first
// network's). "" when unknown or not attached to `network`.
using ContainerIpLookup =
    std::function<std::string(absl::string_view container_ref, absl::string_view network)>;

// Derives the services of `container`. `lookup_container_ip` may be null.
DeriveResult DeriveServices(const docker::Container& container, const DeriveConfig& config,
                            const ContainerIpLookup& lookup_container_ip = nullptr);

namespace derive_internal {

// True when `text` is a Go time.ParseDuration string ("10s", "1m30s", "500ms", "1.5h", "0")
// that is not negative and does not overflow.
bool IsValidGoDuration(absl::string_view text);

// The default service name for an image reference: "reg:5000/a/b:t@sha256:..." -> "b".
std::string ImageBaseName(absl::string_view image);

}  // namespace derive_internal

}  // namespace registrator

#endif  // REGISTRATOR_DERIVE_H_
