// The Consul agent backend: consul://host:port, consul-tls://host:port, consul-unix:///sock.
// Registers each service through the local agent (PUT /v1/agent/service/register) with its
// Meta and its health check, lists them back from /v1/agent/services, and with -ttl adds a TTL
// check "service:<id>:ttl" that Refresh keeps passing (upstream ignores -ttl for Consul).
//
// Fingerprints cover what /v1/agent/services returns (ID, name, address, port, tags in order,
// Meta). The agent does not list check definitions there, so a service with checks also gets
// the Meta key "registrator-check": a stable hash of its check definitions. A changed check
// (e.g. a container re-created with another SERVICE_CHECK_HTTP while registrator was down)
// then shows in the listing and is rewritten, instead of the agent running the old check forever.
#ifndef ADAPTERS_CONSUL_CONSUL_ADAPTER_H_
#define ADAPTERS_CONSUL_CONSUL_ADAPTER_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"
#include "registrator/model/registry_adapter.h"

namespace registrator {

// Validates the URI (scheme consul, consul-tls or consul-unix) and the environment; makes no
// network call.
absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewConsulAdapter(const BackendUri& uri,
                                                                  const AdapterOptions& options);

namespace consul {
// The Meta key holding the hash of a service's check definitions.
inline constexpr char kCheckHashMetaKey[] = "registrator-check";
// The JSON body Register sends for `service` (exposed for tests and debugging).
std::string RegisterBody(const Service& service, int ttl_seconds);
// The hash stored under kCheckHashMetaKey: 16 hex digits of the 64-bit FNV-1a of the checks'
// part of the register body (`,"Check":{...}` or `,"Checks":[...]`).
std::string CheckHash(absl::string_view checks_json);
// service.meta plus, when the service has checks, kCheckHashMetaKey; sorted by key.
std::vector<std::pair<std::string, std::string>> MetaWithCheckHash(const Service& service,
                                                                   int ttl_seconds);
// The id of the TTL check registrator adds with -ttl.
std::string TtlCheckId(const std::string& service_id);
}  // namespace consul

}  // namespace registrator

#endif  // ADAPTERS_CONSUL_CONSUL_ADAPTER_H_
