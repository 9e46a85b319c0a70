#include "adapters/consul/consul_adapter.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "adapters/consul/consul_http.h"
#include "registrator/common/http_client.h"
#include "registrator/common/log.h"
#include "simdjson.h"

namespace registrator {
namespace consul {
namespace {

std::string QuotedList(const std::vector<std::string>& items) {
  std::vector<std::string> quoted;
  for (const auto& item : items) quoted.push_back(JsonString(item));
  return absl::StrCat("[", absl::StrJoin(quoted, ","), "]");
}

std::string MetaObject(std::vector<std::pair<std::string, std::string>> meta) {
  std::sort(meta.begin(), meta.end());
  std::vector<std::string> parts;
  for (const auto& [k, v] : meta) parts.push_back(absl::StrCat(JsonString(k), ":", JsonString(v)));
  return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
}

// The user's check (from check_* attributes) as Consul's check definition.
std::string CheckObject(const ServiceCheck& c) {
  std::vector<std::string> fields;
  auto add = [&](absl::string_view name, const std::string& value) {
    if (!value.empty()) fields.push_back(absl::StrCat("\"", name, "\":", JsonString(value)));
  };
  add("HTTP", c.http);
  if (!c.http.empty()) add("Method", c.method);
  add("TCP", c.tcp);
  add("GRPC", c.grpc);
  if (c.grpc_use_tls) fields.push_back("\"GRPCUseTLS\":true");
  if (c.tls_skip_verify) fields.push_back("\"TLSSkipVerify\":true");
  if (!c.script_args.empty())
    fields.push_back(absl::StrCat("\"ScriptArgs\":", QuotedList(c.script_args)));
  const bool ttl_check =
      !c.ttl.empty() && c.http.empty() && c.tcp.empty() && c.grpc.empty() && c.script_args.empty();
  if (ttl_check) {
    add("TTL", c.ttl);
  } else {
    // Consul refuses interval checks without an Interval, and TTL checks with one.
    add("Interval", c.interval.empty() ? std::string("10s") : c.interval);
  }
  add("Timeout", c.timeout);
  add("Status", c.initial_status);
  add("DeregisterCriticalServiceAfter", c.deregister_after);
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

// One line per field, values JSON-quoted, so no value can fake another field.
std::string FingerprintOf(const std::string& id, const std::string& name, const std::string& ip,
                          int port, const std::vector<std::string>& tags,
                          std::vector<std::pair<std::string, std::string>> meta) {
  return absl::StrCat("id=", JsonString(id), "\nname=", JsonString(name),
                      "\naddress=", JsonString(ip), "\nport=", port, "\ntags=", QuotedList(tags),
                      "\nmeta=", MetaObject(std::move(meta)));
}

std::string FromJson(std::string_view text) { return std::string(text.data(), text.size()); }

class ConsulAdapter : public RegistryAdapter {
 public:
  ConsulAdapter(HttpEndpoint endpoint, AdapterOptions options)
      : client_(std::move(endpoint)),
        options_(std::move(options)),
        headers_(TokenHeaders(options_)) {}

  absl::Status Ping() override {
    absl::StatusOr<HttpResponse> response = Send("GET", "/v1/status/leader", "");
    if (!response.ok()) return response.status();
    if (absl::Status s = StatusFromResponse(*response, "consul ping"); !s.ok()) return s;
    simdjson::dom::parser parser;
    std::string_view leader;
    if (parser.parse(response->body).get_string().get(leader) != simdjson::SUCCESS) {
      return absl::UnavailableError(
          absl::StrCat("consul ping: unexpected /v1/status/leader answer: ", response->body));
    }
    if (leader.empty()) return absl::UnavailableError("consul ping: no leader");
    return absl::OkStatus();
  }

  absl::Status Register(const Service& service) override {
    absl::StatusOr<HttpResponse> response =
        Send("PUT", "/v1/agent/service/register", RegisterBody(service, options_.ttl));
    if (!response.ok()) return response.status();
    return StatusFromResponse(*response, absl::StrCat("consul register service ", service.id));
  }

  absl::Status Deregister(const Service& service) override {
    absl::StatusOr<HttpResponse> response =
        Send("PUT", absl::StrCat("/v1/agent/service/deregister/", UrlEncode(service.id)), "");
    if (!response.ok()) return response.status();
    // Already gone is success.
    if (response->status == 404) return absl::OkStatus();
    return StatusFromResponse(*response, absl::StrCat("consul deregister service ", service.id));
  }

  absl::Status Refresh(const std::vector<Service>& services) override {
    if (options_.ttl <= 0) return absl::OkStatus();
    absl::Status first_error;
    bool lost = false;
    for (const Service& service : services) {
      const std::string check_id = TtlCheckId(service.id);
      absl::StatusOr<HttpResponse> response =
          Send("PUT", absl::StrCat("/v1/agent/check/pass/", UrlEncode(check_id)), "");
      const std::string what = absl::StrCat("consul pass TTL check ", check_id);
      absl::Status status = response.ok() ? StatusFromResponse(*response, what) : response.status();
      // The agent forgot the check (restarted without state, or the service was removed
      // behind our back): the bridge must register it again.
      if (response.ok() && response->status == 404) {
        lost = true;
        status = absl::NotFoundError(absl::StrCat(what, ": the agent does not know the check"));
      }
      if (!status.ok() && first_error.ok()) first_error = status;
    }
    if (lost) {
      std::function<void()> callback;
      {
        absl::MutexLock lock(&mu_);
        callback = state_lost_;
      }
      if (callback) {
        REG_LOG_WARN("consul: agent lost TTL checks of registered services; re-registering");
        callback();
      }
    }
    return first_error;
  }

  absl::StatusOr<std::vector<RegisteredService>> Services() override {
    absl::StatusOr<HttpResponse> response = Send("GET", "/v1/agent/services", "");
    if (!response.ok()) return response.status();
    if (absl::Status s = StatusFromResponse(*response, "consul list services"); !s.ok()) return s;
    simdjson::dom::parser parser;
    simdjson::dom::object services;
    if (parser.parse(response->body).get_object().get(services) != simdjson::SUCCESS) {
      return absl::UnavailableError("consul list services: /v1/agent/services is not an object");
    }
    std::vector<RegisteredService> result;
    for (auto entry : services) {
      simdjson::dom::object object;
      if (entry.value.get_object().get(object) != simdjson::SUCCESS) continue;
      Service s;
      std::string_view text;
      s.id = FromJson(entry.key);
      if (object["ID"].get_string().get(text) == simdjson::SUCCESS) s.id = FromJson(text);
      if (object["Service"].get_string().get(text) == simdjson::SUCCESS) s.name = FromJson(text);
      if (object["Address"].get_string().get(text) == simdjson::SUCCESS) s.ip = FromJson(text);
      int64_t port = 0;
      if (object["Port"].get_int64().get(port) == simdjson::SUCCESS)
        s.port = static_cast<int>(port);
      simdjson::dom::array tags;
      if (object["Tags"].get_array().get(tags) == simdjson::SUCCESS) {
        for (auto tag : tags) {
          if (tag.get_string().get(text) == simdjson::SUCCESS) s.tags.push_back(FromJson(text));
        }
      }
      simdjson::dom::object meta;
      if (object["Meta"].get_object().get(meta) == simdjson::SUCCESS) {
        for (auto item : meta) {
          if (item.value.get_string().get(text) == simdjson::SUCCESS) {
            s.meta.emplace_back(FromJson(item.key), FromJson(text));
          }
        }
        std::sort(s.meta.begin(), s.meta.end());
      }
      RegisteredService registered;
      registered.fingerprint = FingerprintOf(s.id, s.name, s.ip, s.port, s.tags, s.meta);
      registered.service = std::move(s);
      result.push_back(std::move(registered));
    }
    return result;
  }

  std::string Fingerprint(const Service& service) const override {
    return FingerprintOf(service.id, service.name, service.ip, service.port, service.tags,
                         MetaWithCheckHash(service, options_.ttl));
  }

  void SetStateLostCallback(std::function<void()> request) override {
    absl::MutexLock lock(&mu_);
    state_lost_ = std::move(request);
  }

 private:
  absl::StatusOr<HttpResponse> Send(const std::string& method, const std::string& path,
                                    std::string body) {
    HttpRequest request;
    request.method = method;
    request.path = path;
    request.body = std::move(body);
    request.headers = headers_;
    if (!request.body.empty()) request.headers.push_back("Content-Type: application/json");
    return client_.Send(request);
  }

  HttpClient client_;
  const AdapterOptions options_;
  const std::vector<std::string> headers_;
  absl::Mutex mu_;
  std::function<void()> state_lost_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::string TtlCheckId(const std::string& service_id) {
  return absl::StrCat("service:", service_id, ":ttl");
}

std::string ChecksJson(const Service& service, int ttl_seconds) {
  const bool user_check = service.has_check;
  const bool ttl_check = ttl_seconds > 0;
  if (user_check && ttl_check) {
    return absl::StrCat(",\"Checks\":[", CheckObject(service.check), ",",
                        TtlCheckObject(service, ttl_seconds), "]");
  }
  if (user_check) return absl::StrCat(",\"Check\":", CheckObject(service.check));
  if (ttl_check) return absl::StrCat(",\"Check\":", TtlCheckObject(service, ttl_seconds));
  return "";
}

std::vector<std::pair<std::string, std::string>> MetaWithCheckHash(const Service& service,
                                                                   int ttl_seconds) {
  std::vector<std::pair<std::string, std::string>> meta = service.meta;
  const std::string checks = ChecksJson(service, ttl_seconds);
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

}  // namespace consul

absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewConsulAdapter(const BackendUri& uri,
                                                                  const AdapterOptions& options) {
  consul::Transport transport;
  if (uri.scheme == "consul") {
    transport = consul::Transport::kHttp;
  } else if (uri.scheme == "consul-tls") {
    transport = consul::Transport::kHttps;
  } else if (uri.scheme == "consul-unix") {
    transport = consul::Transport::kUnix;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("consul adapter: unsupported scheme \"",
                                                   uri.scheme,
                                                   "\" (consul, consul-tls, consul-unix)"));
  }
  if (transport == consul::Transport::kUnix && !uri.host.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("consul-unix URI must have an empty host and the socket as path "
                     "(consul-unix:///run/consul.sock), got host \"",
                     uri.host, "\""));
  }
  absl::StatusOr<HttpEndpoint> endpoint =
      consul::ResolveEndpoint(transport, uri.host, uri.path, options);
  if (!endpoint.ok()) return endpoint.status();
  return std::unique_ptr<RegistryAdapter>(
      std::make_unique<consul::ConsulAdapter>(*std::move(endpoint), options));
}

}  // namespace registrator
