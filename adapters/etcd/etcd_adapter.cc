// The etcd-family RegistryAdapter: v2 and v3 key operations on top of etcd_transport (endpoints,
// API probe, auth) and etcd_lease (the shared -ttl lease).
#include "adapters/etcd/etcd_adapter.h"

#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "adapters/etcd/etcd_codec.h"
#include "adapters/etcd/etcd_lease.h"
#include "adapters/etcd/etcd_watch.h"
#include "registrator/common/log.h"
#include "registrator/model/state_lost_notifier.h"

namespace registrator {
namespace {

using etcd::ApiChoice;
using etcd::KeyValue;

class EtcdAdapter : public RegistryAdapter {
 public:
  EtcdAdapter(EtcdFamilyConfig config, AdapterOptions options,
              std::unique_ptr<etcd::Transport> transport)
      : config_(std::move(config)),
        options_(std::move(options)),
        transport_(std::move(transport)),
        lease_(transport_.get(), options_.ttl) {}

  absl::Status Ping() override {
    absl::StatusOr<ApiChoice> api = transport_->Api();
    if (!api.ok()) return api.status();
    if (api->api == EtcdApi::kV3) {
      const std::string start = etcd::ListingPrefix(config_.prefix);
      const std::string body =
          etcd::V3RangeBody(start, etcd::PrefixRangeEnd(start), etcd::RangeWants::kCountOnly);
      return transport_->V3Call(*api, "kv/range", body, "ping (kv/range)").status();
    }
    absl::StatusOr<HttpResponse> reply = transport_->V2Send("GET", "/v2/keys/", "");
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
    absl::StatusOr<ApiChoice> api = transport_->Api();
    if (!api.ok()) return api.status();
    const std::string key = etcd::ServiceKey(config_.prefix, service);
    const std::string value = config_.encode_value(service);
    if (api->api == EtcdApi::kV2) return V2Put(key, value);
    return V3PutOnSharedLease(*api, key, value, /*report_loss=*/true);
  }

  absl::Status Deregister(const Service& service) override {
    absl::StatusOr<ApiChoice> api = transport_->Api();
    if (!api.ok()) return api.status();
    const std::string key = etcd::ServiceKey(config_.prefix, service);
    if (api->api == EtcdApi::kV2) {
      absl::StatusOr<HttpResponse> reply = transport_->V2Send("DELETE", etcd::V2KeyPath(key), "");
      if (!reply.ok()) return reply.status();
      if (reply->status == 404 || reply->status / 100 == 2) return absl::OkStatus();
      return etcd::ErrorFromReply(reply->status, reply->body, absl::StrCat("delete ", key));
    }
    absl::Status status =
        transport_
            ->V3Call(*api, "kv/deleterange", etcd::V3DeleteBody(key), absl::StrCat("delete ", key))
            .status();
    // Forgotten only once gone: a key that failed to delete stays on the lease's books, so a
    // later Refresh without it still lets it expire.
    if (status.ok()) lease_.Deleted(key);
    return status;
  }

  absl::Status Refresh(const std::vector<Service>& services) override {
    if (options_.ttl <= 0) return absl::OkStatus();
    absl::StatusOr<ApiChoice> api = transport_->Api();
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
    absl::StatusOr<ApiChoice> api = transport_->Api();
    if (!api.ok()) return api.status();
    absl::StatusOr<std::vector<KeyValue>> kvs = api->api == EtcdApi::kV3 ? V3List(*api) : V2List();
    if (!kvs.ok()) return kvs.status();
    const int64_t lease = lease_.Current();
    std::vector<RegisteredService> out;
    for (const KeyValue& kv : *kvs) {
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
      if (api->api == EtcdApi::kV3) {
        const bool expiry_differs =
            options_.ttl > 0 ? (kv.lease == 0 || kv.lease != lease) : kv.lease != 0;
        if (expiry_differs) absl::StrAppend(&entry.fingerprint, " (lease ", kv.lease, ")");
      } else if (kv.has_ttl != (options_.ttl > 0)) {
        absl::StrAppend(&entry.fingerprint, kv.has_ttl ? " (ttl)" : " (no ttl)");
      }
      out.push_back(std::move(entry));
    }
    return out;
  }

  // The name (and for ZooKeeper the IP and port) is in the key: see RegistryAdapter::EntryKey.
  std::string EntryKey(const Service& service) const override {
    return etcd::ServiceKey(config_.prefix, service);
  }

  std::string Fingerprint(const Service& service) const override {
    return absl::StrCat(etcd::ServiceKey(config_.prefix, service), "=",
                        config_.encode_value(service));
  }

  void SetStateLostCallback(std::function<void()> request) override {
    state_lost_.Set(std::move(request));
  }

  // Watches every key under the prefix (this host's and others': etcd cannot filter by the ID's
  // host part, and a foreign change costs the bridge only one listing).
  absl::Status StartWatch(std::function<void()> drifted) override {
    absl::MutexLock lock(&watch_mu_);
    if (watcher_ != nullptr) return absl::FailedPreconditionError("already watching");
    const std::string start = etcd::ListingPrefix(config_.prefix);
    watcher_ = std::make_unique<etcd::Watcher>(transport_.get(), start,
                                               etcd::V2KeyPath(config_.prefix) + "/");
    watcher_->Start(std::move(drifted));
    return absl::OkStatus();
  }

  void StopWatch() override {
    std::unique_ptr<etcd::Watcher> watcher;
    {
      absl::MutexLock lock(&watch_mu_);
      watcher = std::move(watcher_);
    }
    if (watcher != nullptr) watcher->Stop();
  }

  ~EtcdAdapter() override { StopWatch(); }

 private:
  // ---- v3 -------------------------------------------------------------------------------------

  absl::StatusOr<std::vector<KeyValue>> V3List(const ApiChoice& api) {
    const std::string start = etcd::ListingPrefix(config_.prefix);
    absl::StatusOr<std::string> body = transport_->V3Call(
        api, "kv/range",
        etcd::V3RangeBody(start, etcd::PrefixRangeEnd(start), etcd::RangeWants::kKeysAndValues),
        absl::StrCat("list ", start));
    if (!body.ok()) return body.status();
    return etcd::ParseV3Range(*body);
  }

  // Puts key=value (on the shared lease when -ttl is set), replacing a lost lease once.
  absl::Status V3PutOnSharedLease(const ApiChoice& api, const std::string& key,
                                  const std::string& value, bool report_loss) {
    const std::string what = absl::StrCat("put ", key);
    if (options_.ttl <= 0) {
      return transport_->V3Call(api, "kv/put", etcd::V3PutBody(key, value, 0), what).status();
    }
    absl::Status status;
    for (int attempt = 0; attempt < 2; ++attempt) {
      absl::StatusOr<int64_t> lease = lease_.Acquire(api);
      if (!lease.ok()) return lease.status();
      status =
          transport_->V3Call(api, "kv/put", etcd::V3PutBody(key, value, *lease), what).status();
      if (status.ok()) {
        lease_.Written(*lease, key, value);
        return status;
      }
      if (!etcd::IsLeaseNotFound(status)) return status;
      if (lease_.Forget(*lease) && report_loss) state_lost_.Notify();
    }
    return status;
  }

  // Which of the `wanted` keys etcd holds on `lease`: one keys-only range over the span from the
  // smallest to the largest wanted key, however many keys there are.
  absl::StatusOr<std::set<std::string>> HeldOnLease(
      const ApiChoice& api, const std::map<std::string, std::string>& wanted, int64_t lease) {
    const std::string range_end = wanted.rbegin()->first + std::string(1, '\0');
    absl::StatusOr<std::string> body = transport_->V3Call(
        api, "kv/range",
        etcd::V3RangeBody(wanted.begin()->first, range_end, etcd::RangeWants::kKeysOnly),
        "check refreshed keys (kv/range)");
    if (!body.ok()) return body.status();
    absl::StatusOr<std::vector<KeyValue>> kvs = etcd::ParseV3Range(*body);
    if (!kvs.ok()) return kvs.status();
    std::set<std::string> held;
    for (const KeyValue& kv : *kvs) {
      if (kv.lease == lease && wanted.count(kv.key) != 0) held.insert(kv.key);
    }
    return held;
  }

  absl::Status V3Refresh(const ApiChoice& api, const std::map<std::string, std::string>& wanted) {
    bool lease_lost = false;
    if (absl::Status status = lease_.KeepAlive(api, &lease_lost); !status.ok()) return status;

    // What is on our lease but no longer live is moved off it (to expire); what is live but
    // not on it (lease replaced, or written by an earlier run) is put on it.
    std::map<std::string, std::string> orphans;
    std::map<std::string, std::string> to_put;
    for (auto& [key, value] : lease_.Reconcile(wanted, &orphans)) to_put[key] = value;

    absl::Status first_error;
    // A key deleted behind our back (etcdctl del, another tool) is not noticed by the keepalive:
    // check that every live key is still there, on our lease.
    const int64_t lease = lease_.Current();
    if (!lease_lost && lease != 0 && !wanted.empty()) {
      absl::StatusOr<std::set<std::string>> held = HeldOnLease(api, wanted, lease);
      if (held.ok()) {
        for (const auto& [key, value] : wanted) {
          if (held->count(key) != 0 || to_put.count(key) != 0) continue;
          REG_LOG_WARN(config_.backend_name, ": ", key,
                       " is no longer on the lease (deleted or overwritten); writing it again");
          to_put[key] = value;
        }
      } else {
        first_error = held.status();
      }
    }

    absl::Status put_error;
    for (const auto& [key, value] : to_put) {
      absl::Status status = V3PutOnSharedLease(api, key, value, /*report_loss=*/false);
      if (!status.ok() && put_error.ok()) put_error = status;
    }
    if (!put_error.ok() && lease_lost) {
      // The bridge must rewrite what we could not; a key that merely failed to be put (not
      // lost with the lease) is retried by the next Refresh instead.
      REG_LOG_WARN(config_.backend_name, ": could not restore live keys: ", put_error.message());
      state_lost_.Notify();
    }
    if (first_error.ok()) first_error = put_error;

    if (!orphans.empty()) {
      absl::Status status = lease_.LetExpire(api, orphans);
      if (!status.ok() && first_error.ok()) first_error = status;
    }
    return first_error;
  }

  // ---- v2 -------------------------------------------------------------------------------------

  absl::StatusOr<std::vector<KeyValue>> V2List() {
    absl::StatusOr<HttpResponse> reply = transport_->V2Send(
        "GET", absl::StrCat(etcd::V2KeyPath(config_.prefix), "/?recursive=true"), "");
    if (!reply.ok()) return reply.status();
    if (reply->status == 404) return std::vector<KeyValue>();
    if (reply->status != 200) {
      return etcd::ErrorFromReply(reply->status, reply->body,
                                  absl::StrCat("list ", etcd::ListingPrefix(config_.prefix)));
    }
    return etcd::ParseV2Listing(reply->body);
  }

  absl::Status V2Put(const std::string& key, const std::string& value) {
    absl::StatusOr<HttpResponse> reply =
        transport_->V2Send("PUT", etcd::V2KeyPath(key), etcd::V2PutForm(value, options_.ttl));
    if (!reply.ok()) return reply.status();
    if (reply->status / 100 == 2) return absl::OkStatus();
    return etcd::ErrorFromReply(reply->status, reply->body, absl::StrCat("put ", key));
  }

  absl::Status V2Refresh(const std::map<std::string, std::string>& wanted) {
    absl::Status first_error;
    for (const auto& [key, value] : wanted) {
      // refresh=true renews the ttl without a change event; a key that already expired is
      // written again.
      absl::StatusOr<HttpResponse> reply =
          transport_->V2Send("PUT", etcd::V2KeyPath(key), etcd::V2RefreshForm(options_.ttl));
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
  const std::unique_ptr<etcd::Transport> transport_;
  etcd::LeaseKeeper lease_;  // Used only on v3 with -ttl.
  StateLostNotifier state_lost_;
  absl::Mutex watch_mu_;
  std::unique_ptr<etcd::Watcher> watcher_ ABSL_GUARDED_BY(watch_mu_);
};

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
  absl::StatusOr<std::unique_ptr<etcd::Transport>> transport =
      etcd::Transport::Create(uri, options, config.backend_name, config.api);
  if (!transport.ok()) return transport.status();
  return std::unique_ptr<RegistryAdapter>(
      new EtcdAdapter(std::move(config), options, *std::move(transport)));
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
