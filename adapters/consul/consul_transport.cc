// The Consul adapters' shared transport: endpoint resolution, ACL token, leader ping, status
// mapping.
#include "adapters/consul/consul_transport.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "adapters/consul/consul_codec.h"

namespace registrator::consul {

absl::StatusOr<HttpEndpoint> ResolveEndpoint(Transport transport, const std::string& host,
                                             const std::string& unix_path,
                                             const AdapterOptions& options) {
  HttpEndpoint endpoint;
  if (transport == Transport::kUnix) {
    if (unix_path.empty()) {
      return absl::InvalidArgumentError(
          "consul unix socket URI needs a socket path, e.g. consul-unix:///run/consul.sock");
    }
    endpoint.unix_socket = unix_path;
    endpoint.base_url = "http://consul";
    return endpoint;
  }
  std::string address = host;
  if (address.empty()) {
    address = options.Env("CONSUL_HTTP_ADDR");
    absl::string_view rest = address;
    if (absl::ConsumePrefix(&rest, "unix://")) {
      return ResolveEndpoint(Transport::kUnix, "", std::string(rest), options);
    }
    if (absl::ConsumePrefix(&rest, "https://")) {
      transport = Transport::kHttps;
    } else if (absl::ConsumePrefix(&rest, "http://")) {
      // Plain HTTP unless the URI scheme asked for TLS.
    } else if (absl::EqualsIgnoreCase(options.Env("CONSUL_HTTP_SSL"), "true")) {
      transport = Transport::kHttps;
    }
    address = std::string(absl::StripSuffix(rest, "/"));
    if (address.empty()) address = "127.0.0.1:8500";
  }
  if (absl::StrContains(address, ',')) {
    return absl::InvalidArgumentError(
        absl::StrCat("consul URI names several hosts \"", address, "\": give one agent address"));
  }
  if (absl::StrContains(address, '/')) {
    return absl::InvalidArgumentError(
        absl::StrCat("consul address \"", address, "\" must be host:port"));
  }
  if (transport == Transport::kHttps) {
    endpoint.base_url = absl::StrCat("https://", address);
    endpoint.ca_file = options.Env("CONSUL_CACERT");
    endpoint.cert_file = options.Env("CONSUL_CLIENT_CERT");
    endpoint.key_file = options.Env("CONSUL_CLIENT_KEY");
    endpoint.verify_peer = true;
  } else {
    endpoint.base_url = absl::StrCat("http://", address);
  }
  return endpoint;
}

namespace {

std::vector<std::string> TokenHeaders(const AdapterOptions& options) {
  std::vector<std::string> headers;
  const std::string token = options.Env("CONSUL_HTTP_TOKEN");
  if (!token.empty()) headers.push_back(absl::StrCat("X-Consul-Token: ", token));
  return headers;
}

}  // namespace

absl::Status StatusFromResponse(const HttpResponse& response, absl::string_view what) {
  if (response.status >= 200 && response.status < 300) return absl::OkStatus();
  std::string body(absl::StripAsciiWhitespace(response.body));
  if (body.size() > 512) body = absl::StrCat(body.substr(0, 512), "...");
  const std::string message = absl::StrCat(what, ": consul answered ", response.status, ": ", body);
  if (response.status == 400) return absl::InvalidArgumentError(message);
  if (response.status == 403) return absl::PermissionDeniedError(message);
  return absl::UnavailableError(message);
}

AgentClient::AgentClient(HttpEndpoint endpoint, const AdapterOptions& options)
    : http_(std::move(endpoint)), headers_(TokenHeaders(options)) {}

absl::StatusOr<HttpResponse> AgentClient::Send(const std::string& method, const std::string& path,
                                               std::string body, absl::string_view content_type) {
  HttpRequest request;
  request.method = method;
  request.path = path;
  request.body = std::move(body);
  request.headers = headers_;
  if (!request.body.empty() && !content_type.empty()) {
    request.headers.push_back(absl::StrCat("Content-Type: ", content_type));
  }
  return http_.Send(request);
}

absl::StatusOr<HttpResponse> AgentClient::LongPoll(const std::string& path, absl::Duration timeout,
                                                   std::vector<std::string> response_headers,
                                                   StreamCancel* cancel) {
  HttpRequest request;
  request.path = path;
  request.headers = headers_;
  request.timeout = timeout;
  request.response_headers = std::move(response_headers);
  // The watches read the index/hash headers only; the body (the whole listing, MBs for 10,000
  // services) is read and dropped but for what an error message shows.
  request.keep_body_bytes = 64 << 10;
  return http_.LongPoll(request, cancel);
}

absl::Status AgentClient::PingLeader(absl::string_view who) {
  absl::StatusOr<HttpResponse> response = Send("GET", "/v1/status/leader");
  if (!response.ok()) return response.status();
  if (absl::Status s = StatusFromResponse(*response, who); !s.ok()) return s;
  absl::StatusOr<std::string> leader = ParseLeader(response->body);
  if (!leader.ok())
    return absl::UnavailableError(absl::StrCat(who, ": ", leader.status().message()));
  if (leader->empty()) return absl::UnavailableError(absl::StrCat(who, ": no leader"));
  return absl::OkStatus();
}

}  // namespace registrator::consul
