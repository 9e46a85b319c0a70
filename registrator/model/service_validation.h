// The one check that every service passes before any backend sees it: the parts of a Service
// that become a key, a znode path or a URL path segment (name, ID, IP) are safe in all of them,
// and the sizes of what a container controls are bounded. Backend-agnostic and strict enough
// for every backend, so an adapter never has to defend its own paths against a label.
#ifndef REGISTRATOR_MODEL_SERVICE_VALIDATION_H_
#define REGISTRATOR_MODEL_SERVICE_VALIDATION_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "registrator/model/service.h"

namespace registrator {

// Longest name, ID or IP accepted, in bytes. A generated ID (<hostname>:<container>:<port>:udp)
// stays far below it: a hostname is at most 64 bytes and Docker names are short.
inline constexpr size_t kMaxKeyFieldBytes = 512;

// OK when `value` may be one segment of a key or path in every backend (Consul agent IDs and
// KV keys, etcd v2/v3 keys, skydns2 paths, ZooKeeper znodes): non-empty, at most
// kMaxKeyFieldBytes, no "/", not "." or "..", valid UTF-8, and no control character (C0, DEL,
// C1) nor a code point ZooKeeper refuses in a path (U+E000-U+F8FF, U+FFF0-U+FFFF).
// INVALID_ARGUMENT otherwise; the message says what is wrong but does not repeat the value.
absl::Status ValidateKeySegment(absl::string_view value);

// ValidateKeySegment for the service's name, ID and IP. The message names the failing field
// ("name", "ID" or "IP") first, e.g. "ID: contains \"/\"".
absl::Status ValidateServiceKeys(const Service& service);

}  // namespace registrator

#endif  // REGISTRATOR_MODEL_SERVICE_VALIDATION_H_
