// libFuzzer target for every parser of untrusted bytes besides the inspect/derivation path
// (registrator/derive_fuzz.cc), and every backend codec (adapters/<backend>/<backend>_codec.h):
// Docker's event/list/version replies, etcd's v2/v3 replies, request bodies, keys and values,
// skydns2 records, the Consul agent's replies and register bodies, Consul KV listings and keys,
// log lines, ZooKeeper node bodies and names, registry URIs and the adapter factories, the
// Go-style argument rewriting and the JSON string encoder. The first input byte chooses the
// parser, the rest is its input. Built outside Bazel by tools/fuzz (clang,
// -fsanitize=fuzzer,address,undefined); besides crashes and sanitizer reports it traps on broken
// round trips and documented invariants. Error statuses are expected results, never a failure.
// The seeds in testdata/fuzz/backend_replies/ begin with '?' + selector ('?' is 63 = 0 mod 63):
// ?@A Docker event/list/version, B-G etcd replies (G: 2 bytes HTTP status, then the body),
// H J etcd keys and values, I K skydns2 domain and records, L M znode body/name, N URI, O P
// factories (byte 2 picks the scheme), Q args, R S JSON strings, T Consul agent replies, U Consul
// register body, V Consul KV listing, W Consul KV keys, X log line, Y etcd request bodies. T-X
// and Y read a service from lines (see ServiceFromLines).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "adapters/adapter_factory.h"
#include "adapters/consul/consul_codec.h"
#include "adapters/consulkv/consulkv_codec.h"
#include "adapters/etcd/etcd_codec.h"
#include "adapters/log/log_codec.h"
#include "adapters/skydns2/skydns2_codec.h"
#include "adapters/zookeeper/zookeeper_codec.h"
#include "docker_client/decode.h"
#include "registrator/common/json.h"
#include "registrator/config.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"
#include "registrator/model/service.h"
#include "simdjson.h"

namespace registrator {
namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

// Splits `text` at the first '\n' (two inputs from one).
std::pair<absl::string_view, absl::string_view> TwoParts(absl::string_view text) {
  const size_t nl = text.find('\n');
  if (nl == absl::string_view::npos) return {text, absl::string_view()};
  return {text.substr(0, nl), text.substr(nl + 1)};
}

void FuzzDocker(int which, absl::string_view text) {
  switch (which) {
    case 0:
      (void)docker::ParseEventJson(text);
      break;
    case 1:
      (void)docker::ParseContainerListJson(text);
      break;
    default:
      (void)docker::ParseVersionJson(text);
      break;
  }
}

void FuzzEtcdReplies(int which, absl::string_view text) {
  switch (which) {
    case 0:
      if (auto version = etcd::ParseVersion(text); version.ok()) {
        (void)etcd::V3BasePathForVersion(*version);
      }
      (void)etcd::V3BasePathForVersion(text);
      break;
    case 1:
      (void)etcd::ParseV3Range(text);
      break;
    case 2:
      (void)etcd::ParseV3LeaseGrant(text);
      (void)etcd::ParseV3KeepAlive(text);
      break;
    case 3:
      (void)etcd::ParseV3TxnSucceeded(text);
      (void)etcd::ParseV3AuthToken(text);
      break;
    case 4:
      (void)etcd::ParseV2Listing(text);
      // The drift watch's messages (issue 16).
      (void)etcd::ParseV3WatchMessage(text);
      (void)etcd::ParseV2WatchEvent(text);
      break;
    default: {
      // Two bytes of HTTP status (any value, also nonsense ones), then the body.
      long status = 0;
      if (text.size() >= 2) {
        status = static_cast<unsigned char>(text[0]) * 256 + static_cast<unsigned char>(text[1]);
        text.remove_prefix(2);
      }
      const absl::Status error = etcd::ErrorFromReply(status, text, "put /services/web/h:c:80");
      (void)etcd::IsLeaseNotFound(error);
      break;
    }
  }
}

void FuzzEtcdKeysAndValues(int which, absl::string_view text) {
  switch (which) {
    case 0: {
      // "<prefix>\n<key>": a key that splits must be rebuilt exactly by ServiceKey.
      const auto [prefix, key] = TwoParts(text);
      std::string name;
      std::string id;
      if (etcd::SplitServiceKey(prefix, key, &name, &id)) {
        Check(!name.empty() && !id.empty() && name.find('/') == std::string::npos);
        Service s;
        s.name = name;
        s.id = id;
        Check(etcd::ServiceKey(prefix, s) == key);
      }
      const std::string end = etcd::PrefixRangeEnd(text);
      Check(text.empty() || end.size() <= text.size());
      break;
    }
    case 1:
      if (auto prefix = skydns2::DomainPrefix(text); prefix.ok()) {
        Check(prefix->rfind("/skydns/", 0) == 0);
      }
      break;
    case 2: {
      // A parsed "ip:port" written back parses to the same pair. An IP that begins with "[" is
      // not something HostPortValue can write unambiguously (only other writers' garbage).
      std::string ip;
      int port = -1;
      if (etcd::ParseHostPortValue(text, &ip, &port)) {
        Check(port >= 0 && port <= 65535);
        if (ip.empty() || ip[0] != '[') {
          Service s;
          s.ip = ip;
          s.port = port;
          std::string ip2;
          int port2 = -1;
          Check(etcd::ParseHostPortValue(etcd::HostPortValue(s), &ip2, &port2));
          Check(ip2 == ip && port2 == port);
        }
      }
      break;
    }
    default: {
      // skydns2 values: simdjson only yields valid UTF-8, which RecordValue writes back exactly.
      std::string ip;
      int port = -1;
      if (skydns2::ParseRecordValue(text, &ip, &port)) {
        Check(port >= 0 && port <= 65535);
        Service s;
        s.ip = ip;
        s.port = port;
        std::string ip2;
        int port2 = -1;
        Check(skydns2::ParseRecordValue(skydns2::RecordValue(s), &ip2, &port2));
        Check(ip2 == ip && port2 == port);
      }
      break;
    }
  }
}

// What EncodeBody keeps of the attributes: sorted by key, a repeated key with its last value.
std::vector<std::pair<std::string, std::string>> LastValuePerKey(
    const std::vector<std::pair<std::string, std::string>>& attrs) {
  std::map<std::string, std::string> last;
  for (const auto& [key, value] : attrs) last[key] = value;
  return {last.begin(), last.end()};
}

void FuzzZookeeper(int which, absl::string_view text) {
  if (which == 0) {
    absl::StatusOr<zookeeper::ZnodeBody> body = zookeeper::DecodeBody(text);
    if (!body.ok()) return;
    // Decoded strings are valid UTF-8 (simdjson checks), so encoding loses nothing.
    const std::string encoded = zookeeper::EncodeBody(*body);
    absl::StatusOr<zookeeper::ZnodeBody> again = zookeeper::DecodeBody(encoded);
    Check(again.ok());
    Check(again->name == body->name && again->ip == body->ip && again->id == body->id);
    Check(again->public_port == body->public_port && again->private_port == body->private_port);
    Check(again->container_id == body->container_id && again->tags == body->tags);
    Check(again->attrs == LastValuePerKey(body->attrs));
    Check(zookeeper::EncodeBody(*again) == encoded);
    return;
  }
  absl::StatusOr<std::pair<std::string, int>> node = zookeeper::ParseNodeName(text);
  if (!node.ok()) return;
  const auto& [ip, port] = *node;
  Check(port >= 0 && port <= 65535);
  if (ip.empty() || ip[0] != '[') {
    absl::StatusOr<std::pair<std::string, int>> again =
        zookeeper::ParseNodeName(zookeeper::NodeName(ip, port));
    Check(again.ok() && *again == *node);
  }
}

// A service from "<id>\n<name>\n<ip>\n<port>\n<tag,tag>\n<check http>\n<check ttl>\n<k=v>...":
// every field may hold any bytes, as a container's SERVICE_* values may.
Service ServiceFromLines(absl::string_view text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  lines.resize(std::max<size_t>(lines.size(), 7));
  Service s;
  s.id = lines[0];
  s.name = lines[1];
  s.ip = lines[2];
  if (!absl::SimpleAtoi(lines[3], &s.port)) s.port = 0;
  if (!lines[4].empty()) s.tags = absl::StrSplit(lines[4], ',');
  s.check.http = lines[5];
  s.check.ttl = lines[6];
  s.has_check = !s.check.http.empty() || !s.check.ttl.empty();
  for (size_t i = 7; i < lines.size(); ++i) {
    std::pair<std::string, std::string> pair = absl::StrSplit(lines[i], absl::MaxSplits('=', 1));
    s.meta.push_back(pair);
  }
  s.attrs = s.meta;
  s.container_id = lines[0];
  return s;
}

// Whether `text` is one JSON value (what every body we build must be, whatever the service).
bool IsJson(absl::string_view text) {
  static simdjson::dom::parser parser;
  simdjson::dom::element root;
  return parser.parse(text.data(), text.size()).get(root) == simdjson::SUCCESS;
}

// Only unreserved characters, "%XX" escapes and the given separators.
bool IsEncodedPath(absl::string_view path) {
  for (char c : path) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        std::string_view("-_.~%/?=&").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

void FuzzConsul(int which, absl::string_view text) {
  if (which == 0) {
    // Agent replies: the listing and the leader.
    auto listed = consul::ParseAgentServices(std::string(text));
    if (listed.ok()) {
      for (const RegisteredService& entry : *listed) Check(!entry.fingerprint.empty());
    }
    // The On-Demand listing parser refuses exactly what simdjson's DOM refuses.
    simdjson::dom::parser dom;
    simdjson::dom::object object;
    Check(listed.ok() ==
          (dom.parse(text.empty() ? "" : text.data(), text.size()).get_object().get(object) ==
           simdjson::SUCCESS));
    (void)consul::ParseLeader(text);
    // The Docker health checks of /v1/agent/checks.
    if (auto health = consul::ParseDockerHealthChecks(text); health.ok()) {
      for (const auto& [service_id, fingerprint] : *health) Check(!fingerprint.empty());
    }
    return;
  }
  // What Register sends for any service is JSON; the fingerprint is stable.
  const Service s = ServiceFromLines(text);
  for (int ttl : {0, 30}) {
    const std::string body = consul::RegisterBody(s, ttl);
    Check(IsJson(body));
    Check(consul::ServiceFingerprint(s, ttl) == consul::ServiceFingerprint(s, ttl));
    (void)consul::MetaWithCheckHash(s, ttl);
  }
  Check(consul::CheckHash(text).size() == 16);
  Check(IsEncodedPath(consul::EncodePath(text)));
  (void)consul::TtlCheckId(s.id);
  // Docker health: any output makes JSON bodies, and a health change is no definition change.
  Service healthy = s;
  healthy.docker_health = {"healthy", std::string(text)};
  Service unhealthy = s;
  unhealthy.docker_health = {"unhealthy", std::string(text.substr(0, text.size() / 2))};
  Check(IsJson(consul::RegisterBody(healthy, 30)));
  Check(IsJson(consul::CheckUpdateBody(healthy)));
  Check(consul::ServiceFingerprint(healthy, 30) == consul::ServiceFingerprint(unhealthy, 30));
  Check(consul::DockerHealthFingerprint(healthy) != consul::DockerHealthFingerprint(unhealthy));
}

void FuzzConsulKv(int which, absl::string_view text) {
  if (which == 0) {
    // "<prefix>\n<listing>": every listed entry's fingerprint starts with its own key.
    const auto [prefix, body] = TwoParts(text);
    if (auto listed = consulkv::ParseListing(prefix, body); listed.ok()) {
      for (const RegisteredService& entry : *listed) {
        Check(entry.fingerprint.rfind(consulkv::ServiceKey(prefix, entry.service) + "=", 0) == 0);
      }
    }
    return;
  }
  const Service s = ServiceFromLines(text);
  const std::string prefix = consulkv::NormalizePrefix(s.ip);
  Check(prefix.empty() || (prefix.front() != '/' && prefix.back() != '/'));
  const std::string key = consulkv::ServiceKey(prefix, s);
  Check(consulkv::ServiceFingerprint(prefix, s) == key + "=" + consulkv::ServiceValue(s));
  Check(IsEncodedPath(consulkv::KeyPath(key)));
  Check(IsEncodedPath(consulkv::ListingPath(prefix)));
}

void FuzzLogLine(absl::string_view text) {
  const Service s = ServiceFromLines(text);
  Check(IsJson(log_backend::LogLine(s.name, s)));
  Check(IsJson("{" + log_backend::ServiceFingerprint(s) + "}"));
}

void FuzzEtcdRequests(absl::string_view text) {
  // "<key>\n<value>": every v3 body is JSON, every v2 path and form is encoded.
  const auto [key, value] = TwoParts(text);
  const int64_t lease = static_cast<int64_t>(text.size()) * 7919;
  Check(IsJson(etcd::V3RangeBody(key, value, etcd::RangeWants::kKeysOnly)));
  Check(IsJson(etcd::V3PutBody(key, value, lease)));
  Check(IsJson(etcd::V3DeleteBody(key)));
  Check(IsJson(etcd::V3MoveToLeaseBody(key, value, lease)));
  Check(IsJson(etcd::V3LeaseGrantBody(static_cast<int>(text.size()))));
  Check(IsJson(etcd::V3LeaseIdBody(lease)));
  Check(IsJson(etcd::V3AuthenticateBody(key, value)));
  Check(IsEncodedPath(etcd::V2KeyPath(key)));
  Check(IsEncodedPath(etcd::V2PutForm(value, static_cast<int>(key.size()))));
  Check(IsEncodedPath(etcd::V2RefreshForm(static_cast<int>(value.size()))));
}

void FuzzUri(int which, absl::string_view text) {
  if (which == 0) {
    absl::StatusOr<BackendUri> uri = ParseBackendUri(text);
    if (!uri.ok()) return;
    Check(!uri->scheme.empty() && uri->path != "/");
    Check(uri->path.empty() || uri->path[0] == '/');
    for (const std::string& host : uri->hosts) {
      Check(!host.empty() && host.find(',') == std::string::npos);
    }
    return;
  }
  // The factories, reached far more often with a known scheme in front. Each must only validate
  // (no network call); any error status is fine.
  static const std::vector<std::string> schemes = SupportedSchemes();
  std::string uri;
  if (!text.empty()) {
    const unsigned char pick = static_cast<unsigned char>(text[0]);
    text.remove_prefix(1);
    if (pick < schemes.size() * 16) uri = schemes[pick % schemes.size()] + "://";
  }
  uri.append(text.data(), text.size());
  AdapterOptions options;
  options.hostname = "host";
  options.ttl = which % 2 == 0 ? 30 : 0;
  options.ttl_refresh = options.ttl / 2;
  options.env = {{"CONSUL_HTTP_TOKEN", "t"}, {"ETCDCTL_USER", "u:p"}};
  absl::StatusOr<std::unique_ptr<RegistryAdapter>> adapter = CreateAdapter(uri, options);
  if (adapter.ok()) Check(*adapter != nullptr);
}

void FuzzArgs(absl::string_view text) {
  const std::vector<std::string> args = absl::StrSplit(text, '\n');
  const std::vector<std::string> out = NormalizeGoStyleArgs(args);
  Check(out.size() == args.size() && out[0] == args[0]);
}

bool HasLineSeparator(absl::string_view text) {
  // U+2028 and U+2029: E2 80 A8 / E2 80 A9.
  return text.find("\xE2\x80\xA8") != absl::string_view::npos ||
         text.find("\xE2\x80\xA9") != absl::string_view::npos;
}

void FuzzJsonString(absl::string_view text) {
  const std::string json = JsonString(text);
  static simdjson::dom::parser parser;
  simdjson::dom::element root;
  Check(parser.parse(json.data(), json.size()).get(root) == simdjson::SUCCESS);
  std::string_view decoded;
  Check(root.get(decoded) == simdjson::SUCCESS);
  if (simdjson::validate_utf8(text.data(), text.size()) && !HasLineSeparator(text)) {
    Check(absl::string_view(decoded.data(), decoded.size()) == text);
  }
  std::string appended = "x";
  AppendJsonString(&appended, text);
  Check(appended == "x" + json);
}

}  // namespace
}  // namespace registrator

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace registrator;
  if (size == 0) return 0;
  // 63 keeps the seeds' letters: '?' (63) is 0, 'S' is 20, 'T' 21 ... 'Y' 26.
  const int selector = (data[0] % 63) % 27;
  const absl::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (selector < 3) {
    FuzzDocker(selector, text);
  } else if (selector < 9) {
    FuzzEtcdReplies(selector - 3, text);
  } else if (selector < 13) {
    FuzzEtcdKeysAndValues(selector - 9, text);
  } else if (selector < 15) {
    FuzzZookeeper(selector - 13, text);
  } else if (selector < 18) {
    FuzzUri(selector - 15, text);
  } else if (selector < 19) {
    FuzzArgs(text);
  } else if (selector < 21) {
    FuzzJsonString(text);
  } else if (selector < 23) {
    FuzzConsul(selector - 21, text);
  } else if (selector < 25) {
    FuzzConsulKv(selector - 23, text);
  } else if (selector < 26) {
    FuzzLogLine(text);
  } else {
    FuzzEtcdRequests(text);
  }
  return 0;
}
