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

}  // namespace registrator

#endif  // REGISTRATOR_MODEL_BACKEND_URI_H_
