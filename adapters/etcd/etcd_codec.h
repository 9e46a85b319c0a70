// Pure encoding and decoding for the etcd-family adapters (etcd, skydns2): key layout, the values
// etcd:// stores, the v2 and v3 (JSON gateway) request bodies, and parsing of etcd's replies. No
// I/O, so every rule here is unit-tested without a server. skydns2's values and domain prefix are
// in adapters/skydns2/skydns2_codec.h.
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

// ---- Values -----------------------------------------------------------------------------------

// "ip:port", or "[ip]:port" for IPv6 (like upstream's net.JoinHostPort).
std::string HostPortValue(const Service& service);
bool ParseHostPortValue(absl::string_view value, std::string* ip, int* port);

// ---- Requests ---------------------------------------------------------------------------------

// What a v3 range returns of each key.
enum class RangeWants { kKeysAndValues, kKeysOnly, kCountOnly };
// POST /v3/kv/range over [key, range_end) ("" range_end: the one key).
std::string V3RangeBody(absl::string_view key, absl::string_view range_end, RangeWants wants);
// POST /v3/kv/put; lease 0 = none.
std::string V3PutBody(absl::string_view key, absl::string_view value, int64_t lease);
// POST /v3/kv/deleterange of one key.
std::string V3DeleteBody(absl::string_view key);
// POST /v3/kv/txn: puts key=value on `lease` only if the key still holds `value`.
std::string V3MoveToLeaseBody(absl::string_view key, absl::string_view value, int64_t lease);
// POST /v3/lease/grant.
std::string V3LeaseGrantBody(int ttl_seconds);
// POST /v3/lease/keepalive (and anything else that names one lease).
std::string V3LeaseIdBody(int64_t lease);
// POST /v3/auth/authenticate.
std::string V3AuthenticateBody(absl::string_view user, absl::string_view password);
// "/v2/keys/a/b%20c" for key "/a/b c": each path segment percent-encoded.
std::string V2KeyPath(absl::string_view key);
// The form of a v2 PUT: the value, and with ttl_seconds > 0 its ttl.
std::string V2PutForm(absl::string_view value, int ttl_seconds);
// The form of a v2 PUT that only renews the ttl of an existing key (no change event).
std::string V2RefreshForm(int ttl_seconds);

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
// POST /v3/kv/txn: whether the compare held (false: the failure branch ran instead).
absl::StatusOr<bool> ParseV3TxnSucceeded(absl::string_view body);
// POST /v3/auth/authenticate: the token.
absl::StatusOr<std::string> ParseV3AuthToken(absl::string_view body);
// GET /v2/keys/<dir>?recursive=true: every leaf node below, keys as etcd returns them.
absl::StatusOr<std::vector<KeyValue>> ParseV2Listing(absl::string_view body);

// ---- The drift watch ---------------------------------------------------------------------------

// POST <v3 base>/watch: a watch on [key, range_end) with progress notifications, from
// start_revision (0: from now).
std::string V3WatchCreateBody(absl::string_view key, absl::string_view range_end,
                              int64_t start_revision);
// One message of the v3 gateway's watch stream ({"result":{"header":{"revision":..},...}} per
// line, or {"error":{...}}).
struct WatchMessage {
  int64_t revision = 0;  // header.revision: everything up to it has been delivered.
  bool created = false;
  bool canceled = false;
  int64_t compact_revision = 0;  // > 0: the start revision was compacted away.
  std::string cancel_reason;
  int events = 0;  // Changes in this message (0 for a progress notification).
};
absl::StatusOr<WatchMessage> ParseV3WatchMessage(absl::string_view line);
// GET /v2/keys/<dir>/?wait=true&recursive=true: the event's node.modifiedIndex (the next wait
// starts at it + 1).
absl::StatusOr<int64_t> ParseV2WatchEvent(absl::string_view body);

// Maps a non-2xx reply to a Status carrying etcd's own message (v3 {"error","message","code"},
// v2 {"errorCode","message","cause"}, or the raw text): 400 -> INVALID_ARGUMENT, 401 ->
// UNAUTHENTICATED, 403 -> PERMISSION_DENIED, 404 -> NOT_FOUND, 409/412 -> FAILED_PRECONDITION,
// 408/413/429 and 5xx -> UNAVAILABLE, other codes -> UNKNOWN. Only INVALID_ARGUMENT makes the
// bridge stop retrying a registration (until the service changes), so only etcd's own
// validation errors (400) map to it. `what` names the request ("put /services/web/h:c:80").
absl::Status ErrorFromReply(long http_status, absl::string_view body, absl::string_view what);
// True for the v3 error "etcdserver: requested lease not found".
bool IsLeaseNotFound(const absl::Status& status);

}  // namespace registrator::etcd

#endif  // ADAPTERS_ETCD_ETCD_CODEC_H_
