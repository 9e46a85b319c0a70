// Pure encoding and decoding for the Consul KV backend (no I/O): the key of a service
// ("<prefix>/<Name>/<ID>"), its value ("ip:port", "[v6]:port"), the request paths, and the
// recursive listing reply (GET /v1/kv/<prefix>/?recurse) back into services.
#ifndef ADAPTERS_CONSULKV_CONSULKV_CODEC_H_
#define ADAPTERS_CONSULKV_CONSULKV_CODEC_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "registrator/model/registry_adapter.h"
#include "registrator/model/service.h"

namespace registrator::consulkv {

// The URI path as a key prefix: leading and trailing "/" removed ("/a/b/" -> "a/b", "/" -> "").
std::string NormalizePrefix(absl::string_view path);
// "<prefix>/<Name>/<ID>" (no leading "/"; "<Name>/<ID>" for an empty prefix).
std::string ServiceKey(absl::string_view prefix, const Service& service);
// "ip:port", "[v6]:port".
std::string ServiceValue(const Service& service);
// "<key>=<value>": what Services() reports for a key holding ServiceValue(service).
std::string ServiceFingerprint(absl::string_view prefix, const Service& service);
// "/v1/kv/<key>", each segment percent-encoded.
std::string KeyPath(absl::string_view key);
// "/v1/kv/<prefix>/?recurse": every key under the prefix.
std::string ListingPath(absl::string_view prefix);
// The listing reply: every "<prefix>/<Name>/<ID>" key, its value split into ip and port when it
// is one (an unparsable value is still listed so -cleanup can remove it; its fingerprint
// matches nothing we write). Folders, keys outside the prefix and undecodable values are
// skipped. UNAVAILABLE when the reply is not a JSON array.
absl::StatusOr<std::vector<RegisteredService>> ParseListing(absl::string_view prefix,
                                                            absl::string_view body);

}  // namespace registrator::consulkv

#endif  // ADAPTERS_CONSULKV_CONSULKV_CODEC_H_
