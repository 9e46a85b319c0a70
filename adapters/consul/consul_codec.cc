// Builds the Consul agent's register bodies and fingerprints and parses its replies (no I/O).
#include "adapters/consul/consul_codec.h"

#include <algorithm>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "registrator/common/http_client.h"
#include "registrator/common/json.h"
#include "simdjson.h"

namespace registrator::consul {
namespace {

std::string QuotedList(const std::vector<std::string>& items) {
  std::vector<std::string> quoted;
  quoted.reserve(items.size());
  for (const auto& item : items) quoted.push_back(JsonString(item));
  return absl::StrCat("[", absl::StrJoin(quoted, ","), "]");
}

std::string MetaObject(std::vector<std::pair<std::string, std::string>> meta) {
  std::sort(meta.begin(), meta.end());
  std::vector<std::string> members;
  members.reserve(meta.size());
  for (const auto& [key, value] : meta) {
    members.push_back(absl::StrCat(JsonString(key), ":", JsonString(value)));
  }
  return absl::StrCat("{", absl::StrJoin(members, ","), "}");
}

// The user's check (from check_* attributes) as Consul's check definition.
std::string CheckObject(const ServiceCheck& check) {
  std::vector<std::string> fields;
  auto add = [&](absl::string_view name, const std::string& value) {
    if (!value.empty()) fields.push_back(absl::StrCat("\"", name, "\":", JsonString(value)));
  };
  add("HTTP", check.http);
  if (!check.http.empty()) add("Method", check.method);
  add("TCP", check.tcp);
  add("GRPC", check.grpc);
  if (check.grpc_use_tls) fields.push_back("\"GRPCUseTLS\":true");
  if (check.tls_skip_verify) fields.push_back("\"TLSSkipVerify\":true");
  if (!check.script_args.empty()) {
    fields.push_back(absl::StrCat("\"ScriptArgs\":", QuotedList(check.script_args)));
  }
  const bool ttl_check = !check.ttl.empty() && check.http.empty() && check.tcp.empty() &&
                         check.grpc.empty() && check.script_args.empty();
  if (ttl_check) {
    add("TTL", check.ttl);
  } else {
    // Consul refuses interval checks without an Interval, and TTL checks with one.
    add("Interval", check.interval.empty() ? std::string("10s") : check.interval);
  }
  add("Timeout", check.timeout);
  add("Status", check.initial_status);
  add("DeregisterCriticalServiceAfter", check.deregister_after);
  return absl::StrCat("{", absl::StrJoin(fields, ","), "}");
}

std::string TtlCheckObject(const Service& service, int ttl_seconds) {
  // Starts passing: the service is up when registrator registers it; Refresh keeps it so. When
  // refreshes stop (registrator gone, or the container kept by -deregister=on-success) the check
  // goes critical and the agent removes the service: that is what -ttl means on every backend.
  // Consul reaps critical services no sooner than a minute.
  return absl::StrCat("{\"CheckID\":", JsonString(TtlCheckId(service.id)),
                      ",\"Name\":\"registrator TTL\",\"TTL\":\"", ttl_seconds,
                      "s\",\"Status\":\"passing\",\"DeregisterCriticalServiceAfter\":\"",
                      std::max(ttl_seconds, 60), "s\"}");
}

// The "Docker health" check; `with_status` false for the hash (see CheckHash).
std::string DockerHealthCheckObject(const Service& service, bool with_status) {
  std::string out = absl::StrCat("{\"CheckID\":", JsonString(DockerHealthCheckId(service.id)),
                                 ",\"Name\":\"", kDockerHealthCheckName,
                                 "\",\"Notes\":\"Docker HEALTHCHECK status, set by registrator\"",
                                 ",\"TTL\":\"", kDockerHealthTtl, "\"");
  // Registered with its current status, so a healthy container's service is never shown
  // critical between the register and the check update that follows it.
  if (with_status) absl::StrAppend(&out, ",\"Status\":\"", DockerHealthConsulStatus(service), "\"");
  return out + "}";
}

// `,"Check":{...}`, `,"Checks":[...]` or "" (the part of the register body that CheckHash hashes,
// there with `with_health_status` false).
std::string ChecksJson(const Service& service, int ttl_seconds, bool with_health_status = true) {
  std::vector<std::string> checks;
  if (service.has_check) checks.push_back(CheckObject(service.check));
  if (ttl_seconds > 0) checks.push_back(TtlCheckObject(service, ttl_seconds));
  if (!service.docker_health.status.empty()) {
    checks.push_back(DockerHealthCheckObject(service, with_health_status));
  }
  if (checks.empty()) return "";
  if (checks.size() == 1) return absl::StrCat(",\"Check\":", checks[0]);
  return absl::StrCat(",\"Checks\":[", absl::StrJoin(checks, ","), "]");
}

// One line per field, values JSON-quoted, so no value can fake another field.
std::string FingerprintOf(const Service& service,
                          std::vector<std::pair<std::string, std::string>> meta) {
  return absl::StrCat("id=", JsonString(service.id), "\nname=", JsonString(service.name),
                      "\naddress=", JsonString(service.ip), "\nport=", service.port,
                      "\ntags=", QuotedList(service.tags), "\nmeta=", MetaObject(std::move(meta)));
}

std::string ToString(std::string_view text) { return std::string(text.data(), text.size()); }

}  // namespace

std::string TtlCheckId(const std::string& service_id) {
  return absl::StrCat("service:", service_id, ":ttl");
}

std::vector<std::pair<std::string, std::string>> MetaWithCheckHash(const Service& service,
                                                                   int ttl_seconds) {
  std::vector<std::pair<std::string, std::string>> meta = service.meta;
  const std::string checks = ChecksJson(service, ttl_seconds, /*with_health_status=*/false);
  if (checks.empty()) return meta;
  meta.emplace_back(kCheckHashMetaKey, CheckHash(checks));
  std::sort(meta.begin(), meta.end());
  return meta;
}

std::string CheckHash(absl::string_view checks_json) {
  // 64-bit FNV-1a: stable across processes and versions (unlike absl::Hash), which is what a
  // value compared with one written by an earlier registrator needs.
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : checks_json) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return absl::StrCat(absl::Hex(hash, absl::kZeroPad16));
}

std::string RegisterBody(const Service& service, int ttl_seconds) {
  return absl::StrCat("{\"ID\":", JsonString(service.id), ",\"Name\":", JsonString(service.name),
                      ",\"Tags\":", QuotedList(service.tags),
                      ",\"Address\":", JsonString(service.ip), ",\"Port\":", service.port,
                      ",\"Meta\":", MetaObject(MetaWithCheckHash(service, ttl_seconds)),
                      ChecksJson(service, ttl_seconds), "}");
}

std::string ServiceFingerprint(const Service& service, int ttl_seconds) {
  return FingerprintOf(service, MetaWithCheckHash(service, ttl_seconds));
}

absl::StatusOr<std::vector<RegisteredService>> ParseAgentServices(absl::string_view body,
                                                                  size_t readable_bytes) {
  simdjson::dom::parser parser;
  simdjson::dom::object services;
  // Padded: parsed in place, not copied first (MBs for 10,000 services).
  const bool padded = !body.empty() && readable_bytes >= body.size() + simdjson::SIMDJSON_PADDING;
  // A default-constructed string_view has a null data(), which simdjson must not be given.
  if (parser.parse(body.empty() ? "" : body.data(), body.size(), /*realloc_if_needed=*/!padded)
          .get_object()
          .get(services) != simdjson::SUCCESS) {
    return absl::UnavailableError("consul list services: /v1/agent/services is not an object");
  }
  std::vector<RegisteredService> result;
  result.reserve(services.size());
  for (auto entry : services) {
    simdjson::dom::object object;
    if (entry.value.get_object().get(object) != simdjson::SUCCESS) continue;
    Service s;
    std::string_view text;
    s.id = ToString(entry.key);
    if (object["ID"].get_string().get(text) == simdjson::SUCCESS) s.id = ToString(text);
    if (object["Service"].get_string().get(text) == simdjson::SUCCESS) s.name = ToString(text);
    if (object["Address"].get_string().get(text) == simdjson::SUCCESS) s.ip = ToString(text);
    int64_t port = 0;
    if (object["Port"].get_int64().get(port) == simdjson::SUCCESS && port >= 0 && port <= 65535) {
      s.port = static_cast<int>(port);
    }
    simdjson::dom::array tags;
    if (object["Tags"].get_array().get(tags) == simdjson::SUCCESS) {
      for (auto tag : tags) {
        if (tag.get_string().get(text) == simdjson::SUCCESS) s.tags.push_back(ToString(text));
      }
    }
    simdjson::dom::object meta;
    if (object["Meta"].get_object().get(meta) == simdjson::SUCCESS) {
      for (auto item : meta) {
        if (item.value.get_string().get(text) == simdjson::SUCCESS) {
          s.meta.emplace_back(ToString(item.key), ToString(text));
        }
      }
      std::sort(s.meta.begin(), s.meta.end());
    }
    RegisteredService registered;
    registered.fingerprint = FingerprintOf(s, s.meta);
    registered.service = std::move(s);
    result.push_back(std::move(registered));
  }
  return result;
}

std::string DockerHealthCheckId(const std::string& service_id) {
  return absl::StrCat("service:", service_id, ":docker-health");
}

std::string DockerHealthConsulStatus(const Service& service) {
  return service.docker_health.status == "healthy" ? "passing" : "critical";
}

std::string CheckUpdateBody(const Service& service) {
  return absl::StrCat("{\"Status\":\"", DockerHealthConsulStatus(service),
                      "\",\"Output\":", JsonString(service.docker_health.output), "}");
}

namespace {
std::string HealthFingerprintOf(absl::string_view status, absl::string_view output) {
  return absl::StrCat("status=", JsonString(status), "\noutput=", JsonString(output));
}
}  // namespace

std::string DockerHealthFingerprint(const Service& service) {
  if (service.docker_health.status.empty()) return "";
  return HealthFingerprintOf(DockerHealthConsulStatus(service), service.docker_health.output);
}

absl::StatusOr<std::map<std::string, std::string>> ParseDockerHealthChecks(absl::string_view body) {
  simdjson::dom::parser parser;
  simdjson::dom::object checks;
  if (parser.parse(body.empty() ? "" : body.data(), body.size()).get_object().get(checks) !=
      simdjson::SUCCESS) {
    return absl::UnavailableError("consul list checks: /v1/agent/checks is not an object");
  }
  std::map<std::string, std::string> result;
  for (auto entry : checks) {
    simdjson::dom::object object;
    if (entry.value.get_object().get(object) != simdjson::SUCCESS) continue;
    std::string_view text;
    std::string check_id = ToString(entry.key);
    if (object["CheckID"].get_string().get(text) == simdjson::SUCCESS) check_id = ToString(text);
    if (object["ServiceID"].get_string().get(text) != simdjson::SUCCESS) continue;
    std::string service_id = ToString(text);
    if (service_id.empty() || check_id != DockerHealthCheckId(service_id)) continue;
    std::string_view status;
    std::string_view output;
    if (object["Status"].get_string().get(status) != simdjson::SUCCESS) status = "";
    if (object["Output"].get_string().get(output) != simdjson::SUCCESS) output = "";
    result[std::move(service_id)] = HealthFingerprintOf(ToString(status), ToString(output));
  }
  return result;
}

absl::StatusOr<std::string> ParseLeader(absl::string_view body) {
  simdjson::dom::parser parser;
  std::string_view leader;
  if (parser.parse(body.empty() ? "" : body.data(), body.size()).get_string().get(leader) !=
      simdjson::SUCCESS) {
    return absl::UnavailableError(
        absl::StrCat("unexpected /v1/status/leader answer: ", body.substr(0, 200)));
  }
  return ToString(leader);
}

std::string EncodePath(absl::string_view path) {
  std::vector<std::string> segments;
  for (absl::string_view segment : absl::StrSplit(path, '/')) {
    segments.push_back(UrlEncode(segment));
  }
  return absl::StrJoin(segments, "/");
}

}  // namespace registrator::consul
