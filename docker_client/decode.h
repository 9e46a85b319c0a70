// Decoding of Docker Engine API JSON payloads (inspect, list, one /events line, version) into the
// plain structs of types.h. Docker payloads are untrusted input: unknown or missing fields never
// fail, a field of the wrong type is skipped, and only input that is not JSON at all (or has the
// wrong top-level shape) is rejected with INVALID_ARGUMENT.
#ifndef DOCKER_CLIENT_DECODE_H_
#define DOCKER_CLIENT_DECODE_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "docker_client/types.h"

namespace registrator::docker {

// GET /containers/<id>/json. `raw_json` of the result holds `json` verbatim. Podman's payload is
// mapped to what Docker would report for the same container (see the comments in decode.cc):
// HostConfig.NetworkMode "bridge" on one user-defined network becomes that network's name, and
// a `container:<id>` container's NetworkSettings.Ports (the other container's) are dropped.
absl::StatusOr<Container> ParseContainerJson(absl::string_view json);
// The same, taking the body: it is parsed in place (room for simdjson's padding is reserved in
// it) and moved into `raw_json`, instead of being copied twice (issue 14).
absl::StatusOr<Container> ParseContainerJsonOwned(std::string json);

// GET /containers/json (a JSON array). Entries that are not objects are skipped. `name` is the
// container's own name (the entry of Names without a link alias path), without "/".
// `readable_bytes`: how many bytes from json.data() may be read (a std::string's capacity());
// with at least simdjson's padding (64) beyond the text, the text is parsed in place instead of
// copied first (a 10 MB list otherwise costs a 10 MB copy at the start-up peak).
absl::StatusOr<std::vector<ContainerSummary>> ParseContainerListJson(absl::string_view json,
                                                                     size_t readable_bytes = 0);

// One line of GET /events. `action` is "Action", or the legacy "status" when absent; `id` is
// Actor.ID, or the legacy "id". When timeNano is missing it is derived from time. Podman's
// container "remove" comes back as Docker's "destroy". A network event's `container` is
// Actor.Attributes.container.
absl::StatusOr<Event> ParseEventJson(absl::string_view json);

// GET /images/<id>/json.
absl::StatusOr<Image> ParseImageJson(absl::string_view json);

// GET /version.
absl::StatusOr<Version> ParseVersionJson(absl::string_view json);

}  // namespace registrator::docker

#endif  // DOCKER_CLIENT_DECODE_H_
