#include "adapters/consulkv/consulkv_adapter.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "adapters/consul/consul_http.h"
#include "registrator/common/host_port.h"
#include "registrator/common/http_client.h"
#include "simdjson.h"

namespace registrator {
namespace {

class ConsulKvAdapter : public RegistryAdapter {
 public:
  ConsulKvAdapter(HttpEndpoint endpoint, std::string prefix, const AdapterOptions& options)
      : client_(std::move(endpoint)),
        prefix_(std::move(prefix)),
        headers_(consul::TokenHeaders(options)) {}

  absl::Status Ping() override {
    absl::StatusOr<HttpResponse> response = Send("GET", "/v1/status/leader", "");
    if (!response.ok()) return response.status();
    if (absl::Status s = consul::StatusFromResponse(*response, "consulkv ping"); !s.ok()) return s;
    if (absl::StripAsciiWhitespace(response->body) == "\"\"") {
      return absl::UnavailableError("consulkv ping: no leader");
    }
    return absl::OkStatus();
  }

  absl::Status Register(const Service& service) override {
    absl::StatusOr<HttpResponse> response =
        Send("PUT", KeyPath(service), JoinHostPort(service.ip, service.port));
    if (!response.ok()) return response.status();
    return consul::StatusFromResponse(*response, absl::StrCat("consulkv register ", Key(service)));
  }

  absl::Status Deregister(const Service& service) override {
    absl::StatusOr<HttpResponse> response = Send("DELETE", KeyPath(service), "");
    if (!response.ok()) return response.status();
    return consul::StatusFromResponse(*response,
                                      absl::StrCat("consulkv deregister ", Key(service)));
  }

  // KV has no TTL; entries live until deregistered.
  absl::Status Refresh(const std::vector<Service>& services) override {
    (void)services;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<RegisteredService>> Services() override {
    const std::string base = prefix_.empty() ? "" : prefix_ + "/";
    absl::StatusOr<HttpResponse> response =
        Send("GET", absl::StrCat("/v1/kv/", consul::EncodePath(base), "?recurse"), "");
    if (!response.ok()) return response.status();
    std::vector<RegisteredService> result;
    if (response->status == 404) return result;  // Nothing under the prefix yet.
    if (absl::Status s = consul::StatusFromResponse(*response, "consulkv list"); !s.ok()) return s;
    simdjson::dom::parser parser;
    simdjson::dom::array entries;
    if (parser.parse(response->body).get_array().get(entries) != simdjson::SUCCESS) {
      return absl::UnavailableError("consulkv list: the answer is not a JSON array");
    }
    for (auto entry : entries) {
      std::string_view key_view, value_b64;
      if (entry["Key"].get_string().get(key_view) != simdjson::SUCCESS) continue;
      std::string value;
      if (entry["Value"].get_string().get(value_b64) == simdjson::SUCCESS) {
        if (!absl::Base64Unescape(absl::string_view(value_b64.data(), value_b64.size()), &value)) {
          continue;
        }
      }
      const std::string key(key_view);
      absl::string_view rest = key;
      if (!absl::ConsumePrefix(&rest, base)) continue;
      const size_t slash = rest.find('/');
      // Only "<Name>/<ID>" entries are ours; folders and stray keys are skipped.
      if (slash == absl::string_view::npos || slash == 0 || slash + 1 == rest.size()) continue;
      RegisteredService registered;
      registered.service.name = std::string(rest.substr(0, slash));
      registered.service.id = std::string(rest.substr(slash + 1));
      SplitHostPort(value, &registered.service.ip, &registered.service.port);
      registered.fingerprint = absl::StrCat(key, "=", value);
      result.push_back(std::move(registered));
    }
    return result;
  }

  std::string Fingerprint(const Service& service) const override {
    return absl::StrCat(Key(service), "=", JoinHostPort(service.ip, service.port));
  }

 private:
  std::string Key(const Service& service) const {
    return absl::StrCat(prefix_.empty() ? "" : prefix_ + "/", service.name, "/", service.id);
  }
  std::string KeyPath(const Service& service) const {
    return absl::StrCat("/v1/kv/", consul::EncodePath(Key(service)));
  }

  absl::StatusOr<HttpResponse> Send(const std::string& method, const std::string& path,
                                    std::string body) {
    HttpRequest request;
    request.method = method;
    request.path = path;
    request.body = std::move(body);
    request.headers = headers_;
    // A raw value; without this curl would label it a form and servers may parse it as one.
    if (method == "PUT") request.headers.push_back("Content-Type: application/octet-stream");
    return client_.Send(request);
  }

  HttpClient client_;
  const std::string prefix_;  // Without leading or trailing "/"; may be empty.
  const std::vector<std::string> headers_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewConsulKvAdapter(const BackendUri& uri,
                                                                    const AdapterOptions& options) {
  std::string path = uri.path;
  consul::Transport transport = consul::Transport::kHttp;
  std::string socket;
  if (uri.scheme == "consulkv-unix") {
    // consulkv-unix:///path/to/consul.sock:/prefix -- the socket path ends at the first ":".
    if (!uri.host.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "consulkv-unix URI must look like consulkv-unix:///path/consul.sock:/prefix, got host \"",
          uri.host, "\""));
    }
    const size_t colon = path.find(':');
    socket = path.substr(0, colon);
    path = colon == std::string::npos ? "" : path.substr(colon + 1);
    transport = consul::Transport::kUnix;
  } else if (uri.scheme != "consulkv") {
    return absl::InvalidArgumentError(absl::StrCat("consulkv adapter: unsupported scheme \"",
                                                   uri.scheme, "\" (consulkv, consulkv-unix)"));
  }
  absl::string_view prefix = path;
  while (absl::ConsumePrefix(&prefix, "/")) {
  }
  while (absl::ConsumeSuffix(&prefix, "/")) {
  }
  absl::StatusOr<HttpEndpoint> endpoint =
      consul::ResolveEndpoint(transport, uri.host, socket, options);
  if (!endpoint.ok()) return endpoint.status();
  return std::unique_ptr<RegistryAdapter>(
      std::make_unique<ConsulKvAdapter>(*std::move(endpoint), std::string(prefix), options));
}

}  // namespace registrator
