// See fingerprint.h. Both payloads are reduced to the same canonical pieces, sorted, and joined
// with separators that cannot occur unescaped (every piece is length-prefixed).
#include "docker_client/fingerprint.h"

#include <algorithm>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace registrator::docker {
namespace {

struct Port {
  int private_port;
  std::string type;
  std::string ip;
  int public_port;
  bool operator<(const Port& o) const {
    return std::tie(private_port, type, ip, public_port) <
           std::tie(o.private_port, o.type, o.ip, o.public_port);
  }
};

void Add(std::string* out, absl::string_view piece) {
  absl::StrAppend(out, piece.size(), ":", piece, ";");
}

std::string Canonical(absl::string_view name, absl::string_view state, absl::string_view health,
                      absl::string_view network_mode,
                      const std::vector<std::pair<std::string, std::string>>& labels,
                      std::vector<Port> ports, const std::vector<NetworkEndpoint>& networks) {
  std::string out;
  Add(&out, name);
  Add(&out, state);
  Add(&out, health);
  Add(&out, network_mode);
  absl::StrAppend(&out, "L", labels.size(), "|");
  for (const auto& [key, value] : labels) {
    Add(&out, key);
    Add(&out, value);
  }
  std::sort(ports.begin(), ports.end());
  absl::StrAppend(&out, "P", ports.size(), "|");
  for (const Port& port : ports) {
    absl::StrAppend(&out, port.private_port, "/", port.public_port, "/");
    Add(&out, port.type);
    Add(&out, port.ip);
  }
  absl::StrAppend(&out, "N", networks.size(), "|");
  for (const NetworkEndpoint& network : networks) {
    Add(&out, network.name);
    Add(&out, network.ip_address);
    Add(&out, network.global_ipv6_address);
  }
  return out;
}

}  // namespace

std::string StateFingerprint(const Container& c) {
  std::vector<Port> ports;
  for (const auto& [key, bindings] : c.ports) {
    // "80/tcp" -> 80, "tcp"; the list reports the same port as PrivatePort/Type.
    const size_t slash = key.find('/');
    int private_port = 0;
    if (!absl::SimpleAtoi(absl::string_view(key).substr(0, slash), &private_port)) continue;
    const std::string type = slash == std::string::npos ? "tcp" : key.substr(slash + 1);
    if (bindings.empty()) {
      ports.push_back({private_port, type, "", 0});
      continue;
    }
    for (const PortBinding& binding : bindings) {
      int public_port = 0;
      if (!absl::SimpleAtoi(binding.host_port, &public_port)) public_port = 0;
      ports.push_back({private_port, type, binding.host_ip, public_port});
    }
  }
  // The list shows health only for a running container that is neither paused nor restarting.
  const std::string health = c.state.status == "running" ? c.state.health : "";
  return Canonical(c.name, c.state.status, health, c.network_mode, c.labels, std::move(ports),
                   c.networks);
}

std::string StateFingerprint(const ContainerSummary& s) {
  std::vector<Port> ports;
  ports.reserve(s.ports.size());
  for (const SummaryPort& port : s.ports) {
    ports.push_back({port.private_port, port.type, port.ip, port.public_port});
  }
  return Canonical(s.name, s.state, s.health, s.network_mode, s.labels, std::move(ports),
                   s.networks);
}

}  // namespace registrator::docker
