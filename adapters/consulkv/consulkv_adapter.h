// The Consul KV backend: consulkv://host:port/prefix and consulkv-unix:///path/consul.sock:/prefix.
// Each service is one key "<prefix>/<Name>/<ID>" holding "ip:port" ("[v6]:port" for IPv6),
// written with PUT /v1/kv/... and removed with DELETE. Services() lists the prefix recursively.
//
// Consul KV has no TTL: with -ttl the entries stay until deregistered (Refresh is a no-op that
// returns OK). Use the consul:// backend for -ttl (a TTL check kept passing). Keys, values and
// the listing are in consulkv_codec.h; the agent connection is adapters/consul/consul_transport.h.
#ifndef ADAPTERS_CONSULKV_CONSULKV_ADAPTER_H_
#define ADAPTERS_CONSULKV_CONSULKV_ADAPTER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "adapters/consul/consul_watch.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"
#include "registrator/model/registry_adapter.h"

namespace registrator {

// Validates the URI (consulkv or consulkv-unix); makes no network call. Its drift watch
// (StartWatch) is a blocking recursive read of the prefix (?recurse&index=, see
// adapters/consul/consul_watch.h); `watch` tunes it (tests: a short wait).
absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewConsulKvAdapter(const BackendUri& uri,
                                                                    const AdapterOptions& options);
absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewConsulKvAdapterWithWatch(
    const BackendUri& uri, const AdapterOptions& options,
    const consul::BlockingWatchOptions& watch);

}  // namespace registrator

#endif  // ADAPTERS_CONSULKV_CONSULKV_ADAPTER_H_
