// skydns2://host:port/<domain>: registers services as SkyDNS records in etcd, readable by
// CoreDNS's etcd plugin (and SkyDNS itself): key "/skydns/<domain labels reversed>/<Name>/<ID>",
// value {"host":"<ip>","port":<port>} (skydns2_codec.h). Built on the etcd adapter (adapters/etcd),
// so endpoints, TLS, auth, -ttl leases and the /version probe (v3 for a 3.x server, v2 otherwise)
// work exactly as for etcd://.
#ifndef ADAPTERS_SKYDNS2_SKYDNS2_ADAPTER_H_
#define ADAPTERS_SKYDNS2_SKYDNS2_ADAPTER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"
#include "registrator/model/registry_adapter.h"

namespace registrator {

// The URI path is the domain and is required ("skydns2://127.0.0.1:2379/skydns.local").
absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewSkydns2Adapter(const BackendUri& uri,
                                                                   const AdapterOptions& options);

}  // namespace registrator

#endif  // ADAPTERS_SKYDNS2_SKYDNS2_ADAPTER_H_
