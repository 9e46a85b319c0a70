// Integration tests of skydns2:// against a real etcd 3.4: the exact key and JSON value (where
// CoreDNS's etcd plugin looks), listing, fingerprints and TTL expiry.
#include "adapters/skydns2/skydns2_adapter.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"
#include "registrator/model/test_service.h"
#include "testing/etcd_fixture.h"
#include "testing/process.h"
#include "testing/status_matchers.h"

namespace registrator {
namespace {

using ::registrator::fakes::EtcdFixture;
using ::registrator::fakes::IsOk;
using ::registrator::fakes::MakeService;
using ::registrator::fakes::WaitFor;

class Skydns2Test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto started = EtcdFixture::Start();
    ASSERT_THAT(started, IsOk()) << started.status();
    etcd_ = started->release();
  }
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
  }

  std::unique_ptr<RegistryAdapter> Make(const std::string& domain, int ttl = 0) {
    absl::StatusOr<BackendUri> uri =
        ParseBackendUri(absl::StrCat("skydns2://", etcd_->endpoint(), "/", domain));
    EXPECT_THAT(uri, IsOk());
    AdapterOptions options;
    options.hostname = "host1";
    options.ttl = ttl;
    auto adapter = NewSkydns2Adapter(*uri, options);
    EXPECT_THAT(adapter, IsOk()) << adapter.status();
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

TEST_F(Skydns2Test, WritesTheExactKeyAndJsonValue) {
  auto adapter = Make("skydns.local");
  ASSERT_THAT(adapter->Ping(), IsOk()) << adapter->Ping();
  const Service web = MakeService("web", "host1:web_1:80", "10.0.0.5", 32768);
  const Service v6 = MakeService("dns", "host1:dns_1:53:udp", "fd00::7", 53);
  ASSERT_THAT(adapter->Register(web), IsOk());
  ASSERT_THAT(adapter->Register(v6), IsOk());
  EXPECT_EQ(Get("/skydns/local/skydns/web/host1:web_1:80"), R"({"host":"10.0.0.5","port":32768})");
  EXPECT_EQ(Get("/skydns/local/skydns/dns/host1:dns_1:53:udp"), R"({"host":"fd00::7","port":53})");

  auto listed = adapter->Services();
  ASSERT_THAT(listed, IsOk()) << listed.status();
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

  ASSERT_THAT(adapter->Deregister(web), IsOk());
  EXPECT_EQ(Get("/skydns/local/skydns/web/host1:web_1:80"), "");
  EXPECT_THAT(adapter->Deregister(web), IsOk());
  ASSERT_THAT(adapter->Deregister(v6), IsOk());
}

// The key holds the name: a service whose name changed is a new DNS record, and the bridge
// deletes the old one after writing the new (RegistryAdapter::EntryKey). Before, the old record
// kept answering.
TEST_F(Skydns2Test, ANameChangeIsANewKeyAndTheOldOneIsDeletedAlone) {
  auto adapter = Make("moved.local");
  const Service old = MakeService("web", "host1:web_1:80", "10.0.0.5", 32768);
  Service renamed = old;
  renamed.name = "web2";
  Service moved_ip = old;  // The address is the value: same key, overwritten in place.
  moved_ip.ip = "10.0.0.6";
  EXPECT_NE(adapter->EntryKey(old), adapter->EntryKey(renamed));
  EXPECT_EQ(adapter->EntryKey(old), adapter->EntryKey(moved_ip));
  ASSERT_THAT(adapter->Register(old), IsOk());
  ASSERT_THAT(adapter->Register(renamed), IsOk());
  ASSERT_THAT(adapter->Deregister(old), IsOk());
  EXPECT_EQ(Get("/skydns/local/moved/web/host1:web_1:80"), "");
  EXPECT_EQ(Get("/skydns/local/moved/web2/host1:web_1:80"), R"({"host":"10.0.0.5","port":32768})");
}

TEST_F(Skydns2Test, DomainsDoNotSeeEachOther) {
  auto a = Make("a.example.com");
  auto b = Make("b.example.com");
  const Service s = MakeService("svc", "host1:s:80", "10.0.0.1", 80);
  ASSERT_THAT(a->Register(s), IsOk());
  EXPECT_EQ(Get("/skydns/com/example/a/svc/host1:s:80"), R"({"host":"10.0.0.1","port":80})");
  auto listed = b->Services();
  ASSERT_THAT(listed, IsOk());
  EXPECT_TRUE(listed->empty());
  listed = a->Services();
  ASSERT_THAT(listed, IsOk());
  EXPECT_EQ(listed->size(), 1u);
}

TEST_F(Skydns2Test, TtlRecordsExpireUnlessRefreshed) {
  auto adapter = Make("ttl.local", /*ttl=*/2);
  const Service live = MakeService("svc", "host1:live:80", "10.0.0.1", 80);
  const Service gone = MakeService("svc", "host1:gone:80", "10.0.0.2", 80);
  ASSERT_THAT(adapter->Register(live), IsOk());
  ASSERT_THAT(adapter->Register(gone), IsOk());
  EXPECT_TRUE(WaitFor(
      [&] {
        EXPECT_THAT(adapter->Refresh({live}), IsOk());
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
