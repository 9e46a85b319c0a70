// The Consul agent backend: consul://host:port, consul-tls://host:port, consul-unix:///sock.
// Registers each service through the local agent (PUT /v1/agent/service/register) with its
// Meta and its health check, lists them back from /v1/agent/services, and with -ttl adds a TTL
// check "service:<id>:ttl" that Refresh keeps passing (upstream ignores -ttl for Consul).
//
// Fingerprints cover what /v1/agent/services returns (ID, name, address, port, tags in order,
// Meta). Checks are not part of that listing, so a change of the check alone is not visible
// through Services(); the bridge compares its own record of what it registered for that.
#ifndef ADAPTERS_CONSUL_CONSUL_ADAPTER_H_
#define ADAPTERS_CONSUL_CONSUL_ADAPTER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "adapters/backend_uri.h"
#include "adapters/registry_adapter.h"

namespace registrator {

// Validates the URI (scheme consul, consul-tls or consul-unix) and the environment; makes no
// network call.
absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewConsulAdapter(const BackendUri& uri,
                                                                  const AdapterOptions& options);

namespace consul {
// The JSON body Register sends for `service` (exposed for tests and debugging).
std::string RegisterBody(const Service& service, int ttl_seconds);
// The id of the TTL check registrator adds with -ttl.
std::string TtlCheckId(const std::string& service_id);
}  // namespace consul

}  // namespace registrator

#endif  // ADAPTERS_CONSUL_CONSUL_ADAPTER_H_
