// Endpoint failover, the /version probe, TLS and authentication for the etcd-family adapters.
#include "adapters/etcd/etcd_transport.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "adapters/etcd/etcd_codec.h"
#include "registrator/common/host_port.h"
#include "registrator/common/log.h"

namespace registrator::etcd {
namespace {

constexpr absl::Duration kRequestTimeout = absl::Seconds(5);
constexpr absl::Duration kConnectTimeout = absl::Seconds(3);
constexpr int kDefaultPort = 2379;

ApiChoice ChooseApi(absl::string_view version) {
  ApiChoice choice;
  choice.v3_base = V3BasePathForVersion(version);
  choice.api = choice.v3_base.empty() ? EtcdApi::kV2 : EtcdApi::kV3;
  return choice;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Transport>> Transport::Create(const BackendUri& uri,
                                                             const AdapterOptions& options,
                                                             std::string backend_name,
                                                             EtcdApi api) {
  std::vector<std::string> hosts = uri.hosts;
  if (hosts.empty()) hosts.push_back(JoinHostPort("127.0.0.1", kDefaultPort));

  const std::string ca = options.Env("ETCDCTL_CACERT");
  const std::string cert = options.Env("ETCDCTL_CERT");
  const std::string key = options.Env("ETCDCTL_KEY");
  const bool tls = !ca.empty() || !cert.empty() || !key.empty();
  if (cert.empty() != key.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(backend_name, ": ETCDCTL_CERT and ETCDCTL_KEY must be set together"));
  }
  const std::string skip_verify =
      absl::AsciiStrToLower(options.Env("ETCDCTL_INSECURE_SKIP_TLS_VERIFY"));

  std::string user;
  std::string password;
  if (!uri.userinfo.empty()) {
    const size_t colon = uri.userinfo.find(':');
    user = uri.userinfo.substr(0, colon);
    if (colon != std::string::npos) password = uri.userinfo.substr(colon + 1);
    if (user.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(backend_name, " URI has a password but no user name"));
    }
  }

  std::vector<std::unique_ptr<HttpClient>> clients;
  std::vector<std::string> names;
  for (const std::string& host : hosts) {
    absl::StatusOr<HostPort> address = SplitHostPort(host, kDefaultPort);
    if (!address.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(backend_name, " endpoint: ", address.status().message()));
    }
    HttpEndpoint endpoint;
    endpoint.base_url = absl::StrCat(tls ? "https://" : "http://", address->ToString());
    endpoint.ca_file = ca;
    endpoint.cert_file = cert;
    endpoint.key_file = key;
    endpoint.verify_peer = !(skip_verify == "true" || skip_verify == "1");
    endpoint.connect_timeout = kConnectTimeout;
    names.push_back(endpoint.base_url);
    clients.push_back(std::make_unique<HttpClient>(std::move(endpoint)));
  }
  return std::unique_ptr<Transport>(new Transport(std::move(backend_name), api, std::move(clients),
                                                  std::move(names), std::move(user),
                                                  std::move(password)));
}

Transport::Transport(std::string backend_name, EtcdApi api,
                     std::vector<std::unique_ptr<HttpClient>> clients,
                     std::vector<std::string> endpoint_names, std::string user,
                     std::string password)
    : backend_name_(std::move(backend_name)),
      clients_(std::move(clients)),
      endpoint_names_(std::move(endpoint_names)),
      user_(std::move(user)),
      password_(std::move(password)) {
  if (api != EtcdApi::kAuto) {
    api_.api = api;
    api_resolved_ = true;
  }
}

// Sends to the endpoint that worked last, failing over to the next ones on a transport error or
// a 503 (a member without a leader). Any other reply is returned as is.
absl::StatusOr<HttpResponse> Transport::SendToAnyEndpoint(const HttpRequest& request) {
  size_t start = 0;
  {
    absl::MutexLock lock(&mu_);
    start = current_endpoint_;
  }
  absl::Status last;
  for (size_t i = 0; i < clients_.size(); ++i) {
    const size_t index = (start + i) % clients_.size();
    absl::StatusOr<HttpResponse> reply = clients_[index]->Send(request);
    if (reply.ok() && reply->status != 503) {
      if (i != 0) {
        REG_LOG_WARN(backend_name_, ": switched to endpoint ", endpoint_names_[index]);
        absl::MutexLock lock(&mu_);
        current_endpoint_ = index;
      }
      return reply;
    }
    if (reply.ok()) {
      last = ErrorFromReply(reply->status, reply->body, request.path);
    } else if (absl::IsUnavailable(reply.status()) || absl::IsDeadlineExceeded(reply.status())) {
      last = reply.status();
    } else {
      return reply.status();
    }
    REG_LOG_DEBUG(backend_name_, ": endpoint ", endpoint_names_[index],
                  " failed: ", last.message());
  }
  return absl::UnavailableError(absl::StrCat(backend_name_, ": no endpoint of ",
                                             absl::StrJoin(endpoint_names_, ","),
                                             " answered: ", last.message()));
}

std::optional<ApiChoice> Transport::KnownApi() {
  absl::MutexLock lock(&mu_);
  if (!api_resolved_) return std::nullopt;
  return api_;
}

absl::StatusOr<ApiChoice> Transport::Api() {
  {
    absl::MutexLock lock(&mu_);
    if (api_resolved_) return api_;
  }
  HttpRequest request;
  request.path = "/version";
  request.timeout = kRequestTimeout;
  absl::StatusOr<HttpResponse> reply = SendToAnyEndpoint(request);
  if (!reply.ok()) return reply.status();
  if (reply->status != 200) return ErrorFromReply(reply->status, reply->body, "/version");
  absl::StatusOr<std::string> version = ParseVersion(reply->body);
  if (!version.ok()) {
    // etcd 2.0 answered plain text ("etcd 2.0.13"); only the v2 API can be there.
    REG_LOG_WARN(backend_name_, ": ", version.status().message(), "; assuming etcd 2");
    version = std::string("2");
  }
  const ApiChoice choice = ChooseApi(*version);
  REG_LOG_INFO(backend_name_, ": etcd server ", *version, ", using the ",
               choice.api == EtcdApi::kV3 ? absl::StrCat("v3 API (", choice.v3_base, ")")
                                          : std::string("v2 keys API"));
  absl::MutexLock lock(&mu_);
  api_ = choice;
  api_resolved_ = true;
  return api_;
}

absl::StatusOr<std::string> Transport::V3Authenticate(const ApiChoice& api) {
  HttpRequest request;
  request.method = "POST";
  request.path = absl::StrCat(api.v3_base, "/auth/authenticate");
  request.body = V3AuthenticateBody(user_, password_);
  request.headers = {"Content-Type: application/json"};
  request.timeout = kRequestTimeout;
  absl::StatusOr<HttpResponse> reply = SendToAnyEndpoint(request);
  if (!reply.ok()) return reply.status();
  if (reply->status / 100 != 2) {
    return ErrorFromReply(reply->status, reply->body,
                          absl::StrCat("authenticate as \"", user_, "\""));
  }
  absl::StatusOr<std::string> token = ParseV3AuthToken(reply->body);
  if (!token.ok()) return token.status();
  absl::MutexLock lock(&mu_);
  token_ = *token;
  return token_;
}

absl::StatusOr<std::string> Transport::V3Call(const ApiChoice& api, absl::string_view op,
                                              const std::string& body, absl::string_view what) {
  for (int attempt = 0;; ++attempt) {
    std::string token;
    if (!user_.empty()) {
      {
        absl::MutexLock lock(&mu_);
        token = token_;
      }
      if (token.empty()) {
        absl::StatusOr<std::string> fresh = V3Authenticate(api);
        if (!fresh.ok()) return fresh.status();
        token = *fresh;
      }
    }
    HttpRequest request;
    request.method = "POST";
    request.path = absl::StrCat(api.v3_base, "/", op);
    request.body = body;
    request.headers = {"Content-Type: application/json"};
    if (!token.empty()) request.headers.push_back(absl::StrCat("Authorization: ", token));
    request.timeout = kRequestTimeout;
    absl::StatusOr<HttpResponse> reply = SendToAnyEndpoint(request);
    if (!reply.ok()) return reply.status();
    if (reply->status / 100 == 2) return std::move(reply->body);
    absl::Status error = ErrorFromReply(reply->status, reply->body, what);
    // Tokens expire (simple tokens after 5 minutes idle): authenticate again, once.
    if (attempt == 0 && !user_.empty() &&
        (absl::IsUnauthenticated(error) || absl::StrContains(error.message(), "auth token"))) {
      REG_LOG_INFO(backend_name_, ": auth token rejected (", error.message(),
                   "), authenticating again");
      absl::MutexLock lock(&mu_);
      if (token_ == token) token_.clear();
      continue;
    }
    return error;
  }
}

absl::StatusOr<HttpResponse> Transport::V2Send(const std::string& method, const std::string& path,
                                               const std::string& form) {
  HttpRequest request;
  request.method = method;
  request.path = path;
  request.body = form;
  if (!form.empty()) request.headers = {"Content-Type: application/x-www-form-urlencoded"};
  // v2 authenticates every request with basic auth (v3 uses a token instead, so the header is
  // added here rather than configured on the shared clients).
  if (!user_.empty()) {
    request.headers.push_back(absl::StrCat(
        "Authorization: Basic ", absl::Base64Escape(absl::StrCat(user_, ":", password_))));
  }
  request.timeout = kRequestTimeout;
  return SendToAnyEndpoint(request);
}

absl::Status Transport::Stream(const ApiChoice& api, HttpRequest request,
                               const std::function<bool(absl::string_view)>& on_data,
                               StreamCancel* cancel, const std::function<void()>& on_live) {
  if (!user_.empty()) {
    if (api.api == EtcdApi::kV3) {
      std::string token;
      {
        absl::MutexLock lock(&mu_);
        token = token_;
      }
      if (token.empty()) {
        absl::StatusOr<std::string> fresh = V3Authenticate(api);
        if (!fresh.ok()) return fresh.status();
        token = *fresh;
      }
      request.headers.push_back(absl::StrCat("Authorization: ", token));
    } else {
      request.headers.push_back(absl::StrCat(
          "Authorization: Basic ", absl::Base64Escape(absl::StrCat(user_, ":", password_))));
    }
  }
  size_t index = 0;
  {
    absl::MutexLock lock(&mu_);
    index = current_endpoint_;
  }
  absl::Status status = clients_[index]->Stream(request, on_data, cancel, on_live);
  if (absl::IsUnavailable(status) && clients_.size() > 1) {
    absl::MutexLock lock(&mu_);
    if (current_endpoint_ == index) current_endpoint_ = (index + 1) % clients_.size();
  } else if (!user_.empty() && api.api == EtcdApi::kV3 &&
             (absl::StrContains(status.message(), "auth token") ||
              absl::StrContains(status.message(), "HTTP 401"))) {
    // An expired token: the next attempt authenticates again.
    absl::MutexLock lock(&mu_);
    token_.clear();
  }
  return status;
}

}  // namespace registrator::etcd
