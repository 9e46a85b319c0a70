// What the Consul adapters (agent services and KV) share: where the agent is (URI host,
// CONSUL_HTTP_ADDR, TLS files, unix socket), the ACL token header, mapping Consul's HTTP
// answers to absl::Status, and JSON string quoting.
#ifndef ADAPTERS_CONSUL_CONSUL_HTTP_H_
#define ADAPTERS_CONSUL_CONSUL_HTTP_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "registrator/common/http_client.h"
#include "registrator/common/json.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"

namespace registrator::consul {

enum class Transport { kHttp, kHttps, kUnix };

// The agent's endpoint. `host` is "host:port" from the URI (may be empty: then
// CONSUL_HTTP_ADDR, which may be "host:port", "http(s)://host:port" or "unix:///path", else
// 127.0.0.1:8500). For kUnix, `unix_path` is the socket. HTTPS verifies the server with
// CONSUL_CACERT (or the system CAs) and presents CONSUL_CLIENT_CERT / CONSUL_CLIENT_KEY if set.
absl::StatusOr<HttpEndpoint> ResolveEndpoint(Transport transport, const std::string& host,
                                             const std::string& unix_path,
                                             const AdapterOptions& options);

// Headers for every request: the ACL token (CONSUL_HTTP_TOKEN) if any. Never logged.
std::vector<std::string> TokenHeaders(const AdapterOptions& options);

// OK for 2xx. Otherwise: 403 -> PERMISSION_DENIED, other 4xx -> INVALID_ARGUMENT (retrying the
// same request cannot help), 5xx -> UNAVAILABLE. The message names `what` and Consul's answer.
absl::Status StatusFromResponse(const HttpResponse& response, absl::string_view what);

// Percent-encodes each "/"-separated segment of `path`, keeping the slashes.
std::string EncodePath(absl::string_view path);

}  // namespace registrator::consul

#endif  // ADAPTERS_CONSUL_CONSUL_HTTP_H_
