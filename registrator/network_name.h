// The check on a network name that chooses which of a container's addresses is registered
// (SERVICE_NETWORK, SERVICE_<port>_NETWORK, -network). The labels and environment it comes from
// are untrusted, but Docker itself accepts almost any name (dockerd 20.10 created networks named
// "we ird", "a/b", "x:y", "ünï" and a 300-byte name; testdata/docker/README.md), so the check
// only refuses what no network can be called and what would garble a log line.
#ifndef REGISTRATOR_NETWORK_NAME_H_
#define REGISTRATOR_NETWORK_NAME_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace registrator {

// Longest network name accepted, in bytes (Docker sets no limit of its own).
inline constexpr size_t kMaxNetworkNameBytes = 1024;

// OK when `name` can name a Docker network: not empty or only whitespace (Docker refuses
// those), at most kMaxNetworkNameBytes, valid UTF-8, no control character (C0, DEL, C1).
// INVALID_ARGUMENT otherwise; the message says what is wrong without repeating the value.
absl::Status ValidateNetworkName(absl::string_view name);

}  // namespace registrator

#endif  // REGISTRATOR_NETWORK_NAME_H_
