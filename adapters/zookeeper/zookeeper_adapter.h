// The ZooKeeper backend (`zookeeper://[user:pass@]host:port[,host:port...][/basepath]`), laid
// out as upstream registrator does:
//   <base>                           persistent, every missing level created
//   <base>/<Name>                    persistent; removed when its last child is deregistered
//   <base>/<Name>/<IP>:<Port>        EPHEMERAL ("[ip]:port" for IPv6), data = the JSON of
//                                    znode.h: {"Name","IP","PublicPort","PrivatePort",
//                                    "ContainerID","Tags","Attrs"} plus "ID" (ours: the
//                                    service ID, so this host's nodes can be listed and removed)
// An empty path (or "/") means base "/", i.e. nodes at /<Name>/<IP>:<Port> (upstream allows it).
// A port-less host gets ZooKeeper's default 2181.
//
// Sessions: the handle is opened lazily (first call, normally Ping) and kept. When the server
// reports the session expired (its ephemeral nodes are gone), the next call closes the handle and
// opens a new session, and the state-lost callback is invoked right away so the bridge rewrites
// this host's services. Plain connection loss is the client library's business: it reconnects
// to the same session and nothing is re-created. Every call waits for a connection at most
// `connect_timeout` and for an answer at most `session_timeout`, then fails with UNAVAILABLE.
//
// TTL: ephemeral nodes live as long as the session, so -ttl does not apply. Refresh(services)
// re-creates those of the given services' nodes that are missing (or held by another, dying
// session) and writes nothing otherwise. Nodes of services not in the list are left alone: they
// vanish only with the session (upstream's "kept registrations expire" has no ZK equivalent).
//
// A node held by an ephemeral owner other than this adapter's session (e.g. a previous
// registrator process whose session has not expired yet) will disappear with that session:
// Register replaces it with our own, and Services() reports a fingerprint that does not match so
// a resync does the same.
//
// Auth: with userinfo ("user:pass@"), the session adds digest auth and nodes are created with
// ZOO_CREATOR_ALL_ACL; without it, ZOO_OPEN_ACL_UNSAFE.
#ifndef ADAPTERS_ZOOKEEPER_ZOOKEEPER_ADAPTER_H_
#define ADAPTERS_ZOOKEEPER_ZOOKEEPER_ADAPTER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"
#include "registrator/model/registry_adapter.h"

namespace registrator {

// The URI, validated and split for the client library.
struct ZookeeperTarget {
  std::string connect_string;  // "h1:2181,h2:2181" (zookeeper_init's host list).
  std::string base;            // "/" or "/a/b", no trailing "/".
  std::string auth;            // "user:pass" for digest auth, or "".
};
absl::StatusOr<ZookeeperTarget> ParseZookeeperUri(const BackendUri& uri);

struct ZookeeperSettings {
  // Requested session timeout (the server clamps it to [2, 20] ticks by default). Upstream uses
  // 10 s too.
  absl::Duration session_timeout = absl::Seconds(10);
  // How long a call waits for the session to be connected before failing with UNAVAILABLE.
  absl::Duration connect_timeout = absl::Seconds(3);
};

// Validates the URI; makes no network call. The factory the bridge registers for "zookeeper".
absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewZookeeperAdapter(const BackendUri& uri,
                                                                     const AdapterOptions& options);
// The same with other timeouts (tests use short ones).
absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewZookeeperAdapterWithSettings(
    const BackendUri& uri, const AdapterOptions& options, const ZookeeperSettings& settings);

// For tests only: the id and password of `adapter`'s connected session (a ZooKeeper adapter's),
// so a test can open a second handle on the same session and close it, expiring the first.
// FAILED_PRECONDITION when there is no connected session or `adapter` is another backend.
absl::StatusOr<std::pair<int64_t, std::string>> ZookeeperSessionForTesting(
    RegistryAdapter& adapter);

}  // namespace registrator

#endif  // ADAPTERS_ZOOKEEPER_ZOOKEEPER_ADAPTER_H_
