// How the Consul adapters (agent services and KV) talk to the agent: where it is (URI host,
// CONSUL_HTTP_ADDR, TLS files, unix socket), the ACL token on every request, the leader ping,
// and how Consul's HTTP answers map to absl::Status (which the bridge reads to decide whether a
// write is retried).
#ifndef ADAPTERS_CONSUL_CONSUL_TRANSPORT_H_
#define ADAPTERS_CONSUL_CONSUL_TRANSPORT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "registrator/common/http_client.h"
#include "registrator/model/adapter_options.h"

namespace registrator::consul {

enum class Transport { kHttp, kHttps, kUnix };

// The agent's endpoint. `host` is "host:port" from the URI (may be empty: then
// CONSUL_HTTP_ADDR, which may be "host:port", "http(s)://host:port" or "unix:///path", else
// 127.0.0.1:8500). For kUnix, `unix_path` is the socket. HTTPS verifies the server with
// CONSUL_CACERT (or the system CAs) and presents CONSUL_CLIENT_CERT / CONSUL_CLIENT_KEY if set.
absl::StatusOr<HttpEndpoint> ResolveEndpoint(Transport transport, const std::string& host,
                                             const std::string& unix_path,
                                             const AdapterOptions& options);

// OK for 2xx. Otherwise the code tells the bridge whether to retry:
//   400 -> INVALID_ARGUMENT: Consul rejected what we sent (a validation error); the same request
//          will be rejected again, so the bridge waits until the service changes.
//   403 -> PERMISSION_DENIED: the ACL token lacks a permission; retried with backoff (an
//          operator may fix the policy).
//   anything else (404, 408, 413, 429 from the agent or a proxy in front of it, 5xx) ->
//          UNAVAILABLE: retried with backoff.
// The message names `what` and Consul's answer.
absl::Status StatusFromResponse(const HttpResponse& response, absl::string_view what);

// One agent: its endpoint plus the ACL token (CONSUL_HTTP_TOKEN, never logged) on every request.
class AgentClient {
 public:
  AgentClient(HttpEndpoint endpoint, const AdapterOptions& options);

  // Sends one request; `content_type` is sent when `body` is not empty.
  absl::StatusOr<HttpResponse> Send(const std::string& method, const std::string& path,
                                    std::string body = "", absl::string_view content_type = "");
  // One blocking query (GET `path`, already carrying ?index= or ?hash= and ?wait=): as Send, but
  // bounded by `timeout`, returning `response_headers`, and ended at once by `cancel`.
  absl::StatusOr<HttpResponse> LongPoll(const std::string& path, absl::Duration timeout,
                                        std::vector<std::string> response_headers,
                                        StreamCancel* cancel);
  // GET /v1/status/leader: OK when the cluster has a leader, UNAVAILABLE otherwise. `who` starts
  // the messages ("consul ping").
  absl::Status PingLeader(absl::string_view who);

 private:
  HttpClient http_;
  const std::vector<std::string> headers_;
};

}  // namespace registrator::consul

#endif  // ADAPTERS_CONSUL_CONSUL_TRANSPORT_H_
