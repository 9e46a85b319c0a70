// Registers services in etcd: the etcd:// / etcd3:// / etcd2:// backends, and (through
// EtcdFamilyConfig) the library behind skydns2://.
//
// Layout: key "<prefix>/<Name>/<ID>" (prefix = the URI path; no path = the root, key
// "/<Name>/<ID>" like upstream), value "ip:port" ("[v6]:port" for IPv6).
//
// API: etcd3:// speaks the v3 JSON gateway (/v3/kv/..., /v3/lease/...); etcd2:// the v2 keys API
// (/v2/keys/...). etcd:// asks GET /version on first use (Ping, or whichever call comes first)
// and picks v3 for a 3.x server (the /v3beta gateway for 3.3, /v3alpha for 3.2), v2 otherwise.
//
// TTL (options.ttl > 0): on v3 one lease (TTL = options.ttl) carries all of this host's keys,
// and Refresh is one lease keepalive. Keys of services left out of Refresh are moved once onto a
// separate lease that is never renewed, so they expire. A lease found gone (expired during an
// outage, revoked) is replaced and the live services re-put. On v2 every key has its own ttl,
// renewed with refresh=true.
//
// Listing: Services() ranges over "<prefix>/" (v3) or GETs it recursively (v2) and returns every
// "<prefix>/<Name>/<ID>" key (the ID is everything after the name, so it may contain "/"; keys
// without that shape are skipped). Fingerprint = "<key>=<value>"; a listed key whose expiry is
// not what Register would give it (on a lease other than ours, e.g. a previous run's or one left
// to expire; a lease or ttl without -ttl; none with -ttl) gets a suffix so that it never matches
// and the bridge rewrites it. Renewing our lease changes no fingerprint.
//
// Endpoints: "etcd://a:2379,b:2379" tries them in order and fails over to the next on a
// transport failure or a 503; a host without a port gets :2379; no host means 127.0.0.1:2379.
// TLS: plain http unless the environment has ETCDCTL_CACERT, ETCDCTL_CERT or ETCDCTL_KEY (the
// variables etcdctl itself reads): then https, verifying the server against ETCDCTL_CACERT (or
// the system CAs) and presenting ETCDCTL_CERT/ETCDCTL_KEY as client certificate;
// ETCDCTL_INSECURE_SKIP_TLS_VERIFY=true disables verification. The URI scheme stays etcd.
// Auth: "etcd://user:pass@host": v3 authenticates (POST /v3/auth/authenticate) and sends the
// token, re-authenticating once when etcd rejects it; v2 uses HTTP basic auth.
#ifndef ADAPTERS_ETCD_ETCD_ADAPTER_H_
#define ADAPTERS_ETCD_ETCD_ADAPTER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"
#include "registrator/model/registry_adapter.h"
#include "registrator/model/service.h"

namespace registrator {

enum class EtcdApi { kAuto, kV2, kV3 };

// What distinguishes etcd:// from skydns2:// (and any future etcd-based layout).
struct EtcdFamilyConfig {
  std::string backend_name = "etcd";  // For messages.
  EtcdApi api = EtcdApi::kAuto;
  std::string prefix;  // "" or "/a/b" (no trailing "/").
  std::string (*encode_value)(const Service& service) = nullptr;
  bool (*decode_value)(absl::string_view value, std::string* ip, int* port) = nullptr;
};

// The adapter shared by the etcd-family backends; validates endpoints, makes no network call.
absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewEtcdFamilyAdapter(const BackendUri& uri,
                                                                      const AdapterOptions& options,
                                                                      EtcdFamilyConfig config);

// etcd://, etcd3://, etcd2:// (uri.scheme tells which).
absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewEtcdAdapter(const BackendUri& uri,
                                                                const AdapterOptions& options);

}  // namespace registrator

#endif  // ADAPTERS_ETCD_ETCD_ADAPTER_H_
