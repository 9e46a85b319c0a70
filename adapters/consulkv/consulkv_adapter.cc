// The Consul KV RegistryAdapter: one key per service under the URI's prefix.
#include "adapters/consulkv/consulkv_adapter.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "adapters/consul/consul_transport.h"
#include "adapters/consul/consul_watch.h"
#include "adapters/consulkv/consulkv_codec.h"
#include "registrator/common/http_client.h"

namespace registrator {
namespace {

// A raw value; without a type curl would label it a form and servers may parse it as one.
constexpr char kRawValue[] = "application/octet-stream";

class ConsulKvAdapter : public RegistryAdapter {
 public:
  ConsulKvAdapter(HttpEndpoint endpoint, std::string prefix, const AdapterOptions& options,
                  const consul::BlockingWatchOptions& watch)
      : agent_(endpoint, options),
        prefix_(std::move(prefix)),
        // The same recursive read as Services(), as an index-based blocking query: Consul's
        // index for a prefix is the highest ModifyIndex under it, deletions included
        // (tombstones), so writes under other prefixes do not wake it.
        watch_(std::move(endpoint), options, consulkv::ListingPath(prefix_),
               consul::BlockOn::kIndex, "consulkv", watch) {}

  absl::Status Ping() override { return agent_.PingLeader("consulkv ping"); }

  absl::Status Register(const Service& service) override {
    const std::string key = consulkv::ServiceKey(prefix_, service);
    absl::StatusOr<HttpResponse> response =
        agent_.Send("PUT", consulkv::KeyPath(key), consulkv::ServiceValue(service), kRawValue);
    if (!response.ok()) return response.status();
    return consul::StatusFromResponse(*response, absl::StrCat("consulkv register ", key));
  }

  absl::Status Deregister(const Service& service) override {
    const std::string key = consulkv::ServiceKey(prefix_, service);
    absl::StatusOr<HttpResponse> response = agent_.Send("DELETE", consulkv::KeyPath(key));
    if (!response.ok()) return response.status();
    return consul::StatusFromResponse(*response, absl::StrCat("consulkv deregister ", key));
  }

  // KV has no TTL; entries live until deregistered.
  absl::Status Refresh(const std::vector<Service>& services) override {
    (void)services;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<RegisteredService>> Services() override {
    absl::StatusOr<HttpResponse> response = agent_.Send("GET", consulkv::ListingPath(prefix_));
    if (!response.ok()) return response.status();
    if (response->status == 404) return std::vector<RegisteredService>();  // Nothing there yet.
    if (absl::Status s = consul::StatusFromResponse(*response, "consulkv list"); !s.ok()) return s;
    return consulkv::ParseListing(prefix_, response->body);
  }

  // The name (and for ZooKeeper the IP and port) is in the key: see RegistryAdapter::EntryKey.
  std::string EntryKey(const Service& service) const override {
    return consulkv::ServiceKey(prefix_, service);
  }

  std::string Fingerprint(const Service& service) const override {
    return consulkv::ServiceFingerprint(prefix_, service);
  }

  absl::Status StartWatch(std::function<void()> drifted) override {
    return watch_.Start(std::move(drifted));
  }
  void StopWatch() override { watch_.Stop(); }

 private:
  consul::AgentClient agent_;
  const std::string prefix_;  // Without leading or trailing "/"; may be empty.
  consul::BlockingWatch watch_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewConsulKvAdapter(const BackendUri& uri,
                                                                    const AdapterOptions& options) {
  return NewConsulKvAdapterWithWatch(uri, options, consul::BlockingWatchOptions());
}

absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewConsulKvAdapterWithWatch(
    const BackendUri& uri, const AdapterOptions& options,
    const consul::BlockingWatchOptions& watch) {
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
  absl::StatusOr<HttpEndpoint> endpoint =
      consul::ResolveEndpoint(transport, uri.host, socket, options);
  if (!endpoint.ok()) return endpoint.status();
  return std::unique_ptr<RegistryAdapter>(std::make_unique<ConsulKvAdapter>(
      *std::move(endpoint), consulkv::NormalizePrefix(path), options, watch));
}

}  // namespace registrator
