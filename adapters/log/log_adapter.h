// log:// — a dry-run backend: prints every register and deregister as one JSON line on stdout
// (rendered by log_codec.h) and remembers what it printed, so resync, cleanup and zero-write
// diffing behave as with a real backend. Users try registrator with it before pointing it at
// Consul; tests read its lines.
#ifndef ADAPTERS_LOG_LOG_ADAPTER_H_
#define ADAPTERS_LOG_LOG_ADAPTER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"
#include "registrator/model/registry_adapter.h"

namespace registrator {

// Factory for the "log" scheme: log:// (anything after the scheme is ignored).
absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewLogAdapter(const BackendUri& uri,
                                                               const AdapterOptions& options);

// For tests: the same adapter, handing each line (without the newline) to `write_line` instead
// of printing it.
std::unique_ptr<RegistryAdapter> NewLogAdapterForTesting(
    std::function<void(const std::string&)> write_line);

}  // namespace registrator

#endif  // ADAPTERS_LOG_LOG_ADAPTER_H_
