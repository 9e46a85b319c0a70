// End to end: the registrator binary against a real dockerd and a real ZooKeeper 3.8. Checks the
// node layout and its exact JSON, removal (with the emptied Name node) on stop, ephemeral nodes
// vanishing with a SIGKILLed registrator's session, nodes surviving a ZooKeeper restart, and
// -cleanup of this host's stale nodes only. What registrator wrote is read back with a plain
// C-client handle.
#include <unistd.h>
#include <zookeeper/zookeeper.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "testing/dockerd_fixture.h"
#include "testing/e2e_test_base.h"
#include "testing/process.h"
#include "testing/registrator_process.h"
#include "testing/status_matchers.h"
#include "testing/zookeeper_client.h"
#include "testing/zookeeper_fixture.h"

namespace registrator {
namespace {

using fakes::DockerdFixture;
using fakes::FreeLoopbackPort;
using fakes::LocalHostname;
using fakes::RegistratorProcess;
using fakes::RegistratorResyncCount;
using fakes::WaitFor;
using fakes::ZookeeperServer;
using fakes::ZookeeperTestClient;
using ::registrator::fakes::IsOk;

class ZookeeperEndToEndTest : public fakes::EndToEndTest {
 protected:
  static void SetUpTestSuite() {
    zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);  // The raw handles' connect chatter.
    EndToEndTest::SetUpTestSuite();
    ZookeeperServer::Options options;
    // The server clamps registrator's requested 10 s session to this, so a dead registrator's
    // nodes vanish within seconds.
    options.max_session_timeout_ms = 4000;
    absl::StatusOr<std::unique_ptr<ZookeeperServer>> zk = ZookeeperServer::Start(options);
    ASSERT_THAT(zk, IsOk()) << zk.status();
    zookeeper_server_ = zk->release();
  }
  static void TearDownTestSuite() {
    delete zookeeper_server_;
    zookeeper_server_ = nullptr;
    EndToEndTest::TearDownTestSuite();
  }
  void SetUp() override {
    EndToEndTest::SetUp();
    ASSERT_NE(zookeeper_server_, nullptr);
    base_ = absl::StrCat("/", test_name_);
    raw_zookeeper_ = std::make_unique<ZookeeperTestClient>(zookeeper_server_->address());
    ASSERT_TRUE(raw_zookeeper_->WaitConnected());
  }

  std::string Uri() const {
    return absl::StrCat("zookeeper://", zookeeper_server_->address(), base_);
  }
  void StartRegistrator(const std::vector<std::string>& flags) {
    EndToEndTest::StartRegistrator(flags, Uri());
  }
  // docker run -d --name <name> -p 127.0.0.1:<port>:80 <extra...> <image>; returns the full ID.
  std::string RunContainer(const std::string& name, int port, std::vector<std::string> extra) {
    extra.insert(extra.begin(), {"-p", Publish(port)});
    return EndToEndTest::RunContainer(name, extra);
  }
  bool WaitForNode(const std::string& path, absl::Duration timeout = absl::Seconds(20)) {
    return WaitFor([&] { return raw_zookeeper_->Exists(path); }, timeout, absl::Milliseconds(100));
  }
  bool WaitForNoNode(const std::string& path, absl::Duration timeout = absl::Seconds(20)) {
    return WaitFor([&] { return !raw_zookeeper_->Exists(path); }, timeout, absl::Milliseconds(100));
  }

  static ZookeeperServer* zookeeper_server_;
  std::string base_;
  std::unique_ptr<ZookeeperTestClient> raw_zookeeper_;
};

ZookeeperServer* ZookeeperEndToEndTest::zookeeper_server_ = nullptr;

TEST_F(ZookeeperEndToEndTest, WritesTheNodeWithItsJsonAndRemovesItWithTheEmptyParent) {
  StartRegistrator({});
  const int port = FreeLoopbackPort();
  const std::string id =
      RunContainer("e2e-zk-web", port,
                   {"-e", "SERVICE_NAME=web", "-e", "SERVICE_TAGS=b,a", "-e", "SERVICE_REGION=eu"});
  ASSERT_GE(id.size(), 12u);
  const std::string node = absl::StrCat(base_, "/web/127.0.0.1:", port);
  ASSERT_TRUE(WaitForNode(node));
  Stat stat;
  std::optional<std::string> data = raw_zookeeper_->Get(node, &stat);
  ASSERT_TRUE(data.has_value());
  EXPECT_EQ(*data, absl::StrCat("{\"Name\":\"web\",\"IP\":\"127.0.0.1\",\"PublicPort\":", port,
                                ",\"PrivatePort\":80,\"ContainerID\":\"", id.substr(0, 12),
                                "\",\"Tags\":[\"b\",\"a\"],\"Attrs\":{\"region\":\"eu\"},\"ID\":\"",
                                LocalHostname(), ":e2e-zk-web:80\"}"));
  EXPECT_NE(stat.ephemeralOwner, 0) << "service nodes are ephemeral";
  Stat parent;
  ASSERT_TRUE(raw_zookeeper_->Get(absl::StrCat(base_, "/web"), &parent).has_value());
  EXPECT_EQ(parent.ephemeralOwner, 0) << "the Name node is persistent";

  ASSERT_EQ(docker_->Docker({"stop", "-t", "1", "e2e-zk-web"}).exit_code, 0);
  EXPECT_TRUE(WaitForNoNode(node));
  EXPECT_TRUE(WaitForNoNode(absl::StrCat(base_, "/web"))) << "the emptied Name node stays";
  EXPECT_TRUE(raw_zookeeper_->Exists(base_));
}

TEST_F(ZookeeperEndToEndTest, NameNodeStaysWhileAnotherInstanceRemains) {
  StartRegistrator({});
  const int first = FreeLoopbackPort();
  const int second = FreeLoopbackPort();
  RunContainer("e2e-zk-one", first, {"-e", "SERVICE_NAME=shared"});
  RunContainer("e2e-zk-two", second, {"-e", "SERVICE_NAME=shared"});
  const std::string parent = absl::StrCat(base_, "/shared");
  ASSERT_TRUE(WaitForNode(absl::StrCat(parent, "/127.0.0.1:", first)));
  ASSERT_TRUE(WaitForNode(absl::StrCat(parent, "/127.0.0.1:", second)));
  ASSERT_EQ(docker_->Docker({"stop", "-t", "1", "e2e-zk-one"}).exit_code, 0);
  EXPECT_TRUE(WaitForNoNode(absl::StrCat(parent, "/127.0.0.1:", first)));
  EXPECT_TRUE(raw_zookeeper_->Exists(absl::StrCat(parent, "/127.0.0.1:", second)));
  ASSERT_EQ(docker_->Docker({"stop", "-t", "1", "e2e-zk-two"}).exit_code, 0);
  EXPECT_TRUE(WaitForNoNode(parent));
}

TEST_F(ZookeeperEndToEndTest, NodesVanishWithTheSessionOfAKilledRegistrator) {
  StartRegistrator({});
  const int port = FreeLoopbackPort();
  RunContainer("e2e-zk-kill", port, {"-e", "SERVICE_NAME=kill"});
  const std::string node = absl::StrCat(base_, "/kill/127.0.0.1:", port);
  ASSERT_TRUE(WaitForNode(node));
  registrator_.Kill();
  EXPECT_TRUE(raw_zookeeper_->Exists(node)) << "gone before the session timed out";
  EXPECT_TRUE(WaitForNoNode(node, absl::Seconds(15)));
}

// A registrator restarted right after a crash finds its nodes still held by the dead session: it
// must take them over, or they vanish when that session expires.
TEST_F(ZookeeperEndToEndTest, RestartAfterACrashTakesOverTheDeadSessionsNodes) {
  StartRegistrator({});
  const int port = FreeLoopbackPort();
  RunContainer("e2e-zk-crash", port, {"-e", "SERVICE_NAME=crash"});
  const std::string node = absl::StrCat(base_, "/crash/127.0.0.1:", port);
  ASSERT_TRUE(WaitForNode(node));
  Stat before;
  ASSERT_TRUE(raw_zookeeper_->Get(node, &before).has_value());
  registrator_.Kill();
  ASSERT_TRUE(registrator_
                  .Start({}, Uri(), docker_->host(),
                         absl::StrCat(docker_->dir(), "/registrator-", test_name_, "-2.out"))
                  .ok());
  // Longer than the dead session's timeout (4 s).
  absl::SleepFor(absl::Seconds(6));
  Stat after;
  EXPECT_TRUE(raw_zookeeper_->Get(node, &after).has_value())
      << "the node went with the dead session";
  EXPECT_NE(after.ephemeralOwner, before.ephemeralOwner);
}

TEST_F(ZookeeperEndToEndTest, NodesArePresentAfterZookeeperRestarts) {
  StartRegistrator({"-resync", "2"});
  const int port = FreeLoopbackPort();
  RunContainer("e2e-zk-restart", port, {"-e", "SERVICE_NAME=restart"});
  const std::string node = absl::StrCat(base_, "/restart/127.0.0.1:", port);
  ASSERT_TRUE(WaitForNode(node));
  ASSERT_THAT(zookeeper_server_->Restart(/*kill=*/true), IsOk()) << zookeeper_server_->Log();
  raw_zookeeper_ = std::make_unique<ZookeeperTestClient>(zookeeper_server_->address());
  ASSERT_TRUE(raw_zookeeper_->WaitConnected());
  EXPECT_TRUE(WaitForNode(node, absl::Seconds(30)));
  // Longer than the session timeout: an orphaned node of an expired session would be gone by
  // now, so this checks that registrator (still) owns it.
  absl::SleepFor(absl::Seconds(6));
  EXPECT_TRUE(raw_zookeeper_->Exists(node));
  EXPECT_TRUE(registrator_.running());
}

TEST_F(ZookeeperEndToEndTest, UnchangedResyncWritesNothingAndRestoresADeletedNode) {
  const int http_port = FreeLoopbackPort();
  StartRegistrator({"-resync", "1", "-http", absl::StrCat("127.0.0.1:", http_port)});
  const int port = FreeLoopbackPort();
  RunContainer("e2e-zk-steady", port, {"-e", "SERVICE_NAME=steady"});
  const std::string parent = absl::StrCat(base_, "/steady");
  const std::string node = absl::StrCat(parent, "/127.0.0.1:", port);
  ASSERT_TRUE(WaitForNode(node));
  Stat node_before, parent_before;
  ASSERT_TRUE(raw_zookeeper_->Get(node, &node_before).has_value());
  ASSERT_TRUE(raw_zookeeper_->Get(parent, &parent_before).has_value());
  const int resyncs = RegistratorResyncCount(http_port);
  ASSERT_GE(resyncs, 0);
  // Waited for, not slept for: a slow machine only takes longer.
  EXPECT_TRUE(
      WaitFor([&] { return RegistratorResyncCount(http_port) >= resyncs + 2; }, absl::Seconds(30)))
      << "the resyncs did not run";
  Stat node_after, parent_after;
  ASSERT_TRUE(raw_zookeeper_->Get(node, &node_after).has_value());
  ASSERT_TRUE(raw_zookeeper_->Get(parent, &parent_after).has_value());
  EXPECT_EQ(node_after.mzxid, node_before.mzxid) << "the node was rewritten";
  EXPECT_EQ(node_after.czxid, node_before.czxid) << "the node was re-created";
  EXPECT_EQ(parent_after.pzxid, parent_before.pzxid) << "children of the Name node changed";

  // Deleted behind its back: the next resync puts it back.
  ASSERT_EQ(raw_zookeeper_->Delete(node), ZOK);
  EXPECT_TRUE(WaitForNode(node, absl::Seconds(10)));
}

TEST_F(ZookeeperEndToEndTest, CleanupRemovesOnlyThisHostsStaleNodes) {
  ASSERT_EQ(raw_zookeeper_->Create(base_, ""), ZOK);
  ASSERT_EQ(raw_zookeeper_->Create(absl::StrCat(base_, "/x"), ""), ZOK);
  const std::string mine = absl::StrCat(base_, "/x/127.0.0.1:1");
  const std::string other = absl::StrCat(base_, "/x/127.0.0.2:1");
  auto body = [](const std::string& ip, const std::string& id) {
    return absl::StrCat("{\"Name\":\"x\",\"IP\":\"", ip,
                        "\",\"PublicPort\":1,\"PrivatePort\":80,\"ContainerID\":\"0123456789ab\","
                        "\"Tags\":[],\"Attrs\":{},\"ID\":\"",
                        id, "\"}");
  };
  ASSERT_EQ(
      raw_zookeeper_->Create(mine, body("127.0.0.1", absl::StrCat(LocalHostname(), ":gone:80"))),
      ZOK);
  ASSERT_EQ(raw_zookeeper_->Create(other, body("127.0.0.2", "otherhost:gone:80")), ZOK);
  // Alone under its Name node, which must go with it.
  ASSERT_EQ(raw_zookeeper_->Create(absl::StrCat(base_, "/y"), ""), ZOK);
  const std::string alone = absl::StrCat(base_, "/y/127.0.0.1:2");
  ASSERT_EQ(
      raw_zookeeper_->Create(alone, body("127.0.0.1", absl::StrCat(LocalHostname(), ":alone:81"))),
      ZOK);
  StartRegistrator({"-cleanup"});
  EXPECT_TRUE(WaitForNoNode(mine));
  EXPECT_TRUE(registrator_.WaitForOutput(
      absl::StrCat("cleanup: removed dangling ", LocalHostname(), ":gone:80")));
  EXPECT_TRUE(raw_zookeeper_->Exists(other));
  EXPECT_TRUE(WaitForNoNode(alone));
  EXPECT_TRUE(WaitForNoNode(absl::StrCat(base_, "/y"))) << "the emptied Name node stays";
}

}  // namespace
}  // namespace registrator
