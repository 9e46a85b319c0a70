// Pure encoding and decoding for the etcd-family adapters (etcd, skydns2): key layout, the values
// we store, and parsing of etcd's v2 and v3 (JSON gateway) replies. No I/O, so every rule here is
// unit-tested without a server.
#ifndef ADAPTERS_ETCD_ETCD_CODEC_H_
#define ADAPTERS_ETCD_ETCD_CODEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "registrator/common/json.h"
#include "registrator/model/service.h"

namespace registrator::etcd {

// ---- Keys -------------------------------------------------------------------------------------

// `prefix` is "" (the root, like upstream's empty path) or "/a/b" without a trailing "/".
// The key of a service is "<prefix>/<Name>/<ID>".
std::string ServiceKey(absl::string_view prefix, const Service& service);
// Every service key starts with this: "<prefix>/".
std::string ListingPrefix(absl::string_view prefix);
// The v3 range_end that selects every key starting with `key_prefix` (last byte + 1).
std::string PrefixRangeEnd(absl::string_view key_prefix);
// Splits "<prefix>/<Name>/<ID>" back. The name is the first segment after the prefix and the ID
// everything after it (an ID may contain "/"); false when either is empty or the key lies
// outside the prefix.
bool SplitServiceKey(absl::string_view prefix, absl::string_view key, std::string* name,
                     std::string* id);

// skydns2: "/skydns/<domain labels reversed, joined by '/'>" ("skydns.local" ->
// "/skydns/local/skydns"). `domain` is the URI path with or without its leading "/".
absl::StatusOr<std::string> SkydnsPrefix(absl::string_view domain);

// ---- Values -----------------------------------------------------------------------------------

// "ip:port", or "[ip]:port" for IPv6 (like upstream's net.JoinHostPort).
std::string HostPortValue(const Service& service);
bool ParseHostPortValue(absl::string_view value, std::string* ip, int* port);
// skydns2: {"host":"<ip>","port":<port>} (exactly upstream's json.Marshal output).
std::string SkydnsValue(const Service& service);
bool ParseSkydnsValue(absl::string_view value, std::string* ip, int* port);

// ---- Replies ----------------------------------------------------------------------------------

struct KeyValue {
  std::string key;
  std::string value;
  int64_t lease = 0;     // v3: the attached lease, 0 for none.
  bool has_ttl = false;  // v2: the node expires (has a ttl).
};

// The v3 JSON gateway's base path for a server version ("3.4.23" -> "/v3", "3.3.x" -> "/v3beta",
// "3.2.x" and older 3.x -> "/v3alpha"), or "" when only the v2 API can be used (2.x, unparsable).
std::string V3BasePathForVersion(absl::string_view version);

// "3.4.23" from GET /version ({"etcdserver":"3.4.23","etcdcluster":"3.4.0"}).
absl::StatusOr<std::string> ParseVersion(absl::string_view body);
// POST /v3/kv/range: the kvs, keys and values base64-decoded.
absl::StatusOr<std::vector<KeyValue>> ParseV3Range(absl::string_view body);
// POST /v3/lease/grant: the lease ID.
absl::StatusOr<int64_t> ParseV3LeaseGrant(absl::string_view body);
// POST /v3/lease/keepalive ({"result":{...,"ID":..,"TTL":..}}): the new TTL; 0 when the lease
// does not exist any more (etcd answers 200 without a TTL then).
absl::StatusOr<int64_t> ParseV3KeepAlive(absl::string_view body);
// POST /v3/kv/txn: whether the compare held.
absl::StatusOr<bool> ParseV3TxnSucceeded(absl::string_view body);
// POST /v3/auth/authenticate: the token.
absl::StatusOr<std::string> ParseV3AuthToken(absl::string_view body);
// GET /v2/keys/<dir>?recursive=true: every leaf node below, keys as etcd returns them.
absl::StatusOr<std::vector<KeyValue>> ParseV2Listing(absl::string_view body);

// Maps a non-2xx reply to a Status carrying etcd's own message (v3 {"error","message","code"},
// v2 {"errorCode","message","cause"}, or the raw text): 400 -> INVALID_ARGUMENT, 401 ->
// UNAUTHENTICATED, 403 -> PERMISSION_DENIED, 404 -> NOT_FOUND, 412 -> FAILED_PRECONDITION,
// 5xx -> UNAVAILABLE. `what` names the request ("put /services/web/h:c:80").
absl::Status ErrorFromReply(long http_status, absl::string_view body, absl::string_view what);
// True for the v3 error "etcdserver: requested lease not found".
bool IsLeaseNotFound(const absl::Status& status);

}  // namespace registrator::etcd

#endif  // ADAPTERS_ETCD_ETCD_CODEC_H_
