// Faults against a real ZooKeeper 3.8 (and a real 3-server ensemble), with the registrator binary
// and a real dockerd: ZooKeeper down for 30 s while containers start and stop (with and without
// -resync), ZooKeeper hung (SIGSTOP) with and without a SIGTERM to registrator during the hang, a
// SIGKILLed registrator restarted with -cleanup, registrator's session expiring (registrator
// frozen longer than its session timeout), and the ensemble server it is connected to killed.
// Every scenario ends with the tree holding exactly the running containers' service nodes; the
// time that took (from the moment the fault healed) is printed as a FAULT-RESULT line.
#include <signal.h>
#include <zookeeper/zookeeper.h>

#include <atomic>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "testing/fault_test_base.h"
#include "testing/process.h"
#include "testing/status_matchers.h"
#include "testing/zookeeper_ensemble.h"
#include "testing/zookeeper_fixture.h"

namespace registrator {
namespace {

using fakes::IsOk;
using fakes::WaitFor;
using fakes::ZookeeperEnsemble;
using fakes::ZookeeperServer;

constexpr absl::Duration kOutage = absl::Seconds(30);
// Longer than the 4 s session timeout the server grants: sessions are at stake.
constexpr absl::Duration kHang = absl::Seconds(10);
constexpr int kSessionTimeoutMs = 4000;

// A plain synchronous C-client handle for reading the tree back.
class ZkReader {
 public:
  explicit ZkReader(const std::string& address) {
    zh_ = zookeeper_init(address.c_str(), &ZkReader::Watcher, 10000, nullptr, this, 0);
  }
  ~ZkReader() {
    if (zh_ != nullptr) zookeeper_close(zh_);
  }
  ZkReader(const ZkReader&) = delete;
  ZkReader& operator=(const ZkReader&) = delete;

  bool WaitConnected() {
    return WaitFor([this] { return connected_.load(); }, absl::Seconds(20));
  }
  // The reader's own session can expire too (a hung or stopped server), and an expired handle
  // never recovers.
  bool expired() { return zoo_state(zh_) == ZOO_EXPIRED_SESSION_STATE; }
  // Children of `path`; nullopt on an error other than "no node" (empty then).
  std::optional<std::vector<std::string>> Children(const std::string& path, int* rc_out) {
    String_vector children{};
    const int rc = zoo_get_children(zh_, path.c_str(), 0, &children);
    *rc_out = rc;
    std::vector<std::string> names;
    if (rc == ZNONODE) return names;
    if (rc != ZOK) return std::nullopt;
    for (int i = 0; i < children.count; ++i) names.emplace_back(children.data[i]);
    deallocate_String_vector(&children);
    return names;
  }
  std::optional<std::string> Get(const std::string& path, Stat* stat) {
    char buffer[8192];
    int len = sizeof(buffer);
    if (zoo_get(zh_, path.c_str(), 0, buffer, &len, stat) != ZOK) return std::nullopt;
    return std::string(buffer, len < 0 ? 0 : len);
  }

 private:
  static void Watcher(zhandle_t*, int type, int state, const char*, void* context) {
    if (type == ZOO_SESSION_EVENT) {
      static_cast<ZkReader*>(context)->connected_ = state == ZOO_CONNECTED_STATE;
    }
  }
  zhandle_t* zh_ = nullptr;
  std::atomic<bool> connected_{false};
};

// The "ID" field of a service node's JSON.
std::string IdOf(const std::string& json) {
  const std::string key = "\"ID\":\"";
  const size_t at = json.find(key);
  if (at == std::string::npos) return "<no ID>";
  const size_t end = json.find('"', at + key.size());
  return json.substr(at + key.size(), end - at - key.size());
}

class ZookeeperFaultTest : public fakes::FaultTest {
 protected:
  static void SetUpTestSuite() {
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);  // The reader's reconnect chatter.
    FaultTest::SetUpTestSuite();
    ZookeeperServer::Options options;
    // The server clamps registrator's requested session timeout to this.
    options.max_session_timeout_ms = kSessionTimeoutMs;
    absl::StatusOr<std::unique_ptr<ZookeeperServer>> zk = ZookeeperServer::Start(options);
    ASSERT_THAT(zk, IsOk());
    zk_ = zk->release();
  }
  static void TearDownTestSuite() {
    delete zk_;
    zk_ = nullptr;
    EndToEndTest::TearDownTestSuite();
  }
  void SetUp() override {
    EndToEndTest::SetUp();
    ASSERT_NE(zk_, nullptr);
    base_ = absl::StrCat("/", test_name_);
    Connect();
  }
  void TearDown() override {
    // Heal what a failed test left broken, for the failure message and the next test.
    if (zk_ != nullptr) {
      if (zk_->paused()) zk_->Resume();
      if (!zk_->FourLetter("ruok").ok()) {
        EXPECT_THAT(zk_->Relaunch(), IsOk()) << zk_->Log();
      }
    }
    registrator_.Signal(SIGCONT);
    EndToEndTest::TearDown();
  }
  virtual std::string Address() const { return zk_->address(); }
  void Connect() {
    reader_ = std::make_unique<ZkReader>(Address());
    ASSERT_TRUE(reader_->WaitConnected());
  }
  std::string BackendName() const override { return "zookeeper"; }
  std::string BackendState() override {
    std::string state;
    for (const std::string& entry : Held()) absl::StrAppend(&state, entry, "\n");
    return absl::StrCat("\nzookeeper nodes under ", base_, ":\n", state);
  }
  // Service nodes as "<path>=<ID>", and Name nodes left without children (the spec removes them
  // with their last child) as "<path> (empty)".
  std::set<std::string> Held() override {
    if (reader_->expired()) Connect();
    int rc = 0;
    std::optional<std::vector<std::string>> names = reader_->Children(base_, &rc);
    if (!names) return {absl::StrCat("<list ", base_, " failed: ", zerror(rc), ">")};
    std::set<std::string> held;
    for (const std::string& name : *names) {
      const std::string name_path = absl::StrCat(base_, "/", name);
      std::optional<std::vector<std::string>> nodes = reader_->Children(name_path, &rc);
      if (!nodes) return {absl::StrCat("<list ", name_path, " failed: ", zerror(rc), ">")};
      if (nodes->empty()) held.insert(absl::StrCat(name_path, " (empty)"));
      for (const std::string& node : *nodes) {
        const std::string path = absl::StrCat(name_path, "/", node);
        Stat stat{};
        std::optional<std::string> data = reader_->Get(path, &stat);
        if (!data) continue;  // Deleted between the two reads.
        held.insert(absl::StrCat(path, "=", IdOf(*data)));
      }
    }
    return held;
  }
  std::string ExpectedEntry(const std::string& container, const App& app) const override {
    return absl::StrCat(base_, "/", app.service, "/127.0.0.1:", app.port, "=", Id(container));
  }
  std::string Uri() const { return absl::StrCat("zookeeper://", Address(), base_); }
  std::string NodeOf(const std::string& container) const {
    const App& app = apps_.at(container);
    return absl::StrCat(base_, "/", app.service, "/127.0.0.1:", app.port);
  }
  // The session that owns `container`'s node (0 if there is no node).
  int64_t OwnerOf(const std::string& container) {
    Stat stat{};
    if (!reader_->Get(NodeOf(container), &stat)) return 0;
    return stat.ephemeralOwner;
  }

  void DownWhileContainersChange(const std::vector<std::string>& flags,
                                 const std::string& scenario) {
    StartRegistrator(flags, Uri());
    StartApp("f-zk-a", "a");
    StartApp("f-zk-b", "b");
    AwaitSteadyState();
    zk_->Stop(/*kill=*/false);
    const absl::Time down = absl::Now();
    StopApp("f-zk-a");
    StartApp("f-zk-c", "c");
    absl::SleepFor(kOutage / 2 - (absl::Now() - down));  // The outage is the scenario.
    StopApp("f-zk-b");
    StartApp("f-zk-d", "d");
    absl::SleepFor(kOutage - (absl::Now() - down));
    ASSERT_THAT(zk_->Relaunch(), IsOk()) << zk_->Log();
    const absl::Time healed = absl::Now();
    Connect();
    ExpectConverges(scenario, healed);
    EXPECT_TRUE(registrator_.running());
  }

  static ZookeeperServer* zk_;
  std::string base_;
  std::unique_ptr<ZkReader> reader_;
};

ZookeeperServer* ZookeeperFaultTest::zk_ = nullptr;

TEST_F(ZookeeperFaultTest, DownFor30sWhileContainersChange) {
  DownWhileContainersChange({}, "backend down 30 s, no -resync");
}

TEST_F(ZookeeperFaultTest, DownFor30sWhileContainersChangeWithResync) {
  DownWhileContainersChange({"-resync", "5"}, "backend down 30 s, -resync 5");
}

TEST_F(ZookeeperFaultTest, HungWhileContainersChange) {
  StartRegistrator({}, Uri());
  StartApp("f-zk-a", "a");
  StartApp("f-zk-b", "b");
  AwaitSteadyState();
  zk_->Pause();
  const absl::Time hung = absl::Now();
  StopApp("f-zk-a");
  StartApp("f-zk-c", "c");
  absl::SleepFor(kHang - (absl::Now() - hung));  // The hang is the scenario.
  zk_->Resume();
  const absl::Time healed = absl::Now();
  ExpectConverges("backend hung 10 s (SIGSTOP)", healed);
  EXPECT_TRUE(registrator_.running());
}

TEST_F(ZookeeperFaultTest, SigtermDuringHangThenRestartWithCleanup) {
  StartRegistrator({"-log-level", "debug"}, Uri());
  StartApp("f-zk-a", "a");
  StartApp("f-zk-b", "b");
  AwaitSteadyState();
  zk_->Pause();
  StopApp("f-zk-a");
  StartApp("f-zk-c", "c");
  ASSERT_TRUE(registrator_.WaitForOutput("event start container", absl::Seconds(10), 3));
  ASSERT_TRUE(registrator_.WaitForOutput("event die container", absl::Seconds(10)));
  absl::SleepFor(absl::Milliseconds(500));
  StopDuringHang("SIGTERM during backend hang");
  zk_->Resume();
  NoteBeforeHeal();
  const absl::Time restarted = absl::Now();
  StartRegistrator({"-cleanup"}, Uri(), {}, "-2");
  ExpectConverges("SIGTERM during hang, restart with -cleanup", restarted);
}

TEST_F(ZookeeperFaultTest, SigkillWithChangesWhileDownThenRestartWithCleanup) {
  StartRegistrator({}, Uri());
  StartApp("f-zk-a", "a");
  StartApp("f-zk-b", "b");
  AwaitSteadyState();
  registrator_.Kill();
  StopApp("f-zk-a");
  StartApp("f-zk-c", "c");
  NoteBeforeHeal();
  const absl::Time restarted = absl::Now();
  StartRegistrator({"-cleanup"}, Uri(), {}, "-2");
  ExpectConverges("SIGKILL, changes while down, restart with -cleanup", restarted);
}

// Registrator frozen (SIGSTOP, as a long GC pause or a suspended VM) for twice its session
// timeout: the server expires the session and deletes its ephemeral nodes. Containers change
// meanwhile. Thawed, registrator must notice the expiry, open a new session and restore exactly
// the running containers' nodes.
TEST_F(ZookeeperFaultTest, SessionExpiry) {
  StartRegistrator({}, Uri());
  StartApp("f-zk-a", "a");
  StartApp("f-zk-b", "b");
  AwaitSteadyState();
  const int64_t session = OwnerOf("f-zk-b");
  ASSERT_NE(session, 0);
  registrator_.Signal(SIGSTOP);
  // The fault is real only once the server expired the session (its nodes are gone).
  ASSERT_TRUE(WaitFor([&] { return OwnerOf("f-zk-b") == 0; }, absl::Seconds(30)))
      << "the frozen registrator's session did not expire";
  StopApp("f-zk-a");
  StartApp("f-zk-c", "c");
  registrator_.Signal(SIGCONT);
  const absl::Time thawed = absl::Now();
  ExpectConverges("session expiry (registrator frozen past its session timeout)", thawed);
  EXPECT_NE(OwnerOf("f-zk-b"), session) << "restored by a new session";
}

// A 3-server ensemble; registrator is given all three. The server its session is connected to is
// SIGKILLed while containers change: the client must fail over to another server within the
// session timeout and keep its session (and so its ephemeral nodes).
class ZookeeperEnsembleFaultTest : public ZookeeperFaultTest {
 protected:
  void SetUp() override {
    EndToEndTest::SetUp();
    base_ = absl::StrCat("/", test_name_);
    ZookeeperEnsemble::Options options;
    options.max_session_timeout_ms = kSessionTimeoutMs;
    absl::StatusOr<std::unique_ptr<ZookeeperEnsemble>> ensemble = ZookeeperEnsemble::Start(options);
    ASSERT_THAT(ensemble, IsOk());
    ensemble_ = std::move(*ensemble);
    Connect();
  }
  void TearDown() override {
    registrator_.Signal(SIGCONT);
    EndToEndTest::TearDown();
    reader_.reset();
    ensemble_.reset();
  }
  std::string Address() const override { return ensemble_->address(); }
  std::string BackendName() const override { return "zookeeper, 3 servers"; }
  std::string BackendState() override {
    return absl::StrCat(ZookeeperFaultTest::BackendState(), "\nensemble logs:\n",
                        ensemble_->Logs());
  }

  std::unique_ptr<ZookeeperEnsemble> ensemble_;
};

TEST_F(ZookeeperEnsembleFaultTest, ServerOfTheSessionKilledWhileContainersChange) {
  StartRegistrator({}, Uri());
  StartApp("f-zk-a", "a");
  StartApp("f-zk-b", "b");
  AwaitSteadyState();
  const int64_t session = OwnerOf("f-zk-b");
  ASSERT_NE(session, 0);
  int server = -1;
  ASSERT_TRUE(WaitFor(
      [&] {
        server = ensemble_->ServerOfSession(session);
        return server >= 0;
      },
      absl::Seconds(10)))
      << "no server lists registrator's session";
  ensemble_->Kill(server);
  const absl::Time killed = absl::Now();
  StopApp("f-zk-a");
  StartApp("f-zk-c", "c");
  ExpectConverges("ensemble: registrator's server SIGKILLed", killed);
  EXPECT_EQ(OwnerOf("f-zk-b"), session) << "failed over with the same session";
  EXPECT_TRUE(registrator_.running());
}

}  // namespace
}  // namespace registrator
