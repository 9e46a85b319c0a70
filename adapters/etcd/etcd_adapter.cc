#include "adapters/etcd/etcd_adapter.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "adapters/etcd/etcd_codec.h"
#include "registrator/common/http_client.h"
#include "registrator/common/log.h"

namespace registrator {
namespace {

using etcd::KeyValue;

constexpr absl::Duration kRequestTimeout = absl::Seconds(5);
constexpr absl::Duration kConnectTimeout = absl::Seconds(3);

// Which wire API, and for v3 the gateway's base path (it moved from /v3alpha to /v3beta to /v3).
struct ApiChoice {
  EtcdApi api = EtcdApi::kAuto;
  std::string v3_base = "/v3";
};

ApiChoice ChooseApi(absl::string_view version) {
  ApiChoice choice;
  choice.v3_base = etcd::V3BasePathForVersion(version);
  choice.api = choice.v3_base.empty() ? EtcdApi::kV2 : EtcdApi::kV3;
  return choice;
}

std::string B64(absl::string_view bytes) { return absl::Base64Escape(bytes); }

// "/a/b c" -> "/a/b%20c": each path segment percent-encoded for the v2 keys URL.
std::string V2KeyPath(absl::string_view key) {
  std::vector<std::string> segments;
  for (absl::string_view segment : absl::StrSplit(key, '/')) segments.push_back(UrlEncode(segment));
  return absl::StrCat("/v2/keys", absl::StrJoin(segments, "/"));
}

class EtcdAdapter : public RegistryAdapter {
 public:
  EtcdAdapter(EtcdFamilyConfig config, AdapterOptions options,
              std::vector<std::unique_ptr<HttpClient>> clients,
              std::vector<std::string> endpoint_names, std::string user, std::string password)
      : config_(std::move(config)),
        options_(std::move(options)),
        clients_(std::move(clients)),
        endpoint_names_(std::move(endpoint_names)),
        user_(std::move(user)),
        password_(std::move(password)) {
    if (config_.api != EtcdApi::kAuto) {
      api_.api = config_.api;
      api_resolved_ = true;
    }
  }

  absl::Status Ping() override {
    absl::StatusOr<ApiChoice> api = CurrentApi();
    if (!api.ok()) return api.status();
    if (api->api == EtcdApi::kV3) {
      const std::string start = etcd::ListingPrefix(config_.prefix);
      const std::string body =
          absl::StrCat("{\"key\":\"", B64(start), "\",\"range_end\":\"",
                       B64(etcd::PrefixRangeEnd(start)), "\",\"count_only\":true}");
      return V3Call(*api, "kv/range", body, "ping (kv/range)").status();
    }
    absl::StatusOr<HttpResponse> reply = V2Send("GET", "/v2/keys/", "");
    if (!reply.ok()) return reply.status();
    if (reply->status == 404) {
      return etcd::ErrorFromReply(
          reply->status, reply->body,
          "ping: the v2 keys API is not served (etcd 3.4 needs --enable-v2=true; or use etcd3://)");
    }
    if (reply->status != 200) return etcd::ErrorFromReply(reply->status, reply->body, "ping (v2)");
    return absl::OkStatus();
  }

  absl::Status Register(const Service& service) override {
    if (service.name.empty() || service.id.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(config_.backend_name, ": service \"",
                                                     service.id, "\" needs a name and an ID"));
    }
    absl::StatusOr<ApiChoice> api = CurrentApi();
    if (!api.ok()) return api.status();
    const std::string key = etcd::ServiceKey(config_.prefix, service);
    const std::string value = config_.encode_value(service);
    if (api->api == EtcdApi::kV2) return V2Put(key, value);
    return V3PutOnSharedLease(*api, key, value, /*report_loss=*/true);
  }

  absl::Status Deregister(const Service& service) override {
    absl::StatusOr<ApiChoice> api = CurrentApi();
    if (!api.ok()) return api.status();
    const std::string key = etcd::ServiceKey(config_.prefix, service);
    if (api->api == EtcdApi::kV2) {
      absl::StatusOr<HttpResponse> reply = V2Send("DELETE", V2KeyPath(key), "");
      if (!reply.ok()) return reply.status();
      if (reply->status == 404 || reply->status / 100 == 2) return absl::OkStatus();
      return etcd::ErrorFromReply(reply->status, reply->body, absl::StrCat("delete ", key));
    }
    absl::Status status =
        V3Call(*api, "kv/deleterange", absl::StrCat("{\"key\":\"", B64(key), "\"}"),
               absl::StrCat("delete ", key))
            .status();
    // Forgotten only once gone: a key that failed to delete stays on the lease's books, so a
    // later Refresh without it still lets it expire.
    if (status.ok()) {
      absl::MutexLock lock(&mu_);
      on_lease_.erase(key);
    }
    return status;
  }

  absl::Status Refresh(const std::vector<Service>& services) override {
    if (options_.ttl <= 0) return absl::OkStatus();
    absl::StatusOr<ApiChoice> api = CurrentApi();
    if (!api.ok()) return api.status();
    std::map<std::string, std::string> wanted;
    for (const Service& service : services) {
      if (service.name.empty() || service.id.empty()) continue;
      wanted[etcd::ServiceKey(config_.prefix, service)] = config_.encode_value(service);
    }
    if (api->api == EtcdApi::kV2) return V2Refresh(wanted);
    return V3Refresh(*api, wanted);
  }

  absl::StatusOr<std::vector<RegisteredService>> Services() override {
    absl::StatusOr<ApiChoice> api = CurrentApi();
    if (!api.ok()) return api.status();
    std::vector<KeyValue> kvs;
    const std::string start = etcd::ListingPrefix(config_.prefix);
    if (api->api == EtcdApi::kV3) {
      absl::StatusOr<std::string> body =
          V3Call(*api, "kv/range",
                 absl::StrCat("{\"key\":\"", B64(start), "\",\"range_end\":\"",
                              B64(etcd::PrefixRangeEnd(start)), "\"}"),
                 absl::StrCat("list ", start));
      if (!body.ok()) return body.status();
      absl::StatusOr<std::vector<KeyValue>> parsed = etcd::ParseV3Range(*body);
      if (!parsed.ok()) return parsed.status();
      kvs = std::move(*parsed);
    } else {
      absl::StatusOr<HttpResponse> reply =
          V2Send("GET", absl::StrCat(V2KeyPath(config_.prefix), "/?recursive=true"), "");
      if (!reply.ok()) return reply.status();
      if (reply->status == 404) return std::vector<RegisteredService>();
      if (reply->status != 200) {
        return etcd::ErrorFromReply(reply->status, reply->body, absl::StrCat("list ", start));
      }
      absl::StatusOr<std::vector<KeyValue>> parsed = etcd::ParseV2Listing(reply->body);
      if (!parsed.ok()) return parsed.status();
      kvs = std::move(*parsed);
    }
    int64_t lease = 0;
    {
      absl::MutexLock lock(&mu_);
      lease = lease_;
    }
    std::vector<RegisteredService> out;
    for (const KeyValue& kv : kvs) {
      RegisteredService entry;
      if (!etcd::SplitServiceKey(config_.prefix, kv.key, &entry.service.name, &entry.service.id)) {
        continue;
      }
      // An unparsable value is still listed (so -cleanup can remove it); its fingerprint
      // cannot match anything we would write.
      config_.decode_value(kv.value, &entry.service.ip, &entry.service.port);
      entry.fingerprint = absl::StrCat(kv.key, "=", kv.value);
      // The lease is part of what we hold: a key on another lease (a previous run's, or one
      // left to expire) or without the TTL we want is not what Register would write, so the
      // bridge rewrites it. A renewal of our own lease changes nothing here.
      bool expiry_differs = false;
      if (api->api == EtcdApi::kV3) {
        expiry_differs = options_.ttl > 0 ? (kv.lease == 0 || kv.lease != lease) : kv.lease != 0;
        if (expiry_differs) absl::StrAppend(&entry.fingerprint, " (lease ", kv.lease, ")");
      } else {
        expiry_differs = kv.has_ttl != (options_.ttl > 0);
        if (expiry_differs)
          absl::StrAppend(&entry.fingerprint, kv.has_ttl ? " (ttl)" : " (no ttl)");
      }
      out.push_back(std::move(entry));
    }
    return out;
  }

  std::string Fingerprint(const Service& service) const override {
    return absl::StrCat(etcd::ServiceKey(config_.prefix, service), "=",
                        config_.encode_value(service));
  }

  void SetStateLostCallback(std::function<void()> request) override {
    absl::MutexLock lock(&mu_);
    state_lost_ = std::move(request);
  }

 private:
  // ---- Transport ------------------------------------------------------------------------------

  // Sends to the endpoint that worked last, failing over to the next ones on a transport error
  // or a 503 (a member without a leader). Any other reply is returned as is.
  absl::StatusOr<HttpResponse> SendAny(const HttpRequest& request) {
    size_t start = 0;
    {
      absl::MutexLock lock(&mu_);
      start = current_;
    }
    absl::Status last;
    for (size_t i = 0; i < clients_.size(); ++i) {
      const size_t index = (start + i) % clients_.size();
      absl::StatusOr<HttpResponse> reply = clients_[index]->Send(request);
      if (reply.ok() && reply->status != 503) {
        if (i != 0) {
          REG_LOG_WARN(config_.backend_name, ": switched to endpoint ", endpoint_names_[index]);
          absl::MutexLock lock(&mu_);
          current_ = index;
        }
        return reply;
      }
      if (reply.ok()) {
        last = etcd::ErrorFromReply(reply->status, reply->body, request.path);
      } else if (absl::IsUnavailable(reply.status()) || absl::IsDeadlineExceeded(reply.status())) {
        last = reply.status();
      } else {
        return reply.status();
      }
      REG_LOG_DEBUG(config_.backend_name, ": endpoint ", endpoint_names_[index],
                    " failed: ", last.message());
    }
    return absl::UnavailableError(absl::StrCat(config_.backend_name, ": no endpoint of ",
                                               absl::StrJoin(endpoint_names_, ","),
                                               " answered: ", last.message()));
  }

  // Which API to speak; for etcd:// the first call asks GET /version.
  absl::StatusOr<ApiChoice> CurrentApi() {
    {
      absl::MutexLock lock(&mu_);
      if (api_resolved_) return api_;
    }
    HttpRequest request;
    request.path = "/version";
    request.timeout = kRequestTimeout;
    absl::StatusOr<HttpResponse> reply = SendAny(request);
    if (!reply.ok()) return reply.status();
    if (reply->status != 200) return etcd::ErrorFromReply(reply->status, reply->body, "/version");
    absl::StatusOr<std::string> version = etcd::ParseVersion(reply->body);
    if (!version.ok()) {
      // etcd 2.0 answered plain text ("etcd 2.0.13"); only the v2 API can be there.
      REG_LOG_WARN(config_.backend_name, ": ", version.status().message(), "; assuming etcd 2");
      version = std::string("2");
    }
    const ApiChoice choice = ChooseApi(*version);
    REG_LOG_INFO(config_.backend_name, ": etcd server ", *version, ", using the ",
                 choice.api == EtcdApi::kV3 ? absl::StrCat("v3 API (", choice.v3_base, ")")
                                            : std::string("v2 keys API"));
    absl::MutexLock lock(&mu_);
    api_ = choice;
    api_resolved_ = true;
    return api_;
  }

  // ---- v3 -------------------------------------------------------------------------------------

  absl::StatusOr<std::string> V3Authenticate(const ApiChoice& api) {
    HttpRequest request;
    request.method = "POST";
    request.path = absl::StrCat(api.v3_base, "/auth/authenticate");
    request.body =
        absl::StrCat("{\"name\":", JsonString(user_), ",\"password\":", JsonString(password_), "}");
    request.headers = {"Content-Type: application/json"};
    request.timeout = kRequestTimeout;
    absl::StatusOr<HttpResponse> reply = SendAny(request);
    if (!reply.ok()) return reply.status();
    if (reply->status / 100 != 2) {
      return etcd::ErrorFromReply(reply->status, reply->body,
                                  absl::StrCat("authenticate as \"", user_, "\""));
    }
    absl::StatusOr<std::string> token = etcd::ParseV3AuthToken(reply->body);
    if (!token.ok()) return token.status();
    absl::MutexLock lock(&mu_);
    token_ = *token;
    return token_;
  }

  // POSTs `body` to <v3 base>/<op>; returns the 2xx body or etcd's error.
  absl::StatusOr<std::string> V3Call(const ApiChoice& api, absl::string_view op,
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
      absl::StatusOr<HttpResponse> reply = SendAny(request);
      if (!reply.ok()) return reply.status();
      if (reply->status / 100 == 2) return std::move(reply->body);
      absl::Status error = etcd::ErrorFromReply(reply->status, reply->body, what);
      // Tokens expire (simple tokens after 5 minutes idle): authenticate again, once.
      if (attempt == 0 && !user_.empty() &&
          (absl::IsUnauthenticated(error) || absl::StrContains(error.message(), "auth token"))) {
        REG_LOG_INFO(config_.backend_name, ": auth token rejected (", error.message(),
                     "), authenticating again");
        absl::MutexLock lock(&mu_);
        if (token_ == token) token_.clear();
        continue;
      }
      return error;
    }
  }

  absl::Status V3Put(const ApiChoice& api, const std::string& key, const std::string& value,
                     int64_t lease) {
    std::string body = absl::StrCat("{\"key\":\"", B64(key), "\",\"value\":\"", B64(value), "\"");
    if (lease != 0) absl::StrAppend(&body, ",\"lease\":\"", lease, "\"");
    body += "}";
    return V3Call(api, "kv/put", body, absl::StrCat("put ", key)).status();
  }

  absl::StatusOr<int64_t> V3Grant(const ApiChoice& api, int ttl) {
    absl::StatusOr<std::string> body =
        V3Call(api, "lease/grant", absl::StrCat("{\"TTL\":", ttl, "}"), "lease/grant");
    if (!body.ok()) return body.status();
    return etcd::ParseV3LeaseGrant(*body);
  }

  // The lease that carries this host's keys; granted on first need. One grant at a time: other
  // callers wait for it instead of granting leases of their own.
  absl::StatusOr<int64_t> SharedLease(const ApiChoice& api) {
    {
      absl::MutexLock lock(&mu_);
      while (granting_) granted_cv_.Wait(&mu_);
      if (lease_ != 0) return lease_;
      granting_ = true;
    }
    absl::StatusOr<int64_t> granted = V3Grant(api, options_.ttl);
    absl::MutexLock lock(&mu_);
    granting_ = false;
    granted_cv_.SignalAll();
    if (!granted.ok()) return granted.status();
    lease_ = *granted;
    on_lease_.clear();
    REG_LOG_INFO(config_.backend_name, ": granted lease ", lease_, " (ttl ", options_.ttl, "s)");
    return lease_;
  }

  // `lease` turned out to be gone. Returns the state-lost callback to call if this caller is the
  // one that noticed (so it fires once per lost lease), else an empty function.
  std::function<void()> ForgetLease(int64_t lease) {
    absl::MutexLock lock(&mu_);
    if (lease_ != lease || lease == 0) return nullptr;
    REG_LOG_WARN(config_.backend_name, ": lease ", lease,
                 " is gone (expired or revoked); its keys were deleted by etcd");
    lease_ = 0;
    on_lease_.clear();
    return state_lost_ ? state_lost_ : [] {};
  }

  // Puts key=value (on the shared lease when -ttl is set), replacing a lost lease once.
  absl::Status V3PutOnSharedLease(const ApiChoice& api, const std::string& key,
                                  const std::string& value, bool report_loss) {
    if (options_.ttl <= 0) return V3Put(api, key, value, 0);
    absl::Status status;
    for (int attempt = 0; attempt < 2; ++attempt) {
      absl::StatusOr<int64_t> lease = SharedLease(api);
      if (!lease.ok()) return lease.status();
      status = V3Put(api, key, value, *lease);
      if (status.ok()) {
        absl::MutexLock lock(&mu_);
        if (lease_ == *lease) on_lease_[key] = value;
        return status;
      }
      if (!etcd::IsLeaseNotFound(status)) return status;
      std::function<void()> lost = ForgetLease(*lease);
      if (lost && report_loss) lost();
    }
    return status;
  }

  absl::Status V3Refresh(const ApiChoice& api, const std::map<std::string, std::string>& wanted) {
    int64_t lease = 0;
    {
      absl::MutexLock lock(&mu_);
      lease = lease_;
    }
    bool lease_lost = false;
    if (lease != 0) {
      absl::StatusOr<std::string> body =
          V3Call(api, "lease/keepalive", absl::StrCat("{\"ID\":\"", lease, "\"}"),
                 absl::StrCat("lease/keepalive ", lease));
      absl::StatusOr<int64_t> ttl =
          body.ok() ? etcd::ParseV3KeepAlive(*body) : absl::StatusOr<int64_t>(body.status());
      if (!ttl.ok() && !etcd::IsLeaseNotFound(ttl.status())) return ttl.status();
      if (!ttl.ok() || *ttl == 0) {
        // Expired during an outage, or revoked: its keys are gone. Restored below from
        // `wanted`.
        ForgetLease(lease);
        lease_lost = true;
      }
    }

    // What is on our lease but no longer live is moved off it (to expire); what is live but
    // not on it (lease replaced, or written by an earlier run) is put on it.
    std::map<std::string, std::string> orphans;
    std::vector<std::pair<std::string, std::string>> missing;
    {
      absl::MutexLock lock(&mu_);
      for (auto it = on_lease_.begin(); it != on_lease_.end();) {
        if (wanted.count(it->first) == 0) {
          orphans.insert(*it);
          it = on_lease_.erase(it);
        } else {
          ++it;
        }
      }
      for (const auto& [key, value] : wanted) {
        if (on_lease_.count(key) == 0) missing.emplace_back(key, value);
      }
    }

    absl::Status first_error;
    for (const auto& [key, value] : missing) {
      absl::Status status = V3PutOnSharedLease(api, key, value, /*report_loss=*/false);
      if (!status.ok() && first_error.ok()) first_error = status;
    }
    if (!first_error.ok() && lease_lost) {
      // The bridge must rewrite what we could not; a key that merely failed to be put (not
      // lost with the lease) is retried by the next Refresh instead.
      REG_LOG_WARN(config_.backend_name, ": could not restore live keys: ", first_error.message());
      std::function<void()> lost;
      {
        absl::MutexLock lock(&mu_);
        lost = state_lost_;
      }
      if (lost) lost();
    }

    if (!orphans.empty()) {
      absl::Status status = MoveToExpiringLease(api, orphans);
      if (!status.ok() && first_error.ok()) first_error = status;
    }
    return first_error;
  }

  // Moves each key (if it still holds the value we wrote) onto a fresh lease that nobody renews.
  absl::Status MoveToExpiringLease(const ApiChoice& api,
                                   const std::map<std::string, std::string>& orphans) {
    absl::StatusOr<int64_t> lease = V3Grant(api, options_.ttl);
    absl::Status first_error;
    if (lease.ok()) {
      for (const auto& [key, value] : orphans) {
        const std::string body =
            absl::StrCat("{\"compare\":[{\"key\":\"", B64(key),
                         "\",\"target\":\"VALUE\",\"result\":\"EQUAL\","
                         "\"value\":\"",
                         B64(value), "\"}],\"success\":[{\"request_put\":{\"key\":\"", B64(key),
                         "\",\"value\":\"", B64(value), "\",\"lease\":\"", *lease, "\"}}]}");
        absl::StatusOr<std::string> reply =
            V3Call(api, "kv/txn", body, absl::StrCat("move ", key, " to an expiring lease"));
        if (reply.ok()) {
          REG_LOG_INFO(config_.backend_name, ": ", key, " is no longer refreshed; expires in ",
                       options_.ttl, "s");
          continue;
        }
        if (first_error.ok()) first_error = reply.status();
        // Try again on the next Refresh.
        absl::MutexLock lock(&mu_);
        on_lease_.insert({key, value});
      }
      return first_error;
    }
    absl::MutexLock lock(&mu_);
    for (const auto& entry : orphans) on_lease_.insert(entry);
    return lease.status();
  }

  // ---- v2 -------------------------------------------------------------------------------------

  absl::StatusOr<HttpResponse> V2Send(const std::string& method, const std::string& path,
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
    return SendAny(request);
  }

  absl::Status V2Put(const std::string& key, const std::string& value) {
    std::string form = absl::StrCat("value=", UrlEncode(value));
    if (options_.ttl > 0) absl::StrAppend(&form, "&ttl=", options_.ttl);
    absl::StatusOr<HttpResponse> reply = V2Send("PUT", V2KeyPath(key), form);
    if (!reply.ok()) return reply.status();
    if (reply->status / 100 == 2) return absl::OkStatus();
    return etcd::ErrorFromReply(reply->status, reply->body, absl::StrCat("put ", key));
  }

  absl::Status V2Refresh(const std::map<std::string, std::string>& wanted) {
    absl::Status first_error;
    for (const auto& [key, value] : wanted) {
      // refresh=true renews the ttl without a change event; a key that already expired is
      // written again.
      absl::StatusOr<HttpResponse> reply = V2Send(
          "PUT", V2KeyPath(key), absl::StrCat("refresh=true&prevExist=true&ttl=", options_.ttl));
      absl::Status status;
      if (!reply.ok()) {
        status = reply.status();
      } else if (reply->status == 404) {
        status = V2Put(key, value);
      } else if (reply->status / 100 != 2) {
        status = etcd::ErrorFromReply(reply->status, reply->body, absl::StrCat("refresh ", key));
      }
      if (!status.ok() && first_error.ok()) first_error = status;
    }
    return first_error;
  }

  const EtcdFamilyConfig config_;
  const AdapterOptions options_;
  const std::vector<std::unique_ptr<HttpClient>> clients_;
  const std::vector<std::string> endpoint_names_;
  const std::string user_;
  const std::string password_;

  absl::Mutex mu_;
  absl::CondVar granted_cv_;
  size_t current_ ABSL_GUARDED_BY(mu_) = 0;  // Index of the endpoint that answered last.
  bool api_resolved_ ABSL_GUARDED_BY(mu_) = false;
  ApiChoice api_ ABSL_GUARDED_BY(mu_);
  std::string token_ ABSL_GUARDED_BY(mu_);  // v3 auth token, "" until authenticated.
  int64_t lease_ ABSL_GUARDED_BY(mu_) = 0;  // The shared lease, 0 while none is granted.
  bool granting_ ABSL_GUARDED_BY(mu_) = false;
  // Keys written on lease_ (key -> value): what Refresh keeps alive.
  std::map<std::string, std::string> on_lease_ ABSL_GUARDED_BY(mu_);
  std::function<void()> state_lost_ ABSL_GUARDED_BY(mu_);
};

// "host[:port]" -> "host:port" (default 2379); IPv6 must be bracketed.
absl::StatusOr<std::string> NormalizeHost(absl::string_view backend, absl::string_view host) {
  const std::string bad = absl::StrCat(backend, " endpoint \"", host, "\"");
  if (host.empty() || absl::StrContains(host, "://") ||
      std::any_of(host.begin(), host.end(),
                  [](char c) { return absl::ascii_isspace(static_cast<unsigned char>(c)); })) {
    return absl::InvalidArgumentError(absl::StrCat(bad, " must look like host:port"));
  }
  absl::string_view port;
  if (host[0] == '[') {
    const size_t close = host.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(bad, " has an unclosed \"[\""));
    }
    absl::string_view rest = host.substr(close + 1);
    if (rest.empty()) return absl::StrCat(host, ":2379");
    if (!absl::ConsumePrefix(&rest, ":")) {
      return absl::InvalidArgumentError(absl::StrCat(bad, " must look like [v6]:port"));
    }
    port = rest;
  } else {
    const size_t colon = host.find(':');
    if (colon == absl::string_view::npos) return absl::StrCat(host, ":2379");
    if (host.find(':', colon + 1) != absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(bad, ": put an IPv6 address in brackets"));
    }
    port = host.substr(colon + 1);
  }
  int number = 0;
  if (!absl::SimpleAtoi(port, &number) || number <= 0 || number > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(bad, " has an invalid port \"", port, "\""));
  }
  return std::string(host);
}

}  // namespace

absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewEtcdFamilyAdapter(const BackendUri& uri,
                                                                      const AdapterOptions& options,
                                                                      EtcdFamilyConfig config) {
  if (config.encode_value == nullptr || config.decode_value == nullptr) {
    return absl::InvalidArgumentError("etcd family adapter needs a value codec");
  }
  if (options.ttl < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.backend_name, ": -ttl must be >= 0, got ", options.ttl));
  }
  std::vector<std::string> hosts = uri.hosts;
  if (hosts.empty()) hosts.push_back("127.0.0.1:2379");

  const std::string ca = options.Env("ETCDCTL_CACERT");
  const std::string cert = options.Env("ETCDCTL_CERT");
  const std::string key = options.Env("ETCDCTL_KEY");
  const bool tls = !ca.empty() || !cert.empty() || !key.empty();
  if (cert.empty() != key.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.backend_name, ": ETCDCTL_CERT and ETCDCTL_KEY must be set together"));
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
          absl::StrCat(config.backend_name, " URI has a password but no user name"));
    }
  }

  std::vector<std::unique_ptr<HttpClient>> clients;
  std::vector<std::string> names;
  for (const std::string& host : hosts) {
    absl::StatusOr<std::string> normalized = NormalizeHost(config.backend_name, host);
    if (!normalized.ok()) return normalized.status();
    HttpEndpoint endpoint;
    endpoint.base_url = absl::StrCat(tls ? "https://" : "http://", *normalized);
    endpoint.ca_file = ca;
    endpoint.cert_file = cert;
    endpoint.key_file = key;
    endpoint.verify_peer = !(skip_verify == "true" || skip_verify == "1");
    endpoint.connect_timeout = kConnectTimeout;
    names.push_back(endpoint.base_url);
    clients.push_back(std::make_unique<HttpClient>(std::move(endpoint)));
  }
  return std::unique_ptr<RegistryAdapter>(new EtcdAdapter(std::move(config), options,
                                                          std::move(clients), std::move(names),
                                                          std::move(user), std::move(password)));
}

absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewEtcdAdapter(const BackendUri& uri,
                                                                const AdapterOptions& options) {
  EtcdFamilyConfig config;
  if (uri.scheme == "etcd") {
    config.api = EtcdApi::kAuto;
  } else if (uri.scheme == "etcd3") {
    config.api = EtcdApi::kV3;
  } else if (uri.scheme == "etcd2") {
    config.api = EtcdApi::kV2;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("etcd adapter: unknown scheme \"", uri.scheme,
                                                   "\" (want etcd, etcd3 or etcd2)"));
  }
  config.backend_name = uri.scheme;
  config.prefix = uri.path;
  if (absl::StrContains(config.prefix, "//")) {
    return absl::InvalidArgumentError(
        absl::StrCat(uri.scheme, " key prefix \"", uri.path, "\" has an empty segment"));
  }
  config.encode_value = &etcd::HostPortValue;
  config.decode_value = &etcd::ParseHostPortValue;
  return NewEtcdFamilyAdapter(uri, options, std::move(config));
}

}  // namespace registrator
