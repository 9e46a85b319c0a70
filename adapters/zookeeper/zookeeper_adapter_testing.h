// For tests only (target :zookeeper_adapter_testing, testonly): the ZooKeeper adapter with other
// timeouts, a way to reach its session, and a hook into session opening. Defined in
// zookeeper_adapter.cc, which has no public class.
#ifndef ADAPTERS_ZOOKEEPER_ZOOKEEPER_ADAPTER_TESTING_H_
#define ADAPTERS_ZOOKEEPER_ZOOKEEPER_ADAPTER_TESTING_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "adapters/zookeeper/zookeeper_session.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"
#include "registrator/model/registry_adapter.h"

namespace registrator::zookeeper {

struct AdapterForTesting {
  std::unique_ptr<RegistryAdapter> adapter;
  // The id and password of the adapter's connected session, so a test can open a second handle
  // on the same session and close it, expiring the first. FAILED_PRECONDITION when there is no
  // connected session. Valid as long as `adapter` lives.
  std::function<absl::StatusOr<std::pair<int64_t, std::string>>()> session_credentials;
};

// NewZookeeperAdapter with `settings` (tests use short timeouts). `before_session_open`, when
// set, runs each time the adapter is about to open a session, on the calling thread.
absl::StatusOr<AdapterForTesting> NewZookeeperAdapterForTesting(
    const BackendUri& uri, const AdapterOptions& options, const SessionSettings& settings,
    std::function<void()> before_session_open = nullptr);

}  // namespace registrator::zookeeper

#endif  // ADAPTERS_ZOOKEEPER_ZOOKEEPER_ADAPTER_TESTING_H_
