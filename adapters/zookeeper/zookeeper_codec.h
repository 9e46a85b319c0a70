// Pure encode/decode for the ZooKeeper backend, no I/O: the registry URI split for the client
// library, the node paths (<base>/<Name>/<IP>:<Port>, [v6]:port), and the node JSON, written
// deterministically so the bytes double as the fingerprint and read back from whatever is in the
// tree (other writers included).
#ifndef ADAPTERS_ZOOKEEPER_ZOOKEEPER_CODEC_H_
#define ADAPTERS_ZOOKEEPER_ZOOKEEPER_CODEC_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "registrator/model/backend_uri.h"
#include "registrator/model/service.h"

namespace registrator::zookeeper {

// ZooKeeper's own client port, for a host given without one (as upstream's client does).
inline constexpr int kDefaultPort = 2181;

// `zookeeper://[user:pass@]host[:port][,host[:port]...][/basepath]`, validated and split.
struct Target {
  std::string connect_string;  // "h1:2181,[::1]:2181" (zookeeper_init's host list).
  std::string base;            // "/" or "/a/b", no trailing "/".
  std::string auth;            // "user:pass" for digest auth, or "".
};
// INVALID_ARGUMENT (naming the URI without its userinfo) for another scheme, no host, a bad
// host:port (port 1-65535; IPv6 in brackets), a base level that is empty, "." or "..", or
// userinfo that is not user:password.
absl::StatusOr<Target> ParseUri(const BackendUri& uri);

// OK when `service.name` can be one znode level: not empty, ".", "..", and no "/" or NUL.
absl::Status CheckName(const Service& service);
// "<base>/<name>" ("/<name>" for base "/"): the persistent Name node.
std::string NamePath(absl::string_view base, absl::string_view name);
// "<base>/<name>/<ip>:<port>": the service's ephemeral node. Call CheckName first.
std::string NodePath(absl::string_view base, const Service& service);

// "<ip>:<port>", or "[<ip>]:<port>" when ip contains ':' (IPv6).
std::string NodeName(absl::string_view ip, int port);
// The inverse of NodeName; INVALID_ARGUMENT when `node` is not of that form.
absl::StatusOr<std::pair<std::string, int>> ParseNodeName(absl::string_view node);

// The body upstream registrator writes, plus "ID" (ours: the service ID, so the bridge can tell
// this host's nodes apart, and a Deregister can tell its own node from another service's at the
// same path; upstream readers ignore unknown fields).
struct ZnodeBody {
  std::string name;
  std::string ip;
  int public_port = 0;
  int private_port = 0;
  std::string container_id;  // 12-character short id.
  std::vector<std::string> tags;
  std::vector<std::pair<std::string, std::string>> attrs;  // Sorted by key.
  std::string id;
};

// The body for `service`: PublicPort = service.port (the registered port, as upstream),
// PrivatePort = the container's exposed port, ContainerID = first 12 characters of the id.
ZnodeBody BodyFor(const Service& service);

// Compact JSON with a fixed field order {"Name","IP","PublicPort","PrivatePort","ContainerID",
// "Tags","Attrs","ID"}; Tags is always an array, Attrs always an object with keys sorted (a
// repeated key keeps its last value). Strings are escaped like Go's encoding/json (so upstream
// consumers see what they always saw): \" \\ \n \r \t, other controls and < > & U+2028 U+2029 as
// \u00XX/\u20XX, and invalid UTF-8 replaced by U+FFFD, so the output is always valid JSON.
std::string EncodeBody(const ZnodeBody& body);

// Parses a node's data. INVALID_ARGUMENT for non-JSON, a non-object, or a field of the wrong
// type; a missing field stays empty/0 (Tags/Attrs may be null). Does not require "ID".
absl::StatusOr<ZnodeBody> DecodeBody(absl::string_view data);

// Whether a decoded body belongs to the service with `service_id`: its "ID" is what EncodeBody
// writes for that ID (which replaces invalid UTF-8, so a plain == would never match such an ID
// and its node could never be removed).
bool HoldsId(const ZnodeBody& body, absl::string_view service_id);

}  // namespace registrator::zookeeper

#endif  // ADAPTERS_ZOOKEEPER_ZOOKEEPER_CODEC_H_
