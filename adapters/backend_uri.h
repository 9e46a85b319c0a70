// Parses the registry URI given on the command line: <scheme>://[user:pass@]<hosts>[/<path>].
#ifndef ADAPTERS_BACKEND_URI_H_
#define ADAPTERS_BACKEND_URI_H_

#include <map>
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

// Settings every adapter may need, filled by main from flags and the environment.
struct AdapterOptions {
  std::string hostname;  // This Docker host's name: the first part of every service ID.
  int ttl = 0;
  int ttl_refresh = 0;
  // The process environment (CONSUL_HTTP_TOKEN, ETCDCTL_CACERT, ...), injected for tests.
  std::map<std::string, std::string> env;

  std::string Env(const std::string& key) const {
    auto it = env.find(key);
    return it == env.end() ? std::string() : it->second;
  }
};

}  // namespace registrator

#endif  // ADAPTERS_BACKEND_URI_H_
