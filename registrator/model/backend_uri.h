// Parses the registry URI given on the command line: <scheme>://[user:pass@]<hosts>[/<path>].
#ifndef REGISTRATOR_MODEL_BACKEND_URI_H_
#define REGISTRATOR_MODEL_BACKEND_URI_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace registrator {

struct BackendUri {
  std::string scheme;    // "consul", "etcd", ...
  std::string userinfo;  // "user:pass" or "".
  std::string host;      // Everything between "//" (and userinfo) and the path: "a:1,b:2".
  std::string path;      // From the first "/" after the host, "" if none. Never "/".
  std::vector<std::string> hosts;  // host split at ",".
};

// `uri` must contain "://". Unix-socket schemes keep the socket path in `path` with an empty host
// ("consul-unix:///run/consul.sock" -> host "", path "/run/consul.sock").
absl::StatusOr<BackendUri> ParseBackendUri(absl::string_view uri);

// `uri` fit for a log line, an error message or a status page: the password of its userinfo
// (what ParseBackendUri takes as userinfo) replaced by "***" ("etcd://user:***@host/p"), a
// userinfo without ":" (a bare token) replaced whole ("***@host"). Anything else is unchanged.
std::string RedactUri(absl::string_view uri);

// The secret part of `uri`'s userinfo (the password, or the whole userinfo when it has no ":"),
// "" when there is none: for the log's scrubber (SetLogSecrets).
std::string UriSecret(absl::string_view uri);

}  // namespace registrator

#endif  // REGISTRATOR_MODEL_BACKEND_URI_H_
