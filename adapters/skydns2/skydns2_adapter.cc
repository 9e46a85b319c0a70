// The skydns2:// factory: the etcd-family adapter with SkyDNS's key prefix and record values.
#include "adapters/skydns2/skydns2_adapter.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "adapters/etcd/etcd_adapter.h"
#include "adapters/skydns2/skydns2_codec.h"

namespace registrator {

absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewSkydns2Adapter(const BackendUri& uri,
                                                                   const AdapterOptions& options) {
  if (uri.scheme != "skydns2") {
    return absl::InvalidArgumentError(
        absl::StrCat("skydns2 adapter: unknown scheme \"", uri.scheme, "\""));
  }
  absl::StatusOr<std::string> prefix = skydns2::DomainPrefix(uri.path);
  if (!prefix.ok()) return prefix.status();
  EtcdFamilyConfig config;
  config.backend_name = "skydns2";
  config.api = EtcdApi::kAuto;
  config.prefix = *std::move(prefix);
  config.encode_value = &skydns2::RecordValue;
  config.decode_value = &skydns2::ParseRecordValue;
  return NewEtcdFamilyAdapter(uri, options, std::move(config));
}

}  // namespace registrator
