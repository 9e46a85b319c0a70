// Integration tests of skydns2:// against a real etcd 3.4: the exact key and JSON value (where
// CoreDNS's etcd plugin looks), listing, fingerprints and TTL expiry.
#include "adapters/skydns2/skydns2_adapter.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"
#include "testing/etcd_fixture.h"
#include "testing/process.h"

namespace registrator {
namespace {

using ::registrator::fakes::EtcdFixture;
using ::registrator::fakes::WaitFor;

class Skydns2Test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto started = EtcdFixture::Start();
    ASSERT_TRUE(started.ok()) << started.status();
    etcd_ = started->release();
  }
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
  }

  std::unique_ptr<RegistryAdapter> Make(const std::string& domain, int ttl = 0) {
    absl::StatusOr<BackendUri> uri =
        ParseBackendUri(absl::StrCat("skydns2://", etcd_->endpoint(), "/", domain));
    EXPECT_TRUE(uri.ok());
    AdapterOptions options;
    options.hostname = "host1";
    options.ttl = ttl;
    auto adapter = NewSkydns2Adapter(*uri, options);
    EXPECT_TRUE(adapter.ok()) << adapter.status();
    return adapter.ok() ? std::move(*adapter) : nullptr;
  }

  // The value at `key` via etcdctl (v3), "" when missing.
  std::string Get(const std::string& key) {
    std::string out;
    EXPECT_EQ(etcd_->Etcdctl(absl::StrCat("get --print-value-only '", key, "'"), &out), 0) << out;
    if (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }

  static EtcdFixture* etcd_;
};

EtcdFixture* Skydns2Test::etcd_ = nullptr;

Service MakeService(const std::string& name, const std::string& id, const std::string& ip,
                    int port) {
  Service s;
  s.name = name;
  s.id = id;
  s.ip = ip;
  s.port = port;
  return s;
}

TEST_F(Skydns2Test, WritesTheExactKeyAndJsonValue) {
  auto adapter = Make("skydns.local");
  ASSERT_TRUE(adapter->Ping().ok()) << adapter->Ping();
  const Service web = MakeService("web", "host1:web_1:80", "10.0.0.5", 32768);
  const Service v6 = MakeService("dns", "host1:dns_1:53:udp", "fd00::7", 53);
  ASSERT_TRUE(adapter->Register(web).ok());
  ASSERT_TRUE(adapter->Register(v6).ok());
  EXPECT_EQ(Get("/skydns/local/skydns/web/host1:web_1:80"), R"({"host":"10.0.0.5","port":32768})");
  EXPECT_EQ(Get("/skydns/local/skydns/dns/host1:dns_1:53:udp"), R"({"host":"fd00::7","port":53})");

  auto listed = adapter->Services();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  for (const auto& entry : *listed) {
    const Service& s = entry.service.id == web.id ? web : v6;
    EXPECT_EQ(entry.service.name, s.name);
    EXPECT_EQ(entry.service.ip, s.ip);
    EXPECT_EQ(entry.service.port, s.port);
    EXPECT_EQ(entry.fingerprint, adapter->Fingerprint(s));
    Service changed = s;
    changed.port += 1;
    EXPECT_NE(entry.fingerprint, adapter->Fingerprint(changed));
  }

  ASSERT_TRUE(adapter->Deregister(web).ok());
  EXPECT_EQ(Get("/skydns/local/skydns/web/host1:web_1:80"), "");
  EXPECT_TRUE(adapter->Deregister(web).ok());
  ASSERT_TRUE(adapter->Deregister(v6).ok());
}

TEST_F(Skydns2Test, DomainsDoNotSeeEachOther) {
  auto a = Make("a.example.com");
  auto b = Make("b.example.com");
  const Service s = MakeService("svc", "host1:s:80", "10.0.0.1", 80);
  ASSERT_TRUE(a->Register(s).ok());
  EXPECT_EQ(Get("/skydns/com/example/a/svc/host1:s:80"), R"({"host":"10.0.0.1","port":80})");
  auto listed = b->Services();
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());
  listed = a->Services();
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 1u);
}

TEST_F(Skydns2Test, TtlRecordsExpireUnlessRefreshed) {
  auto adapter = Make("ttl.local", /*ttl=*/2);
  const Service live = MakeService("svc", "host1:live:80", "10.0.0.1", 80);
  const Service gone = MakeService("svc", "host1:gone:80", "10.0.0.2", 80);
  ASSERT_TRUE(adapter->Register(live).ok());
  ASSERT_TRUE(adapter->Register(gone).ok());
  EXPECT_TRUE(WaitFor(
      [&] {
        EXPECT_TRUE(adapter->Refresh({live}).ok());
        return Get("/skydns/local/ttl/svc/host1:gone:80").empty();
      },
      absl::Seconds(10), absl::Milliseconds(400)));
  EXPECT_EQ(Get("/skydns/local/ttl/svc/host1:live:80"), R"({"host":"10.0.0.1","port":80})");
  adapter.reset();
  EXPECT_TRUE(WaitFor([&] { return Get("/skydns/local/ttl/svc/host1:live:80").empty(); },
                      absl::Seconds(10), absl::Milliseconds(200)));
}

}  // namespace
}  // namespace registrator
