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
#include "testing/zookeeper_fixture.h"

namespace registrator {
namespace {

using ::registrator::fakes::WaitFor;
using ::registrator::zookeeper::AdapterForTesting;
using ::registrator::zookeeper::NewZookeeperAdapterForTesting;
using ZookeeperSettings = ::registrator::zookeeper::SessionSettings;
using ::registrator::fakes::ZookeeperServer;
using ::testing::UnorderedElementsAre;

// A plain synchronous client handle, for reading back and for meddling behind the adapter's back.
class RawZk {
 public:
  explicit RawZk(const std::string& address, const clientid_t* session = nullptr,
                 int timeout_ms = 4000) {
    zh_ = zookeeper_init(address.c_str(), &RawZk::Watcher, timeout_ms, session, this, 0);
  }
  ~RawZk() { Close(); }
  RawZk(const RawZk&) = delete;
  RawZk& operator=(const RawZk&) = delete;

  void Close() {
    if (zh_ != nullptr) zookeeper_close(zh_);
    zh_ = nullptr;
  }
  bool WaitConnected() {
    return WaitFor([this] { return connected_.load(); }, absl::Seconds(10));
  }
  // The node's data, or nullopt with `rc` set on any error (ZNONODE, ZNOAUTH...).
  std::optional<std::string> Get(const std::string& path, Stat* stat = nullptr, int* rc = nullptr) {
    char buffer[4096];
    int len = sizeof(buffer);
    Stat local;
    const int result = zoo_get(zh_, path.c_str(), 0, buffer, &len, stat ? stat : &local);
    if (rc != nullptr) *rc = result;
    if (result != ZOK) return std::nullopt;
    return std::string(buffer, len < 0 ? 0 : len);
  }
  bool Exists(const std::string& path) { return zoo_exists(zh_, path.c_str(), 0, nullptr) == ZOK; }
  std::vector<std::string> Children(const std::string& path) {
    String_vector strings{};
    std::vector<std::string> out;
    if (zoo_get_children(zh_, path.c_str(), 0, &strings) != ZOK) return out;
    for (int i = 0; i < strings.count; ++i) out.emplace_back(strings.data[i]);
    deallocate_String_vector(&strings);
    return out;
  }
  int Create(const std::string& path, const std::string& data) {
    return zoo_create(zh_, path.c_str(), data.data(), static_cast<int>(data.size()),
                      &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, nullptr, 0);
  }
  int Delete(const std::string& path) { return zoo_delete(zh_, path.c_str(), -1); }

 private:
  static void Watcher(zhandle_t*, int type, int state, const char*, void* context) {
    if (type == ZOO_SESSION_EVENT) {
      static_cast<RawZk*>(context)->connected_ = state == ZOO_CONNECTED_STATE;
    }
  }
  zhandle_t* zh_ = nullptr;
  std::atomic<bool> connected_{false};
};

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
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server).release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    if (server_->paused()) server_->Resume();
    raw_ = std::make_unique<RawZk>(server_->address());
    ASSERT_TRUE(raw_->WaitConnected());
  }

  std::unique_ptr<RegistryAdapter> MakeAdapter(const std::string& base,
                                               ZookeeperSettings settings = ZookeeperSettings(),
                                               const std::string& userinfo = "") {
    absl::StatusOr<BackendUri> uri =
        ParseBackendUri(absl::StrCat("zookeeper://", userinfo, server_->address(), base));
    EXPECT_TRUE(uri.ok()) << uri.status();
    AdapterOptions options;
    options.hostname = "host1";
    absl::StatusOr<AdapterForTesting> adapter =
        NewZookeeperAdapterForTesting(*uri, options, settings, before_session_open_);
    EXPECT_TRUE(adapter.ok()) << adapter.status();
    if (!adapter.ok()) return nullptr;
    session_credentials_ = std::move(adapter->session_credentials);
    return std::move(adapter->adapter);
  }

  // Ends the session of the adapter MakeAdapter made last: takes it over with a second handle
  // and closes that, so the server expires it.
  void ExpireSession() {
    absl::StatusOr<std::pair<int64_t, std::string>> id = session_credentials_();
    ASSERT_TRUE(id.ok()) << id.status();
    clientid_t client{};
    client.client_id = id->first;
    memcpy(client.passwd, id->second.data(), sizeof(client.passwd));
    RawZk thief(server_->address(), &client, 2000);
    ASSERT_TRUE(thief.WaitConnected());
  }

  static ZookeeperServer* server_;
  std::unique_ptr<RawZk> raw_;
  // Of the adapter MakeAdapter made last.
  std::function<absl::StatusOr<std::pair<int64_t, std::string>>()> session_credentials_;
  // Passed to the next MakeAdapter.
  std::function<void()> before_session_open_;
};

ZookeeperServer* ZookeeperAdapterTest::server_ = nullptr;

TEST_F(ZookeeperAdapterTest, RegisterCreatesBaseLevelsAndEphemeralNodeWithExactJson) {
  auto adapter = MakeAdapter("/reg/a/b");
  ASSERT_TRUE(adapter->Ping().ok());
  const Service s = MakeService("web", "10.0.0.5", 32768);
  ASSERT_TRUE(adapter->Register(s).ok());

  Stat stat{};
  std::optional<std::string> data = raw_->Get("/reg/a/b/web/10.0.0.5:32768", &stat);
  ASSERT_TRUE(data.has_value());
  EXPECT_EQ(*data, R"({"Name":"web","IP":"10.0.0.5","PublicPort":32768,"PrivatePort":80,)"
                   R"("ContainerID":"0123456789ab","Tags":["prod","v1"],"Attrs":{"region":"eu"},)"
                   R"("ID":"host1:web-ctr:32768"})");
  EXPECT_EQ(*data, adapter->Fingerprint(s));
  EXPECT_NE(stat.ephemeralOwner, 0) << "service node must be ephemeral";
  for (const char* level : {"/reg", "/reg/a", "/reg/a/b", "/reg/a/b/web"}) {
    Stat parent{};
    ASSERT_TRUE(raw_->Get(level, &parent).has_value()) << level;
    EXPECT_EQ(parent.ephemeralOwner, 0) << level << " must be persistent";
  }

  const Service v6 = MakeService("web", "fd00::5", 8443);
  ASSERT_TRUE(adapter->Register(v6).ok());
  EXPECT_THAT(raw_->Children("/reg/a/b/web"),
              UnorderedElementsAre("10.0.0.5:32768", "[fd00::5]:8443"));
}

TEST_F(ZookeeperAdapterTest, RegisterIsIdempotentAndUpdatesChangedData) {
  auto adapter = MakeAdapter("/idem");
  Service s = MakeService("api", "10.0.0.6", 9000);
  ASSERT_TRUE(adapter->Register(s).ok());
  const std::string path = "/idem/api/10.0.0.6:9000";
  Stat before{};
  ASSERT_TRUE(raw_->Get(path, &before).has_value());

  const std::string zxid = Zxid(*server_);
  ASSERT_FALSE(zxid.empty());
  ASSERT_TRUE(adapter->Register(s).ok());
  EXPECT_EQ(Zxid(*server_), zxid) << "registering unchanged data must not write";

  s.tags = {"prod", "v2"};
  ASSERT_TRUE(adapter->Register(s).ok());
  Stat after{};
  std::optional<std::string> data = raw_->Get(path, &after);
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
  ASSERT_EQ(raw_->Create("/foreignnode", ""), ZOK);
  ASSERT_EQ(raw_->Create("/foreignnode/api", ""), ZOK);
  ASSERT_EQ(raw_->Create("/foreignnode/api/10.0.0.7:9000", "stale"), ZOK);  // Persistent.
  ASSERT_TRUE(adapter->Register(s).ok());
  Stat stat{};
  std::optional<std::string> data = raw_->Get("/foreignnode/api/10.0.0.7:9000", &stat);
  ASSERT_TRUE(data.has_value());
  EXPECT_EQ(*data, adapter->Fingerprint(s));
  EXPECT_NE(stat.ephemeralOwner, 0);
}

TEST_F(ZookeeperAdapterTest, DeregisterRemovesNodeAndThenTheEmptyNameNode) {
  auto adapter = MakeAdapter("/dereg");
  const Service a = MakeService("db", "10.0.0.8", 5432);
  const Service b = MakeService("db", "10.0.0.8", 5433);
  ASSERT_TRUE(adapter->Register(a).ok());
  ASSERT_TRUE(adapter->Register(b).ok());

  ASSERT_TRUE(adapter->Deregister(a).ok());
  EXPECT_FALSE(raw_->Exists("/dereg/db/10.0.0.8:5432"));
  EXPECT_THAT(raw_->Children("/dereg/db"), UnorderedElementsAre("10.0.0.8:5433"));

  ASSERT_TRUE(adapter->Deregister(b).ok());
  EXPECT_FALSE(raw_->Exists("/dereg/db"));
  EXPECT_TRUE(raw_->Exists("/dereg")) << "the base stays";

  // Already gone: still success.
  EXPECT_TRUE(adapter->Deregister(a).ok());
}

TEST_F(ZookeeperAdapterTest, ServicesListsOursAndForeignEntriesWithFingerprints) {
  auto adapter = MakeAdapter("/list");
  const Service web = MakeService("web", "10.0.1.1", 80);
  const Service v6 = MakeService("web", "fd00::1", 81);
  ASSERT_TRUE(adapter->Register(web).ok());
  ASSERT_TRUE(adapter->Register(v6).ok());
  // Another host's node, an upstream-written node without "ID", and garbage.
  ASSERT_EQ(raw_->Create("/list/db", ""), ZOK);
  ASSERT_EQ(raw_->Create("/list/db/10.9.9.9:5432",
                         R"({"Name":"db","IP":"10.9.9.9","PublicPort":5432,"PrivatePort":5432,)"
                         R"("ContainerID":"aaaaaaaaaaaa","Tags":null,"Attrs":null,)"
                         R"("ID":"otherhost:db:5432"})"),
            ZOK);
  ASSERT_EQ(raw_->Create("/list/db/10.9.9.9:5433", R"({"Name":"db","IP":"10.9.9.9"})"), ZOK);
  ASSERT_EQ(raw_->Create("/list/db/10.9.9.9:5434", "not json"), ZOK);

  absl::StatusOr<std::vector<RegisteredService>> listed = adapter->Services();
  ASSERT_TRUE(listed.ok()) << listed.status();
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
  ASSERT_TRUE(adapter->Deregister(foreign.service).ok());
  EXPECT_FALSE(raw_->Exists("/list/db/10.9.9.9:5432"));
  EXPECT_TRUE(raw_->Exists("/list/db/10.9.9.9:5433"));
  ASSERT_TRUE(adapter->Deregister(listed_web.service).ok());
  EXPECT_FALSE(raw_->Exists("/list/web/10.0.1.1:80"));
}

TEST_F(ZookeeperAdapterTest, EmptyBasePathMeansTheRoot) {
  auto adapter = MakeAdapter("");
  const Service s = MakeService("rootsvc", "10.0.9.1", 80);
  ASSERT_TRUE(adapter->Register(s).ok());
  EXPECT_TRUE(raw_->Exists("/rootsvc/10.0.9.1:80"));
  // The listing walks ZooKeeper's own /zookeeper/* nodes too, and skips them.
  absl::StatusOr<std::vector<RegisteredService>> listed = adapter->Services();
  ASSERT_TRUE(listed.ok()) << listed.status();
  bool found = false;
  for (const RegisteredService& r : *listed) {
    EXPECT_NE(r.service.name, "zookeeper");
    if (r.service.id == s.id) found = r.fingerprint == adapter->Fingerprint(s);
  }
  EXPECT_TRUE(found);
  ASSERT_TRUE(adapter->Deregister(s).ok());
  EXPECT_FALSE(raw_->Exists("/rootsvc"));
}

TEST_F(ZookeeperAdapterTest, ServicesOfAMissingBaseIsEmpty) {
  auto adapter = MakeAdapter("/does/not/exist");
  absl::StatusOr<std::vector<RegisteredService>> listed = adapter->Services();
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_TRUE(listed->empty());
}

TEST_F(ZookeeperAdapterTest, RefreshRecreatesMissingNodesAndWritesNothingOtherwise) {
  auto adapter = MakeAdapter("/refresh");
  const Service a = MakeService("svc", "10.0.2.1", 1000);
  const Service b = MakeService("svc", "10.0.2.1", 1001);
  const Service kept = MakeService("svc", "10.0.2.1", 1002);
  ASSERT_TRUE(adapter->Register(a).ok());
  ASSERT_TRUE(adapter->Register(b).ok());
  ASSERT_TRUE(adapter->Register(kept).ok());

  std::string zxid = Zxid(*server_);
  ASSERT_TRUE(adapter->Refresh({a, b}).ok());
  EXPECT_EQ(Zxid(*server_), zxid) << "refresh of intact nodes must not write";

  Stat b_before{};
  ASSERT_TRUE(raw_->Get("/refresh/svc/10.0.2.1:1001", &b_before).has_value());
  ASSERT_EQ(raw_->Delete("/refresh/svc/10.0.2.1:1000"), ZOK);  // Behind the adapter's back.
  ASSERT_TRUE(adapter->Refresh({a, b}).ok());
  std::optional<std::string> data = raw_->Get("/refresh/svc/10.0.2.1:1000");
  ASSERT_TRUE(data.has_value());
  EXPECT_EQ(*data, adapter->Fingerprint(a));
  Stat b_after{};
  ASSERT_TRUE(raw_->Get("/refresh/svc/10.0.2.1:1001", &b_after).has_value());
  EXPECT_EQ(b_after.mzxid, b_before.mzxid);
  // Not in the list: left alone (it lives as long as the session).
  EXPECT_TRUE(raw_->Exists("/refresh/svc/10.0.2.1:1002"));
}

TEST_F(ZookeeperAdapterTest, ClosingTheAdapterRemovesItsEphemeralNodes) {
  auto adapter = MakeAdapter("/close");
  ASSERT_TRUE(adapter->Register(MakeService("gone", "10.0.3.1", 1)).ok());
  ASSERT_TRUE(raw_->Exists("/close/gone/10.0.3.1:1"));
  adapter.reset();
  EXPECT_TRUE(WaitFor([&] { return !raw_->Exists("/close/gone/10.0.3.1:1"); }, absl::Seconds(5)));
  EXPECT_TRUE(raw_->Exists("/close/gone")) << "persistent Name node stays (no Deregister)";
}

TEST_F(ZookeeperAdapterTest, SessionExpiryCallsStateLostAndReRegisterRestores) {
  ZookeeperSettings settings;
  settings.session_timeout = absl::Seconds(2);
  auto adapter = MakeAdapter("/expiry", settings);
  std::atomic<int> lost{0};
  adapter->SetStateLostCallback([&] { ++lost; });
  const Service s = MakeService("web", "10.0.4.1", 80);
  ASSERT_TRUE(adapter->Register(s).ok());
  Stat first{};
  ASSERT_TRUE(raw_->Get("/expiry/web/10.0.4.1:80", &first).has_value());

  ASSERT_NO_FATAL_FAILURE(ExpireSession());
  ASSERT_TRUE(WaitFor([&] { return lost.load() > 0; }, absl::Seconds(15)))
      << "state-lost callback not called";
  EXPECT_EQ(lost.load(), 1);
  EXPECT_FALSE(raw_->Exists("/expiry/web/10.0.4.1:80"));

  // What the bridge does on state loss: register everything again, on a new session.
  ASSERT_TRUE(adapter->Register(s).ok());
  Stat second{};
  std::optional<std::string> data = raw_->Get("/expiry/web/10.0.4.1:80", &second);
  ASSERT_TRUE(data.has_value());
  EXPECT_EQ(*data, adapter->Fingerprint(s));
  EXPECT_NE(second.ephemeralOwner, first.ephemeralOwner);
  absl::StatusOr<std::vector<RegisteredService>> listed = adapter->Services();
  ASSERT_TRUE(listed.ok()) << listed.status();
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
      raw_->Children("/concurrent/shared"),
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
  ASSERT_TRUE(adapter->Register(old_service).ok());
  ASSERT_TRUE(adapter->Register(new_service).ok());

  ASSERT_TRUE(adapter->Deregister(old_service).ok());
  std::optional<std::string> data = raw_->Get(path);
  ASSERT_TRUE(data.has_value()) << "deregistering the old service deleted the new one's node";
  EXPECT_EQ(*data, adapter->Fingerprint(new_service));

  // The new service's own Deregister still removes the node and the then empty Name node.
  ASSERT_TRUE(adapter->Deregister(new_service).ok());
  EXPECT_FALSE(raw_->Exists(path));
  EXPECT_FALSE(raw_->Exists("/rename/web"));
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
    ASSERT_TRUE(adapter->Register(old_service).ok());
    absl::Status deregistered;
    std::thread old_worker([&] { deregistered = adapter->Deregister(old_service); });
    const absl::Status registered = adapter->Register(new_service);
    old_worker.join();
    ASSERT_TRUE(registered.ok()) << registered;
    ASSERT_TRUE(deregistered.ok()) << deregistered;
    std::optional<std::string> data = raw_->Get(path);
    ASSERT_TRUE(data.has_value()) << "round " << round << ": the new service's node was deleted";
    ASSERT_EQ(*data, adapter->Fingerprint(new_service)) << "round " << round;
  }
}

TEST_F(ZookeeperAdapterTest, DeregisterLeavesANodeWithoutOurId) {
  auto adapter = MakeAdapter("/notours");
  const Service s = MakeService("web", "10.0.9.3", 80);
  // What upstream registrator writes (no "ID") at the very path of our service.
  ASSERT_EQ(raw_->Create("/notours", ""), ZOK);
  ASSERT_EQ(raw_->Create("/notours/web", ""), ZOK);
  const std::string upstream = R"({"Name":"web","IP":"10.0.9.3","PublicPort":80})";
  ASSERT_EQ(raw_->Create("/notours/web/10.0.9.3:80", upstream), ZOK);
  ASSERT_TRUE(adapter->Deregister(s).ok());
  EXPECT_EQ(raw_->Get("/notours/web/10.0.9.3:80"), upstream);
}

// A Refresh after someone removed the node and its Name node (an operator cleaning up, say):
// every missing level comes back.
TEST_F(ZookeeperAdapterTest, RefreshRecreatesTheNameNodeToo) {
  auto adapter = MakeAdapter("/refresh-parent");
  const Service s = MakeService("svc", "10.0.2.9", 1000);
  ASSERT_TRUE(adapter->Register(s).ok());
  ASSERT_EQ(raw_->Delete("/refresh-parent/svc/10.0.2.9:1000"), ZOK);
  ASSERT_EQ(raw_->Delete("/refresh-parent/svc"), ZOK);
  ASSERT_EQ(raw_->Delete("/refresh-parent"), ZOK);
  ASSERT_TRUE(adapter->Refresh({s}).ok());
  Stat stat{};
  std::optional<std::string> data = raw_->Get("/refresh-parent/svc/10.0.2.9:1000", &stat);
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
  ASSERT_TRUE(previous->Register(s).ok());
  Stat before{};
  ASSERT_TRUE(raw_->Get(path, &before).has_value());
  // The listing tells the bridge the node is not what it would write, so it registers again.
  absl::StatusOr<std::vector<RegisteredService>> listed = current->Services();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_NE((*listed)[0].fingerprint, current->Fingerprint(s));
  ASSERT_TRUE(current->Refresh({s}).ok());
  Stat after{};
  ASSERT_TRUE(raw_->Get(path, &after).has_value());
  EXPECT_NE(after.ephemeralOwner, before.ephemeralOwner);
  previous.reset();  // Its session ends.
  EXPECT_TRUE(raw_->Exists(path));
  listed = current->Services();
  ASSERT_TRUE(listed.ok()) << listed.status();
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
  EXPECT_TRUE(first.ok()) << first;
  EXPECT_TRUE(adapter->Ping().ok());
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
  ASSERT_TRUE(adapter->Register(s).ok());
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
  ASSERT_TRUE(raw_->Get("/lifetime/web/10.0.4.2:80", &stat).has_value());
  ASSERT_NO_FATAL_FAILURE(ExpireSession());
  ASSERT_TRUE(WaitFor(
      [&] {
        Stat now{};
        return adapter->Register(s).ok() &&
               raw_->Get("/lifetime/web/10.0.4.2:80", &now).has_value() &&
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
  ASSERT_TRUE(adapter->Register(s).ok());
  const std::string path = kill ? "/restart-kill/web/10.0.5.1:80" : "/restart-term/web/10.0.5.1:80";
  Stat before{};
  ASSERT_TRUE(raw_->Get(path, &before).has_value());
  raw_.reset();

  ASSERT_TRUE(server_->Restart(kill).ok()) << server_->Log();
  // The library reconnects to the same session by itself.
  ASSERT_TRUE(WaitFor([&] { return adapter->Ping().ok(); }, absl::Seconds(20)));
  ASSERT_TRUE(adapter->Refresh({s}).ok());
  raw_ = std::make_unique<RawZk>(server_->address());
  ASSERT_TRUE(raw_->WaitConnected());
  Stat after{};
  ASSERT_TRUE(raw_->Get(path, &after).has_value());
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
  ASSERT_TRUE(adapter->Ping().ok());
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

TEST_F(ZookeeperAdapterTest, DigestAuthCreatesNodesOnlyItsUserCanRead) {
  auto adapter = MakeAdapter("/secure", ZookeeperSettings(), "alice:secret@");
  const Service s = MakeService("web", "10.0.7.1", 80);
  ASSERT_TRUE(adapter->Register(s).ok());
  absl::StatusOr<std::vector<RegisteredService>> listed = adapter->Services();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].fingerprint, adapter->Fingerprint(s));
  int rc = ZOK;
  EXPECT_FALSE(raw_->Get("/secure/web/10.0.7.1:80", nullptr, &rc).has_value());
  EXPECT_EQ(rc, ZNOAUTH);

  // Someone without the credentials cannot write under those nodes, and is told so.
  auto stranger = MakeAdapter("/secure");
  const absl::Status denied = stranger->Register(MakeService("web", "10.0.7.2", 80));
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied) << denied;

  ASSERT_TRUE(adapter->Deregister(s).ok());
}

TEST(ZookeeperUnreachableTest, NoServerMeansUnavailableNotAHang) {
  zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
  const int port = fakes::FreeLoopbackPort();  // Nobody listens there.
  absl::StatusOr<BackendUri> uri =
      ParseBackendUri(absl::StrCat("zookeeper://127.0.0.1:", port, "/base"));
  ASSERT_TRUE(uri.ok());
  ZookeeperSettings settings;
  settings.connect_timeout = absl::Seconds(1);
  absl::StatusOr<AdapterForTesting> made =
      NewZookeeperAdapterForTesting(*uri, AdapterOptions(), settings);
  ASSERT_TRUE(made.ok()) << made.status();
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
  ASSERT_TRUE(uri.ok());
  // Usable as a plain (uri, options) factory, as the bridge registers them by scheme.
  std::function<absl::StatusOr<std::unique_ptr<RegistryAdapter>>(const BackendUri&,
                                                                 const AdapterOptions&)>
      factory = &NewZookeeperAdapter;
  absl::StatusOr<std::unique_ptr<RegistryAdapter>> adapter = factory(*uri, AdapterOptions());
  ASSERT_TRUE(adapter.ok()) << adapter.status();
  absl::StatusOr<BackendUri> bad = ParseBackendUri("zookeeper://127.0.0.1:1/a//b");
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(NewZookeeperAdapter(*bad, AdapterOptions()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ZookeeperFactoryTest, FingerprintIsTheNodeDataAndFollowsTheService) {
  absl::StatusOr<BackendUri> uri = ParseBackendUri("zookeeper://127.0.0.1:1/base");
  ASSERT_TRUE(uri.ok());
  auto adapter = NewZookeeperAdapter(*uri, AdapterOptions());
  ASSERT_TRUE(adapter.ok());
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
