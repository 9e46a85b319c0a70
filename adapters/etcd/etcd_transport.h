// How the etcd-family adapters reach etcd: the endpoint list with failover, the /version probe
// that picks the v2 or v3 API (and the v3 gateway's base path), TLS from the ETCDCTL_*
// variables, and authentication (a v3 token, v2 basic auth).
//
// Endpoints: "etcd://a:2379,b:2379" tries them in order and fails over to the next on a
// transport failure or a 503; a host without a port gets :2379; no host means 127.0.0.1:2379.
// TLS: plain http unless the environment has ETCDCTL_CACERT, ETCDCTL_CERT or ETCDCTL_KEY (the
// variables etcdctl itself reads): then https, verifying the server against ETCDCTL_CACERT (or
// the system CAs) and presenting ETCDCTL_CERT/ETCDCTL_KEY as client certificate;
// ETCDCTL_INSECURE_SKIP_TLS_VERIFY=true disables verification. The URI scheme stays etcd.
// Auth: "etcd://user:pass@host": v3 authenticates (POST /v3/auth/authenticate) and sends the
// token, re-authenticating once when etcd rejects it; v2 uses HTTP basic auth.
#ifndef ADAPTERS_ETCD_ETCD_TRANSPORT_H_
#define ADAPTERS_ETCD_ETCD_TRANSPORT_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "registrator/common/http_client.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"

namespace registrator {

enum class EtcdApi { kAuto, kV2, kV3 };

namespace etcd {

// Which wire API, and for v3 the gateway's base path (it moved from /v3alpha to /v3beta to /v3).
struct ApiChoice {
  EtcdApi api = EtcdApi::kAuto;
  std::string v3_base = "/v3";
};

class Transport {
 public:
  // Validates the URI's endpoints and user, and the ETCDCTL_* variables; no network call.
  // `backend_name` starts messages ("etcd", "skydns2"); `api` kAuto probes on first use.
  static absl::StatusOr<std::unique_ptr<Transport>> Create(const BackendUri& uri,
                                                           const AdapterOptions& options,
                                                           std::string backend_name, EtcdApi api);

  // The API to speak; for kAuto the first call asks GET /version (later calls remember it).
  absl::StatusOr<ApiChoice> Api();
  // The API once known (a forced one, or after Api() probed it); nullopt before. No network
  // call, so a thread that must stop promptly can wait for someone else's probe.
  std::optional<ApiChoice> KnownApi();
  // POSTs `body` to <v3 base>/<op> (with the auth token when a user is configured); the 2xx body,
  // or etcd's error (see ErrorFromReply). `what` names the request in messages.
  absl::StatusOr<std::string> V3Call(const ApiChoice& api, absl::string_view op,
                                     const std::string& body, absl::string_view what);
  // One v2 keys API request (a form body when `form` is not empty); the reply as it came.
  absl::StatusOr<HttpResponse> V2Send(const std::string& method, const std::string& path,
                                      const std::string& form);

  // A long-lived request (the drift watch: a v3 watch stream, a v2 wait): streams the reply of
  // `request` from the endpoint that answered last to `on_data`, with the v3 token (`api` v3,
  // authenticating first when a user is configured) or v2 basic auth. See HttpClient::Stream for
  // the result; after a transport failure the next call tries the next endpoint.
  absl::Status Stream(const ApiChoice& api, HttpRequest request,
                      const std::function<bool(absl::string_view)>& on_data, StreamCancel* cancel,
                      const std::function<void()>& on_live);

  const std::string& backend_name() const { return backend_name_; }

 private:
  Transport(std::string backend_name, EtcdApi api, std::vector<std::unique_ptr<HttpClient>> clients,
            std::vector<std::string> endpoint_names, std::string user, std::string password);

  absl::StatusOr<HttpResponse> SendToAnyEndpoint(const HttpRequest& request);
  absl::StatusOr<std::string> V3Authenticate(const ApiChoice& api);

  const std::string backend_name_;
  const std::vector<std::unique_ptr<HttpClient>> clients_;
  const std::vector<std::string> endpoint_names_;
  const std::string user_;
  const std::string password_;

  absl::Mutex mu_;
  size_t current_endpoint_ ABSL_GUARDED_BY(mu_) = 0;  // The endpoint that answered last.
  bool api_resolved_ ABSL_GUARDED_BY(mu_) = false;
  ApiChoice api_ ABSL_GUARDED_BY(mu_);
  std::string token_ ABSL_GUARDED_BY(mu_);  // v3 auth token, "" until authenticated.
};

}  // namespace etcd
}  // namespace registrator

#endif  // ADAPTERS_ETCD_ETCD_TRANSPORT_H_
