// The Consul agent backend: consul://host:port, consul-tls://host:port, consul-unix:///sock.
// Registers each service through the local agent (PUT /v1/agent/service/register) with its
// Meta and its health check, lists them back from /v1/agent/services, and with -ttl adds a TTL
// check "service:<id>:ttl" that Refresh keeps passing (upstream ignores -ttl for Consul). The
// bodies and fingerprints are in consul_codec.h, the agent connection in consul_transport.h.
#ifndef ADAPTERS_CONSUL_CONSUL_ADAPTER_H_
#define ADAPTERS_CONSUL_CONSUL_ADAPTER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "adapters/consul/consul_watch.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"
#include "registrator/model/registry_adapter.h"

namespace registrator {

// Validates the URI (scheme consul, consul-tls or consul-unix) and the environment; makes no
// network call. Its drift watch (StartWatch) is a hash-based blocking query on
// /v1/agent/services (see consul_watch.h); `watch` tunes it (tests: a short wait).
absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewConsulAdapter(const BackendUri& uri,
                                                                  const AdapterOptions& options);
absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewConsulAdapterWithWatch(
    const BackendUri& uri, const AdapterOptions& options,
    const consul::BlockingWatchOptions& watch);

}  // namespace registrator

#endif  // ADAPTERS_CONSUL_CONSUL_ADAPTER_H_
