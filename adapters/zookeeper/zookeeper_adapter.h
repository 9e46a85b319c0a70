// The ZooKeeper backend (`zookeeper://[user:pass@]host[:port][,host[:port]...][/basepath]`), laid
// out as upstream registrator does:
//   <base>                           persistent, every missing level created
//   <base>/<Name>                    persistent; removed when its last child is deregistered
//   <base>/<Name>/<IP>:<Port>        EPHEMERAL ("[ip]:port" for IPv6), data = the JSON of
//                                    zookeeper_codec.h: {"Name","IP","PublicPort","PrivatePort",
//                                    "ContainerID","Tags","Attrs"} plus "ID" (ours: the
//                                    service ID, so this host's nodes can be listed and removed)
// An empty path (or "/") means base "/", i.e. nodes at /<Name>/<IP>:<Port> (upstream allows it).
// A port-less host gets ZooKeeper's default 2181.
//
// The node path holds no service ID, so two services (a container renamed, or re-created with a
// new ID but the same name, IP and port) share one node: the last Register owns it, and a
// Deregister removes the node only while its "ID" is still the deregistered service's (it reads
// the node and deletes that version). A node without that ID (upstream's bodies have none) is
// not ours to delete either.
//
// Sessions: the handle is opened lazily (first call, normally Ping) and kept. When the server
// reports the session expired (its ephemeral nodes are gone), the next call closes the handle and
// opens a new session, and the state-lost callback is invoked right away so the bridge rewrites
// this host's services. Plain connection loss is the client library's business: it reconnects
// to the same session and nothing is re-created. Every call waits for a connection at most
// `connect_timeout` and for an answer at most `session_timeout`, then fails with UNAVAILABLE.
// Opening a session (DNS, thread start-up) holds no lock: other calls meanwhile wait for it at
// most their connect timeout.
//
// The state-lost callback is kept in a StateLostNotifier: once SetStateLostCallback(nullptr)
// has returned, the old callback is not running and will not run again (its owner may then be
// destroyed), so whoever calls SetStateLostCallback must not hold a lock the callback takes. The
// callback runs on the ZooKeeper client library's thread of the expired session: it must only
// record work (as the bridge's does); calling the adapter's other methods from it would make
// them close that session from its own thread.
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

#include <memory>

#include "absl/status/statusor.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"
#include "registrator/model/registry_adapter.h"

namespace registrator {

// Validates the URI; makes no network call. The factory the bridge registers for "zookeeper".
absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewZookeeperAdapter(const BackendUri& uri,
                                                                     const AdapterOptions& options);

}  // namespace registrator

#endif  // ADAPTERS_ZOOKEEPER_ZOOKEEPER_ADAPTER_H_
