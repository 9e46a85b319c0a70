// Chooses the backend by the registry URI's scheme. Each backend folder provides a factory;
// this is the one place that lists them.
#ifndef ADAPTERS_ADAPTER_FACTORY_H_
#define ADAPTERS_ADAPTER_FACTORY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"
#include "registrator/model/registry_adapter.h"

namespace registrator {

// Parses `uri` and builds its adapter without any network call. INVALID_ARGUMENT for a
// malformed URI or an unknown scheme (the message lists the known ones).
absl::StatusOr<std::unique_ptr<RegistryAdapter>> CreateAdapter(absl::string_view uri,
                                                               const AdapterOptions& options);

// The schemes CreateAdapter knows, sorted.
std::vector<std::string> SupportedSchemes();

}  // namespace registrator

#endif  // ADAPTERS_ADAPTER_FACTORY_H_
