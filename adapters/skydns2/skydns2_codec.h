// Pure encoding and decoding for the skydns2 backend (no I/O): the key prefix of a DNS domain and
// the record value SkyDNS and CoreDNS's etcd plugin read. Keys below the prefix are etcd's
// "<prefix>/<Name>/<ID>" (adapters/etcd/etcd_codec.h).
#ifndef ADAPTERS_SKYDNS2_SKYDNS2_CODEC_H_
#define ADAPTERS_SKYDNS2_SKYDNS2_CODEC_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "registrator/model/service.h"

namespace registrator::skydns2 {

// "/skydns/<domain labels reversed, joined by '/'>" ("skydns.local" -> "/skydns/local/skydns").
// `domain` is the URI path with or without its leading "/". INVALID_ARGUMENT for an empty
// domain or an empty or invalid label.
absl::StatusOr<std::string> DomainPrefix(absl::string_view domain);
// {"host":"<ip>","port":<port>} (exactly upstream's json.Marshal output).
std::string RecordValue(const Service& service);
// The inverse of RecordValue; other fields (ttl, priority, ...) are ignored. False for anything
// without a string "host" and a 0-65535 integer "port".
bool ParseRecordValue(absl::string_view value, std::string* ip, int* port);

}  // namespace registrator::skydns2

#endif  // ADAPTERS_SKYDNS2_SKYDNS2_CODEC_H_
