// The ZooKeeper backend's pure half: URI parsing, node paths and the node JSON (no I/O).
#include "adapters/zookeeper/zookeeper_codec.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "registrator/common/host_port.h"
#include "registrator/common/json.h"
#include "simdjson.h"

namespace registrator::zookeeper {
namespace {

absl::Status FieldError(absl::string_view field, absl::string_view want) {
  return absl::InvalidArgumentError(absl::StrCat("znode field \"", field, "\" is not ", want));
}

absl::Status ReadString(simdjson::dom::object obj, const char* field, std::string* out) {
  simdjson::dom::element value;
  if (obj[field].get(value) != simdjson::SUCCESS) return absl::OkStatus();  // Missing.
  if (value.is_null()) return absl::OkStatus();
  std::string_view text;
  if (value.get(text) != simdjson::SUCCESS) return FieldError(field, "a string");
  out->assign(text.data(), text.size());
  return absl::OkStatus();
}

absl::Status ReadInt(simdjson::dom::object obj, const char* field, int* out) {
  simdjson::dom::element value;
  if (obj[field].get(value) != simdjson::SUCCESS) return absl::OkStatus();
  if (value.is_null()) return absl::OkStatus();
  int64_t number = 0;
  if (value.get(number) != simdjson::SUCCESS || number < std::numeric_limits<int>::min() ||
      number > std::numeric_limits<int>::max()) {
    return FieldError(field, "an integer");
  }
  *out = static_cast<int>(number);
  return absl::OkStatus();
}

absl::Status BadUri(const BackendUri& uri, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("zookeeper URI \"", uri.scheme, "://",
                                                 uri.userinfo.empty() ? "" : "<userinfo>@",
                                                 uri.host, uri.path, "\": ", why));
}

}  // namespace

absl::StatusOr<Target> ParseUri(const BackendUri& uri) {
  if (uri.scheme != "zookeeper") return BadUri(uri, "scheme must be zookeeper");
  if (uri.hosts.empty()) return BadUri(uri, "needs at least one host:port");
  Target target;
  std::vector<std::string> servers;
  for (const std::string& server : uri.hosts) {
    absl::StatusOr<HostPort> address = SplitHostPort(server, kDefaultPort);
    if (!address.ok()) return BadUri(uri, address.status().message());
    servers.push_back(address->ToString());
  }
  target.connect_string = absl::StrJoin(servers, ",");
  target.base = uri.path.empty() ? "/" : uri.path;
  if (target.base.front() != '/') return BadUri(uri, "base path must start with /");
  if (target.base != "/") {
    for (absl::string_view level : absl::StrSplit(absl::string_view(target.base).substr(1), '/')) {
      if (level.empty() || level == "." || level == ".." ||
          level.find('\0') != absl::string_view::npos) {
        return BadUri(uri, "base path has an empty, \".\" or \"..\" level");
      }
    }
  }
  if (!uri.userinfo.empty()) {
    if (uri.userinfo.find(':') == std::string::npos || uri.userinfo.front() == ':') {
      return BadUri(uri, "userinfo must be user:password (digest auth)");
    }
    target.auth = uri.userinfo;
  }
  return target;
}

absl::Status CheckName(const Service& service) {
  const std::string& name = service.name;
  if (name.empty() || name == "." || name == ".." || absl::StrContains(name, '/') ||
      absl::StrContains(name, '\0')) {
    return absl::InvalidArgumentError(
        absl::StrCat("zookeeper: service ", service.id, ": name \"", name,
                     "\" cannot be a znode name (empty, \".\", \"..\" or containing \"/\")"));
  }
  return absl::OkStatus();
}

std::string NamePath(absl::string_view base, absl::string_view name) {
  return base == "/" ? absl::StrCat("/", name) : absl::StrCat(base, "/", name);
}

std::string NodePath(absl::string_view base, const Service& service) {
  return absl::StrCat(NamePath(base, service.name), "/", NodeName(service.ip, service.port));
}

ZnodeBody BodyFor(const Service& service) {
  ZnodeBody body;
  body.name = service.name;
  body.ip = service.ip;
  body.public_port = service.port;
  body.private_port = service.exposed_port;
  body.container_id = service.container_id.substr(0, 12);
  body.tags = service.tags;
  body.attrs = service.attrs;
  body.id = service.id;
  return body;
}

std::string EncodeBody(const ZnodeBody& body) {
  // A map: sorted keys, and a repeated key keeps its last value (as a Go map would).
  std::map<std::string, std::string> attrs;
  for (const auto& [key, value] : body.attrs) attrs[key] = value;
  std::string out = "{\"Name\":";
  AppendJsonString(&out, body.name);
  out.append(",\"IP\":");
  AppendJsonString(&out, body.ip);
  absl::StrAppend(&out, ",\"PublicPort\":", body.public_port,
                  ",\"PrivatePort\":", body.private_port, ",\"ContainerID\":");
  AppendJsonString(&out, body.container_id);
  out.append(",\"Tags\":[");
  for (size_t i = 0; i < body.tags.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendJsonString(&out, body.tags[i]);
  }
  out.append("],\"Attrs\":{");
  bool first = true;
  for (const auto& [key, value] : attrs) {
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(&out, key);
    out.push_back(':');
    AppendJsonString(&out, value);
  }
  out.append("},\"ID\":");
  AppendJsonString(&out, body.id);
  out.push_back('}');
  return out;
}

absl::StatusOr<ZnodeBody> DecodeBody(absl::string_view data) {
  // One parser per call: parsers are not thread-safe and listing is not a hot path.
  simdjson::dom::parser parser;
  simdjson::padded_string padded(data.data(), data.size());
  simdjson::dom::element root;
  if (auto error = parser.parse(padded).get(root); error != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(
        absl::StrCat("znode data is not JSON: ", simdjson::error_message(error)));
  }
  simdjson::dom::object obj;
  if (root.get(obj) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("znode data is not a JSON object");
  }
  ZnodeBody body;
  for (absl::Status s :
       {ReadString(obj, "Name", &body.name), ReadString(obj, "IP", &body.ip),
        ReadInt(obj, "PublicPort", &body.public_port),
        ReadInt(obj, "PrivatePort", &body.private_port),
        ReadString(obj, "ContainerID", &body.container_id), ReadString(obj, "ID", &body.id)}) {
    if (!s.ok()) return s;
  }
  simdjson::dom::element tags;
  if (obj["Tags"].get(tags) == simdjson::SUCCESS && !tags.is_null()) {
    simdjson::dom::array array;
    if (tags.get(array) != simdjson::SUCCESS) return FieldError("Tags", "an array");
    for (simdjson::dom::element tag : array) {
      std::string_view text;
      if (tag.get(text) != simdjson::SUCCESS) return FieldError("Tags", "an array of strings");
      body.tags.emplace_back(text.data(), text.size());
    }
  }
  simdjson::dom::element attrs;
  if (obj["Attrs"].get(attrs) == simdjson::SUCCESS && !attrs.is_null()) {
    simdjson::dom::object object;
    if (attrs.get(object) != simdjson::SUCCESS) return FieldError("Attrs", "an object");
    for (simdjson::dom::key_value_pair field : object) {
      std::string_view text;
      if (field.value.get(text) != simdjson::SUCCESS) {
        return FieldError("Attrs", "an object of strings");
      }
      body.attrs.emplace_back(std::string(field.key), std::string(text));
    }
    std::stable_sort(body.attrs.begin(), body.attrs.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
  }
  return body;
}

std::string NodeName(absl::string_view ip, int port) { return JoinHostPort(ip, port); }

absl::StatusOr<std::pair<std::string, int>> ParseNodeName(absl::string_view node) {
  std::pair<std::string, int> address;
  if (!SplitHostPort(node, &address.first, &address.second)) {
    return absl::InvalidArgumentError(
        absl::StrCat("znode name \"", node, "\" is not <ip>:<port> or [<ipv6>]:<port>"));
  }
  return address;
}

bool HoldsId(const ZnodeBody& body, absl::string_view service_id) {
  if (body.id == service_id) return true;
  // EncodeBody stored invalid UTF-8 in the ID as U+FFFD: compare with what reads back.
  ZnodeBody written;
  written.id = std::string(service_id);
  absl::StatusOr<ZnodeBody> stored = DecodeBody(EncodeBody(written));
  return stored.ok() && stored->id == body.id;
}

}  // namespace registrator::zookeeper
