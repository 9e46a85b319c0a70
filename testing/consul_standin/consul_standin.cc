// The Consul stand-in: request dispatch, validation and in-memory agent state. Error bodies and
// status codes follow Consul 1.x (400 "Request decode failed: ...", 403 "Permission denied",
// 404 "Unknown service ID ...", 405 "method X not allowed").
#include "testing/consul_standin/consul_standin.h"

#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "registrator/common/json.h"
#include "simdjson.h"

namespace registrator::fakes {
namespace {

constexpr char kNode[] = "standin";
constexpr char kNodeAddress[] = "127.0.0.1";
constexpr char kDatacenter[] = "dc1";
constexpr size_t kMetaMaxPairs = 64;
constexpr size_t kMetaKeyMaxLength = 128;  // Consul's metaKeyMaxLength.
constexpr size_t kMetaValueMaxLength = 512;
constexpr size_t kKvMaxValue = 512 * 1024;

absl::string_view Sv(std::string_view text) { return absl::string_view(text.data(), text.size()); }

std::string StringArray(const std::vector<std::string>& items) {
  std::vector<std::string> quoted;
  for (const auto& item : items) quoted.push_back(JsonString(item));
  return absl::StrCat("[", absl::StrJoin(quoted, ","), "]");
}

std::string StringMap(const std::map<std::string, std::string>& items) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : items) parts.push_back(absl::StrCat(JsonString(k), ":", JsonString(v)));
  return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
}

// Consul's decoder matches field names case-insensitively and also accepts snake_case
// ("deregister_critical_service_after"): compare on lower case without underscores.
std::string NormalizeField(absl::string_view key) {
  std::string out;
  for (const char c : key) {
    if (c != '_') out += absl::ascii_tolower(static_cast<unsigned char>(c));
  }
  return out;
}

const char* JsonTypeName(simdjson::dom::element_type type) {
  switch (type) {
    case simdjson::dom::element_type::ARRAY:
      return "array";
    case simdjson::dom::element_type::OBJECT:
      return "object";
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE:
      return "number";
    case simdjson::dom::element_type::STRING:
      return "string";
    case simdjson::dom::element_type::BOOL:
      return "bool";
    case simdjson::dom::element_type::NULL_VALUE:
      return "null";
  }
  return "value";
}

std::string TypeError(simdjson::dom::element value, absl::string_view field,
                      absl::string_view go_type) {
  return absl::StrCat("Request decode failed: json: cannot unmarshal ", JsonTypeName(value.type()),
                      " into Go struct field ", field, " of type ", go_type);
}

bool HasControlChars(absl::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

bool ValidMetaKey(absl::string_view key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

bool ValidStatus(absl::string_view status) {
  return status == "passing" || status == "warning" || status == "critical";
}

}  // namespace

bool ParseGoDuration(const std::string& text, absl::Duration* out) {
  if (text.empty() || text[0] == '-' || absl::StrContains(text, "inf")) return false;
  // absl::ParseDuration accepts "0" alone and otherwise number+unit groups, as Go does.
  if (!absl::ParseDuration(text, out)) return false;
  return *out >= absl::ZeroDuration();
}

// The default OutputMaxSize of a check.
constexpr size_t kOutputMaxSize = 4096;

struct ConsulStandin::Check {
  std::string id;
  std::string name;
  std::string notes;
  std::string status = "critical";
  std::string output;
  std::string type;  // "http", "tcp", "grpc", "ttl", "script", ...
  std::string service_id;
  std::string service_name;
  std::string interval;
  std::string timeout;
  absl::Duration ttl = absl::ZeroDuration();
  absl::Time ttl_deadline = absl::InfiniteFuture();
  bool status_given = false;
  uint64_t create_index = 0;
  uint64_t modify_index = 0;
};

struct ConsulStandin::ServiceEntry {
  std::string id;
  std::string name;
  std::string address;
  int port = 0;
  std::vector<std::string> tags;
  std::map<std::string, std::string> meta;
  bool enable_tag_override = false;
  uint64_t create_index = 0;
  uint64_t modify_index = 0;
};

struct ConsulStandin::KvEntry {
  std::string value;
  uint64_t flags = 0;
  uint64_t create_index = 0;
  uint64_t modify_index = 0;
};

struct ConsulStandin::Request {
  const std::string& method;
  const std::string& path;
  const std::multimap<std::string, std::string>& params;
  const std::string& body;
  bool has_param(const std::string& key) const { return params.count(key) > 0; }
  std::string param(const std::string& key) const {
    auto it = params.find(key);
    return it == params.end() ? std::string() : it->second;
  }
};

namespace {

StandinReply Reply(int status, std::string body, std::string content_type = "text/plain") {
  StandinReply reply;
  reply.status = status;
  reply.body = std::move(body);
  reply.content_type = std::move(content_type);
  return reply;
}

StandinReply Json(std::string body) { return Reply(200, std::move(body), "application/json"); }

}  // namespace

// Everything behind one mutex: handlers run on httplib's thread pool.
class ConsulStandin::State {
 public:
  explicit State(const ConsulStandinOptions& options)
      : acl_token_(options.acl_token), leader_(options.leader) {}

  StandinReply Handle(const std::string& method, const std::string& path,
                      const std::multimap<std::string, std::string>& params,
                      const std::string& body,
                      const std::multimap<std::string, std::string>& headers) {
    std::string token;
    for (const auto& [name, value] : headers) {
      if (absl::EqualsIgnoreCase(name, "X-Consul-Token")) token = value;
      if (absl::EqualsIgnoreCase(name, "Authorization") && absl::StartsWith(value, "Bearer ")) {
        token = value.substr(7);
      }
    }
    if (auto it = params.find("token"); it != params.end()) token = it->second;

    absl::MutexLock lock(&mu_);
    RecordedRequest record;
    record.method = method;
    record.path = path;
    std::vector<std::string> query;
    for (const auto& [k, v] : params) query.push_back(absl::StrCat(k, "=", v));
    std::sort(query.begin(), query.end());
    record.query = absl::StrJoin(query, "&");
    record.body = body;
    record.has_token = !token.empty();
    log_.push_back(std::move(record));
    ExpireTtlChecks();

    Request request{method, path, params, body};
    // Anonymous (no token) is allowed to read filtered lists only; a wrong token is refused.
    acl_mode_ = Acl::kAllowed;
    if (!acl_token_.empty() && token != acl_token_) {
      acl_mode_ = token.empty() ? Acl::kAnonymous : Acl::kUnknownToken;
    }
    StandinReply reply = Route(request);
    const Blocking blocking = BlockingOf(request);
    if (blocking != Blocking::kNone && reply.status < 500) {
      if (std::optional<StandinReply> error = Block(request, blocking, &reply)) return *error;
    }
    if (blocking == Blocking::kIndex) {
      reply.headers.emplace_back("X-Consul-Index", absl::StrCat(ResultIndex(request)));
      reply.headers.emplace_back("X-Consul-KnownLeader", leader_.empty() ? "false" : "true");
      reply.headers.emplace_back("X-Consul-LastContact", "0");
    } else if (blocking == Blocking::kHash && reply.status == 200) {
      reply.headers.emplace_back("X-Consul-ContentHash", ContentHash(reply.body));
    }
    return reply;
  }

  // Wakes every blocked query (they answer at once with the current state): Stop() must not
  // wait out their `wait`.
  void Shutdown() {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  void Resume() {
    absl::MutexLock lock(&mu_);
    stopping_ = false;
  }
  // As an agent restarted without its data (-dev): every service, check and key is gone and
  // the index starts over at 1. Blocked queries re-run against the new state.
  void Wipe() {
    absl::MutexLock lock(&mu_);
    services_.clear();
    checks_.clear();
    kv_.clear();
    tombstones_.clear();
    kv_table_index_ = 0;
    index_ = 1;
    ++generation_;
  }

  int write_count() const {
    absl::MutexLock lock(&mu_);
    return writes_;
  }
  std::vector<RecordedRequest> requests() const {
    absl::MutexLock lock(&mu_);
    return log_;
  }
  void ClearLog() {
    absl::MutexLock lock(&mu_);
    log_.clear();
    writes_ = 0;
  }
  std::vector<std::string> ServiceIds() const {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> ids;
    for (const auto& [id, service] : services_) ids.push_back(id);
    return ids;
  }
  std::vector<std::string> CheckIds() {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> ids;
    for (const auto& [id, check] : checks_) ids.push_back(id);
    return ids;
  }
  std::optional<std::string> CheckStatus(const std::string& id) {
    absl::MutexLock lock(&mu_);
    ExpireTtlChecks();
    auto it = checks_.find(id);
    if (it == checks_.end()) return std::nullopt;
    return it->second.status;
  }
  std::optional<std::string> KvValue(const std::string& key) const {
    absl::MutexLock lock(&mu_);
    auto it = kv_.find(key);
    if (it == kv_.end()) return std::nullopt;
    return it->second.value;
  }
  void SetLeader(const std::string& leader) {
    absl::MutexLock lock(&mu_);
    leader_ = leader;
  }

 private:
  enum class Acl { kAllowed, kAnonymous, kUnknownToken };

  // --- blocking queries (api-docs/features/blocking) ---
  // Which kind of blocking an endpoint supports: the catalog, health and KV reads are
  // index-based (X-Consul-Index, ?index=); the agent's own service endpoints are hash-based
  // (X-Consul-ContentHash, ?hash=) because the agent's local state has no Raft index. Other
  // endpoints do not block and carry neither header.
  enum class Blocking { kNone, kIndex, kHash };

  static Blocking BlockingOf(const Request& r) {
    if (r.method != "GET" && r.method != "HEAD") return Blocking::kNone;
    const std::string& p = r.path;
    if (absl::StartsWith(p, "/v1/catalog/") || absl::StartsWith(p, "/v1/health/") ||
        absl::StartsWith(p, "/v1/kv/") || p == "/v1/kv") {
      return Blocking::kIndex;
    }
    if (p == "/v1/agent/services" || absl::StartsWith(p, "/v1/agent/service/")) {
      return Blocking::kHash;
    }
    return Blocking::kNone;
  }

  // X-Consul-Index of a read. KV reads use the highest ModifyIndex under the key or prefix,
  // deletions included (Consul keeps tombstones for this), else the KV table's index, so a
  // watcher of one prefix is not woken by writes elsewhere. The catalog and health reads use the
  // store's index. Never below 1: Consul raises a 0 index to 1 so that a client blocking on it
  // cannot spin.
  uint64_t ResultIndex(const Request& r) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    uint64_t index = index_;
    if (absl::StartsWith(r.path, "/v1/kv")) {
      const std::string key = r.path.size() > 7 ? r.path.substr(7) : "";
      const bool prefix = r.has_param("recurse") || r.has_param("keys");
      uint64_t max = 0;
      if (prefix) {
        for (auto it = kv_.lower_bound(key); it != kv_.end() && absl::StartsWith(it->first, key);
             ++it) {
          max = std::max(max, it->second.modify_index);
        }
        for (auto it = tombstones_.lower_bound(key);
             it != tombstones_.end() && absl::StartsWith(it->first, key); ++it) {
          max = std::max(max, it->second);
        }
      } else {
        if (auto it = kv_.find(key); it != kv_.end()) max = it->second.modify_index;
        if (auto it = tombstones_.find(key); it != tombstones_.end())
          max = std::max(max, it->second);
      }
      index = max != 0 ? max : kv_table_index_;
    }
    return std::max<uint64_t>(index, 1);
  }

  static std::string ContentHash(const std::string& body) {
    // Any stable digest of the answer will do: clients treat it as opaque.
    return absl::StrCat(absl::Hex(std::hash<std::string>{}(body), absl::kZeroPad16));
  }

  // Holds a blocking read (?index= or ?hash= present) until its answer changes or `wait` runs
  // out, re-running it after every write. `reply` is the answer so far; returns an error reply
  // for a malformed wait or index.
  std::optional<StandinReply> Block(const Request& r, Blocking blocking, StandinReply* reply)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const bool by_index = blocking == Blocking::kIndex && r.has_param("index");
    const bool by_hash = blocking == Blocking::kHash && r.has_param("hash");
    if (!by_index && !by_hash) return std::nullopt;
    // Default 5 minutes, at most 10; plus up to wait/16 of jitter so that many watchers started
    // together do not all wake at once.
    absl::Duration wait = absl::Minutes(5);
    if (r.has_param("wait") && !ParseGoDuration(r.param("wait"), &wait)) {
      return Reply(400, "Invalid wait time");
    }
    if (wait > absl::Minutes(10)) wait = absl::Minutes(10);
    std::uniform_int_distribution<int64_t> jitter(0, absl::ToInt64Nanoseconds(wait) / 16);
    const absl::Time deadline = absl::Now() + wait + absl::Nanoseconds(jitter(rng_));
    uint64_t min_index = 0;
    if (by_index && !absl::SimpleAtoi(r.param("index"), &min_index)) {
      return Reply(400, "Invalid index");
    }
    const std::string hash = r.param("hash");
    // index=0 does not block (the documented first request); nor does a hash that differs.
    auto fresh = [&] {
      return by_index ? ResultIndex(r) > min_index : ContentHash(reply->body) != hash;
    };
    const Acl acl = acl_mode_;
    while (!fresh() && !stopping_) {
      const uint64_t seen = index_;
      const uint64_t generation = generation_;
      auto changed = [this, seen, generation]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return index_ != seen || generation_ != generation || stopping_;
      };
      if (!mu_.AwaitWithDeadline(absl::Condition(&changed), deadline)) break;
      // Other requests ran meanwhile and set their own ACL mode.
      acl_mode_ = acl;
      *reply = Route(r);
    }
    acl_mode_ = acl;
    return std::nullopt;
  }

  // Writes need a valid token; returns a 403 reply when refused.
  std::optional<StandinReply> DenyWrite() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (acl_mode_ == Acl::kAllowed) return std::nullopt;
    return Reply(403, acl_mode_ == Acl::kUnknownToken ? "ACL not found" : "Permission denied");
  }
  // Reads of one named object: anonymous is refused like a write; a bad token too.
  std::optional<StandinReply> DenyRead() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return DenyWrite();
  }
  // List reads: an unknown token is refused; anonymous gets an empty, filtered list.
  std::optional<StandinReply> DenyList() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (acl_mode_ == Acl::kUnknownToken) return Reply(403, "ACL not found");
    return std::nullopt;
  }
  bool Filtered() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return acl_mode_ != Acl::kAllowed; }

  static StandinReply MethodNotAllowed(const std::string& method) {
    return Reply(405, absl::StrCat("method ", method, " not allowed"));
  }

  StandinReply Route(const Request& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const std::string& p = r.path;
    const bool get = r.method == "GET" || r.method == "HEAD";
    const bool put = r.method == "PUT";
    auto suffix = [&](absl::string_view prefix) { return p.substr(prefix.size()); };

    if (p == "/v1/status/leader") {
      if (!get) return MethodNotAllowed(r.method);
      return Json(JsonString(leader_));
    }
    if (p == "/v1/agent/service/register") {
      if (!put) return MethodNotAllowed(r.method);
      ++writes_;
      if (auto deny = DenyWrite()) return *deny;
      return Register(r);
    }
    if (absl::StartsWith(p, "/v1/agent/service/deregister/")) {
      if (!put) return MethodNotAllowed(r.method);
      ++writes_;
      if (auto deny = DenyWrite()) return *deny;
      return Deregister(suffix("/v1/agent/service/deregister/"));
    }
    if (p == "/v1/agent/services") {
      if (!get) return MethodNotAllowed(r.method);
      if (auto deny = DenyList()) return *deny;
      return AgentServices();
    }
    if (absl::StartsWith(p, "/v1/agent/service/")) {
      if (!get) return MethodNotAllowed(r.method);
      if (auto deny = DenyRead()) return *deny;
      const std::string id = suffix("/v1/agent/service/");
      auto it = services_.find(id);
      if (it == services_.end()) {
        return Reply(404, absl::StrCat("unknown service ID: ", id));
      }
      return Json(ServiceJson(it->second, /*with_hash=*/true));
    }
    if (p == "/v1/agent/checks") {
      if (!get) return MethodNotAllowed(r.method);
      if (auto deny = DenyList()) return *deny;
      return AgentChecks();
    }
    for (const char* verb : {"pass", "warn", "fail"}) {
      const std::string prefix = absl::StrCat("/v1/agent/check/", verb, "/");
      if (absl::StartsWith(p, prefix)) {
        if (!put) return MethodNotAllowed(r.method);
        ++writes_;
        if (auto deny = DenyWrite()) return *deny;
        const std::string status = std::string(verb) == "pass"   ? "passing"
                                   : std::string(verb) == "warn" ? "warning"
                                                                 : "critical";
        return UpdateTtl(suffix(prefix), status, r.param("note"));
      }
    }
    if (absl::StartsWith(p, "/v1/agent/check/update/")) {
      if (!put) return MethodNotAllowed(r.method);
      ++writes_;
      if (auto deny = DenyWrite()) return *deny;
      return CheckUpdate(suffix("/v1/agent/check/update/"), r.body);
    }
    if (p == "/v1/catalog/services") {
      if (!get) return MethodNotAllowed(r.method);
      if (auto deny = DenyList()) return *deny;
      return CatalogServices();
    }
    if (absl::StartsWith(p, "/v1/catalog/service/")) {
      if (!get) return MethodNotAllowed(r.method);
      if (auto deny = DenyList()) return *deny;
      return CatalogService(suffix("/v1/catalog/service/"));
    }
    if (absl::StartsWith(p, "/v1/health/service/")) {
      if (!get) return MethodNotAllowed(r.method);
      if (auto deny = DenyList()) return *deny;
      return HealthService(suffix("/v1/health/service/"), r.has_param("passing"));
    }
    if (absl::StartsWith(p, "/v1/kv/") || p == "/v1/kv") {
      const std::string key = p.size() > 7 ? p.substr(7) : "";
      if (get) {
        if (auto deny = DenyRead()) return *deny;
        return KvGet(r, key);
      }
      if (put) {
        ++writes_;
        if (auto deny = DenyWrite()) return *deny;
        return KvPut(r, key);
      }
      if (r.method == "DELETE") {
        ++writes_;
        if (auto deny = DenyWrite()) return *deny;
        return KvDelete(r, key);
      }
      return MethodNotAllowed(r.method);
    }
    return Reply(404, "404 page not found");
  }

  // --- agent/service/register ---

  struct ParsedCheck {
    Check check;
    bool empty = true;
  };

  // Decodes and validates one check definition; returns an error message or "".
  std::string ParseCheck(simdjson::dom::element element, absl::string_view where,
                         ParsedCheck* parsed) {
    simdjson::dom::object object;
    if (element.type() == simdjson::dom::element_type::NULL_VALUE) return "";
    if (element.get_object().get(object) != simdjson::SUCCESS) {
      return TypeError(element, where, "structs.CheckType");
    }
    Check& check = parsed->check;
    std::vector<std::string> kinds;
    std::string ttl_text, deregister_after;
    std::vector<std::string> args;
    bool has_alias = false;
    for (auto field : object) {
      const std::string key = NormalizeField(Sv(field.key));
      simdjson::dom::element value = field.value;
      const std::string field_name = absl::StrCat(where, ".", Sv(field.key));
      if (value.type() == simdjson::dom::element_type::NULL_VALUE) continue;
      parsed->empty = false;
      static const std::set<std::string> kStrings = {"checkid",
                                                     "id",
                                                     "name",
                                                     "notes",
                                                     "status",
                                                     "http",
                                                     "method",
                                                     "body",
                                                     "tcp",
                                                     "grpc",
                                                     "h2ping",
                                                     "udp",
                                                     "ttl",
                                                     "interval",
                                                     "timeout",
                                                     "shell",
                                                     "aliasnode",
                                                     "aliasservice",
                                                     "tlsservername",
                                                     "dockercontainerid",
                                                     "serviceid",
                                                     "osservice",
                                                     "deregistercriticalserviceafter"};
      static const std::set<std::string> kBools = {"grpcusetls", "tlsskipverify", "h2pingusetls",
                                                   "tcpusetls", "disableredirects"};
      static const std::set<std::string> kInts = {"successbeforepassing", "failuresbeforewarning",
                                                  "failuresbeforecritical", "outputmaxsize"};
      if (kStrings.count(key)) {
        std::string_view text;
        if (value.get_string().get(text) != simdjson::SUCCESS) {
          return TypeError(value, field_name, "string");
        }
        const std::string s(text);
        if (key == "checkid" || key == "id") check.id = s;
        if (key == "name") check.name = s;
        if (key == "notes") check.notes = s;
        if (key == "status" && !s.empty()) {
          if (!ValidStatus(s)) {
            return "Status for checks must 'passing', 'warning', 'critical'";
          }
          check.status = s;
          check.status_given = true;
        }
        if ((key == "http" || key == "tcp" || key == "grpc" || key == "h2ping" || key == "udp") &&
            !s.empty()) {
          kinds.push_back(key);
        }
        if ((key == "aliasnode" || key == "aliasservice") && !s.empty()) has_alias = true;
        if (key == "ttl") ttl_text = s;
        if (key == "interval") check.interval = s;
        if (key == "timeout") check.timeout = s;
        if (key == "deregistercriticalserviceafter") deregister_after = s;
        if (key == "ttl" || key == "interval" || key == "timeout" ||
            key == "deregistercriticalserviceafter") {
          absl::Duration d;
          if (!s.empty() && !ParseGoDuration(s, &d)) {
            return absl::StrCat("Request decode failed: ", field_name, ": time: invalid duration ",
                                JsonString(s));
          }
          if (key == "ttl") check.ttl = d;
        }
      } else if (kBools.count(key)) {
        bool b;
        if (value.get_bool().get(b) != simdjson::SUCCESS) {
          return TypeError(value, field_name, "bool");
        }
      } else if (kInts.count(key)) {
        int64_t n;
        if (value.get_int64().get(n) != simdjson::SUCCESS) {
          return TypeError(value, field_name, "int");
        }
      } else if (key == "args" || key == "scriptargs") {
        simdjson::dom::array array;
        if (value.get_array().get(array) != simdjson::SUCCESS) {
          return TypeError(value, field_name, "[]string");
        }
        for (auto item : array) {
          std::string_view text;
          if (item.get_string().get(text) != simdjson::SUCCESS) {
            return TypeError(item, field_name, "string");
          }
          args.emplace_back(text);
        }
        if (!args.empty()) kinds.push_back("args");
      } else if (key == "header") {
        simdjson::dom::object headers;
        if (value.get_object().get(headers) != simdjson::SUCCESS) {
          return TypeError(value, field_name, "map[string][]string");
        }
        for (auto header : headers) {
          simdjson::dom::array values;
          if (header.value.get_array().get(values) != simdjson::SUCCESS) {
            return TypeError(header.value, field_name, "[]string");
          }
        }
      } else {
        return absl::StrCat("Request decode failed: json: unknown field ",
                            JsonString(Sv(field.key)));
      }
    }
    if (parsed->empty) return "";
    if (!ttl_text.empty() && check.ttl > absl::ZeroDuration()) kinds.push_back("ttl");
    if (has_alias) kinds.push_back("alias");
    if (kinds.size() > 1) {
      return absl::StrCat(
          "Invalid check: exactly one of Args, HTTP, TCP, GRPC, H2PING, UDP, TTL "
          "or Alias may be set, got ",
          absl::StrJoin(kinds, " and "));
    }
    absl::Duration interval = absl::ZeroDuration();
    if (!check.interval.empty()) ParseGoDuration(check.interval, &interval);
    const bool interval_kind = !kinds.empty() && kinds[0] != "ttl" && kinds[0] != "alias";
    if (interval > absl::ZeroDuration() && check.ttl > absl::ZeroDuration()) {
      return "Invalid check: Interval and TTL cannot both be specified";
    }
    if (interval_kind && interval <= absl::ZeroDuration()) {
      return "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, or TCP checks";
    }
    if (kinds.empty()) return "Invalid check: TTL must be > 0 for TTL checks";
    check.type = kinds[0] == "args" ? "script" : kinds[0];
    return "";
  }

  StandinReply Register(const Request& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (r.body.empty()) return Reply(400, "Request decode failed: EOF");
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (auto err = parser.parse(r.body).get(doc); err != simdjson::SUCCESS) {
      return Reply(400, absl::StrCat("Request decode failed: ", simdjson::error_message(err)));
    }
    simdjson::dom::object object;
    if (doc.get_object().get(object) != simdjson::SUCCESS) {
      return Reply(400, TypeError(doc, "ServiceDefinition", "structs.ServiceDefinition"));
    }
    ServiceEntry service;
    std::vector<ParsedCheck> checks;
    for (auto field : object) {
      const std::string key = NormalizeField(Sv(field.key));
      simdjson::dom::element value = field.value;
      const std::string where = absl::StrCat("ServiceDefinition.", Sv(field.key));
      const bool is_null = value.type() == simdjson::dom::element_type::NULL_VALUE;
      std::string_view text;
      if (key == "id" || key == "name" || key == "address" || key == "kind" || key == "namespace" ||
          key == "partition" || key == "socketpath") {
        if (is_null) continue;
        if (value.get_string().get(text) != simdjson::SUCCESS) {
          return Reply(400, TypeError(value, where, "string"));
        }
        if (key == "id") service.id = std::string(text);
        if (key == "name") service.name = std::string(text);
        if (key == "address") service.address = std::string(text);
      } else if (key == "port") {
        if (is_null) continue;
        int64_t port;
        if (value.get_int64().get(port) != simdjson::SUCCESS) {
          return Reply(400, TypeError(value, where, "int"));
        }
        if (port < 0 || port > 65535) {
          return Reply(400, absl::StrCat("Invalid Port ", port, ": must be 0-65535"));
        }
        service.port = static_cast<int>(port);
      } else if (key == "tags") {
        if (is_null) continue;
        simdjson::dom::array array;
        if (value.get_array().get(array) != simdjson::SUCCESS) {
          return Reply(400, TypeError(value, where, "[]string"));
        }
        for (auto item : array) {
          if (item.get_string().get(text) != simdjson::SUCCESS) {
            return Reply(400, TypeError(item, where, "string"));
          }
          service.tags.emplace_back(text);
        }
      } else if (key == "meta") {
        if (is_null) continue;
        simdjson::dom::object meta;
        if (value.get_object().get(meta) != simdjson::SUCCESS) {
          return Reply(400, TypeError(value, where, "map[string]string"));
        }
        for (auto entry : meta) {
          if (entry.value.get_string().get(text) != simdjson::SUCCESS) {
            return Reply(400, TypeError(entry.value, where, "string"));
          }
          service.meta[std::string(entry.key)] = std::string(text);
        }
      } else if (key == "enabletagoverride") {
        if (is_null) continue;
        if (value.get_bool().get(service.enable_tag_override) != simdjson::SUCCESS) {
          return Reply(400, TypeError(value, where, "bool"));
        }
      } else if (key == "check") {
        ParsedCheck parsed;
        if (std::string error = ParseCheck(value, where, &parsed); !error.empty()) {
          return Reply(400, error);
        }
        // Consul ignores an empty Check object.
        if (!parsed.empty) {
          checks.insert(checks.begin(), std::move(parsed));
        }
      } else if (key == "checks") {
        if (is_null) continue;
        simdjson::dom::array array;
        if (value.get_array().get(array) != simdjson::SUCCESS) {
          return Reply(400, TypeError(value, where, "structs.CheckTypes"));
        }
        for (auto item : array) {
          ParsedCheck parsed;
          if (std::string error = ParseCheck(item, where, &parsed); !error.empty()) {
            return Reply(400, error);
          }
          if (parsed.empty) return Reply(400, "Invalid check: TTL must be > 0 for TTL checks");
          checks.push_back(std::move(parsed));
        }
      } else if (key == "weights" || key == "taggedaddresses" || key == "proxy" ||
                 key == "connect" || key == "locality") {
        if (!is_null && value.type() != simdjson::dom::element_type::OBJECT) {
          return Reply(400, TypeError(value, where, "object"));
        }
      } else {
        return Reply(400, absl::StrCat("Request decode failed: json: unknown field ",
                                       JsonString(Sv(field.key))));
      }
    }
    if (service.name.empty()) return Reply(400, "Missing service name");
    if (service.id.empty()) service.id = service.name;
    if (HasControlChars(service.name) || HasControlChars(service.id)) {
      return Reply(400, absl::StrCat("Invalid service name or ID ", JsonString(service.id),
                                     ": control characters are not allowed"));
    }
    if (service.meta.size() > kMetaMaxPairs) {
      return Reply(400, absl::StrCat("Invalid Service Meta: Node metadata cannot contain more "
                                     "than ",
                                     kMetaMaxPairs, " key/value pairs"));
    }
    for (const auto& [k, v] : service.meta) {
      if (k.empty()) return Reply(400, "Invalid Service Meta: Key cannot be blank");
      if (!ValidMetaKey(k)) {
        return Reply(400, absl::StrCat("Invalid Service Meta: Key contains invalid characters: ",
                                       JsonString(k)));
      }
      if (k.size() > kMetaKeyMaxLength) {
        return Reply(400, absl::StrCat("Invalid Service Meta: Key is too long (limit: ",
                                       kMetaKeyMaxLength, " characters)"));
      }
      if (absl::StartsWith(k, "consul-")) {
        return Reply(400,
                     "Invalid Service Meta: Key prefix 'consul-' is reserved for internal use");
      }
      if (v.size() > kMetaValueMaxLength) {
        return Reply(400, absl::StrCat("Invalid Service Meta: Value is too long (limit: ",
                                       kMetaValueMaxLength, " characters)"));
      }
    }

    // Accepted: replace the service and its checks.
    ++index_;
    auto existing = services_.find(service.id);
    service.create_index = existing == services_.end() ? index_ : existing->second.create_index;
    service.modify_index = index_;
    std::map<std::string, Check> old_checks;
    for (auto it = checks_.begin(); it != checks_.end();) {
      if (it->second.service_id == service.id) {
        old_checks.insert(*it);
        it = checks_.erase(it);
      } else {
        ++it;
      }
    }
    for (size_t i = 0; i < checks.size(); ++i) {
      Check check = std::move(checks[i].check);
      if (check.id.empty()) {
        check.id = absl::StrCat("service:", service.id);
        if (checks.size() > 1) absl::StrAppend(&check.id, ":", i + 1);
      }
      if (check.name.empty()) check.name = absl::StrCat("Service '", service.name, "' check");
      check.service_id = service.id;
      check.service_name = service.name;
      auto old = old_checks.find(check.id);
      // Re-registering keeps a check's status unless the definition sets one.
      if (old != old_checks.end() && !check.status_given) {
        check.status = old->second.status;
        check.output = old->second.output;
      }
      check.create_index = old != old_checks.end() ? old->second.create_index : index_;
      check.modify_index = index_;
      if (check.ttl > absl::ZeroDuration()) check.ttl_deadline = absl::Now() + check.ttl;
      checks_[check.id] = std::move(check);
    }
    services_[service.id] = std::move(service);
    return Reply(200, "", "text/plain");
  }

  StandinReply Deregister(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (services_.erase(id) == 0) {
      return Reply(404, absl::StrCat("Unknown service ID ", JsonString(id),
                                     ". Ensure that the service ID is passed, not the service "
                                     "name."));
    }
    ++index_;
    for (auto it = checks_.begin(); it != checks_.end();) {
      it = it->second.service_id == id ? checks_.erase(it) : std::next(it);
    }
    return Reply(200, "", "text/plain");
  }

  // --- checks ---

  void ExpireTtlChecks() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const absl::Time now = absl::Now();
    for (auto& [id, check] : checks_) {
      if (check.ttl > absl::ZeroDuration() && now > check.ttl_deadline &&
          check.status != "critical") {
        check.status = "critical";
        check.output = "TTL expired";
        check.modify_index = ++index_;
      }
    }
  }

  StandinReply SetTtlStatus(const std::string& id, const std::string& status,
                            const std::string& output) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = checks_.find(id);
    if (it == checks_.end()) {
      return Reply(404, absl::StrCat("Unknown check ID ", JsonString(id),
                                     ". Ensure that the check ID is passed, not the check name."));
    }
    Check& check = it->second;
    if (check.ttl <= absl::ZeroDuration()) {
      return Reply(500, absl::StrCat("CheckID ", JsonString(id), " does not have associated TTL"));
    }
    check.status = status;
    // A check keeps at most OutputMaxSize bytes of output, 4096 by default (api-docs/agent/check).
    check.output = output.substr(0, kOutputMaxSize);
    check.ttl_deadline = absl::Now() + check.ttl;
    check.modify_index = ++index_;
    return Reply(200, "", "text/plain");
  }

  StandinReply UpdateTtl(const std::string& id, const std::string& status, const std::string& note)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return SetTtlStatus(id, status, note);
  }

  StandinReply CheckUpdate(const std::string& id, const std::string& body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (body.empty()) return Reply(400, "Request decode failed: EOF");
    if (auto err = parser.parse(body).get(doc); err != simdjson::SUCCESS) {
      return Reply(400, absl::StrCat("Request decode failed: ", simdjson::error_message(err)));
    }
    simdjson::dom::object object;
    if (doc.get_object().get(object) != simdjson::SUCCESS) {
      return Reply(400, TypeError(doc, "checkUpdate", "agent.checkUpdate"));
    }
    std::string status, output;
    for (auto field : object) {
      const std::string key = NormalizeField(Sv(field.key));
      std::string_view text;
      if (key != "status" && key != "output") {
        return Reply(400, absl::StrCat("Request decode failed: json: unknown field ",
                                       JsonString(Sv(field.key))));
      }
      if (field.value.get_string().get(text) != simdjson::SUCCESS) {
        return Reply(400,
                     TypeError(field.value, absl::StrCat("checkUpdate.", Sv(field.key)), "string"));
      }
      (key == "status" ? status : output) = std::string(text);
    }
    if (!ValidStatus(status)) {
      return Reply(400, absl::StrCat("Invalid check status: ", JsonString(status)));
    }
    return SetTtlStatus(id, status, output);
  }

  // --- read endpoints ---

  std::string ServiceJson(const ServiceEntry& s, bool with_hash) const {
    std::string out = absl::StrCat(
        "{\"ID\":", JsonString(s.id), ",\"Service\":", JsonString(s.name),
        ",\"Tags\":", StringArray(s.tags), ",\"Meta\":", StringMap(s.meta), ",\"Port\":", s.port,
        ",\"Address\":", JsonString(s.address),
        ",\"Weights\":{\"Passing\":1,\"Warning\":1},\"EnableTagOverride\":",
        s.enable_tag_override ? "true" : "false", ",\"Datacenter\":\"", kDatacenter, "\"");
    if (with_hash) absl::StrAppend(&out, ",\"ContentHash\":\"", absl::Hex(s.modify_index), "\"");
    return out + "}";
  }

  StandinReply AgentServices() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<std::string> parts;
    if (!Filtered()) {
      for (const auto& [id, s] : services_) {
        parts.push_back(absl::StrCat(JsonString(id), ":", ServiceJson(s, false)));
      }
    }
    StandinReply reply = Json(absl::StrCat("{", absl::StrJoin(parts, ","), "}"));
    if (Filtered()) reply.headers.emplace_back("X-Consul-Results-Filtered-By-ACLs", "true");
    return reply;
  }

  std::string CheckJson(const Check& c) const {
    std::vector<std::string> tags;
    if (auto it = services_.find(c.service_id); it != services_.end()) tags = it->second.tags;
    return absl::StrCat("{\"Node\":\"", kNode, "\",\"CheckID\":", JsonString(c.id),
                        ",\"Name\":", JsonString(c.name), ",\"Status\":", JsonString(c.status),
                        ",\"Notes\":", JsonString(c.notes), ",\"Output\":", JsonString(c.output),
                        ",\"ServiceID\":", JsonString(c.service_id),
                        ",\"ServiceName\":", JsonString(c.service_name),
                        ",\"ServiceTags\":", StringArray(tags), ",\"Type\":", JsonString(c.type),
                        ",\"Interval\":", JsonString(c.interval),
                        ",\"Timeout\":", JsonString(c.timeout), ",\"CreateIndex\":", c.create_index,
                        ",\"ModifyIndex\":", c.modify_index, "}");
  }

  std::string SerfCheckJson() const {
    return absl::StrCat("{\"Node\":\"", kNode,
                        "\",\"CheckID\":\"serfHealth\",\"Name\":\"Serf Health Status\","
                        "\"Status\":\"passing\",\"Notes\":\"\",\"Output\":\"Agent alive and "
                        "reachable\",\"ServiceID\":\"\",\"ServiceName\":\"\",\"ServiceTags\":[],"
                        "\"Type\":\"\",\"CreateIndex\":1,\"ModifyIndex\":1}");
  }

  StandinReply AgentChecks() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<std::string> parts;
    if (!Filtered()) {
      for (const auto& [id, c] : checks_)
        parts.push_back(absl::StrCat(JsonString(id), ":", CheckJson(c)));
    }
    return Json(absl::StrCat("{", absl::StrJoin(parts, ","), "}"));
  }

  StandinReply CatalogServices() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::map<std::string, std::vector<std::string>> names;
    if (!Filtered()) {
      names["consul"];
      for (const auto& [id, s] : services_) {
        auto& tags = names[s.name];
        for (const auto& tag : s.tags) {
          if (std::find(tags.begin(), tags.end(), tag) == tags.end()) tags.push_back(tag);
        }
      }
    }
    std::vector<std::string> parts;
    for (const auto& [name, tags] : names) {
      parts.push_back(absl::StrCat(JsonString(name), ":", StringArray(tags)));
    }
    return Json(absl::StrCat("{", absl::StrJoin(parts, ","), "}"));
  }

  std::string NodeJson() const {
    return absl::StrCat("{\"ID\":\"00000000-0000-0000-0000-000000000001\",\"Node\":\"", kNode,
                        "\",\"Address\":\"", kNodeAddress, "\",\"Datacenter\":\"", kDatacenter,
                        "\",\"TaggedAddresses\":{\"lan\":\"", kNodeAddress, "\",\"wan\":\"",
                        kNodeAddress, "\"},\"Meta\":{},\"CreateIndex\":1,\"ModifyIndex\":1}");
  }

  StandinReply CatalogService(const std::string& name) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<std::string> parts;
    if (!Filtered()) {
      for (const auto& [id, s] : services_) {
        if (s.name != name) continue;
        parts.push_back(absl::StrCat(
            "{\"ID\":\"00000000-0000-0000-0000-000000000001\",\"Node\":\"", kNode,
            "\",\"Address\":\"", kNodeAddress, "\",\"Datacenter\":\"", kDatacenter,
            "\",\"TaggedAddresses\":{},\"NodeMeta\":{},\"ServiceKind\":\"\",\"ServiceID\":",
            JsonString(s.id), ",\"ServiceName\":", JsonString(s.name),
            ",\"ServiceTags\":", StringArray(s.tags), ",\"ServiceAddress\":", JsonString(s.address),
            ",\"ServiceMeta\":", StringMap(s.meta), ",\"ServicePort\":", s.port,
            ",\"ServiceEnableTagOverride\":", s.enable_tag_override ? "true" : "false",
            ",\"CreateIndex\":", s.create_index, ",\"ModifyIndex\":", s.modify_index, "}"));
      }
    }
    return Json(absl::StrCat("[", absl::StrJoin(parts, ","), "]"));
  }

  StandinReply HealthService(const std::string& name, bool passing_only) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<std::string> parts;
    if (!Filtered()) {
      for (const auto& [id, s] : services_) {
        if (s.name != name) continue;
        std::vector<std::string> checks = {SerfCheckJson()};
        bool all_passing = true;
        for (const auto& [check_id, c] : checks_) {
          if (c.service_id != id) continue;
          checks.push_back(CheckJson(c));
          if (c.status != "passing") all_passing = false;
        }
        if (passing_only && !all_passing) continue;
        parts.push_back(absl::StrCat("{\"Node\":", NodeJson(),
                                     ",\"Service\":", ServiceJson(s, false), ",\"Checks\":[",
                                     absl::StrJoin(checks, ","), "]}"));
      }
    }
    return Json(absl::StrCat("[", absl::StrJoin(parts, ","), "]"));
  }

  // --- KV ---

  std::string KvJson(const std::string& key, const KvEntry& e) const {
    return absl::StrCat(
        "{\"LockIndex\":0,\"Key\":", JsonString(key), ",\"Flags\":", e.flags, ",\"Value\":",
        e.value.empty() ? std::string("null") : JsonString(absl::Base64Escape(e.value)),
        ",\"CreateIndex\":", e.create_index, ",\"ModifyIndex\":", e.modify_index, "}");
  }

  StandinReply KvGet(const Request& r, const std::string& key) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (r.has_param("keys")) {
      const std::string separator = r.param("separator");
      std::vector<std::string> keys;
      for (auto it = kv_.lower_bound(key); it != kv_.end() && absl::StartsWith(it->first, key);
           ++it) {
        std::string k = it->first;
        if (!separator.empty()) {
          const size_t pos = k.find(separator, key.size());
          if (pos != std::string::npos) k = k.substr(0, pos + separator.size());
        }
        if (keys.empty() || keys.back() != k) keys.push_back(k);
      }
      if (keys.empty()) return Reply(404, "");
      return Json(StringArray(keys));
    }
    if (r.has_param("recurse")) {
      std::vector<std::string> parts;
      for (auto it = kv_.lower_bound(key); it != kv_.end() && absl::StartsWith(it->first, key);
           ++it) {
        parts.push_back(KvJson(it->first, it->second));
      }
      if (parts.empty()) return Reply(404, "");
      return Json(absl::StrCat("[", absl::StrJoin(parts, ","), "]"));
    }
    auto it = kv_.find(key);
    if (it == kv_.end()) return Reply(404, "");
    if (r.has_param("raw")) return Reply(200, it->second.value, "application/octet-stream");
    return Json(absl::StrCat("[", KvJson(key, it->second), "]"));
  }

  StandinReply KvPut(const Request& r, const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (key.empty()) return Reply(400, "Missing key name");
    if (r.has_param("recurse")) return Reply(400, "Cannot use recurse with PUT");
    if (r.body.size() > kKvMaxValue) {
      return Reply(413, absl::StrCat("Request body(", r.body.size(),
                                     " bytes) too large, max size: ", kKvMaxValue, " bytes."));
    }
    uint64_t flags = 0;
    if (r.has_param("flags") && !absl::SimpleAtoi(r.param("flags"), &flags)) {
      return Reply(400, "Invalid flags");
    }
    auto it = kv_.find(key);
    if (r.has_param("cas")) {
      uint64_t cas = 0;
      if (!absl::SimpleAtoi(r.param("cas"), &cas)) return Reply(400, "Invalid cas index");
      const bool ok =
          cas == 0 ? it == kv_.end() : (it != kv_.end() && it->second.modify_index == cas);
      if (!ok) return Json("false");
    }
    ++index_;
    kv_table_index_ = index_;
    tombstones_.erase(key);
    KvEntry& entry = kv_[key];
    if (entry.create_index == 0) entry.create_index = index_;
    entry.modify_index = index_;
    entry.value = r.body;
    entry.flags = flags;
    return Json("true");
  }

  StandinReply KvDelete(const Request& r, const std::string& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!r.has_param("recurse") && key.empty()) return Reply(400, "Missing key name");
    ++index_;
    kv_table_index_ = index_;
    // Deleted keys leave a tombstone so that a blocking read of their prefix sees its index
    // move (Consul's graveyard).
    if (r.has_param("recurse")) {
      auto it = kv_.lower_bound(key);
      while (it != kv_.end() && absl::StartsWith(it->first, key)) {
        tombstones_[it->first] = index_;
        it = kv_.erase(it);
      }
    } else if (kv_.erase(key) > 0) {
      tombstones_[key] = index_;
    }
    return Json("true");
  }

  const std::string acl_token_;
  mutable absl::Mutex mu_;
  std::string leader_ ABSL_GUARDED_BY(mu_);
  Acl acl_mode_ ABSL_GUARDED_BY(mu_) = Acl::kAllowed;
  uint64_t index_ ABSL_GUARDED_BY(mu_) = 1;
  // Index of the last KV write, and of each deleted key's deletion (see ResultIndex).
  uint64_t kv_table_index_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, uint64_t> tombstones_ ABSL_GUARDED_BY(mu_);
  // Bumped by Wipe(); blocked queries re-run.
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::minstd_rand rng_ ABSL_GUARDED_BY(mu_){std::random_device{}()};
  int writes_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<RecordedRequest> log_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, ServiceEntry> services_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Check> checks_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, KvEntry> kv_ ABSL_GUARDED_BY(mu_);
};

// Hang mode: holds HTTP requests while hung, then lets them through one at a time in the order
// they arrived (tickets), so a test sees the same order a resumed agent would.
class ConsulStandin::Gate {
 public:
  static constexpr uint64_t kNoTicket = ~uint64_t{0};

  // Blocks while hung (or while earlier held requests are still being answered); returns the
  // ticket to pass to Leave().
  uint64_t Enter() {
    absl::MutexLock lock(&mu_);
    if (!hung_ && held_ == 0) return kNoTicket;
    const uint64_t ticket = next_ticket_++;
    ++held_;
    while (!open_all_ && (hung_ || serving_ != ticket)) cv_.Wait(&mu_);
    return ticket;
  }
  void Leave(uint64_t ticket) {
    if (ticket == kNoTicket) return;
    absl::MutexLock lock(&mu_);
    --held_;
    ++serving_;
    cv_.SignalAll();
  }
  void SetHung(bool hung) {
    absl::MutexLock lock(&mu_);
    hung_ = hung;
    cv_.SignalAll();
  }
  // For Stop(): let everything through, order no longer matters.
  void OpenAll(bool open) {
    absl::MutexLock lock(&mu_);
    open_all_ = open;
    cv_.SignalAll();
  }
  int held() const {
    absl::MutexLock lock(&mu_);
    return held_;
  }

 private:
  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  bool hung_ ABSL_GUARDED_BY(mu_) = false;
  bool open_all_ ABSL_GUARDED_BY(mu_) = false;
  int held_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t serving_ ABSL_GUARDED_BY(mu_) = 0;
};

ConsulStandin::ConsulStandin(ConsulStandinOptions options)
    : options_(std::move(options)),
      state_(std::make_unique<State>(options_)),
      gate_(std::make_unique<Gate>()) {}

ConsulStandin::~ConsulStandin() { Stop(); }

StandinReply ConsulStandin::Handle(const std::string& method, const std::string& path,
                                   const std::multimap<std::string, std::string>& params,
                                   const std::string& body,
                                   const std::multimap<std::string, std::string>& headers) {
  return state_->Handle(method, path, params, body, headers);
}

absl::Status ConsulStandin::ListenTcp(const std::string& host, int port) {
  std::unique_ptr<httplib::Server> server;
  if (!options_.tls_cert_file.empty()) {
    server = std::make_unique<httplib::SSLServer>(
        options_.tls_cert_file.c_str(), options_.tls_key_file.c_str(),
        options_.tls_client_ca_file.empty() ? nullptr : options_.tls_client_ca_file.c_str());
  } else {
    server = std::make_unique<httplib::Server>();
  }
  if (!server->is_valid()) {
    return absl::InvalidArgumentError(absl::StrCat("stand-in TLS setup failed with cert ",
                                                   options_.tls_cert_file, " and key ",
                                                   options_.tls_key_file));
  }
  return StartServer(std::move(server), false, host, port);
}

absl::Status ConsulStandin::ListenUnix(const std::string& socket_path) {
  ::unlink(socket_path.c_str());
  return StartServer(std::make_unique<httplib::Server>(), true, socket_path, 80);
}

absl::Status ConsulStandin::StartServer(std::unique_ptr<httplib::Server> server, bool unix_socket,
                                        const std::string& host, int port) {
  if (server_ != nullptr) return absl::FailedPreconditionError("stand-in is already listening");
  gate_->OpenAll(false);
  state_->Resume();
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    std::multimap<std::string, std::string> params(req.params.begin(), req.params.end());
    std::multimap<std::string, std::string> headers(req.headers.begin(), req.headers.end());
    const uint64_t ticket = gate_->Enter();
    StandinReply reply = Handle(req.method, req.path, params, req.body, headers);
    gate_->Leave(ticket);
    if (options_.on_reply) options_.on_reply(req.method, req.path, reply.status, req.body);
    res.status = reply.status;
    for (const auto& [name, value] : reply.headers) res.set_header(name, value);
    res.set_content(reply.body, reply.content_type.c_str());
  };
  // Every method goes to the one dispatcher, which answers 405 itself like Consul.
  server->Get(".*", handler);
  server->Put(".*", handler);
  server->Post(".*", handler);
  server->Delete(".*", handler);
  server->Patch(".*", handler);
  server->Options(".*", handler);
  // Stop() waits for idle kept-alive connections to time out; keep that short.
  server->set_keep_alive_timeout(1);
  if (options_.keep_alive_max_count > 0) {
    server->set_keep_alive_max_count(options_.keep_alive_max_count);
  }
  if (options_.server_threads > 0) {
    const int threads = options_.server_threads;
    server->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  }
  if (unix_socket) server->set_address_family(AF_UNIX);
  if (port == 0) {
    port = server->bind_to_any_port(host);
    if (port <= 0) return absl::UnavailableError(absl::StrCat("stand-in cannot bind ", host));
  } else if (!server->bind_to_port(host, port)) {
    return absl::UnavailableError(absl::StrCat("stand-in cannot bind ", host, ":", port));
  }
  port_ = unix_socket ? 0 : port;
  server_ = std::move(server);
  httplib::Server* raw = server_.get();
  thread_ = std::thread([raw] { raw->listen_after_bind(); });
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!server_->is_running()) {
    if (absl::Now() > deadline) return absl::UnavailableError("stand-in did not start");
    absl::SleepFor(absl::Milliseconds(2));
  }
  return absl::OkStatus();
}

void ConsulStandin::Stop() {
  if (server_ == nullptr) return;
  // Held handlers and blocked queries run on the server's pool, which stop() joins.
  gate_->OpenAll(true);
  state_->Shutdown();
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

int ConsulStandin::write_count() const { return state_->write_count(); }
std::vector<RecordedRequest> ConsulStandin::requests() const { return state_->requests(); }
void ConsulStandin::ClearLog() { state_->ClearLog(); }
std::vector<std::string> ConsulStandin::ServiceIds() const { return state_->ServiceIds(); }
std::optional<std::string> ConsulStandin::CheckStatus(const std::string& check_id) const {
  return state_->CheckStatus(check_id);
}
std::vector<std::string> ConsulStandin::CheckIds() const { return state_->CheckIds(); }
std::optional<std::string> ConsulStandin::KvValue(const std::string& key) const {
  return state_->KvValue(key);
}
void ConsulStandin::SetLeader(const std::string& leader) { state_->SetLeader(leader); }
void ConsulStandin::SetHung(bool hung) { gate_->SetHung(hung); }
void ConsulStandin::Wipe() { state_->Wipe(); }
int ConsulStandin::held_requests() const { return gate_->held(); }

std::vector<std::string> ConsulStandin::BodiesOf(const std::string& method,
                                                 const std::string& path) const {
  std::vector<std::string> bodies;
  for (const auto& request : requests()) {
    if (request.method == method && request.path == path) bodies.push_back(request.body);
  }
  return bodies;
}

}  // namespace registrator::fakes
