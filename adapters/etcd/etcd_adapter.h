// Registers services in etcd: the etcd:// / etcd3:// / etcd2:// backends, and (through
// EtcdFamilyConfig) the library behind skydns2://.
//
// Layout: key "<prefix>/<Name>/<ID>" (prefix = the URI path; no path = the root, key
// "/<Name>/<ID>" like upstream), value "ip:port" ("[v6]:port" for IPv6).
//
// API: etcd3:// speaks the v3 JSON gateway (/v3/kv/..., /v3/lease/...); etcd2:// the v2 keys API
// (/v2/keys/...). etcd:// asks GET /version on first use (Ping, or whichever call comes first)
// and picks v3 for a 3.x server (the /v3beta gateway for 3.3, /v3alpha for 3.2), v2 otherwise.
// Endpoints, failover, TLS and auth: etcd_transport.h.
//
// TTL (options.ttl > 0): on v3 one lease (TTL = options.ttl) carries all of this host's keys
// (etcd_lease.h). Refresh is one lease keepalive plus one keys-only range over the refreshed
// keys: a key deleted behind registrator's back is put again. Keys of services left out of
// Refresh are moved once onto a separate lease that is never renewed, so they expire. A lease
// found gone (expired during an outage, revoked) is replaced and the live services re-put. On v2
// every key has its own ttl, renewed with refresh=true (a key found missing is written again).
//
// Listing: Services() ranges over "<prefix>/" (v3) or GETs it recursively (v2) and returns every
// "<prefix>/<Name>/<ID>" key (the ID is everything after the name, so it may contain "/"; keys
// without that shape are skipped). Fingerprint = "<key>=<value>"; a listed key whose expiry is
// not what Register would give it (on a lease other than ours, e.g. a previous run's or one left
// to expire; a lease or ttl without -ttl; none with -ttl) gets a suffix so that it never matches
// and the bridge rewrites it. Renewing our lease changes no fingerprint.
#ifndef ADAPTERS_ETCD_ETCD_ADAPTER_H_
#define ADAPTERS_ETCD_ETCD_ADAPTER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "adapters/etcd/etcd_transport.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"
#include "registrator/model/registry_adapter.h"
#include "registrator/model/service.h"

namespace registrator {

// etcd://, etcd3://, etcd2:// (uri.scheme tells which). Validates the URI, makes no network call.
absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewEtcdAdapter(const BackendUri& uri,
                                                                const AdapterOptions& options);

// What distinguishes etcd:// from skydns2:// (and any future etcd-based layout).
struct EtcdFamilyConfig {
  std::string backend_name = "etcd";  // For messages.
  EtcdApi api = EtcdApi::kAuto;
  std::string prefix;  // "" or "/a/b" (no trailing "/").
  std::string (*encode_value)(const Service& service) = nullptr;
  bool (*decode_value)(absl::string_view value, std::string* ip, int* port) = nullptr;
};

// The adapter shared by the etcd-family backends (skydns2's factory builds on it); validates
// endpoints, makes no network call.
absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewEtcdFamilyAdapter(const BackendUri& uri,
                                                                      const AdapterOptions& options,
                                                                      EtcdFamilyConfig config);

}  // namespace registrator

#endif  // ADAPTERS_ETCD_ETCD_ADAPTER_H_
