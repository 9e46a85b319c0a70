// The Consul KV adapter against the in-process stand-in: key layout, values, listing,
// fingerprints, unix socket URIs, and failure statuses.
#include "adapters/consulkv/consulkv_adapter.h"

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "adapters/consul/consul_watch.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/consul_standin/consul_standin.h"
#include "testing/drift_counter.h"
#include "testing/process.h"
#include "testing/scripted_http_server.h"
#include "testing/status_matchers.h"

namespace registrator {
namespace {

using ::registrator::fakes::ConsulStandin;
using ::registrator::fakes::DriftCounter;
using ::registrator::fakes::IsOk;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

Service MakeService(const std::string& id, const std::string& name, const std::string& ip,
                    int port) {
  Service s;
  s.id = id;
  s.name = name;
  s.ip = ip;
  s.port = port;
  return s;
}

std::unique_ptr<RegistryAdapter> MakeAdapter(const std::string& uri,
                                             const AdapterOptions& options = {}) {
  absl::StatusOr<BackendUri> parsed = ParseBackendUri(uri);
  EXPECT_THAT(parsed, IsOk()) << parsed.status();
  auto adapter = NewConsulKvAdapter(*parsed, options);
  EXPECT_THAT(adapter, IsOk()) << adapter.status();
  return adapter.ok() ? *std::move(adapter) : nullptr;
}

class ConsulKvTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_THAT(standin_.ListenTcp(), IsOk()); }
  std::string Uri(const std::string& path) const {
    return absl::StrCat("consulkv://127.0.0.1:", standin_.port(), path);
  }
  ConsulStandin standin_;
};

TEST_F(ConsulKvTest, WritesKeyPerServiceAndDeletesIt) {
  auto adapter = MakeAdapter(Uri("/services"));
  ASSERT_THAT(adapter->Ping(), IsOk());
  const Service v4 = MakeService("host1:web:80", "web", "10.0.0.5", 32768);
  const Service v6 = MakeService("host1:web6:80", "web6", "fd00::5", 8080);
  ASSERT_THAT(adapter->Register(v4), IsOk());
  ASSERT_THAT(adapter->Register(v6), IsOk());
  EXPECT_EQ(standin_.KvValue("services/web/host1:web:80"), "10.0.0.5:32768");
  EXPECT_EQ(standin_.KvValue("services/web6/host1:web6:80"), "[fd00::5]:8080");
  EXPECT_EQ(standin_.BodiesOf("PUT", "/v1/kv/services/web/host1:web:80"),
            std::vector<std::string>{"10.0.0.5:32768"});

  ASSERT_THAT(adapter->Deregister(v4), IsOk());
  EXPECT_EQ(standin_.KvValue("services/web/host1:web:80"), std::nullopt);
  EXPECT_THAT(adapter->Deregister(v4), IsOk());  // Already gone is fine.
}

// The key holds the name: a service whose name changed is a new key, and the bridge deletes the
// old one after writing the new (RegistryAdapter::EntryKey). Before, the old key stayed.
TEST_F(ConsulKvTest, ANameChangeIsANewKeyAndTheOldOneIsDeletedAlone) {
  auto adapter = MakeAdapter(Uri("/services"));
  const Service old = MakeService("host1:web:80", "web", "10.0.0.5", 32768);
  Service renamed = old;
  renamed.name = "web2";
  Service moved_ip = old;  // The address is the value: same key, overwritten in place.
  moved_ip.ip = "10.0.0.6";
  EXPECT_NE(adapter->EntryKey(old), adapter->EntryKey(renamed));
  EXPECT_EQ(adapter->EntryKey(old), adapter->EntryKey(moved_ip));
  ASSERT_THAT(adapter->Register(old), IsOk());
  ASSERT_THAT(adapter->Register(renamed), IsOk());
  ASSERT_THAT(adapter->Deregister(old), IsOk());
  EXPECT_EQ(standin_.KvValue("services/web/host1:web:80"), std::nullopt);
  EXPECT_EQ(standin_.KvValue("services/web2/host1:web:80"), "10.0.0.5:32768");
}

TEST_F(ConsulKvTest, ListsPrefixWithFingerprints) {
  auto adapter = MakeAdapter(Uri("/services"));
  auto empty = adapter->Services();
  ASSERT_THAT(empty, IsOk()) << empty.status();
  EXPECT_THAT(*empty, IsEmpty());

  const Service v4 = MakeService("host1:web:80", "web", "10.0.0.5", 32768);
  const Service v6 = MakeService("host1:web6:80:udp", "web6", "fd00::5", 8080);
  ASSERT_THAT(adapter->Register(v4), IsOk());
  ASSERT_THAT(adapter->Register(v6), IsOk());
  // Outside the prefix, and a stray key inside it: neither is a service of ours.
  ASSERT_EQ(standin_.Handle("PUT", "/v1/kv/other/web/x", {}, "1.1.1.1:1", {}).status, 200);
  ASSERT_EQ(standin_.Handle("PUT", "/v1/kv/services/stray", {}, "x", {}).status, 200);

  standin_.ClearLog();
  auto listed = adapter->Services();
  ASSERT_THAT(listed, IsOk()) << listed.status();
  EXPECT_EQ(standin_.write_count(), 0);
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].service.id, "host1:web:80");
  EXPECT_EQ((*listed)[0].service.name, "web");
  EXPECT_EQ((*listed)[0].service.ip, "10.0.0.5");
  EXPECT_EQ((*listed)[0].service.port, 32768);
  EXPECT_EQ((*listed)[0].fingerprint, "services/web/host1:web:80=10.0.0.5:32768");
  EXPECT_EQ((*listed)[0].fingerprint, adapter->Fingerprint(v4));
  EXPECT_EQ((*listed)[1].service.ip, "fd00::5");
  EXPECT_EQ((*listed)[1].service.port, 8080);
  EXPECT_EQ((*listed)[1].fingerprint, adapter->Fingerprint(v6));

  Service moved = v4;
  moved.port = 32769;
  EXPECT_NE((*listed)[0].fingerprint, adapter->Fingerprint(moved));
  moved = v4;
  moved.ip = "10.0.0.6";
  EXPECT_NE((*listed)[0].fingerprint, adapter->Fingerprint(moved));

  // Deregistering what Services() returned removes it.
  ASSERT_THAT(adapter->Deregister((*listed)[1].service), IsOk());
  EXPECT_EQ(standin_.KvValue("services/web6/host1:web6:80:udp"), std::nullopt);
}

TEST_F(ConsulKvTest, EmptyPrefixUsesNameAtTheRoot) {
  auto adapter = MakeAdapter(Uri(""));
  ASSERT_THAT(adapter->Register(MakeService("h:c:1", "svc", "1.2.3.4", 1)), IsOk());
  EXPECT_EQ(standin_.KvValue("svc/h:c:1"), "1.2.3.4:1");
  auto listed = adapter->Services();
  ASSERT_THAT(listed, IsOk());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].service.id, "h:c:1");
}

TEST_F(ConsulKvTest, RefreshIsANoOp) {
  AdapterOptions options;
  options.ttl = 30;
  auto adapter = MakeAdapter(Uri("/services"), options);
  const Service s = MakeService("host1:web:80", "web", "10.0.0.5", 1);
  ASSERT_THAT(adapter->Register(s), IsOk());
  standin_.ClearLog();
  EXPECT_THAT(adapter->Refresh({s}), IsOk());
  EXPECT_THAT(standin_.requests(), IsEmpty());
}

TEST(ConsulKvAclTest, TokenIsSentAndMissingTokenIsPermissionDenied) {
  ConsulStandin standin({.acl_token = "kv-token"});
  ASSERT_THAT(standin.ListenTcp(), IsOk());
  const std::string uri = absl::StrCat("consulkv://127.0.0.1:", standin.port(), "/p");
  const Service s = MakeService("h:c:1", "svc", "1.2.3.4", 1);
  EXPECT_EQ(MakeAdapter(uri)->Register(s).code(), absl::StatusCode::kPermissionDenied);
  AdapterOptions options;
  options.env["CONSUL_HTTP_TOKEN"] = "kv-token";
  ASSERT_THAT(MakeAdapter(uri, options)->Register(s), IsOk());
  EXPECT_EQ(standin.KvValue("p/svc/h:c:1"), "1.2.3.4:1");
}

TEST(ConsulKvUnixTest, SocketPathThenPrefix) {
  registrator::fakes::TempDir dir("ckv");
  const std::string socket = dir.path() + "/consul.sock";
  ConsulStandin standin;
  ASSERT_THAT(standin.ListenUnix(socket), IsOk());
  auto adapter = MakeAdapter(absl::StrCat("consulkv-unix://", socket, ":/reg/services"));
  ASSERT_THAT(adapter->Ping(), IsOk());
  ASSERT_THAT(adapter->Register(MakeService("h:c:1", "svc", "1.2.3.4", 1)), IsOk());
  EXPECT_EQ(standin.KvValue("reg/services/svc/h:c:1"), "1.2.3.4:1");
  auto listed = adapter->Services();
  ASSERT_THAT(listed, IsOk());
  EXPECT_EQ(listed->size(), 1u);
}

// A rate limit or a proxy's answer is retried, not taken as a rejected value (issue 12).
TEST(ConsulKvStatusTest, OnlyA400IsPermanent) {
  fakes::ScriptedHttpServer agent;
  auto adapter = MakeAdapter(absl::StrCat("consulkv://", agent.address(), "/p"));
  const Service s = MakeService("h:c:1", "svc", "1.2.3.4", 1);
  const std::pair<int, absl::StatusCode> cases[] = {
      {200, absl::StatusCode::kOk},
      {400, absl::StatusCode::kInvalidArgument},
      {403, absl::StatusCode::kPermissionDenied},
      {404, absl::StatusCode::kUnavailable},
      {408, absl::StatusCode::kUnavailable},
      {413, absl::StatusCode::kUnavailable},
      {429, absl::StatusCode::kUnavailable},
      {500, absl::StatusCode::kUnavailable},
  };
  for (const auto& [http_status, code] : cases) {
    agent.Reply("PUT /v1/kv/p/svc/h:c:1", http_status, "answer");
    EXPECT_EQ(adapter->Register(s).code(), code) << http_status;
  }
}

TEST(ConsulKvDownTest, UnreachableIsUnavailableAndFactoryValidates) {
  const int port = registrator::fakes::FreeLoopbackPort();
  auto adapter = MakeAdapter(absl::StrCat("consulkv://127.0.0.1:", port, "/p"));
  EXPECT_EQ(adapter->Ping().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(adapter->Register(MakeService("h:c:1", "svc", "1.2.3.4", 1)).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(NewConsulKvAdapter(*ParseBackendUri("consul://127.0.0.1:1/p"), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NewConsulKvAdapter(*ParseBackendUri("consulkv-unix://h/x.sock:/p"), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// --- Drift watching (issue 16): a blocking recursive read of the prefix. ---

class ConsulKvWatchTest : public ConsulKvTest {
 protected:
  std::unique_ptr<RegistryAdapter> MakeWatching(consul::BlockingWatchOptions watch = {}) {
    absl::StatusOr<BackendUri> parsed = ParseBackendUri(Uri("/services"));
    EXPECT_THAT(parsed, IsOk()) << parsed.status();
    auto adapter = NewConsulKvAdapterWithWatch(*parsed, AdapterOptions(), watch);
    EXPECT_THAT(adapter, IsOk()) << adapter.status();
    return adapter.ok() ? *std::move(adapter) : nullptr;
  }
  // Reads of the prefix the stand-in received: all, and those that block (?index=).
  int Reads(bool blocking_only) const {
    int reads = 0;
    for (const auto& r : standin_.requests()) {
      if (r.path != "/v1/kv/services/" || !absl::StrContains(r.query, "recurse")) continue;
      reads += !blocking_only || absl::StrContains(r.query, "index=");
    }
    return reads;
  }
  void AwaitReadsAbove(int mark, bool blocking_only = true) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (Reads(blocking_only) <= mark && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(2));
    }
    ASSERT_GT(Reads(blocking_only), mark);
  }
  int Behind(const std::string& method, const std::string& key, const std::string& body = "") {
    return standin_.Handle(method, absl::StrCat("/v1/kv/", key), {}, body, {}).status;
  }
};

TEST_F(ConsulKvWatchTest, DeletedOrAlteredKeyCallsDriftedAndOtherPrefixesDoNot) {
  auto adapter = MakeWatching();
  ASSERT_THAT(adapter->Register(MakeService("host1:web:80", "web", "10.0.0.5", 80)), IsOk());
  DriftCounter drift;
  ASSERT_THAT(adapter->StartWatch(drift.Callback()), IsOk());
  ASSERT_TRUE(drift.AwaitAbove(0));  // The baseline read.
  AwaitReadsAbove(0);
  int mark = drift.count();
  // A write outside the prefix: Consul's index for the prefix does not move, nor does the
  // parked read.
  ASSERT_EQ(Behind("PUT", "elsewhere/web/x", "1.2.3.4:5"), 200);
  ASSERT_EQ(Behind("DELETE", "elsewhere/web/x"), 200);
  EXPECT_EQ(Reads(true), 1);

  ASSERT_EQ(Behind("DELETE", "services/web/host1:web:80"), 200);
  ASSERT_TRUE(drift.AwaitAbove(mark));
  AwaitReadsAbove(1);
  mark = drift.count();
  ASSERT_EQ(Behind("PUT", "services/web/host1:web:80", "6.6.6.6:1"), 200);
  ASSERT_TRUE(drift.AwaitAbove(mark));
  EXPECT_EQ(standin_.write_count(), 5);  // Ours was the first; the watch writes nothing.
  adapter->StopWatch();
}

TEST_F(ConsulKvWatchTest, IndexGoingBackwardsResetsToAFreshRead) {
  consul::BlockingWatchOptions options;
  options.wait = absl::Milliseconds(100);
  auto adapter = MakeWatching(options);
  for (int i = 0; i < 5; ++i) {
    ASSERT_THAT(adapter->Register(MakeService(absl::StrCat("h:web:", i), "web", "10.0.0.5", i)),
                IsOk());
  }
  DriftCounter drift;
  ASSERT_THAT(adapter->StartWatch(drift.Callback()), IsOk());
  ASSERT_TRUE(drift.AwaitAbove(0));
  AwaitReadsAbove(0);
  const int mark = drift.count();
  const int fresh_reads = Reads(false) - Reads(true);
  // The agent's state is replaced by one with a lower index (restarted without data, one key
  // written since): the parked read answers when its wait runs out with that lower index, and
  // the watch must start over from index 0 (else it would block on an index the agent will not
  // reach for a long time) and report the drift.
  standin_.Wipe();
  ASSERT_EQ(Behind("PUT", "services/web/h:web:9", "10.0.0.9:9"), 200);
  ASSERT_TRUE(drift.AwaitAbove(mark));
  AwaitReadsAbove(Reads(true));
  EXPECT_EQ(Reads(false) - Reads(true), fresh_reads + 1);
  // And it watches the new state: a deletion there is seen.
  const int after_reset = drift.count();
  ASSERT_EQ(Behind("DELETE", "services/web/h:web:9"), 200);
  EXPECT_TRUE(drift.AwaitAbove(after_reset));
  adapter->StopWatch();
}

}  // namespace
}  // namespace registrator
