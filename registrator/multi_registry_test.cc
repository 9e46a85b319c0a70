// Several registries at once (issue 16, README "Several registries at once"): one tracker Bridge
// (Docker side) feeding two follower Bridges, each with its own FakeAdapter. One registry hung or
// failing never holds up the other; Docker is inspected once per container whatever the number
// of registries; each registry resyncs, repairs, cleans up and converges on its own. Everything
// waits on conditions; nothing asserts on elapsed time.
#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "docker_client/fake_docker.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registrator/bridge.h"
#include "registrator/model/fake_adapter.h"
#include "testing/status_matchers.h"

namespace registrator {
namespace {

using fakes::FakeAdapter;
using fakes::FakeDocker;
using ::registrator::fakes::IsOk;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr char kHost[] = "host1";

docker::Container MakeContainer(const std::string& id, const std::string& name, int port) {
  docker::Container c;
  c.id = id;
  c.name = name;
  c.image = "example/web:1.2";
  c.exposed_ports.push_back(absl::StrCat(port, "/tcp"));
  c.state.running = true;
  c.state.status = "running";
  return c;
}

// One service per exposed port, named after the container.
std::vector<Service> Derive(const docker::Container& c) {
  std::vector<Service> services;
  for (const std::string& port : c.exposed_ports) {
    Service s;
    const int p = std::stoi(port);
    s.id = absl::StrCat(kHost, ":", c.name, ":", p);
    s.name = c.name;
    s.ip = "10.0.0.1";
    s.port = 10000 + p;
    s.exposed_port = p;
    s.container_id = c.id;
    s.container_name = c.name;
    services.push_back(s);
  }
  return services;
}

bool Eventually(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(30)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

std::vector<std::string> Ids(const FakeAdapter& adapter) {
  std::vector<std::string> ids;
  for (const auto& [id, s] : adapter.entries()) ids.push_back(id);
  return ids;
}

class MultiRegistryTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (tracker_ != nullptr) tracker_->Stop();
    if (a_bridge_ != nullptr) a_bridge_->Stop();
    if (b_bridge_ != nullptr) b_bridge_->Stop();
  }
  void StartBridges(BridgeConfig config = {}) {
    config.hostname = kHost;
    config.workers = 2;
    config.retry_initial = absl::Milliseconds(5);
    config.retry_max = absl::Milliseconds(50);
    BridgeConfig follower = config;
    follower.log_context = "a://";
    a_bridge_ = std::make_unique<Bridge>(nullptr, &a_, nullptr, follower);
    follower.log_context = "b://";
    b_bridge_ = std::make_unique<Bridge>(nullptr, &b_, nullptr, follower);
    tracker_ = std::make_unique<Bridge>(&docker_, nullptr, Derive, config);
    tracker_->AddFollower(a_bridge_.get());
    tracker_->AddFollower(b_bridge_.get());
    a_bridge_->Start();
    b_bridge_->Start();
    tracker_->Start();
  }
  void Event(const std::string& id, const std::string& action) {
    docker::Event e;
    e.type = "container";
    e.action = action;
    e.id = id;
    tracker_->OnEvent(e);
  }
  void Run(int i) {
    docker_.Put(MakeContainer(absl::StrCat("id", i), absl::StrCat("c", i), 80));
    Event(absl::StrCat("id", i), "start");
  }
  void Gone(int i) {
    docker_.Remove(absl::StrCat("id", i));
    Event(absl::StrCat("id", i), "die");
  }
  static std::vector<std::string> Expected(int from, int to) {
    std::vector<std::string> ids;
    for (int i = from; i < to; ++i) ids.push_back(absl::StrCat(kHost, ":c", i, ":80"));
    std::sort(ids.begin(), ids.end());
    return ids;
  }
  bool AllIdle() {
    return tracker_->WaitIdle(absl::Seconds(30)) && a_bridge_->WaitIdle(absl::Seconds(30)) &&
           b_bridge_->WaitIdle(absl::Seconds(30));
  }

  FakeDocker docker_;
  FakeAdapter a_;
  FakeAdapter b_;
  std::unique_ptr<Bridge> a_bridge_;
  std::unique_ptr<Bridge> b_bridge_;
  std::unique_ptr<Bridge> tracker_;
};

// Registry A hangs on every write (an etcd stopped with SIGSTOP): B still gets every start and
// stop, one inspect per container change serves both, and A converges to exactly the running
// containers once it answers again.
TEST_F(MultiRegistryTest, HungRegistryNeverHoldsUpTheOther) {
  for (int i = 0; i < 10; ++i) {
    docker_.Put(MakeContainer(absl::StrCat("id", i), absl::StrCat("c", i), 80));
  }
  a_.Hang("");
  StartBridges();
  // The tracker's sync waits for Docker only, never for a backend.
  ASSERT_THAT(tracker_->SyncNow(), IsOk());
  ASSERT_TRUE(Eventually([&] { return Ids(b_) == Expected(0, 10); })) << Ids(b_).size();
  for (int i = 10; i < 20; ++i) Run(i);
  for (int i = 0; i < 5; ++i) Gone(i);
  ASSERT_TRUE(Eventually([&] { return Ids(b_) == Expected(5, 20); })) << b_bridge_->PendingWork();
  ASSERT_TRUE(b_bridge_->WaitIdle(absl::Seconds(30))) << b_bridge_->PendingWork();
  // A's workers are all stuck in its backend meanwhile, and it holds nothing.
  EXPECT_TRUE(Eventually([&] { return a_.hung() == 2; })) << a_.hung();
  EXPECT_THAT(Ids(a_), IsEmpty());
  // B wrote each change once: 20 registrations, 5 deregistrations.
  EXPECT_EQ(b_.registers(), 20);
  EXPECT_EQ(b_.deregisters(), 5);
  // One inspect per container change for both registries: 10 at the sync, 10 starts, 5 dies.
  // (B may see a container's services before the tracker's worker has counted it.)
  ASSERT_TRUE(tracker_->WaitIdle(absl::Seconds(30))) << tracker_->PendingWork();
  EXPECT_EQ(docker_.inspects(), 25);
  EXPECT_EQ(tracker_->stats().reconciles, 25u);

  // A answers again (its hung calls fail, as after a timeout): its own retries converge it to
  // exactly the running containers' services, without any resync.
  a_.ReleaseHung(absl::UnavailableError("came back"), /*apply=*/false);
  ASSERT_TRUE(Eventually([&] { return Ids(a_) == Expected(5, 20); })) << a_bridge_->PendingWork();
  ASSERT_TRUE(AllIdle());
  EXPECT_EQ(Ids(a_), Expected(5, 20));
  EXPECT_EQ(docker_.inspects(), 25);  // Its recovery needed no Docker call.
  EXPECT_GT(a_bridge_->stats().write_failures, 0u);
  EXPECT_EQ(b_bridge_->stats().write_failures, 0u);
}

// A registry that refuses writes retries with its own backoff; the other's writes never fail
// and never wait.
TEST_F(MultiRegistryTest, FailingRegistryRetriesOnItsOwn) {
  b_.FailOp("register", absl::UnavailableError("connection refused"));
  StartBridges();
  ASSERT_THAT(tracker_->SyncNow(), IsOk());
  for (int i = 0; i < 8; ++i) Run(i);
  ASSERT_TRUE(Eventually([&] { return Ids(a_) == Expected(0, 8); })) << a_bridge_->PendingWork();
  ASSERT_TRUE(Eventually([&] { return b_bridge_->stats().retries >= 8; }));
  EXPECT_THAT(Ids(b_), IsEmpty());
  EXPECT_EQ(a_bridge_->stats().write_failures, 0u);
  EXPECT_EQ(a_bridge_->stats().retries, 0u);
  EXPECT_GE(b_bridge_->stats().register_failures, 8u);
  b_.FailOp("register", absl::OkStatus());
  ASSERT_TRUE(Eventually([&] { return Ids(b_) == Expected(0, 8); })) << b_bridge_->PendingWork();
  EXPECT_EQ(docker_.inspects(), 8);
}

// An unchanged resync costs no write in any registry and no inspect; a backend-side drift is
// repaired in that registry only.
TEST_F(MultiRegistryTest, UnchangedResyncIsFreePerRegistryAndDriftIsRepairedWhereItIs) {
  for (int i = 0; i < 30; ++i) {
    docker_.Put(MakeContainer(absl::StrCat("id", i), absl::StrCat("c", i), 80));
  }
  StartBridges();
  ASSERT_THAT(tracker_->SyncNow(), IsOk());
  ASSERT_TRUE(AllIdle());
  ASSERT_EQ(Ids(a_), Expected(0, 30));
  ASSERT_EQ(Ids(b_), Expected(0, 30));
  const int inspects = docker_.inspects();
  const int a_writes = a_.writes();
  const int b_writes = b_.writes();
  const uint64_t a_resyncs = a_bridge_->stats().resyncs;
  const uint64_t b_resyncs = b_bridge_->stats().resyncs;
  EXPECT_EQ(inspects, 30);
  EXPECT_EQ(a_writes, 30);
  EXPECT_EQ(b_writes, 30);
  for (int round = 0; round < 2; ++round) {
    ASSERT_THAT(tracker_->SyncNow(), IsOk());
    ASSERT_TRUE(AllIdle());
  }
  EXPECT_EQ(docker_.inspects(), inspects);
  EXPECT_EQ(a_.writes(), a_writes);
  EXPECT_EQ(b_.writes(), b_writes);
  // Each registry did compare its backend after each of the tracker's resyncs.
  EXPECT_GE(a_bridge_->stats().resyncs, a_resyncs + 2);
  EXPECT_GE(b_bridge_->stats().resyncs, b_resyncs + 2);

  // An entry deleted behind registrator's back in A only: A rewrites it, B writes nothing.
  a_.Drop(absl::StrCat(kHost, ":c7:80"));
  ASSERT_THAT(tracker_->SyncNow(), IsOk());
  ASSERT_TRUE(AllIdle());
  EXPECT_EQ(Ids(a_), Expected(0, 30));
  EXPECT_EQ(a_.writes(), a_writes + 1);
  EXPECT_EQ(b_.writes(), b_writes);
  EXPECT_EQ(docker_.inspects(), inspects);
}

// Restart over populated backends: each registry adopts what it already holds (no write), and
// -cleanup removes this host's dangling entries in each, only after the containers are known.
TEST_F(MultiRegistryTest, RestartAdoptsEntriesAndCleanupRunsPerRegistry) {
  for (int i = 0; i < 5; ++i) {
    const docker::Container c = MakeContainer(absl::StrCat("id", i), absl::StrCat("c", i), 80);
    docker_.Put(c);
    for (const Service& s : Derive(c)) {
      a_.Seed(s);
      b_.Seed(s);
    }
  }
  Service dangling = Derive(MakeContainer("gone", "gone", 80)).front();
  a_.Seed(dangling);
  b_.Seed(dangling);
  Service foreign = dangling;
  foreign.id = "otherhost:gone:80";
  b_.Seed(foreign);
  BridgeConfig config;
  config.cleanup = true;
  StartBridges(config);
  ASSERT_THAT(tracker_->SyncNow(), IsOk());
  ASSERT_TRUE(Eventually([&] { return Ids(a_) == Expected(0, 5); })) << Ids(a_).size();
  std::vector<std::string> b_expected = Expected(0, 5);
  b_expected.push_back("otherhost:gone:80");
  ASSERT_TRUE(Eventually([&] { return Ids(b_) == b_expected; })) << Ids(b_).size();
  ASSERT_TRUE(AllIdle());
  // The dangling entry was the only write in each.
  EXPECT_EQ(a_.registers(), 0);
  EXPECT_EQ(b_.registers(), 0);
  EXPECT_EQ(a_.deregisters(), 1);
  EXPECT_EQ(b_.deregisters(), 1);
  EXPECT_THAT(a_.leftover_cleanups(), ::testing::Not(IsEmpty()));
  EXPECT_THAT(b_.leftover_cleanups(), ::testing::Not(IsEmpty()));
}

// -deregister-on-exit runs per registry: a hung one does not keep the other's entries in place.
TEST_F(MultiRegistryTest, DeregisterOnExitPerRegistry) {
  for (int i = 0; i < 4; ++i) {
    docker_.Put(MakeContainer(absl::StrCat("id", i), absl::StrCat("c", i), 80));
  }
  BridgeConfig config;
  config.deregister_on_exit = true;
  StartBridges(config);
  ASSERT_THAT(tracker_->SyncNow(), IsOk());
  ASSERT_TRUE(AllIdle());
  ASSERT_EQ(Ids(a_), Expected(0, 4));
  ASSERT_EQ(Ids(b_), Expected(0, 4));
  a_.Hang("");
  tracker_->Stop();
  std::thread stop_a([&] { a_bridge_->Stop(); });
  b_bridge_->Stop();
  EXPECT_THAT(Ids(b_), ElementsAre());
  stop_a.join();
  // A's deregistrations hung until its stop deadline aborted them: its entries stay.
  EXPECT_EQ(Ids(a_), Expected(0, 4));
  EXPECT_GE(a_.aborts(), 1);
}

}  // namespace
}  // namespace registrator
