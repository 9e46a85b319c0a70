// Integration tests of the etcd adapter against a real etcd (one server per test binary / shard,
// started with --enable-v2=true so the v2 tests can share it). Every test uses its own prefix.
#include "adapters/etcd/etcd_adapter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "adapters/etcd/etcd_codec.h"
#include "registrator/common/http_client.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"
#include "testing/etcd_fixture.h"
#include "testing/process.h"

namespace registrator {
namespace {

using ::registrator::fakes::EtcdFixture;
using ::registrator::fakes::WaitFor;

EtcdFixture* g_etcd = nullptr;

class EtcdEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    fakes::EtcdFixtureOptions options;
    options.enable_v2 = true;
    auto started = EtcdFixture::Start(options);
    ASSERT_TRUE(started.ok()) << started.status();
    fixture_ = std::move(*started);
    g_etcd = fixture_.get();
  }
  void TearDown() override {
    g_etcd = nullptr;
    fixture_.reset();
  }

 private:
  std::unique_ptr<EtcdFixture> fixture_;
};

const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new EtcdEnvironment);

Service MakeService(const std::string& name, const std::string& id, const std::string& ip,
                    int port) {
  Service s;
  s.name = name;
  s.id = id;
  s.ip = ip;
  s.port = port;
  return s;
}

std::unique_ptr<RegistryAdapter> MakeAdapter(const std::string& uri_text, int ttl = 0) {
  absl::StatusOr<BackendUri> uri = ParseBackendUri(uri_text);
  EXPECT_TRUE(uri.ok()) << uri.status();
  AdapterOptions options;
  options.hostname = "host1";
  options.ttl = ttl;
  options.ttl_refresh = ttl > 0 ? 1 : 0;
  auto adapter = NewEtcdAdapter(*uri, options);
  EXPECT_TRUE(adapter.ok()) << adapter.status();
  return adapter.ok() ? std::move(*adapter) : nullptr;
}

// Reads etcd directly (not through the adapter) with a plain HTTP client.
class Reader {
 public:
  Reader() : http_(Endpoint()) {}

  std::optional<etcd::KeyValue> GetV3(const std::string& key) {
    auto body = Post("/v3/kv/range", absl::StrCat("{\"key\":\"", absl::Base64Escape(key), "\"}"));
    if (!body) return std::nullopt;
    auto kvs = etcd::ParseV3Range(*body);
    EXPECT_TRUE(kvs.ok()) << kvs.status();
    if (!kvs.ok() || kvs->empty()) return std::nullopt;
    return (*kvs)[0];
  }

  // The v2 value of `key`, nullopt when missing.
  std::optional<std::string> GetV2(const std::string& key) {
    HttpRequest request;
    request.path = absl::StrCat("/v2/keys", key);
    auto reply = http_.Send(request);
    EXPECT_TRUE(reply.ok()) << reply.status();
    if (!reply.ok() || reply->status != 200) return std::nullopt;
    auto kvs = etcd::ParseV2Listing(reply->body);
    if (!kvs.ok() || kvs->size() != 1) return std::nullopt;
    return (*kvs)[0].value;
  }

  std::optional<std::string> Post(const std::string& path, const std::string& body) {
    HttpRequest request;
    request.method = "POST";
    request.path = path;
    request.body = body;
    auto reply = http_.Send(request);
    EXPECT_TRUE(reply.ok()) << reply.status();
    if (!reply.ok()) return std::nullopt;
    EXPECT_EQ(reply->status, 200) << reply->body;
    return reply->body;
  }

  void PutV3(const std::string& key, const std::string& value) {
    Post("/v3/kv/put", absl::StrCat("{\"key\":\"", absl::Base64Escape(key), "\",\"value\":\"",
                                    absl::Base64Escape(value), "\"}"));
  }

 private:
  static HttpEndpoint Endpoint() {
    HttpEndpoint endpoint;
    endpoint.base_url = g_etcd->base_url();
    return endpoint;
  }
  HttpClient http_;
};

std::string V3Uri(const std::string& path) {
  return absl::StrCat("etcd3://", g_etcd->endpoint(), path);
}

TEST(EtcdV3, RegisterWritesExactKeyAndValueAndDeregisterRemovesIt) {
  auto adapter = MakeAdapter(V3Uri("/services"));
  ASSERT_NE(adapter, nullptr);
  ASSERT_TRUE(adapter->Ping().ok()) << adapter->Ping();
  const Service web = MakeService("web", "host1:web_1:80", "10.0.0.5", 32768);
  const Service v6 = MakeService("dns", "host1:dns_1:53:udp", "fd00::7", 53);
  ASSERT_TRUE(adapter->Register(web).ok());
  ASSERT_TRUE(adapter->Register(web).ok());  // Idempotent.
  ASSERT_TRUE(adapter->Register(v6).ok());

  // Read back with etcdctl, an independent client.
  std::string out;
  ASSERT_EQ(g_etcd->Etcdctl("get --print-value-only /services/web/host1:web_1:80", &out), 0) << out;
  EXPECT_EQ(out, "10.0.0.5:32768\n");
  out.clear();
  ASSERT_EQ(g_etcd->Etcdctl("get --print-value-only /services/dns/host1:dns_1:53:udp", &out), 0);
  EXPECT_EQ(out, "[fd00::7]:53\n");
  // Without -ttl there is no lease.
  Reader reader;
  auto kv = reader.GetV3("/services/web/host1:web_1:80");
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(kv->lease, 0);

  ASSERT_TRUE(adapter->Deregister(web).ok());
  EXPECT_FALSE(reader.GetV3("/services/web/host1:web_1:80").has_value());
  EXPECT_TRUE(reader.GetV3("/services/dns/host1:dns_1:53:udp").has_value());
  EXPECT_TRUE(adapter->Deregister(web).ok());  // Already gone: fine.
  ASSERT_TRUE(adapter->Deregister(v6).ok());
}

TEST(EtcdV3, NoPathMeansRootLayout) {
  auto adapter = MakeAdapter(V3Uri(""));
  const Service s = MakeService("rootsvc", "host1:r_1:80", "10.0.0.9", 8080);
  ASSERT_TRUE(adapter->Register(s).ok());
  Reader reader;
  auto kv = reader.GetV3("/rootsvc/host1:r_1:80");
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(kv->value, "10.0.0.9:8080");
  auto listed = adapter->Services();
  ASSERT_TRUE(listed.ok()) << listed.status();
  bool found = false;
  for (const auto& entry : *listed) {
    if (entry.service.id == s.id) {
      found = true;
      EXPECT_EQ(entry.service.name, "rootsvc");
      EXPECT_EQ(entry.fingerprint, adapter->Fingerprint(s));
    }
  }
  EXPECT_TRUE(found);
  ASSERT_TRUE(adapter->Deregister(s).ok());
  EXPECT_FALSE(reader.GetV3("/rootsvc/host1:r_1:80").has_value());
}

TEST(EtcdV3, ServicesListsEveryEntryWithFingerprints) {
  auto adapter = MakeAdapter(V3Uri("/list"));
  const Service a = MakeService("web", "host1:web_1:80", "10.0.0.5", 32768);
  const Service b = MakeService("web", "host1:web_2:80", "fd00::2", 32769);
  ASSERT_TRUE(adapter->Register(a).ok());
  ASSERT_TRUE(adapter->Register(b).ok());
  Reader reader;
  reader.PutV3("/list/db/otherhost:db_1:5432", "10.0.0.8:5432");  // Another host's entry.
  reader.PutV3("/list/nameonly", "x");                            // Not <Name>/<ID>: skipped.
  reader.PutV3("/listx/web/host1:web_9:80", "1.1.1.1:1");         // Outside the prefix.

  auto listed = adapter->Services();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 3u);
  std::map<std::string, RegisteredService> by_id;
  for (const auto& entry : *listed) by_id[entry.service.id] = entry;
  ASSERT_EQ(by_id.count(a.id), 1u);
  ASSERT_EQ(by_id.count(b.id), 1u);
  ASSERT_EQ(by_id.count("otherhost:db_1:5432"), 1u);
  EXPECT_EQ(by_id[a.id].service.ip, "10.0.0.5");
  EXPECT_EQ(by_id[a.id].service.port, 32768);
  EXPECT_EQ(by_id[b.id].service.ip, "fd00::2");
  EXPECT_EQ(by_id["otherhost:db_1:5432"].service.name, "db");
  EXPECT_EQ(by_id["otherhost:db_1:5432"].service.port, 5432);

  // Unchanged: equal fingerprints. Changed: different.
  EXPECT_EQ(by_id[a.id].fingerprint, adapter->Fingerprint(a));
  EXPECT_EQ(by_id[b.id].fingerprint, adapter->Fingerprint(b));
  Service moved = a;
  moved.port = 40000;
  EXPECT_NE(by_id[a.id].fingerprint, adapter->Fingerprint(moved));
  Service renamed_ip = a;
  renamed_ip.ip = "10.0.0.6";
  EXPECT_NE(by_id[a.id].fingerprint, adapter->Fingerprint(renamed_ip));

  // A listed entry can be deregistered as listed.
  ASSERT_TRUE(adapter->Deregister(by_id["otherhost:db_1:5432"].service).ok());
  EXPECT_FALSE(reader.GetV3("/list/db/otherhost:db_1:5432").has_value());
  listed = adapter->Services();
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 2u);
}

TEST(EtcdV3, TtlKeysExpireWhenNotRefreshed) {
  const Service s = MakeService("ttl", "host1:t_1:80", "10.0.0.5", 1000);
  Reader reader;
  {
    auto adapter = MakeAdapter(V3Uri("/ttl1"), /*ttl=*/2);
    ASSERT_TRUE(adapter->Register(s).ok());
    auto kv = reader.GetV3("/ttl1/ttl/host1:t_1:80");
    ASSERT_TRUE(kv.has_value());
    EXPECT_NE(kv->lease, 0);
    auto listed = adapter->Services();
    ASSERT_TRUE(listed.ok());
    ASSERT_EQ(listed->size(), 1u);
    EXPECT_EQ((*listed)[0].fingerprint, adapter->Fingerprint(s));
  }
  // The adapter is gone and nobody renews the lease.
  EXPECT_TRUE(WaitFor([&] { return !reader.GetV3("/ttl1/ttl/host1:t_1:80").has_value(); },
                      absl::Seconds(10), absl::Milliseconds(200)));
}

TEST(EtcdV3, KeepaliveKeepsKeysPastTheTtlAndLeftOutServicesExpire) {
  auto adapter = MakeAdapter(V3Uri("/ttl2"), /*ttl=*/2);
  const Service live = MakeService("svc", "host1:live:80", "10.0.0.5", 1000);
  const Service kept = MakeService("svc", "host1:kept:80", "10.0.0.5", 1001);
  ASSERT_TRUE(adapter->Register(live).ok());
  ASSERT_TRUE(adapter->Register(kept).ok());
  Reader reader;
  // Both refreshed for longer than twice the TTL: both stay.
  const absl::Time until = absl::Now() + absl::Seconds(4);
  while (absl::Now() < until) {
    ASSERT_TRUE(adapter->Refresh({live, kept}).ok());
    absl::SleepFor(absl::Milliseconds(500));
  }
  ASSERT_TRUE(reader.GetV3("/ttl2/svc/host1:kept:80").has_value());
  auto listed = adapter->Services();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  // Renewing the lease changes no fingerprint.
  for (const auto& entry : *listed) {
    EXPECT_EQ(entry.fingerprint, adapter->Fingerprint(entry.service.id == live.id ? live : kept));
  }

  // `kept` is left out of Refresh: it expires, `live` stays.
  bool expired = WaitFor(
      [&] {
        EXPECT_TRUE(adapter->Refresh({live}).ok());
        return !reader.GetV3("/ttl2/svc/host1:kept:80").has_value();
      },
      absl::Seconds(10), absl::Milliseconds(400));
  EXPECT_TRUE(expired);
  EXPECT_TRUE(reader.GetV3("/ttl2/svc/host1:live:80").has_value());
  // Still alive a TTL later.
  absl::SleepFor(absl::Seconds(1));
  ASSERT_TRUE(adapter->Refresh({live}).ok());
  absl::SleepFor(absl::Seconds(1));
  ASSERT_TRUE(adapter->Refresh({live}).ok());
  EXPECT_TRUE(reader.GetV3("/ttl2/svc/host1:live:80").has_value());
}

TEST(EtcdV3, RevokedLeaseIsReplacedOnRefresh) {
  auto adapter = MakeAdapter(V3Uri("/revoke"), /*ttl=*/5);
  std::atomic<int> lost{0};
  adapter->SetStateLostCallback([&] { ++lost; });
  const Service a = MakeService("svc", "host1:a:80", "10.0.0.5", 1000);
  const Service b = MakeService("svc", "host1:b:80", "10.0.0.5", 1001);
  ASSERT_TRUE(adapter->Register(a).ok());
  ASSERT_TRUE(adapter->Register(b).ok());
  Reader reader;
  auto kv = reader.GetV3("/revoke/svc/host1:a:80");
  ASSERT_TRUE(kv.has_value());
  const int64_t old_lease = kv->lease;
  ASSERT_NE(old_lease, 0);
  // Behind the adapter's back: the lease and with it both keys disappear.
  reader.Post("/v3/lease/revoke", absl::StrCat("{\"ID\":\"", old_lease, "\"}"));
  ASSERT_FALSE(reader.GetV3("/revoke/svc/host1:a:80").has_value());

  ASSERT_TRUE(adapter->Refresh({a, b}).ok());
  auto restored_a = reader.GetV3("/revoke/svc/host1:a:80");
  auto restored_b = reader.GetV3("/revoke/svc/host1:b:80");
  ASSERT_TRUE(restored_a.has_value());
  ASSERT_TRUE(restored_b.has_value());
  EXPECT_EQ(restored_a->value, "10.0.0.5:1000");
  EXPECT_NE(restored_a->lease, 0);
  EXPECT_NE(restored_a->lease, old_lease);
  EXPECT_EQ(restored_a->lease, restored_b->lease);  // Again one shared lease.
  EXPECT_EQ(lost.load(), 0);                        // Restored by itself.
  auto listed = adapter->Services();
  ASSERT_TRUE(listed.ok());
  for (const auto& entry : *listed) {
    EXPECT_EQ(entry.fingerprint, adapter->Fingerprint(entry.service.id == a.id ? a : b));
  }
}

// Issue 12: v3 refresh only renewed the lease, so a key deleted behind registrator's back stayed
// missing until a resync (v2 and ZooKeeper refresh restore it).
TEST(EtcdV3, RefreshRestoresAKeyDeletedBehindItsBack) {
  auto adapter = MakeAdapter(V3Uri("/deleted"), /*ttl=*/10);
  const Service a = MakeService("svc", "host1:a:80", "10.0.0.5", 1000);
  const Service b = MakeService("svc", "host1:b:80", "10.0.0.5", 1001);
  ASSERT_TRUE(adapter->Register(a).ok());
  ASSERT_TRUE(adapter->Register(b).ok());
  Reader reader;
  auto before = reader.GetV3("/deleted/svc/host1:b:80");
  ASSERT_TRUE(before.has_value());
  std::string out;
  ASSERT_EQ(g_etcd->Etcdctl("del /deleted/svc/host1:a:80", &out), 0) << out;
  ASSERT_FALSE(reader.GetV3("/deleted/svc/host1:a:80").has_value());

  ASSERT_TRUE(adapter->Refresh({a, b}).ok());
  auto restored = reader.GetV3("/deleted/svc/host1:a:80");
  ASSERT_TRUE(restored.has_value());
  EXPECT_EQ(restored->value, "10.0.0.5:1000");
  EXPECT_EQ(restored->lease, before->lease);  // Back on the shared lease.
  // Overwritten without a lease by someone else: no longer ours to keep alive, so put back too.
  reader.PutV3("/deleted/svc/host1:b:80", "10.0.0.5:1001");
  ASSERT_EQ(reader.GetV3("/deleted/svc/host1:b:80")->lease, 0);
  ASSERT_TRUE(adapter->Refresh({a, b}).ok());
  EXPECT_EQ(reader.GetV3("/deleted/svc/host1:b:80")->lease, before->lease);
  auto listed = adapter->Services();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  for (const auto& entry : *listed) {
    EXPECT_EQ(entry.fingerprint, adapter->Fingerprint(entry.service.id == a.id ? a : b));
  }
}

TEST(EtcdV3, RevokedLeaseFoundByRegisterRequestsAResync) {
  auto adapter = MakeAdapter(V3Uri("/revoke2"), /*ttl=*/5);
  std::atomic<int> lost{0};
  adapter->SetStateLostCallback([&] { ++lost; });
  const Service a = MakeService("svc", "host1:a:80", "10.0.0.5", 1000);
  const Service b = MakeService("svc", "host1:b:80", "10.0.0.5", 1001);
  ASSERT_TRUE(adapter->Register(a).ok());
  Reader reader;
  auto kv = reader.GetV3("/revoke2/svc/host1:a:80");
  ASSERT_TRUE(kv.has_value());
  reader.Post("/v3/lease/revoke", absl::StrCat("{\"ID\":\"", kv->lease, "\"}"));
  // The next write finds the lease gone, takes a new one, and asks the bridge to rewrite a.
  ASSERT_TRUE(adapter->Register(b).ok());
  EXPECT_EQ(lost.load(), 1);
  auto written = reader.GetV3("/revoke2/svc/host1:b:80");
  ASSERT_TRUE(written.has_value());
  EXPECT_NE(written->lease, kv->lease);
  // The listing shows a as missing, b as held.
  auto listed = adapter->Services();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].fingerprint, adapter->Fingerprint(b));
}

TEST(EtcdV3, KeysOfAnotherLeaseDoNotMatchTheFingerprint) {
  // A previous registrator run left keys on its own lease: they must be rewritten, or they
  // would expire with that lease.
  const Service s = MakeService("svc", "host1:prev:80", "10.0.0.5", 1000);
  auto previous = MakeAdapter(V3Uri("/prev"), /*ttl=*/10);
  ASSERT_TRUE(previous->Register(s).ok());
  previous.reset();
  auto adapter = MakeAdapter(V3Uri("/prev"), /*ttl=*/10);
  auto listed = adapter->Services();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_NE((*listed)[0].fingerprint, adapter->Fingerprint(s));
  ASSERT_TRUE(adapter->Register(s).ok());
  listed = adapter->Services();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].fingerprint, adapter->Fingerprint(s));
  // Without -ttl, a key with a lease is not what we would write either.
  auto no_ttl = MakeAdapter(V3Uri("/prev"));
  listed = no_ttl->Services();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_NE((*listed)[0].fingerprint, no_ttl->Fingerprint(s));
  ASSERT_TRUE(adapter->Deregister(s).ok());
}

TEST(EtcdV3, WorksAgainAfterEtcdRestart) {
  auto adapter = MakeAdapter(V3Uri("/restart"), /*ttl=*/5);
  const Service a = MakeService("svc", "host1:a:80", "10.0.0.5", 1000);
  const Service b = MakeService("svc", "host1:b:80", "10.0.0.5", 1001);
  ASSERT_TRUE(adapter->Register(a).ok());
  g_etcd->Stop();
  absl::Status down = adapter->Refresh({a});
  EXPECT_TRUE(absl::IsUnavailable(down)) << down;
  EXPECT_TRUE(absl::IsUnavailable(adapter->Register(b))) << adapter->Register(b);
  ASSERT_TRUE(g_etcd->Resume().ok()) << g_etcd->Log();
  ASSERT_TRUE(adapter->Refresh({a}).ok());
  ASSERT_TRUE(adapter->Register(b).ok());
  Reader reader;
  EXPECT_TRUE(reader.GetV3("/restart/svc/host1:a:80").has_value());
  EXPECT_TRUE(reader.GetV3("/restart/svc/host1:b:80").has_value());
  ASSERT_TRUE(adapter->Deregister(a).ok());
  ASSERT_TRUE(adapter->Deregister(b).ok());
}

TEST(EtcdAuto, ProbePicksV3ForEtcd3) {
  auto adapter = MakeAdapter(absl::StrCat("etcd://", g_etcd->endpoint(), "/auto"));
  ASSERT_TRUE(adapter->Ping().ok());
  const Service s = MakeService("svc", "host1:a:80", "10.0.0.5", 1000);
  ASSERT_TRUE(adapter->Register(s).ok());
  // etcd 3.4 keeps the v2 and v3 stores apart: the key must be in the v3 one.
  Reader reader;
  EXPECT_TRUE(reader.GetV3("/auto/svc/host1:a:80").has_value());
  EXPECT_FALSE(reader.GetV2("/auto/svc/host1:a:80").has_value());
  ASSERT_TRUE(adapter->Deregister(s).ok());
}

TEST(EtcdV2, RegisterListDeregisterAndTtl) {
  auto adapter = MakeAdapter(absl::StrCat("etcd2://", g_etcd->endpoint(), "/v2svc"));
  ASSERT_TRUE(adapter->Ping().ok()) << adapter->Ping();
  const Service a = MakeService("web", "host1:web_1:80", "10.0.0.5", 32768);
  const Service b = MakeService("web", "host1:web_2:80", "fd00::2", 80);
  ASSERT_TRUE(adapter->Register(a).ok());
  ASSERT_TRUE(adapter->Register(b).ok());
  Reader reader;
  EXPECT_EQ(reader.GetV2("/v2svc/web/host1:web_1:80"), "10.0.0.5:32768");
  EXPECT_EQ(reader.GetV2("/v2svc/web/host1:web_2:80"), "[fd00::2]:80");
  EXPECT_FALSE(reader.GetV3("/v2svc/web/host1:web_1:80").has_value());
  auto listed = adapter->Services();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  for (const auto& entry : *listed) {
    const Service& s = entry.service.id == a.id ? a : b;
    EXPECT_EQ(entry.service.ip, s.ip);
    EXPECT_EQ(entry.service.port, s.port);
    EXPECT_EQ(entry.fingerprint, adapter->Fingerprint(s));
    Service changed = s;
    changed.port += 1;
    EXPECT_NE(entry.fingerprint, adapter->Fingerprint(changed));
  }
  ASSERT_TRUE(adapter->Deregister((*listed)[0].service).ok());
  ASSERT_TRUE(adapter->Deregister((*listed)[0].service).ok());
  listed = adapter->Services();
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 1u);
  // An empty / missing prefix lists nothing.
  auto empty = MakeAdapter(absl::StrCat("etcd2://", g_etcd->endpoint(), "/v2nothing"));
  auto none = empty->Services();
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
}

TEST(EtcdV2, TtlRefreshKeepsLiveKeysAndLetsOthersExpire) {
  auto adapter = MakeAdapter(absl::StrCat("etcd2://", g_etcd->endpoint(), "/v2ttl"), /*ttl=*/2);
  const Service live = MakeService("svc", "host1:live:80", "10.0.0.5", 1000);
  const Service kept = MakeService("svc", "host1:kept:80", "10.0.0.5", 1001);
  ASSERT_TRUE(adapter->Register(live).ok());
  ASSERT_TRUE(adapter->Register(kept).ok());
  auto listed = adapter->Services();
  ASSERT_TRUE(listed.ok());
  for (const auto& entry : *listed) {
    EXPECT_EQ(entry.fingerprint, adapter->Fingerprint(entry.service.id == live.id ? live : kept));
  }
  Reader reader;
  bool expired = WaitFor(
      [&] {
        EXPECT_TRUE(adapter->Refresh({live}).ok());
        return !reader.GetV2("/v2svc_unused").has_value() &&
               !reader.GetV2("/v2ttl/svc/host1:kept:80").has_value();
      },
      absl::Seconds(10), absl::Milliseconds(400));
  EXPECT_TRUE(expired);
  absl::SleepFor(absl::Seconds(1));
  ASSERT_TRUE(adapter->Refresh({live}).ok());
  absl::SleepFor(absl::Seconds(1));
  ASSERT_TRUE(adapter->Refresh({live}).ok());
  EXPECT_EQ(reader.GetV2("/v2ttl/svc/host1:live:80"), "10.0.0.5:1000");
  // A key that expired meanwhile is written again by Refresh.
  ASSERT_TRUE(adapter->Refresh({live, kept}).ok());
  EXPECT_EQ(reader.GetV2("/v2ttl/svc/host1:kept:80"), "10.0.0.5:1001");
  // Without -ttl a v2 key with a ttl does not match the fingerprint.
  auto no_ttl = MakeAdapter(absl::StrCat("etcd2://", g_etcd->endpoint(), "/v2ttl"));
  listed = no_ttl->Services();
  ASSERT_TRUE(listed.ok());
  ASSERT_FALSE(listed->empty());
  EXPECT_NE((*listed)[0].fingerprint, no_ttl->Fingerprint(live));
}

TEST(EtcdEndpoints, FailsOverToTheNextEndpoint) {
  const int dead_port = fakes::FreeLoopbackPort();
  auto adapter = MakeAdapter(
      absl::StrCat("etcd3://127.0.0.1:", dead_port, ",", g_etcd->endpoint(), "/failover"));
  ASSERT_TRUE(adapter->Ping().ok()) << adapter->Ping();
  const Service s = MakeService("svc", "host1:a:80", "10.0.0.5", 1000);
  ASSERT_TRUE(adapter->Register(s).ok());
  Reader reader;
  EXPECT_TRUE(reader.GetV3("/failover/svc/host1:a:80").has_value());
  ASSERT_TRUE(adapter->Deregister(s).ok());

  auto only_dead = MakeAdapter(absl::StrCat("etcd://127.0.0.1:", dead_port, "/failover"));
  absl::Status status = only_dead->Ping();
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  EXPECT_TRUE(absl::IsUnavailable(only_dead->Register(s)));
  EXPECT_TRUE(absl::IsUnavailable(only_dead->Services().status()));
}

TEST(EtcdV3, ConcurrentRegistersShareOneLease) {
  auto adapter = MakeAdapter(V3Uri("/concurrent"), /*ttl=*/10);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      const Service s = MakeService("svc", absl::StrCat("host1:c", i, ":80"), "10.0.0.5", 1000 + i);
      if (!adapter->Register(s).ok()) ++failures;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  Reader reader;
  auto body =
      reader.Post("/v3/kv/range",
                  absl::StrCat("{\"key\":\"", absl::Base64Escape("/concurrent/"),
                               "\",\"range_end\":\"", absl::Base64Escape("/concurrent0"), "\"}"));
  ASSERT_TRUE(body.has_value());
  auto kvs = etcd::ParseV3Range(*body);
  ASSERT_TRUE(kvs.ok());
  ASSERT_EQ(kvs->size(), 8u);
  for (const auto& kv : *kvs) {
    EXPECT_NE(kv.lease, 0);
    EXPECT_EQ(kv.lease, (*kvs)[0].lease) << kv.key;
  }
}

TEST(EtcdAuth, AuthenticatesAndReauthenticatesAfterRestart) {
  // Its own server: turning auth on would break the shared one.
  auto started = EtcdFixture::Start();
  ASSERT_TRUE(started.ok()) << started.status();
  EtcdFixture& etcd = **started;
  std::string out;
  ASSERT_EQ(etcd.Etcdctl("user add root:rootpw", &out), 0) << out;
  ASSERT_EQ(etcd.Etcdctl("auth enable", &out), 0) << out;

  const Service s = MakeService("svc", "host1:a:80", "10.0.0.5", 1000);
  auto anonymous = MakeAdapter(absl::StrCat("etcd3://", etcd.endpoint(), "/auth"));
  absl::Status denied = anonymous->Register(s);
  EXPECT_FALSE(denied.ok());
  auto wrong = MakeAdapter(absl::StrCat("etcd3://root:nope@", etcd.endpoint(), "/auth"));
  absl::Status rejected = wrong->Register(s);
  EXPECT_TRUE(absl::IsInvalidArgument(rejected)) << rejected;
  EXPECT_NE(rejected.message().find("authentication failed"), std::string::npos) << rejected;

  auto adapter = MakeAdapter(absl::StrCat("etcd://root:rootpw@", etcd.endpoint(), "/auth"),
                             /*ttl=*/10);
  ASSERT_TRUE(adapter->Ping().ok()) << adapter->Ping();
  ASSERT_TRUE(adapter->Register(s).ok());
  out.clear();
  ASSERT_EQ(etcd.Etcdctl("--user=root:rootpw get --print-value-only /auth/svc/host1:a:80", &out),
            0);
  EXPECT_EQ(out, "10.0.0.5:1000\n");
  // Simple tokens live in the server's memory: after a restart the old one is rejected and the
  // adapter must log in again by itself.
  ASSERT_TRUE(etcd.Restart().ok()) << etcd.Log();
  ASSERT_TRUE(adapter->Refresh({s}).ok());
  auto listed = adapter->Services();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].fingerprint, adapter->Fingerprint(s));
  ASSERT_TRUE(adapter->Deregister(s).ok());
}

TEST(EtcdTls, EtcdctlVariablesSwitchToHttpsWithClientCertificates) {
  fakes::EtcdFixtureOptions tls_options;
  tls_options.tls = true;
  auto started = EtcdFixture::Start(tls_options);
  ASSERT_TRUE(started.ok()) << started.status();
  EtcdFixture& etcd = **started;
  absl::StatusOr<BackendUri> uri =
      ParseBackendUri(absl::StrCat("etcd://", etcd.endpoint(), "/tls"));
  ASSERT_TRUE(uri.ok());
  AdapterOptions options;
  options.ttl = 5;
  options.env["ETCDCTL_CACERT"] = etcd.ca_file();
  options.env["ETCDCTL_CERT"] = etcd.client_cert_file();
  options.env["ETCDCTL_KEY"] = etcd.client_key_file();
  auto adapter = NewEtcdAdapter(*uri, options);
  ASSERT_TRUE(adapter.ok()) << adapter.status();
  ASSERT_TRUE((*adapter)->Ping().ok()) << (*adapter)->Ping();
  const Service s = MakeService("svc", "host1:a:80", "10.0.0.5", 1000);
  ASSERT_TRUE((*adapter)->Register(s).ok());
  ASSERT_TRUE((*adapter)->Refresh({s}).ok());
  std::string out;
  ASSERT_EQ(etcd.Etcdctl("get --print-value-only /tls/svc/host1:a:80", &out), 0) << out;
  EXPECT_EQ(out, "10.0.0.5:1000\n");

  // Without a client certificate the server refuses the TLS handshake.
  options.env.erase("ETCDCTL_CERT");
  options.env.erase("ETCDCTL_KEY");
  auto no_cert = NewEtcdAdapter(*uri, options);
  ASSERT_TRUE(no_cert.ok());
  EXPECT_FALSE((*no_cert)->Register(s).ok());
  // Without the CA the server is not trusted.
  options.env.clear();
  options.env["ETCDCTL_CERT"] = etcd.client_cert_file();
  options.env["ETCDCTL_KEY"] = etcd.client_key_file();
  auto no_ca = NewEtcdAdapter(*uri, options);
  ASSERT_TRUE(no_ca.ok());
  absl::Status untrusted = (*no_ca)->Ping();
  EXPECT_TRUE(absl::IsUnavailable(untrusted)) << untrusted;
}

}  // namespace
}  // namespace registrator
