// What one registered service looks like in ZooKeeper: the node name (<IP>:<Port>, [v6]:port)
// and the JSON body, written deterministically so the bytes double as the fingerprint, and read
// back from whatever is in the tree (other writers included). No I/O here.
#ifndef ADAPTERS_ZOOKEEPER_ZNODE_H_
#define ADAPTERS_ZOOKEEPER_ZNODE_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "registrator/model/service.h"

namespace registrator::zookeeper {

// The body upstream registrator writes, plus "ID" (ours: the service ID, so the bridge can tell
// this host's nodes apart and deregister them; upstream readers ignore unknown fields).
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

// "<ip>:<port>", or "[<ip>]:<port>" when ip contains ':' (IPv6).
std::string NodeName(absl::string_view ip, int port);
// The inverse of NodeName; INVALID_ARGUMENT when `node` is not of that form.
absl::StatusOr<std::pair<std::string, int>> ParseNodeName(absl::string_view node);

}  // namespace registrator::zookeeper

#endif  // ADAPTERS_ZOOKEEPER_ZNODE_H_
