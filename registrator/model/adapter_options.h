// Settings every adapter may need, filled by main from flags and the environment: part of the
// adapter contract (what a backend factory receives besides its URI).
#ifndef REGISTRATOR_MODEL_ADAPTER_OPTIONS_H_
#define REGISTRATOR_MODEL_ADAPTER_OPTIONS_H_

#include <map>
#include <string>

namespace registrator {

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

#endif  // REGISTRATOR_MODEL_ADAPTER_OPTIONS_H_
