// libFuzzer target for issue 13's property: whatever bytes a container gives as name, ID, IP,
// tags or attributes, every key and request path a backend builds for the services that come
// out of the derivation stays inside that service's own entry under the configured prefix,
// as a server would see it (percent-decoded, dot segments resolved) -- or the service is
// refused. It calls each backend's key/path builders (Consul agent and KV, etcd v2/v3, skydns2,
// ZooKeeper). Built outside Bazel by tools/fuzz; traps on a broken invariant.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "adapters/consul/consul_codec.h"
#include "adapters/consulkv/consulkv_codec.h"
#include "adapters/etcd/etcd_codec.h"
#include "adapters/skydns2/skydns2_codec.h"
#include "adapters/zookeeper/zookeeper_codec.h"
#include "docker_client/types.h"
#include "registrator/common/http_client.h"
#include "registrator/derive.h"
#include "registrator/model/service_validation.h"

namespace registrator {
namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// What an HTTP server's router sees: %XX decoded (Go's URL.Path does this, so "%2F" is a "/").
std::string PercentDecode(absl::string_view path) {
  std::string out;
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '%' && i + 2 < path.size() && HexValue(path[i + 1]) >= 0 &&
        HexValue(path[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(path[i + 1]) * 16 + HexValue(path[i + 2])));
      i += 2;
    } else {
      out.push_back(path[i]);
    }
  }
  return out;
}

// RFC 3986 remove_dot_segments, what libcurl (without CURLOPT_PATH_AS_IS) and path-cleaning
// routers do to "." and ".." segments.
std::string RemoveDotSegments(absl::string_view path) {
  std::vector<absl::string_view> out;
  std::vector<absl::string_view> segments = absl::StrSplit(path, '/');
  for (size_t i = 0; i < segments.size(); ++i) {
    const absl::string_view segment = segments[i];
    const bool last = i + 1 == segments.size();
    if (segment == ".") {
      if (last) out.push_back("");
    } else if (segment == "..") {
      if (out.size() > 1) out.pop_back();
      if (last) out.push_back("");
    } else {
      out.push_back(segment);
    }
  }
  return absl::StrJoin(out, "/");
}

// `path` as a server resolves it is exactly `base` + "/" + the given segments, in order: the
// request names this entry and nothing else. Checked both for the decoded path and for the
// path as sent, normalised (what a client without PATH_AS_IS would send).
void CheckExactPath(absl::string_view path, absl::string_view base,
                    const std::vector<std::string>& segments) {
  const std::string want = absl::StrCat(base, "/", absl::StrJoin(segments, "/"));
  Check(RemoveDotSegments(PercentDecode(path)) == want);
  Check(PercentDecode(RemoveDotSegments(path)) == want);
  std::vector<absl::string_view> got = absl::StrSplit(PercentDecode(path), '/');
  std::vector<absl::string_view> base_parts = absl::StrSplit(base, '/');
  Check(got.size() == base_parts.size() + segments.size());
}

// A ZooKeeper path ZooKeeper itself would accept (no empty, "." or ".." level, no NUL).
bool ValidZnodePath(absl::string_view path) {
  if (path.empty() || path[0] != '/' || path.size() == 1) return path == "/";
  for (absl::string_view level : absl::StrSplit(path.substr(1), '/')) {
    if (level.empty() || level == "." || level == "..") return false;
    if (level.find('\0') != absl::string_view::npos) return false;
  }
  return true;
}

void CheckEveryBackend(const Service& s) {
  // Only services that pass the gate may reach a backend.
  if (!ValidateServiceKeys(s).ok()) return;
  Check(s.name.find('/') == std::string::npos && s.id.find('/') == std::string::npos);
  Check(s.name != "." && s.name != ".." && s.id != "." && s.id != "..");

  // Consul agent: deregister and the TTL check's pass (consul_adapter.cc builds them so).
  CheckExactPath(absl::StrCat("/v1/agent/service/deregister/", UrlEncode(s.id)),
                 "/v1/agent/service/deregister", {s.id});
  const std::string check_id = consul::TtlCheckId(s.id);
  CheckExactPath(absl::StrCat("/v1/agent/check/pass/", UrlEncode(check_id)), "/v1/agent/check/pass",
                 {check_id});

  // Consul KV: the codec's key and request path.
  for (const std::string uri_path : {"", "/registrator/services/"}) {
    const std::string prefix = consulkv::NormalizePrefix(uri_path);
    const std::string base = prefix.empty() ? "/v1/kv" : absl::StrCat("/v1/kv/", prefix);
    CheckExactPath(consulkv::KeyPath(consulkv::ServiceKey(prefix, s)), base, {s.name, s.id});
  }

  // etcd v3 and skydns2 (keys in the JSON body), etcd v2 (the key in the URL path).
  absl::StatusOr<std::string> skydns = skydns2::DomainPrefix("skydns.local");
  Check(skydns.ok());
  for (const std::string& prefix : {std::string(""), std::string("/services"), *skydns}) {
    const std::string key = etcd::ServiceKey(prefix, s);
    Check(absl::StartsWith(key, etcd::ListingPrefix(prefix)));
    Check(RemoveDotSegments(key) == key);
    std::string name;
    std::string id;
    Check(etcd::SplitServiceKey(prefix, key, &name, &id));
    Check(name == s.name && id == s.id);
    CheckExactPath(etcd::V2KeyPath(key), absl::StrCat("/v2/keys", prefix), {s.name, s.id});
  }

  // ZooKeeper: the codec's "<base>/<Name>" and "<base>/<Name>/<ip>:<port>" paths.
  for (const std::string base : {"", "/registrator"}) {
    const std::string name_path = zookeeper::NamePath(base, s.name);
    const std::string node_path = zookeeper::NodePath(base, s);
    Check(ValidZnodePath(name_path) && ValidZnodePath(node_path));
    std::vector<absl::string_view> levels = absl::StrSplit(node_path, '/');
    std::vector<absl::string_view> base_levels = absl::StrSplit(base.empty() ? "" : base, '/');
    Check(levels.size() == base_levels.size() + 2);
  }
}

// Length-prefixed fields: [len][bytes]...; whatever is left is the last field.
std::vector<std::string> Fields(const uint8_t* data, size_t size, size_t count) {
  std::vector<std::string> fields;
  size_t i = 0;
  while (fields.size() + 1 < count && i < size) {
    const size_t length = std::min<size_t>(data[i], size - i - 1);
    fields.emplace_back(reinterpret_cast<const char*>(data + i + 1), length);
    i += 1 + length;
  }
  if (fields.size() < count) {
    fields.emplace_back(reinterpret_cast<const char*>(data + std::min(i, size)),
                        size - std::min(i, size));
  }
  while (fields.size() < count) fields.emplace_back();
  return fields;
}

}  // namespace
}  // namespace registrator

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace registrator;
  // name, id, ip (for -useIpFromLabel), tags, attribute key, attribute value, port-specific name.
  const std::vector<std::string> f = Fields(data, size, 7);

  // The builders on the raw fields: anything the gate lets through is safe.
  Service raw;
  raw.name = f[0];
  raw.id = f[1];
  raw.ip = f[2];
  raw.port = 8080;
  CheckEveryBackend(raw);

  // The same bytes as a container's labels, through the derivation: every service that comes
  // out passes the gate (the derivation never hands a backend anything else).
  docker::Container c;
  c.id = "0123456789abcdef0123456789abcdef";
  c.name = "/web";
  c.image = f[0];
  c.network_mode = "default";
  c.exposed_ports = {"80/tcp", "53/udp"};
  c.ports["80/tcp"] = {{"0.0.0.0", "8080"}};
  c.ports["53/udp"] = {{"0.0.0.0", "5353"}};
  c.labels = {{"SERVICE_NAME", f[0]},
              {"SERVICE_ID", f[1]},
              {"ip", f[2]},
              {"SERVICE_TAGS", f[3]},
              {absl::StrCat("SERVICE_", f[4]), f[5]},
              {"SERVICE_53_NAME", f[6]}};
  DeriveConfig config;
  config.hostname = "host";
  config.resolved_host_ip = "10.0.0.5";
  for (bool use_label_ip : {false, true}) {
    config.use_ip_from_label = use_label_ip ? "ip" : "";
    const DeriveResult result = DeriveServices(c, config);
    for (const Service& s : result.services) {
      Check(ValidateServiceKeys(s).ok());
      CheckEveryBackend(s);
    }
  }
  return 0;
}
