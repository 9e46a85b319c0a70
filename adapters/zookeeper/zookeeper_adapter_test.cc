// The ZooKeeper adapter against a real ZooKeeper 3.8 server (testing/zookeeper_fixture.h). What
// the adapter wrote is read back with a separate, plain C-client handle, so the checks do not
// depend on the code under test.
#include "adapters/zookeeper/zookeeper_adapter.h"

#include <zookeeper/zookeeper.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "adapters/zookeeper/zookeeper_adapter_testing.h"
#include "adapters/zookeeper/zookeeper_session.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"
#include "testing/process.h"
#include "testing/status_matchers.h"
#include "testing/zookeeper_client.h"
#include "testing/zookeeper_fixture.h"

namespace registrator {
namespace {

using ::registrator::fakes::IsOk;
using ::registrator::fakes::WaitFor;
using ::registrator::zookeeper::AdapterForTesting;
using ::registrator::zookeeper::NewZookeeperAdapterForTesting;
using ZookeeperSettings = ::registrator::zookeeper::SessionSettings;
using ::registrator::fakes::ZookeeperServer;
using ::registrator::fakes::ZookeeperTestClient;
using ::testing::UnorderedElementsAre;

Service MakeService(const std::string& name, const std::string& ip, int port) {
  Service s;
  s.id = absl::StrCat("host1:", name, "-ctr:", port);
  s.name = name;
  s.ip = ip;
  s.port = port;
  s.exposed_port = 80;
  s.container_id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  s.tags = {"prod", "v1"};
  s.attrs = {{"region", "eu"}};
  return s;
}

// The server's last transaction id: it moves with every write, so "unchanged" means no write.
std::string Zxid(const ZookeeperServer& server) {
  absl::StatusOr<std::string> srvr = server.FourLetter("srvr");
  if (!srvr.ok()) return "";
  const size_t at = srvr->find("Zxid: ");
  return at == std::string::npos ? "" : srvr->substr(at, srvr->find('\n', at) - at);
}

class ZookeeperAdapterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);  // The raw handles' connect chatter.
    absl::StatusOr<std::unique_ptr<ZookeeperServer>> server = ZookeeperServer::Start();
    ASSERT_THAT(server, IsOk()) << server.status();
    server_ = std::move(*server).release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    if (server_->paused()) server_->Resume();
    raw_zookeeper_ = std::make_unique<ZookeeperTestClient>(server_->address());
    ASSERT_TRUE(raw_zookeeper_->WaitConnected());
  }

  std::unique_ptr<RegistryAdapter> MakeAdapter(const std::string& base,
                                               ZookeeperSettings settings = ZookeeperSettings(),
                                               const std::string& userinfo = "",
                                               const std::string& hostname = "host1") {
    absl::StatusOr<BackendUri> uri =
        ParseBackendUri(absl::StrCat("zookeeper://", userinfo, server_->address(), base));
    EXPECT_THAT(uri, IsOk()) << uri.status();
    AdapterOptions options;
    options.hostname = hostname;
    absl::StatusOr<AdapterForTesting> adapter =
        NewZookeeperAdapterForTesting(*uri, options, settings, before_session_open_);
    EXPECT_THAT(adapter, IsOk()) << adapter.status();
    if (!adapter.ok()) return nullptr;
    session_credentials_ = std::move(adapter->session_credentials);
    return std::move(adapter->adapter);
  }

  // Ends the session of the adapter MakeAdapter made last: takes it over with a second handle
  // and closes that, so the server expires it. The take-over races with the adapter's own
  // reconnect: if the adapter takes the session back first, the second handle is no longer
  // connected when it closes, sends no close, and the session lives on. So every round resumes
  // the session once more, and only the server's "expired" answer ends the loop.
  void ExpireSession() {
    absl::StatusOr<std::pair<int64_t, std::string>> id = session_credentials_();
    ASSERT_THAT(id, IsOk()) << id.status();
    clientid_t client{};
    client.client_id = id->first;
    memcpy(client.passwd, id->second.data(), sizeof(client.passwd));
    for (int round = 0; round < 20; ++round) {
      ZookeeperTestClient thief(server_->address(), &client, 2000);
      ASSERT_TRUE(thief.WaitConnectedOrExpired());
      if (thief.expired()) return;
    }
    FAIL() << "session " << id->first << " still alive after 20 take-overs";
  }

  static ZookeeperServer* server_;
  std::unique_ptr<ZookeeperTestClient> raw_zookeeper_;
  // Of the adapter MakeAdapter made last.
  std::function<absl::StatusOr<std::pair<int64_t, std::string>>()> session_credentials_;
  // Passed to the next MakeAdapter.
  std::function<void()> before_session_open_;
};

ZookeeperServer* ZookeeperAdapterTest::server_ = nullptr;

TEST_F(ZookeeperAdapterTest, RegisterCreatesBaseLevelsAndEphemeralNodeWithExactJson) {
  auto adapter = MakeAdapter("/reg/a/b");
  ASSERT_THAT(adapter->Ping(), IsOk());
  const Service s = MakeService("web", "10.0.0.5", 32768);
  ASSERT_THAT(adapter->Register(s), IsOk());

  Stat stat{};
  std::optional<std::string> data = raw_zookeeper_->Get("/reg/a/b/web/10.0.0.5:32768", &stat);
  ASSERT_TRUE(data.has_value());
  EXPECT_EQ(*data, R"({"Name":"web","IP":"10.0.0.5","PublicPort":32768,"PrivatePort":80,)"
                   R"("ContainerID":"0123456789ab","Tags":["prod","v1"],"Attrs":{"region":"eu"},)"
                   R"("ID":"host1:web-ctr:32768"})");
  EXPECT_EQ(*data, adapter->Fingerprint(s));
  EXPECT_NE(stat.ephemeralOwner, 0) << "service node must be ephemeral";
  for (const char* level : {"/reg", "/reg/a", "/reg/a/b", "/reg/a/b/web"}) {
    Stat parent{};
    ASSERT_TRUE(raw_zookeeper_->Get(level, &parent).has_value()) << level;
    EXPECT_EQ(parent.ephemeralOwner, 0) << level << " must be persistent";
  }

  const Service v6 = MakeService("web", "fd00::5", 8443);
  ASSERT_THAT(adapter->Register(v6), IsOk());
  EXPECT_THAT(raw_zookeeper_->Children("/reg/a/b/web"),
              UnorderedElementsAre("10.0.0.5:32768", "[fd00::5]:8443"));
}

TEST_F(ZookeeperAdapterTest, RegisterIsIdempotentAndUpdatesChangedData) {
  auto adapter = MakeAdapter("/idem");
  Service s = MakeService("api", "10.0.0.6", 9000);
  ASSERT_THAT(adapter->Register(s), IsOk());
  const std::string path = "/idem/api/10.0.0.6:9000";
  Stat before{};
  ASSERT_TRUE(raw_zookeeper_->Get(path, &before).has_value());

  const std::string zxid = Zxid(*server_);
  ASSERT_FALSE(zxid.empty());
  ASSERT_THAT(adapter->Register(s), IsOk());
  EXPECT_EQ(Zxid(*server_), zxid) << "registering unchanged data must not write";

  s.tags = {"prod", "v2"};
  ASSERT_THAT(adapter->Register(s), IsOk());
  Stat after{};
  std::optional<std::string> data = raw_zookeeper_->Get(path, &after);
  ASSERT_TRUE(data.has_value());
  EXPECT_EQ(*data, adapter->Fingerprint(s));
  EXPECT_THAT(*data, ::testing::HasSubstr(R"("Tags":["prod","v2"])"));
  // Updated in place (set), not deleted and re-created.
  EXPECT_EQ(after.czxid, before.czxid);
  EXPECT_EQ(after.version, before.version + 1);
}

TEST_F(ZookeeperAdapterTest, RegisterReplacesANodeThatIsNotOurs) {
  auto adapter = MakeAdapter("/foreignnode");
  const Service s = MakeService("api", "10.0.0.7", 9000);
  ASSERT_EQ(raw_zookeeper_->Create("/foreignnode", ""), ZOK);
  ASSERT_EQ(raw_zookeeper_->Create("/foreignnode/api", ""), ZOK);
  ASSERT_EQ(raw_zookeeper_->Create("/foreignnode/api/10.0.0.7:9000", "stale"), ZOK);  // Persistent.
  ASSERT_THAT(adapter->Register(s), IsOk());
  Stat stat{};
  std::optional<std::string> data = raw_zookeeper_->Get("/foreignnode/api/10.0.0.7:9000", &stat);
  ASSERT_TRUE(data.has_value());
  EXPECT_EQ(*data, adapter->Fingerprint(s));
  EXPECT_NE(stat.ephemeralOwner, 0);
}

TEST_F(ZookeeperAdapterTest, DeregisterRemovesNodeAndThenTheEmptyNameNode) {
  auto adapter = MakeAdapter("/dereg");
  const Service a = MakeService("db", "10.0.0.8", 5432);
  const Service b = MakeService("db", "10.0.0.8", 5433);
  ASSERT_THAT(adapter->Register(a), IsOk());
  ASSERT_THAT(adapter->Register(b), IsOk());

  ASSERT_THAT(adapter->Deregister(a), IsOk());
  EXPECT_FALSE(raw_zookeeper_->Exists("/dereg/db/10.0.0.8:5432"));
  EXPECT_THAT(raw_zookeeper_->Children("/dereg/db"), UnorderedElementsAre("10.0.0.8:5433"));

  ASSERT_THAT(adapter->Deregister(b), IsOk());
  EXPECT_FALSE(raw_zookeeper_->Exists("/dereg/db"));
  EXPECT_TRUE(raw_zookeeper_->Exists("/dereg")) << "the base stays";

  // Already gone: still success.
  EXPECT_THAT(adapter->Deregister(a), IsOk());
}

// A session that ends without deregistering (SIGKILL, then expiry) takes its ephemeral nodes
// along but left their Name nodes behind, empty, forever: -cleanup only sees service nodes.
// CleanupLeftovers removes the empty Name nodes this host registered under, and no other.
TEST_F(ZookeeperAdapterTest, CleanupLeftoversRemovesEmptyNameNodesThisHostUsed) {
  auto crashed = MakeAdapter("/left");
  ASSERT_THAT(crashed->Register(MakeService("web", "10.0.9.1", 80)), IsOk());
  ASSERT_THAT(crashed->Register(MakeService("api", "10.0.9.1", 81)), IsOk());
  // "shared": this host and host2 both registered; host2's node stays.
  ASSERT_THAT(crashed->Register(MakeService("shared", "10.0.9.1", 82)), IsOk());
  auto other = MakeAdapter("/left", ZookeeperSettings(), "", "host2");
  ASSERT_THAT(other->Register(MakeService("shared", "10.0.9.2", 82)), IsOk());
  // "db": an empty Name node only host2 used: not this host's.
  ASSERT_EQ(raw_zookeeper_->Create("/left/db", R"({"Hosts":["host2"]})"), ZOK);
  // "manual": an empty Name node some other writer made (no host list).
  ASSERT_EQ(raw_zookeeper_->Create("/left/manual", ""), ZOK);
  crashed = MakeAdapter("/left");  // The old one is closed: its nodes are gone, as on expiry.
  EXPECT_THAT(raw_zookeeper_->Children("/left/web"), ::testing::IsEmpty());
  Stat stat{};
  std::optional<std::string> listed = raw_zookeeper_->Get("/left/shared", &stat);
  ASSERT_TRUE(listed.has_value());
  EXPECT_EQ(*listed, R"({"Hosts":["host1","host2"]})");

  ASSERT_THAT(crashed->CleanupLeftovers(), IsOk());
  EXPECT_THAT(raw_zookeeper_->Children("/left"), UnorderedElementsAre("shared", "db", "manual"));
  EXPECT_THAT(raw_zookeeper_->Children("/left/shared"), UnorderedElementsAre("10.0.9.2:82"));
  // Nothing left to do: a second pass changes nothing.
  const std::string zxid = Zxid(*server_);
  ASSERT_THAT(crashed->CleanupLeftovers(), IsOk());
  EXPECT_EQ(Zxid(*server_), zxid);
  // A Name node removed this way is re-created by the next Register.
  ASSERT_THAT(crashed->Register(MakeService("web", "10.0.9.1", 80)), IsOk());
  EXPECT_THAT(raw_zookeeper_->Children("/left/web"), UnorderedElementsAre("10.0.9.1:80"));
}

// The node path holds the name, IP and port: a service whose name or address changed is a new
// node, and the bridge deletes the old one after writing the new (RegistryAdapter::EntryKey).
// Before, the old node stayed as long as the session. The old node still holds the same ID, so
// the ID check of Deregister lets it go.
TEST_F(ZookeeperAdapterTest, ANameOrAddressChangeIsANewNodeAndTheOldOneIsDeletedAlone) {
  auto adapter = MakeAdapter("/moved");
  const Service old = MakeService("web", "10.0.9.5", 80);
  Service renamed = old;
  renamed.name = "web2";
  Service moved_ip = old;
  moved_ip.ip = "10.0.9.6";
  Service retagged = old;  // Data only: the same node, updated in place.
  retagged.tags = {"canary"};
  EXPECT_NE(adapter->EntryKey(old), adapter->EntryKey(renamed));
  EXPECT_NE(adapter->EntryKey(old), adapter->EntryKey(moved_ip));
  EXPECT_EQ(adapter->EntryKey(old), adapter->EntryKey(retagged));
  ASSERT_THAT(adapter->Register(old), IsOk());
  ASSERT_THAT(adapter->Register(moved_ip), IsOk());
  ASSERT_THAT(adapter->Deregister(old), IsOk());
  EXPECT_THAT(raw_zookeeper_->Children("/moved/web"), UnorderedElementsAre("10.0.9.6:80"));
  ASSERT_THAT(adapter->Register(renamed), IsOk());
  ASSERT_THAT(adapter->Deregister(moved_ip), IsOk());
  EXPECT_THAT(raw_zookeeper_->Children("/moved"), UnorderedElementsAre("web2"));
  EXPECT_THAT(raw_zookeeper_->Children("/moved/web2"), UnorderedElementsAre("10.0.9.5:80"));
}

TEST_F(ZookeeperAdapterTest, ServicesListsOursAndForeignEntriesWithFingerprints) {
  auto adapter = MakeAdapter("/list");
  const Service web = MakeService("web", "10.0.1.1", 80);
  const Service v6 = MakeService("web", "fd00::1", 81);
  ASSERT_THAT(adapter->Register(web), IsOk());
  ASSERT_THAT(adapter->Register(v6), IsOk());
  // Another host's node, an upstream-written node without "ID", and garbage.
  ASSERT_EQ(raw_zookeeper_->Create("/list/db", ""), ZOK);
  ASSERT_EQ(
      raw_zookeeper_->Create("/list/db/10.9.9.9:5432",
                             R"({"Name":"db","IP":"10.9.9.9","PublicPort":5432,"PrivatePort":5432,)"
                             R"("ContainerID":"aaaaaaaaaaaa","Tags":null,"Attrs":null,)"
                             R"("ID":"otherhost:db:5432"})"),
      ZOK);
  ASSERT_EQ(raw_zookeeper_->Create("/list/db/10.9.9.9:5433", R"({"Name":"db","IP":"10.9.9.9"})"),
            ZOK);
  ASSERT_EQ(raw_zookeeper_->Create("/list/db/10.9.9.9:5434", "not json"), ZOK);

  absl::StatusOr<std::vector<RegisteredService>> listed = adapter->Services();
  ASSERT_THAT(listed, IsOk()) << listed.status();
  ASSERT_EQ(listed->size(), 3u);
  std::map<std::string, RegisteredService> by_id;
  for (const RegisteredService& r : *listed) by_id[r.service.id] = r;
  ASSERT_EQ(by_id.count(web.id), 1u);
  ASSERT_EQ(by_id.count(v6.id), 1u);
  ASSERT_EQ(by_id.count("otherhost:db:5432"), 1u);

  const RegisteredService& listed_web = by_id[web.id];
  EXPECT_EQ(listed_web.service.name, "web");
  EXPECT_EQ(listed_web.service.ip, "10.0.1.1");
  EXPECT_EQ(listed_web.service.port, 80);
  EXPECT_EQ(listed_web.fingerprint, adapter->Fingerprint(web));
  EXPECT_EQ(by_id[v6.id].service.ip, "fd00::1");
  EXPECT_EQ(by_id[v6.id].fingerprint, adapter->Fingerprint(v6));
  Service changed = web;
  changed.attrs = {{"region", "us"}};
  EXPECT_NE(listed_web.fingerprint, adapter->Fingerprint(changed));
  changed = web;
  changed.port = 8080;
  EXPECT_NE(listed_web.fingerprint, adapter->Fingerprint(changed));

  // A listed entry carries enough to deregister it, even one we did not write.
  const RegisteredService& foreign = by_id["otherhost:db:5432"];
  EXPECT_EQ(foreign.service.name, "db");
  EXPECT_EQ(foreign.service.port, 5432);
  ASSERT_THAT(adapter->Deregister(foreign.service), IsOk());
  EXPECT_FALSE(raw_zookeeper_->Exists("/list/db/10.9.9.9:5432"));
  EXPECT_TRUE(raw_zookeeper_->Exists("/list/db/10.9.9.9:5433"));
  ASSERT_THAT(adapter->Deregister(listed_web.service), IsOk());
  EXPECT_FALSE(raw_zookeeper_->Exists("/list/web/10.0.1.1:80"));
}

TEST_F(ZookeeperAdapterTest, EmptyBasePathMeansTheRoot) {
  auto adapter = MakeAdapter("");
  const Service s = MakeService("rootsvc", "10.0.9.1", 80);
  ASSERT_THAT(adapter->Register(s), IsOk());
  EXPECT_TRUE(raw_zookeeper_->Exists("/rootsvc/10.0.9.1:80"));
  // The listing walks ZooKeeper's own /zookeeper/* nodes too, and skips them.
  absl::StatusOr<std::vector<RegisteredService>> listed = adapter->Services();
  ASSERT_THAT(listed, IsOk()) << listed.status();
  bool found = false;
  for (const RegisteredService& r : *listed) {
    EXPECT_NE(r.service.name, "zookeeper");
    if (r.service.id == s.id) found = r.fingerprint == adapter->Fingerprint(s);
  }
  EXPECT_TRUE(found);
  ASSERT_THAT(adapter->Deregister(s), IsOk());
  EXPECT_FALSE(raw_zookeeper_->Exists("/rootsvc"));
}

TEST_F(ZookeeperAdapterTest, ServicesOfAMissingBaseIsEmpty) {
  auto adapter = MakeAdapter("/does/not/exist");
  absl::StatusOr<std::vector<RegisteredService>> listed = adapter->Services();
  ASSERT_THAT(listed, IsOk()) << listed.status();
  EXPECT_TRUE(listed->empty());
}

TEST_F(ZookeeperAdapterTest, RefreshRecreatesMissingNodesAndWritesNothingOtherwise) {
  auto adapter = MakeAdapter("/refresh");
  const Service a = MakeService("svc", "10.0.2.1", 1000);
  const Service b = MakeService("svc", "10.0.2.1", 1001);
  const Service kept = MakeService("svc", "10.0.2.1", 1002);
  ASSERT_THAT(adapter->Register(a), IsOk());
  ASSERT_THAT(adapter->Register(b), IsOk());
  ASSERT_THAT(adapter->Register(kept), IsOk());

  std::string zxid = Zxid(*server_);
  ASSERT_THAT(adapter->Refresh({a, b}), IsOk());
  EXPECT_EQ(Zxid(*server_), zxid) << "refresh of intact nodes must not write";

  Stat b_before{};
  ASSERT_TRUE(raw_zookeeper_->Get("/refresh/svc/10.0.2.1:1001", &b_before).has_value());
  ASSERT_EQ(raw_zookeeper_->Delete("/refresh/svc/10.0.2.1:1000"),
            ZOK);  // Behind the adapter's back.
  ASSERT_THAT(adapter->Refresh({a, b}), IsOk());
  std::optional<std::string> data = raw_zookeeper_->Get("/refresh/svc/10.0.2.1:1000");
  ASSERT_TRUE(data.has_value());
  EXPECT_EQ(*data, adapter->Fingerprint(a));
  Stat b_after{};
  ASSERT_TRUE(raw_zookeeper_->Get("/refresh/svc/10.0.2.1:1001", &b_after).has_value());
  EXPECT_EQ(b_after.mzxid, b_before.mzxid);
  // Not in the list: left alone (it lives as long as the session).
  EXPECT_TRUE(raw_zookeeper_->Exists("/refresh/svc/10.0.2.1:1002"));
}

TEST_F(ZookeeperAdapterTest, ClosingTheAdapterRemovesItsEphemeralNodes) {
  auto adapter = MakeAdapter("/close");
  ASSERT_THAT(adapter->Register(MakeService("gone", "10.0.3.1", 1)), IsOk());
  ASSERT_TRUE(raw_zookeeper_->Exists("/close/gone/10.0.3.1:1"));
  adapter.reset();
  EXPECT_TRUE(
      WaitFor([&] { return !raw_zookeeper_->Exists("/close/gone/10.0.3.1:1"); }, absl::Seconds(5)));
  EXPECT_TRUE(raw_zookeeper_->Exists("/close/gone"))
      << "persistent Name node stays (no Deregister)";
}

TEST_F(ZookeeperAdapterTest, SessionExpiryCallsStateLostAndReRegisterRestores) {
  ZookeeperSettings settings;
  settings.session_timeout = absl::Seconds(2);
  auto adapter = MakeAdapter("/expiry", settings);
  std::atomic<int> lost{0};
  adapter->SetStateLostCallback([&] { ++lost; });
  const Service s = MakeService("web", "10.0.4.1", 80);
  ASSERT_THAT(adapter->Register(s), IsOk());
  Stat first{};
  ASSERT_TRUE(raw_zookeeper_->Get("/expiry/web/10.0.4.1:80", &first).has_value());

  ASSERT_NO_FATAL_FAILURE(ExpireSession());
  ASSERT_TRUE(WaitFor([&] { return lost.load() > 0; }, absl::Seconds(15)))
      << "state-lost callback not called";
  EXPECT_EQ(lost.load(), 1);
  EXPECT_FALSE(raw_zookeeper_->Exists("/expiry/web/10.0.4.1:80"));

  // What the bridge does on state loss: register everything again, on a new session.
  ASSERT_THAT(adapter->Register(s), IsOk());
  Stat second{};
  std::optional<std::string> data = raw_zookeeper_->Get("/expiry/web/10.0.4.1:80", &second);
  ASSERT_TRUE(data.has_value());
  EXPECT_EQ(*data, adapter->Fingerprint(s));
  EXPECT_NE(second.ephemeralOwner, first.ephemeralOwner);
  absl::StatusOr<std::vector<RegisteredService>> listed = adapter->Services();
  ASSERT_THAT(listed, IsOk()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].fingerprint, adapter->Fingerprint(s));
  EXPECT_EQ(lost.load(), 1);
}

TEST_F(ZookeeperAdapterTest, ConcurrentRegisterAndDeregisterUnderOneName) {
  // Each Deregister may remove the shared Name node while another thread creates its child
  // under it: Register must re-create the parent and retry, never fail.
  auto adapter = MakeAdapter("/concurrent");
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const Service s = MakeService("shared", "10.0.8.1", 1000 + t);
      for (int i = 0; i < 15; ++i) {
        if (!adapter->Register(s).ok()) ++failures;
        if (!adapter->Deregister(s).ok()) ++failures;
      }
      if (!adapter->Register(s).ok()) ++failures;
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_THAT(
      raw_zookeeper_->Children("/concurrent/shared"),
      UnorderedElementsAre("10.0.8.1:1000", "10.0.8.1:1001", "10.0.8.1:1002", "10.0.8.1:1003"));
}

// Issue 12 defect 2: the node path holds no service ID. A container renamed (or re-created with
// a new ID, same name/IP/port) is registered anew, then its old service deregistered: that
// Deregister must not delete the node the new registration now owns.
TEST_F(ZookeeperAdapterTest, DeregisterLeavesTheNodeToTheServiceThatTookItOver) {
  auto adapter = MakeAdapter("/rename");
  Service old_service = MakeService("web", "10.0.9.2", 80);
  old_service.id = "host1:web-old:80";
  Service new_service = old_service;
  new_service.id = "host1:web-new:80";
  new_service.container_id = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
  const std::string path = "/rename/web/10.0.9.2:80";
  ASSERT_THAT(adapter->Register(old_service), IsOk());
  ASSERT_THAT(adapter->Register(new_service), IsOk());

  ASSERT_THAT(adapter->Deregister(old_service), IsOk());
  std::optional<std::string> data = raw_zookeeper_->Get(path);
  ASSERT_TRUE(data.has_value()) << "deregistering the old service deleted the new one's node";
  EXPECT_EQ(*data, adapter->Fingerprint(new_service));

  // The new service's own Deregister still removes the node and the then empty Name node.
  ASSERT_THAT(adapter->Deregister(new_service), IsOk());
  EXPECT_FALSE(raw_zookeeper_->Exists(path));
  EXPECT_FALSE(raw_zookeeper_->Exists("/rename/web"));
}

// The same with both writes at once (two workers: the old container's and the new one's): the
// Deregister deletes only the version it read and found its own, so a Register in between wins.
TEST_F(ZookeeperAdapterTest, ConcurrentRenameKeepsTheNewNode) {
  auto adapter = MakeAdapter("/rename-race");
  Service old_service = MakeService("web", "10.0.9.5", 80);
  old_service.id = "host1:web-old:80";
  Service new_service = old_service;
  new_service.id = "host1:web-new:80";
  const std::string path = "/rename-race/web/10.0.9.5:80";
  for (int round = 0; round < 40; ++round) {
    ASSERT_THAT(adapter->Register(old_service), IsOk());
    absl::Status deregistered;
    std::thread old_worker([&] { deregistered = adapter->Deregister(old_service); });
    const absl::Status registered = adapter->Register(new_service);
    old_worker.join();
    ASSERT_THAT(registered, IsOk()) << registered;
    ASSERT_THAT(deregistered, IsOk()) << deregistered;
    std::optional<std::string> data = raw_zookeeper_->Get(path);
    ASSERT_TRUE(data.has_value()) << "round " << round << ": the new service's node was deleted";
    ASSERT_EQ(*data, adapter->Fingerprint(new_service)) << "round " << round;
  }
}

TEST_F(ZookeeperAdapterTest, DeregisterLeavesANodeWithoutOurId) {
  auto adapter = MakeAdapter("/notours");
  const Service s = MakeService("web", "10.0.9.3", 80);
  // What upstream registrator writes (no "ID") at the very path of our service.
  ASSERT_EQ(raw_zookeeper_->Create("/notours", ""), ZOK);
  ASSERT_EQ(raw_zookeeper_->Create("/notours/web", ""), ZOK);
  const std::string upstream = R"({"Name":"web","IP":"10.0.9.3","PublicPort":80})";
  ASSERT_EQ(raw_zookeeper_->Create("/notours/web/10.0.9.3:80", upstream), ZOK);
  ASSERT_THAT(adapter->Deregister(s), IsOk());
  EXPECT_EQ(raw_zookeeper_->Get("/notours/web/10.0.9.3:80"), upstream);
}

// A Refresh after someone removed the node and its Name node (an operator cleaning up, say):
// every missing level comes back.
TEST_F(ZookeeperAdapterTest, RefreshRecreatesTheNameNodeToo) {
  auto adapter = MakeAdapter("/refresh-parent");
  const Service s = MakeService("svc", "10.0.2.9", 1000);
  ASSERT_THAT(adapter->Register(s), IsOk());
  ASSERT_EQ(raw_zookeeper_->Delete("/refresh-parent/svc/10.0.2.9:1000"), ZOK);
  ASSERT_EQ(raw_zookeeper_->Delete("/refresh-parent/svc"), ZOK);
  ASSERT_EQ(raw_zookeeper_->Delete("/refresh-parent"), ZOK);
  ASSERT_THAT(adapter->Refresh({s}), IsOk());
  Stat stat{};
  std::optional<std::string> data = raw_zookeeper_->Get("/refresh-parent/svc/10.0.2.9:1000", &stat);
  ASSERT_TRUE(data.has_value());
  EXPECT_EQ(*data, adapter->Fingerprint(s));
  EXPECT_NE(stat.ephemeralOwner, 0);
}

// A second registrator (e.g. the restarted process, while the old session still lives) takes
// the node over, so the old session's end does not take the registration along.
TEST_F(ZookeeperAdapterTest, TakeoverFromAnotherSessionSurvivesThatSession) {
  auto previous = MakeAdapter("/takeover");
  auto current = MakeAdapter("/takeover");
  const Service s = MakeService("web", "10.0.9.4", 80);
  const std::string path = "/takeover/web/10.0.9.4:80";
  ASSERT_THAT(previous->Register(s), IsOk());
  Stat before{};
  ASSERT_TRUE(raw_zookeeper_->Get(path, &before).has_value());
  // The listing tells the bridge the node is not what it would write, so it registers again.
  absl::StatusOr<std::vector<RegisteredService>> listed = current->Services();
  ASSERT_THAT(listed, IsOk()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_NE((*listed)[0].fingerprint, current->Fingerprint(s));
  ASSERT_THAT(current->Refresh({s}), IsOk());
  Stat after{};
  ASSERT_TRUE(raw_zookeeper_->Get(path, &after).has_value());
  EXPECT_NE(after.ephemeralOwner, before.ephemeralOwner);
  previous.reset();  // Its session ends.
  EXPECT_TRUE(raw_zookeeper_->Exists(path));
  listed = current->Services();
  ASSERT_THAT(listed, IsOk()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].fingerprint, current->Fingerprint(s));
}

// Issue 12 defect 10: opening a session (zookeeper_init: DNS, two threads) must not happen under
// the adapter's lock, or every other call waits for it without bound. Here the opening is held
// up by the test hook; another call meanwhile gives up after its connect timeout.
TEST_F(ZookeeperAdapterTest, ASlowSessionOpenDoesNotBlockOtherCalls) {
  absl::Notification opening;
  absl::Notification release;
  std::atomic<int> opens{0};
  before_session_open_ = [&] {
    if (opens++ > 0) return;
    opening.Notify();
    release.WaitForNotificationWithTimeout(absl::Seconds(30));
  };
  ZookeeperSettings settings;
  settings.connect_timeout = absl::Seconds(1);
  auto adapter = MakeAdapter("/slowopen", settings);
  absl::Status first;
  std::thread opener([&] { first = adapter->Ping(); });
  ASSERT_TRUE(opening.WaitForNotificationWithTimeout(absl::Seconds(10)));
  absl::Status second;
  absl::Notification second_done;
  std::thread other([&] {
    second = adapter->Ping();
    second_done.Notify();
  });
  const bool returned = second_done.WaitForNotificationWithTimeout(absl::Seconds(10));
  release.Notify();
  opener.join();
  other.join();
  EXPECT_TRUE(returned) << "a call waited for another thread's session open";
  EXPECT_EQ(second.code(), absl::StatusCode::kUnavailable) << second;
  EXPECT_THAT(first, IsOk()) << first;
  EXPECT_THAT(adapter->Ping(), IsOk());
  EXPECT_EQ(opens.load(), 1) << "the waiting call opened a second session";
}

// Issue 12 defect 10 (lifetime): the bridge clears its callback in Stop and is then destroyed
// while the adapter lives on. A callback already running when SetStateLostCallback(nullptr) is
// called must have finished when it returns; and an expiry after that calls nothing.
TEST_F(ZookeeperAdapterTest, ClearingTheStateLostCallbackWaitsForARunningOne) {
  ZookeeperSettings settings;
  settings.session_timeout = absl::Seconds(2);
  auto adapter = MakeAdapter("/lifetime", settings);
  const Service s = MakeService("web", "10.0.4.2", 80);
  ASSERT_THAT(adapter->Register(s), IsOk());
  std::atomic<int> calls{0};
  std::atomic<bool> owner_alive{true};  // Stands for the Bridge the callback points into.
  std::atomic<bool> used_after_clear{false};
  absl::Notification entered;
  absl::Notification left;
  adapter->SetStateLostCallback([&] {
    ++calls;
    entered.Notify();
    // Stay inside until the owner is gone (the defect), or long enough that a clear which does
    // not wait has surely returned.
    WaitFor([&] { return !owner_alive.load(); }, absl::Seconds(2));
    if (!owner_alive.load()) used_after_clear = true;  // A real owner would be freed memory.
    left.Notify();
  });
  ASSERT_NO_FATAL_FAILURE(ExpireSession());
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(15)));
  adapter->SetStateLostCallback(nullptr);  // What Bridge::Stop does...
  owner_alive = false;                     // ...before the Bridge is destroyed.
  ASSERT_TRUE(left.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_FALSE(used_after_clear.load()) << "the callback ran on after it was cleared";

  // A new session, expired again: the cleared callback is not called.
  ASSERT_TRUE(WaitFor([&] { return adapter->Register(s).ok(); }, absl::Seconds(15)));
  Stat stat{};
  ASSERT_TRUE(raw_zookeeper_->Get("/lifetime/web/10.0.4.2:80", &stat).has_value());
  ASSERT_NO_FATAL_FAILURE(ExpireSession());
  ASSERT_TRUE(WaitFor(
      [&] {
        Stat now{};
        return adapter->Register(s).ok() &&
               raw_zookeeper_->Get("/lifetime/web/10.0.4.2:80", &now).has_value() &&
               now.ephemeralOwner != stat.ephemeralOwner;
      },
      absl::Seconds(15)));
  EXPECT_EQ(calls.load(), 1);
}

class ZookeeperRestartTest : public ZookeeperAdapterTest,
                             public ::testing::WithParamInterface<bool> {};

TEST_P(ZookeeperRestartTest, ServerRestartKeepsTheSessionAndItsNodes) {
  const bool kill = GetParam();
  ZookeeperSettings settings;
  settings.session_timeout = absl::Seconds(20);  // Outlives a JVM restart on a busy machine.
  auto adapter = MakeAdapter(kill ? "/restart-kill" : "/restart-term", settings);
  std::atomic<int> lost{0};
  adapter->SetStateLostCallback([&] { ++lost; });
  const Service s = MakeService("web", "10.0.5.1", 80);
  ASSERT_THAT(adapter->Register(s), IsOk());
  const std::string path = kill ? "/restart-kill/web/10.0.5.1:80" : "/restart-term/web/10.0.5.1:80";
  Stat before{};
  ASSERT_TRUE(raw_zookeeper_->Get(path, &before).has_value());
  raw_zookeeper_.reset();

  ASSERT_THAT(server_->Restart(kill), IsOk()) << server_->Log();
  // The library reconnects to the same session by itself.
  ASSERT_TRUE(WaitFor([&] { return adapter->Ping().ok(); }, absl::Seconds(20)));
  ASSERT_THAT(adapter->Refresh({s}), IsOk());
  raw_zookeeper_ = std::make_unique<ZookeeperTestClient>(server_->address());
  ASSERT_TRUE(raw_zookeeper_->WaitConnected());
  Stat after{};
  ASSERT_TRUE(raw_zookeeper_->Get(path, &after).has_value());
  EXPECT_EQ(after.czxid, before.czxid) << "node was re-created instead of kept";
  EXPECT_EQ(after.ephemeralOwner, before.ephemeralOwner);
  EXPECT_EQ(lost.load(), 0);
}

// SIGKILL (a crash) and SIGTERM (an orderly stop): sessions are kept in the data dir either way.
INSTANTIATE_TEST_SUITE_P(KillOrTerm, ZookeeperRestartTest, ::testing::Bool());

TEST_F(ZookeeperAdapterTest, HungServerYieldsUnavailableAndRecovers) {
  ZookeeperSettings settings;
  settings.session_timeout = absl::Seconds(2);
  settings.connect_timeout = absl::Seconds(1);
  auto adapter = MakeAdapter("/hung", settings);
  ASSERT_THAT(adapter->Ping(), IsOk());
  server_->Pause();
  const absl::Time start = absl::Now();
  const absl::Status status = adapter->Register(MakeService("web", "10.0.6.1", 80));
  const absl::Duration took = absl::Now() - start;
  server_->Resume();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  std::cout << "register against a frozen server failed after " << took << ": " << status << "\n";
  EXPECT_TRUE(WaitFor([&] { return adapter->Register(MakeService("web", "10.0.6.1", 80)).ok(); },
                      absl::Seconds(15)));
}

// Shutdown: a call waiting on a frozen server used to end only when the client library gave up
// on the connection (2/3 of the session timeout), which held a stopping registrator that long
// (an HTTP abort cannot reach it). AbortCalls ends it, and every later call, with CANCELLED.
// The session timeout is longer than anything here waits, so CANCELLED (not UNAVAILABLE) can
// only come from the abort; and the adapter closes while the server is still frozen.
TEST_F(ZookeeperAdapterTest, AbortCallsEndsCallsOnAHungServer) {
  ZookeeperSettings settings;
  settings.session_timeout = absl::Seconds(30);
  auto adapter = MakeAdapter("/abort", settings);
  ASSERT_THAT(adapter->Ping(), IsOk());
  server_->Pause();
  absl::Status status;
  absl::Notification returned;
  std::thread call([&] {
    status = adapter->Register(MakeService("web", "10.0.8.1", 80));
    returned.Notify();
  });
  // Nothing but the abort can end the call now; give it time to reach the frozen server.
  EXPECT_FALSE(returned.WaitForNotificationWithTimeout(absl::Milliseconds(300)));
  adapter->AbortCalls();
  call.join();
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  EXPECT_EQ(adapter->Ping().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(adapter->Services().status().code(), absl::StatusCode::kCancelled);
  // Destroying the aborted adapter does not wait for the frozen server's answer to the close
  // (the C client waits 1.5 s for it): the close finishes on its own thread.
  absl::Notification closed;
  std::thread closer([&] {
    const absl::Time start = absl::Now();
    adapter.reset();
    std::cout << "destroying the aborted adapter took " << absl::Now() - start << "\n";
    closed.Notify();
  });
  const bool closed_while_frozen = closed.WaitForNotificationWithTimeout(absl::Seconds(15));
  server_->Resume();
  closer.join();
  EXPECT_TRUE(closed_while_frozen) << "destroying waited for the frozen server";
}

TEST_F(ZookeeperAdapterTest, DigestAuthCreatesNodesOnlyItsUserCanRead) {
  auto adapter = MakeAdapter("/secure", ZookeeperSettings(), "alice:secret@");
  const Service s = MakeService("web", "10.0.7.1", 80);
  ASSERT_THAT(adapter->Register(s), IsOk());
  absl::StatusOr<std::vector<RegisteredService>> listed = adapter->Services();
  ASSERT_THAT(listed, IsOk()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].fingerprint, adapter->Fingerprint(s));
  int rc = ZOK;
  EXPECT_FALSE(raw_zookeeper_->Get("/secure/web/10.0.7.1:80", nullptr, &rc).has_value());
  EXPECT_EQ(rc, ZNOAUTH);

  // Someone without the credentials cannot write under those nodes, and is told so.
  auto stranger = MakeAdapter("/secure");
  const absl::Status denied = stranger->Register(MakeService("web", "10.0.7.2", 80));
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied) << denied;

  ASSERT_THAT(adapter->Deregister(s), IsOk());
}

TEST(ZookeeperUnreachableTest, NoServerMeansUnavailableNotAHang) {
  zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
  const int port = fakes::FreeLoopbackPort();  // Nobody listens there.
  absl::StatusOr<BackendUri> uri =
      ParseBackendUri(absl::StrCat("zookeeper://127.0.0.1:", port, "/base"));
  ASSERT_THAT(uri, IsOk());
  ZookeeperSettings settings;
  settings.connect_timeout = absl::Seconds(1);
  absl::StatusOr<AdapterForTesting> made =
      NewZookeeperAdapterForTesting(*uri, AdapterOptions(), settings);
  ASSERT_THAT(made, IsOk()) << made.status();
  RegistryAdapter& adapter = *made->adapter;
  const absl::Time start = absl::Now();
  const absl::Status ping = adapter.Ping();
  EXPECT_EQ(ping.code(), absl::StatusCode::kUnavailable) << ping;
  EXPECT_EQ(adapter.Register(MakeService("web", "10.0.0.1", 80)).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(adapter.Services().status().code(), absl::StatusCode::kUnavailable);
  std::cout << "three calls against a dead server took " << absl::Now() - start << "\n";
}

// The factory and the fingerprint need no server (the factory must not touch the network, so an
// address nobody listens on is fine).
TEST(ZookeeperFactoryTest, FactoryValidatesWithoutConnecting) {
  absl::StatusOr<BackendUri> uri = ParseBackendUri("zookeeper://127.0.0.1:1/base");
  ASSERT_THAT(uri, IsOk());
  // Usable as a plain (uri, options) factory, as the bridge registers them by scheme.
  std::function<absl::StatusOr<std::unique_ptr<RegistryAdapter>>(const BackendUri&,
                                                                 const AdapterOptions&)>
      factory = &NewZookeeperAdapter;
  absl::StatusOr<std::unique_ptr<RegistryAdapter>> adapter = factory(*uri, AdapterOptions());
  ASSERT_THAT(adapter, IsOk()) << adapter.status();
  absl::StatusOr<BackendUri> bad = ParseBackendUri("zookeeper://127.0.0.1:1/a//b");
  ASSERT_THAT(bad, IsOk());
  EXPECT_EQ(NewZookeeperAdapter(*bad, AdapterOptions()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ZookeeperFactoryTest, FingerprintIsTheNodeDataAndFollowsTheService) {
  absl::StatusOr<BackendUri> uri = ParseBackendUri("zookeeper://127.0.0.1:1/base");
  ASSERT_THAT(uri, IsOk());
  auto adapter = NewZookeeperAdapter(*uri, AdapterOptions());
  ASSERT_THAT(adapter, IsOk());
  Service s;
  s.id = "h:c:80";
  s.name = "web";
  s.ip = "1.2.3.4";
  s.port = 8080;
  s.exposed_port = 80;
  const std::string fp = (*adapter)->Fingerprint(s);
  EXPECT_EQ(fp, (*adapter)->Fingerprint(s));
  EXPECT_EQ(fp,
            R"({"Name":"web","IP":"1.2.3.4","PublicPort":8080,"PrivatePort":80,"ContainerID":"",)"
            R"("Tags":[],"Attrs":{},"ID":"h:c:80"})");
  Service changed = s;
  changed.tags = {"x"};
  EXPECT_NE((*adapter)->Fingerprint(changed), fp);
  changed = s;
  changed.port = 8081;
  EXPECT_NE((*adapter)->Fingerprint(changed), fp);
}

}  // namespace
}  // namespace registrator
