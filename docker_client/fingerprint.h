// A container's changeable state as one comparable string, computed alike from an inspect
// (GET /containers/<id>/json) and from a list entry (GET /containers/json). A resync lists the
// running containers and re-inspects only those whose fingerprint differs from the one of their
// last inspect: `docker network connect`, `docker rename`, a restart that moved a published
// port, missed events — without one inspect per container on every resync.
//
// What it covers: name, state ("running", "paused", "restarting"...), Docker health ("healthy",
// "unhealthy", "starting": a missed health_status event is found too), network mode, labels,
// published ports (private port, protocol, host IP, host port) and every network with its IPv4
// and IPv6 address. What it leaves out never changes while a container exists (image, env,
// exposed ports, hostname) or does not matter to services (Status text, Created).
#ifndef DOCKER_CLIENT_FINGERPRINT_H_
#define DOCKER_CLIENT_FINGERPRINT_H_

#include <string>

#include "docker_client/types.h"

namespace registrator::docker {

std::string StateFingerprint(const Container& container);
std::string StateFingerprint(const ContainerSummary& summary);

}  // namespace registrator::docker

#endif  // DOCKER_CLIENT_FINGERPRINT_H_
