#include "adapters/adapter_factory.h"

#include <algorithm>
#include <functional>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "adapters/consul/consul_adapter.h"
#include "adapters/consulkv/consulkv_adapter.h"
#include "adapters/etcd/etcd_adapter.h"
#include "adapters/log/log_adapter.h"
#include "adapters/skydns2/skydns2_adapter.h"
#include "adapters/zookeeper/zookeeper_adapter.h"

namespace registrator {
namespace {

using Factory = std::function<absl::StatusOr<std::unique_ptr<RegistryAdapter>>(
    const BackendUri&, const AdapterOptions&)>;

const std::map<std::string, Factory>& Factories() {
  static const auto* factories = new std::map<std::string, Factory>{
      {"consul", NewConsulAdapter},
      {"consul-tls", NewConsulAdapter},
      {"consul-unix", NewConsulAdapter},
      {"consulkv", NewConsulKvAdapter},
      {"consulkv-unix", NewConsulKvAdapter},
      {"etcd", NewEtcdAdapter},
      {"etcd2", NewEtcdAdapter},
      {"etcd3", NewEtcdAdapter},
      {"log", NewLogAdapter},
      {"skydns2", NewSkydns2Adapter},
      {"zookeeper", NewZookeeperAdapter},
  };
  return *factories;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RegistryAdapter>> CreateAdapter(absl::string_view uri,
                                                               const AdapterOptions& options) {
  absl::StatusOr<BackendUri> parsed = ParseBackendUri(uri);
  if (!parsed.ok()) return parsed.status();
  auto it = Factories().find(parsed->scheme);
  if (it == Factories().end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unrecognized adapter \"", parsed->scheme, "\" in registry URI \"",
                     RedactUri(uri), "\"; known: ", absl::StrJoin(SupportedSchemes(), ", ")));
  }
  return it->second(*parsed, options);
}

std::vector<std::string> SupportedSchemes() {
  std::vector<std::string> schemes;
  for (const auto& [scheme, factory] : Factories()) schemes.push_back(scheme);
  return schemes;
}

}  // namespace registrator
