// Pure encoding and decoding for the Consul agent API (no I/O): the register body with its Meta
// and checks, the fingerprint of what Register writes and of what /v1/agent/services lists, the
// /v1/status/leader reply, and path segments. Also used by the Consul KV backend (paths, leader).
//
// Fingerprints cover what /v1/agent/services returns (ID, name, address, port, tags in order,
// Meta). The agent does not list check definitions there, so a service with checks also gets
// the Meta key "registrator-check": a stable hash of its check definitions. A changed check
// (e.g. a container re-created with another SERVICE_CHECK_HTTP while registrator was down)
// then shows in the listing and is rewritten, instead of the agent running the old check forever.
#ifndef ADAPTERS_CONSUL_CONSUL_CODEC_H_
#define ADAPTERS_CONSUL_CONSUL_CODEC_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "registrator/model/registry_adapter.h"
#include "registrator/model/service.h"

namespace registrator::consul {

// The Meta key holding the hash of a service's check definitions.
inline constexpr char kCheckHashMetaKey[] = "registrator-check";

// The JSON body of PUT /v1/agent/service/register for `service`; with ttl_seconds > 0 it carries
// the TTL check registrator keeps passing, and with Docker health the "Docker health" check
// (besides the user's check, if any; in that order, "Checks" when there are several).
std::string RegisterBody(const Service& service, int ttl_seconds);
// The hash stored under kCheckHashMetaKey: 16 hex digits of the 64-bit FNV-1a of the checks'
// part of the register body (`,"Check":{...}` or `,"Checks":[...]`), where the "Docker health"
// check is hashed without its Status (a health change is no definition change).
std::string CheckHash(absl::string_view checks_json);
// service.meta plus, when the service has checks, kCheckHashMetaKey; sorted by key.
std::vector<std::pair<std::string, std::string>> MetaWithCheckHash(const Service& service,
                                                                   int ttl_seconds);
// The id of the TTL check registrator adds with -ttl.
std::string TtlCheckId(const std::string& service_id);

// Docker health: a service whose container has a Docker HEALTHCHECK (service.docker_health
// status not "") gets one more check, a TTL check named "Docker health" whose status
// registrator sets from Docker's (healthy -> passing; starting, unhealthy -> critical) with the
// last probe's output. Its TTL is kDockerHealthTtl: registrator re-asserts the status on every
// change, refresh and differing resync but does not renew it on a timer, so the TTL must not
// expire while registrator runs (whether registrator itself is alive is -ttl's job).
inline constexpr char kDockerHealthTtl[] = "876000h";  // 100 years.
inline constexpr char kDockerHealthCheckName[] = "Docker health";
std::string DockerHealthCheckId(const std::string& service_id);
// "passing" for Docker's "healthy", else "critical".
std::string DockerHealthConsulStatus(const Service& service);
// The JSON body of PUT /v1/agent/check/update/<DockerHealthCheckId>: {"Status","Output"}.
std::string CheckUpdateBody(const Service& service);
// What the agent lists for the service's Docker health check once CheckUpdateBody is applied;
// "" when the service has no Docker health.
std::string DockerHealthFingerprint(const Service& service);
// GET /v1/agent/checks: service ID -> DockerHealthFingerprint of what its "Docker health" check
// holds (only services that have one). UNAVAILABLE when the reply is not a JSON object.
absl::StatusOr<std::map<std::string, std::string>> ParseDockerHealthChecks(absl::string_view body);

// What the agent lists for `service` once RegisterBody(service, ttl_seconds) is accepted.
std::string ServiceFingerprint(const Service& service, int ttl_seconds);
// GET /v1/agent/services: every service the agent holds, with the fingerprint of what it holds.
// UNAVAILABLE when the reply is not a JSON object; entries that are not objects are skipped.
// Takes the body: with simdjson's padding in its capacity() it is parsed in place instead of
// copied, and it is freed, with the parser, before the entries are built (issue 14: the memory
// peak of a listing of 10,000 services).
absl::StatusOr<std::vector<RegisteredService>> ParseAgentServices(std::string body);
// GET /v1/status/leader: the leader's address, "" when the cluster has none. UNAVAILABLE when
// the reply is not a JSON string.
absl::StatusOr<std::string> ParseLeader(absl::string_view body);

// Percent-encodes each "/"-separated segment of `path`, keeping the slashes.
std::string EncodePath(absl::string_view path);

}  // namespace registrator::consul

#endif  // ADAPTERS_CONSUL_CONSUL_CODEC_H_
