// The bridge's reconcile logic against an in-memory Docker and backend: ordering, deregister
// modes, retries, resync diffing, cleanup, TTL refresh, overflow, state loss; and one
// deterministic regression test per defect of issue 12 (service ID ownership, refresh vs resync
// and vs deregistration, resync healing Docker drift, bounded stop, inspect backoff and cleanup,
// the state-lost callback).
#include "registrator/bridge.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "docker_client/fake_docker.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registrator/model/fake_adapter.h"
#include "testing/fake_clock.h"
#include "testing/status_matchers.h"

namespace registrator {
namespace {

using fakes::FakeAdapter;
using fakes::FakeClock;
using fakes::FakeDocker;
using ::registrator::fakes::IsOk;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

constexpr char kHost[] = "host1";

docker::Container MakeContainer(const std::string& id, const std::string& name,
                                std::vector<int> ports, bool running = true) {
  docker::Container c;
  c.id = id;
  c.name = name;
  c.image = "example/web:1.2";
  for (int port : ports) c.exposed_ports.push_back(absl::StrCat(port, "/tcp"));
  c.state.running = running;
  c.state.status = running ? "running" : "exited";
  return c;
}

// A minimal deriver: one service per exposed port, named after the container, on the IP of its
// first network (10.0.0.1 without one); env "SERVICE_ID=x" sets the ID, other env entries are
// tags.
std::vector<Service> SimpleDerive(const docker::Container& c) {
  std::vector<Service> services;
  for (const std::string& port : c.exposed_ports) {
    Service s;
    const int p = std::stoi(port);
    s.id = absl::StrCat(kHost, ":", c.name, ":", p);
    s.name = c.name;
    s.ip = c.networks.empty() ? "10.0.0.1" : c.networks.front().ip_address;
    s.port = 10000 + p;
    s.exposed_port = p;
    s.container_id = c.id;
    s.container_name = c.name;
    s.docker_health = {c.state.health, c.state.health_output};
    for (const std::string& env : c.env) {
      if (absl::StartsWith(env, "SERVICE_ID=")) {
        s.id = env.substr(11);
      } else {
        s.tags.push_back(env);
      }
    }
    services.push_back(s);
  }
  return services;
}

// Waits (bounded) until `done` holds; false if it never did.
bool Eventually(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(20)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

class BridgeTest : public ::testing::Test {
 protected:
  // A refresh that has taken its snapshot and hangs before it writes anything; the caller
  // releases it (adapter_.ReleaseHung) and joins the thread.
  void StartHungRefresh(std::thread* refresh) {
    adapter_.Hang("refresh");
    *refresh = std::thread([this] { bridge_->RefreshNow().IgnoreError(); });
    ASSERT_TRUE(Eventually([&] { return adapter_.hung() == 1; }));
  }
  // The start of the refresh races: container aaa's web:80 registered, then a refresh (one that
  // re-creates what it renews) holding its snapshot of web:80, released by the caller.
  void StartWithWebAndHungRefresh(BridgeConfig config, std::thread* refresh) {
    adapter_.SetRefreshRecreates(true);
    StartBridge(config);
    docker_.Put(MakeContainer("aaa", "web", {80}));
    ASSERT_THAT(bridge_->SyncNow(), IsOk());
    ASSERT_THAT(BackendIds(), ElementsAre("host1:web:80"));
    ASSERT_NO_FATAL_FAILURE(StartHungRefresh(refresh));
    ASSERT_THAT(adapter_.last_refresh(), ElementsAre("host1:web:80"));
  }
  void StartBridge(BridgeConfig config = {}) {
    config.hostname = kHost;
    if (config.workers == 8) config.workers = 4;
    bridge_ = std::make_unique<Bridge>(&docker_, &adapter_, SimpleDerive, config,
                                       [this] { return clock_.Now(); });
    bridge_->Start();
  }
  void Event(const std::string& id, const std::string& action) {
    docker::Event e;
    e.type = "container";
    e.action = action;
    e.id = id;
    bridge_->OnEvent(e);
  }
  std::vector<std::string> BackendIds() {
    std::vector<std::string> ids;
    for (const auto& [id, s] : adapter_.entries()) ids.push_back(id);
    return ids;
  }

  FakeDocker docker_;
  FakeAdapter adapter_;
  FakeClock clock_;
  std::unique_ptr<Bridge> bridge_;
};

TEST_F(BridgeTest, InitialSyncRegistersRunningContainersOnly) {
  docker_.Put(MakeContainer("aaa", "web", {80, 443}));
  docker_.Put(MakeContainer("bbb", "db", {5432}));
  docker_.Put(MakeContainer("ccc", "old", {8080}, /*running=*/false));
  StartBridge();
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_THAT(BackendIds(), ElementsAre("host1:db:5432", "host1:web:443", "host1:web:80"));
  EXPECT_EQ(adapter_.registers(), 3);
  EXPECT_EQ(bridge_->stats().services, 3u);
}

TEST_F(BridgeTest, AContainersServicesAreWrittenBeforeTheNextContainerIsInspected) {
  // A start-up of a large host: the first services reach the backend after one inspect, not
  // after all of them (the backend would stay empty for seconds, and a drift check meanwhile
  // would see every derived service as missing).
  for (int i = 0; i < 5; ++i)
    docker_.Put(MakeContainer(absl::StrCat("id", i), absl::StrCat("c", i), {80}));
  std::vector<int> inspects_at_register;
  adapter_.SetReturnHook([&](const std::string& op, const std::string&) {
    if (op == "register") inspects_at_register.push_back(docker_.inspects());
  });
  BridgeConfig config;
  config.workers = 1;
  StartBridge(config);
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_THAT(inspects_at_register, ElementsAre(1, 2, 3, 4, 5));
}

TEST_F(BridgeTest, UnchangedResyncMakesZeroWrites) {
  for (int i = 0; i < 50; ++i)
    docker_.Put(MakeContainer(absl::StrCat("id", i), absl::StrCat("c", i), {80}));
  StartBridge();
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  const int writes = adapter_.writes();
  const int inspects = docker_.inspects();
  EXPECT_EQ(writes, 50);
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_EQ(adapter_.writes(), writes);
  // Tracked running containers are not inspected again either.
  EXPECT_EQ(docker_.inspects(), inspects);
}

TEST_F(BridgeTest, ResyncDoesNotReinspectRunningContainersWithoutServices) {
  docker_.Put(MakeContainer("aaa", "noports", {}));
  docker_.Put(MakeContainer("bbb", "web", {80}));
  StartBridge();
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_EQ(docker_.inspects(), 2);
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_EQ(docker_.inspects(), 2);
  // Once it stops, the next resync notices and forgets it.
  docker_.Remove("aaa");
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_EQ(docker_.inspects(), 3);
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_EQ(docker_.inspects(), 3);
}

TEST_F(BridgeTest, RestartWithPopulatedBackendMakesZeroWrites) {
  docker_.Put(MakeContainer("aaa", "web", {80}));
  StartBridge();
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  bridge_->Stop();
  const int writes = adapter_.writes();
  // A new registrator process over the same backend: it lists before writing.
  StartBridge();
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_EQ(adapter_.writes(), writes);
  EXPECT_EQ(bridge_->stats().services, 1u);
}

TEST_F(BridgeTest, StartAndDieEvents) {
  StartBridge();
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  docker_.Put(MakeContainer("aaa", "web", {80}));
  Event("aaa", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), ElementsAre("host1:web:80"));
  docker_.Exit("aaa", 0);
  Event("aaa", "die");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), IsEmpty());
  EXPECT_EQ(adapter_.deregisters(), 1);
}

TEST_F(BridgeTest, IrrelevantEventsDoNothing) {
  StartBridge();
  docker_.Put(MakeContainer("aaa", "web", {80}));
  Event("aaa", "exec_die");
  Event("aaa", "exec_start: /bin/sh -c test -f /tmp/ok");
  Event("aaa", "attach");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(docker_.inspects(), 0);
  EXPECT_EQ(bridge_->stats().events, 3u);
}

TEST_F(BridgeTest, DeregisterAlwaysRemovesOnAnyExit) {
  StartBridge();
  docker_.Put(MakeContainer("aaa", "web", {80}));
  Event("aaa", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  docker_.Exit("aaa", 1);
  Event("aaa", "die");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), IsEmpty());
}

TEST_F(BridgeTest, DeregisterOnSuccessRules) {
  BridgeConfig config;
  config.deregister_on_success = true;
  StartBridge(config);
  // exit 1: kept; exit 0: removed; exit 137 (SIGKILL): removed; gone: removed.
  docker_.Put(MakeContainer("c1", "fails", {80}));
  docker_.Put(MakeContainer("c0", "ok", {80}));
  docker_.Put(MakeContainer("c9", "killed", {80}));
  docker_.Put(MakeContainer("cg", "gone", {80}));
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  ASSERT_EQ(BackendIds().size(), 4u);
  docker_.Exit("c1", 1);
  docker_.Exit("c0", 0);
  docker_.Exit("c9", 137);
  docker_.Remove("cg");
  for (const char* id : {"c1", "c0", "c9", "cg"}) Event(id, "die");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), ElementsAre("host1:fails:80"));
  // Kept services are no longer refreshed, so they expire where the backend has TTLs.
  ASSERT_THAT(bridge_->RefreshNow(), IsOk());
  EXPECT_THAT(adapter_.last_refresh(), IsEmpty());
  // A resync does not resurrect or remove the kept one either.
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_THAT(BackendIds(), ElementsAre("host1:fails:80"));
  // When the failed container is removed for good, its services go.
  docker_.Remove("c1");
  Event("c1", "destroy");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), IsEmpty());
}

TEST_F(BridgeTest, KeptServiceComesBackToLifeOnRestart) {
  BridgeConfig config;
  config.deregister_on_success = true;
  StartBridge(config);
  docker_.Put(MakeContainer("c1", "web", {80}));
  Event("c1", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  docker_.Exit("c1", 2);
  Event("c1", "die");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  docker_.Put(MakeContainer("c1", "web", {80}));
  Event("c1", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  ASSERT_THAT(bridge_->RefreshNow(), IsOk());
  EXPECT_THAT(adapter_.last_refresh(), ElementsAre("host1:web:80"));
  EXPECT_EQ(adapter_.registers(), 1);  // Same definition: never rewritten.
}

TEST_F(BridgeTest, RestartingContainerFollowsDieRules) {
  StartBridge();
  docker::Container c = MakeContainer("aaa", "loop", {80});
  docker_.Put(c);
  Event("aaa", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  c.state.restarting = true;
  c.state.exit_code = 1;
  docker_.Put(c);
  Event("aaa", "die");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), IsEmpty());
}

TEST_F(BridgeTest, FinalStateWinsWhateverTheEventBurst) {
  StartBridge();
  docker_.Put(MakeContainer("aaa", "web", {80}));
  // A burst of start/die for one container while it ends up stopped.
  for (int i = 0; i < 20; ++i) {
    Event("aaa", "start");
    Event("aaa", "die");
  }
  docker_.Exit("aaa", 0);
  Event("aaa", "die");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), IsEmpty());
  // And ends up running.
  docker_.Put(MakeContainer("aaa", "web", {80}));
  Event("aaa", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), ElementsAre("host1:web:80"));
}

TEST_F(BridgeTest, FailedRegisterIsRetriedWithBackoff) {
  BridgeConfig config;
  config.retry_initial = absl::Seconds(1);
  StartBridge(config);
  adapter_.FailOp("register", absl::UnavailableError("backend down"));
  docker_.Put(MakeContainer("aaa", "web", {80, 81}));
  Event("aaa", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), IsEmpty());
  EXPECT_EQ(bridge_->stats().write_failures, 2u);
  // Not due yet: nothing happens.
  bridge_->RetryDueNow();
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(adapter_.registers(), 2);
  // Still failing when due: the next delay doubles.
  clock_.Advance(absl::Seconds(1));
  bridge_->RetryDueNow();
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(adapter_.registers(), 4);
  clock_.Advance(absl::Seconds(1));
  bridge_->RetryDueNow();
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(adapter_.registers(), 4);  // Backoff is 2 s now.
  adapter_.FailOp("register", absl::OkStatus());
  clock_.Advance(absl::Seconds(1));
  bridge_->RetryDueNow();
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), ElementsAre("host1:web:80", "host1:web:81"));
  EXPECT_GE(bridge_->stats().retries, 2u);
}

// After a backend outage, -resync did not heal sooner than the retry backoff (measured: 26 s
// after a 30 s etcd outage with -resync 5): a resync only rewrote what was not waiting for a
// retry. A resync whose listing succeeds shows the backend is back: it retries at once.
TEST_F(BridgeTest, AResyncThatReachesTheBackendRetriesAtOnce) {
  BridgeConfig config;
  config.retry_initial = absl::Minutes(1);
  StartBridge(config);
  adapter_.FailOp("register", absl::UnavailableError("backend down"));
  docker_.Put(MakeContainer("aaa", "web", {80}));
  Event("aaa", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), IsEmpty());
  adapter_.FailOp("register", absl::OkStatus());
  ASSERT_THAT(bridge_->SyncNow(), IsOk());  // The clock has not moved: the retry is not due.
  EXPECT_THAT(BackendIds(), ElementsAre("host1:web:80"));
}

// Regression: the scheduler slept through retries scheduled after it went to sleep, so without
// -resync or -ttl-refresh a failed write was never retried.
TEST(BridgeSchedulerTest, RetriesOnItsOwnWithoutResyncOrRefresh) {
  FakeDocker docker;
  FakeAdapter adapter;
  BridgeConfig config;
  config.hostname = kHost;
  config.retry_initial = absl::Milliseconds(50);
  Bridge bridge(&docker, &adapter, SimpleDerive, config);  // Real clock, no timers.
  bridge.Start();
  ASSERT_THAT(bridge.SyncNow(), IsOk());
  adapter.FailOp("register", absl::UnavailableError("backend down"));
  adapter.FailOp("deregister", absl::UnavailableError("backend down"));
  docker.Put(MakeContainer("aaa", "web", {80}));
  docker.Put(MakeContainer("bbb", "old", {80}));
  docker::Event event;
  event.type = "container";
  event.action = "start";
  event.id = "bbb";
  adapter.FailOp("register", absl::OkStatus());
  bridge.OnEvent(event);
  ASSERT_TRUE(bridge.WaitIdle(absl::Seconds(10)));
  adapter.FailOp("register", absl::UnavailableError("backend down"));
  event.id = "aaa";
  bridge.OnEvent(event);
  docker.Remove("bbb");
  event.id = "bbb";
  event.action = "destroy";
  bridge.OnEvent(event);
  ASSERT_TRUE(bridge.WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(adapter.entries().count("host1:web:80"), 0u);
  EXPECT_EQ(adapter.entries().count("host1:old:80"), 1u);
  adapter.FailOp("register", absl::OkStatus());
  adapter.FailOp("deregister", absl::OkStatus());
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  // One snapshot per check: two calls could see {old} and then {old, web}, and pass early.
  for (auto entries = adapter.entries(); entries.size() != 1 || !entries.contains("host1:web:80");
       entries = adapter.entries()) {
    ASSERT_LT(absl::Now(), deadline) << "the failed writes were never retried";
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_GE(bridge.stats().retries, 2u);
  bridge.Stop();
}

TEST_F(BridgeTest, OnlyTheFailedPortIsRetried) {
  StartBridge();
  adapter_.FailOp("register", absl::UnavailableError("flaky"), "host1:web:81");
  docker_.Put(MakeContainer("aaa", "web", {80, 81}));
  Event("aaa", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), ElementsAre("host1:web:80"));
  adapter_.FailOp("register", absl::OkStatus(), "host1:web:81");
  clock_.Advance(absl::Minutes(2));
  bridge_->RetryDueNow();
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), ElementsAre("host1:web:80", "host1:web:81"));
  EXPECT_EQ(adapter_.registers(), 3);
}

TEST_F(BridgeTest, InvalidRegistrationIsNotRetriedUntilItChanges) {
  StartBridge();
  adapter_.FailOp("register", absl::InvalidArgumentError("bad body"));
  docker::Container c = MakeContainer("aaa", "web", {80});
  docker_.Put(c);
  Event("aaa", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(adapter_.registers(), 1);
  adapter_.FailOp("register", absl::OkStatus());
  clock_.Advance(absl::Hours(1));
  bridge_->RetryDueNow();
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  Event("aaa", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(adapter_.registers(), 1);
  // A changed definition is tried again.
  c.env.push_back("v2");
  docker_.Put(c);
  Event("aaa", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(adapter_.registers(), 2);
  EXPECT_THAT(BackendIds(), ElementsAre("host1:web:80"));
}

TEST_F(BridgeTest, FailedDeregisterIsRetried) {
  StartBridge();
  docker_.Put(MakeContainer("aaa", "web", {80}));
  Event("aaa", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  adapter_.FailOp("deregister", absl::UnavailableError("down"));
  docker_.Remove("aaa");
  Event("aaa", "destroy");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), ElementsAre("host1:web:80"));
  adapter_.FailOp("deregister", absl::OkStatus());
  clock_.Advance(absl::Minutes(2));
  bridge_->RetryDueNow();
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), IsEmpty());
}

TEST_F(BridgeTest, ResyncRewritesOnlyWhatDrifted) {
  for (int i = 0; i < 10; ++i)
    docker_.Put(MakeContainer(absl::StrCat("id", i), absl::StrCat("c", i), {80}));
  StartBridge();
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  const int writes = adapter_.writes();
  adapter_.Drop("host1:c3:80");
  Service changed = adapter_.entries().at("host1:c4:80");
  changed.port = 1;
  adapter_.Seed(changed);
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_EQ(adapter_.writes(), writes + 2);
  EXPECT_EQ(adapter_.entries().at("host1:c4:80").port, 10080);
  EXPECT_EQ(adapter_.entries().count("host1:c3:80"), 1u);
}

TEST_F(BridgeTest, ResyncFindsContainersWhoseEventsWereMissed) {
  docker_.Put(MakeContainer("aaa", "web", {80}));
  StartBridge();
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  docker_.Put(MakeContainer("bbb", "new", {80}));
  docker_.Remove("aaa");
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_THAT(BackendIds(), ElementsAre("host1:new:80"));
}

TEST_F(BridgeTest, CleanupRemovesOnlyThisHostsDanglingEntries) {
  Service dangling;
  dangling.id = "host1:vanished:80";
  dangling.name = "vanished";
  Service other_host = dangling;
  other_host.id = "host2:vanished:80";
  Service custom_id = dangling;
  custom_id.id = "my-custom-id";
  adapter_.Seed(dangling);
  adapter_.Seed(other_host);
  adapter_.Seed(custom_id);
  docker_.Put(MakeContainer("aaa", "web", {80}));
  BridgeConfig config;
  config.cleanup = true;
  StartBridge(config);
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_THAT(BackendIds(), ElementsAre("host1:web:80", "host2:vanished:80", "my-custom-id"));
  // Then what the removed entries left behind (ZooKeeper's empty Name nodes), once they are gone.
  EXPECT_THAT(adapter_.leftover_cleanups(),
              ElementsAre(ElementsAre("host1:web:80", "host2:vanished:80", "my-custom-id")));
}

TEST_F(BridgeTest, WithoutCleanupForeignEntriesStay) {
  Service dangling;
  dangling.id = "host1:vanished:80";
  adapter_.Seed(dangling);
  StartBridge();
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_THAT(BackendIds(), ElementsAre("host1:vanished:80"));
  EXPECT_THAT(adapter_.leftover_cleanups(), ::testing::IsEmpty());
}

TEST_F(BridgeTest, CleanupKeepsEntriesOfRunningContainersFromAPreviousRun) {
  docker_.Put(MakeContainer("aaa", "web", {80}));
  StartBridge();
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  bridge_->Stop();
  BridgeConfig config;
  config.cleanup = true;
  StartBridge(config);
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_THAT(BackendIds(), ElementsAre("host1:web:80"));
  EXPECT_EQ(adapter_.writes(), 1);
}

TEST_F(BridgeTest, CleanupSkippedWhileDockerInspectsFail) {
  Service dangling;
  dangling.id = "host1:vanished:80";
  adapter_.Seed(dangling);
  BridgeConfig config;
  config.cleanup = true;
  StartBridge(config);
  docker_.Put(MakeContainer("aaa", "web", {80}));
  docker_.SetUnavailable(true);
  EXPECT_THAT(bridge_->SyncNow(), Not(IsOk()));
  EXPECT_THAT(BackendIds(), ElementsAre("host1:vanished:80"));
  docker_.SetUnavailable(false);
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_THAT(BackendIds(), ElementsAre("host1:web:80"));
}

TEST_F(BridgeTest, RefreshRenewsLiveServices) {
  docker_.Put(MakeContainer("aaa", "web", {80, 81}));
  StartBridge();
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  ASSERT_THAT(bridge_->RefreshNow(), IsOk());
  EXPECT_THAT(adapter_.last_refresh(), ElementsAre("host1:web:80", "host1:web:81"));
  adapter_.FailOp("refresh", absl::UnavailableError("down"));
  EXPECT_THAT(bridge_->RefreshNow(), Not(IsOk()));
  EXPECT_EQ(bridge_->stats().refreshes, 2u);
}

TEST_F(BridgeTest, SchedulerRefreshesAndResyncsOnItsOwn) {
  docker_.Put(MakeContainer("aaa", "web", {80}));
  BridgeConfig config;
  config.refresh_interval = absl::Milliseconds(50);
  config.resync_interval = absl::Milliseconds(50);
  StartBridge(config);
  bridge_->RequestResync();
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while ((adapter_.refreshes() < 2 || bridge_->stats().resyncs < 2) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_GE(adapter_.refreshes(), 2);
  EXPECT_GE(bridge_->stats().resyncs, 2u);
  EXPECT_THAT(BackendIds(), ElementsAre("host1:web:80"));
  EXPECT_EQ(adapter_.registers(), 1);
}

TEST_F(BridgeTest, OverflowDropsEventsAndResyncs) {
  BridgeConfig config;
  config.max_pending = 5;
  config.workers = 1;
  StartBridge(config);
  for (int i = 0; i < 200; ++i) {
    const std::string id = absl::StrCat("id", i);
    docker_.Put(MakeContainer(id, absl::StrCat("c", i), {80}));
    Event(id, "start");
  }
  // The scheduler's resync picks up everything the dropped events named.
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (adapter_.entries().size() < 200 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(adapter_.entries().size(), 200u);
  EXPECT_GT(bridge_->stats().events_dropped, 0u);
  EXPECT_GE(bridge_->stats().resyncs, 1u);
}

TEST_F(BridgeTest, StateLostRewritesEverything) {
  docker_.Put(MakeContainer("aaa", "web", {80}));
  docker_.Put(MakeContainer("bbb", "db", {5432}));
  StartBridge();
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  adapter_.LoseState();
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), ElementsAre("host1:db:5432", "host1:web:80"));
  EXPECT_EQ(adapter_.registers(), 4);
}

TEST_F(BridgeTest, ReconnectTriggersResync) {
  StartBridge();
  bridge_->OnConnected(true);
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  docker_.Put(MakeContainer("aaa", "web", {80}));  // Started while the stream was down.
  bridge_->OnDisconnected(absl::UnavailableError("daemon restarted"));
  EXPECT_FALSE(bridge_->stats().docker_connected);
  bridge_->OnConnected(false);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (BackendIds().empty() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_THAT(BackendIds(), ElementsAre("host1:web:80"));
  EXPECT_EQ(bridge_->stats().docker_reconnects, 1u);
  EXPECT_TRUE(bridge_->stats().docker_connected);
}

TEST_F(BridgeTest, RenamedContainerMovesItsServices) {
  StartBridge();
  docker_.Put(MakeContainer("aaa", "web", {80}));
  Event("aaa", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  docker_.Put(MakeContainer("aaa", "renamed", {80}));
  Event("aaa", "rename");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), ElementsAre("host1:renamed:80"));
}

TEST_F(BridgeTest, StopLeavesRegistrationsUnlessAskedToDeregister) {
  docker_.Put(MakeContainer("aaa", "web", {80}));
  StartBridge();
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  bridge_->Stop();
  EXPECT_THAT(BackendIds(), ElementsAre("host1:web:80"));
  BridgeConfig config;
  config.deregister_on_exit = true;
  StartBridge(config);
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  bridge_->Stop();
  EXPECT_THAT(BackendIds(), IsEmpty());
}

TEST_F(BridgeTest, ManyContainersStartedAtOnceAllRegister) {
  StartBridge();
  for (int i = 0; i < 1000; ++i) {
    const std::string id = absl::StrCat("id", i);
    docker_.Put(MakeContainer(id, absl::StrCat("c", i), {80}));
    Event(id, "start");
  }
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(30)));
  EXPECT_EQ(adapter_.entries().size(), 1000u);
  EXPECT_EQ(adapter_.registers(), 1000);
}

TEST_F(BridgeTest, ServiceIdMatchingFollowsUpstreamPattern) {
  // Through cleanup: only IDs of the form host1:<name>:<port>[:udp] are this host's.
  for (const char* id : {"host1:web:80", "host1:web:53:udp", "host1:a.b-c_d:1"}) {
    Service s;
    s.id = id;
    adapter_.Seed(s);
  }
  for (const char* id : {"host1:web:x", "host1:-bad:80", "host1:web:80:tcp", "host10:web:80",
                         "host1::80", "host1:w:80"}) {
    Service s;
    s.id = id;
    adapter_.Seed(s);
  }
  BridgeConfig config;
  config.cleanup = true;
  StartBridge(config);
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_THAT(BackendIds(), UnorderedElementsAre("host1:web:x", "host1:-bad:80", "host1:web:80:tcp",
                                                 "host10:web:80", "host1::80", "host1:w:80"));
}

// ---- Issue 12 regressions. Each failed against the bridge before the fix (see the commit). ----

// 12.1: `docker rm -f web && docker run --name web` while the old container's deregistration is
// in flight. The new container used to reuse the entry without owning the ID; the old
// deregistration then removed the new registration and nothing (not even a resync) healed it.
TEST_F(BridgeTest, RecreatedContainerOwnsItsServiceWhileTheOldDeregistrationIsInFlight) {
  StartBridge();
  docker_.Put(MakeContainer("aaa", "web", {80}));
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  adapter_.Hang("deregister");
  docker_.Remove("aaa");
  Event("aaa", "destroy");
  ASSERT_TRUE(Eventually([&] { return adapter_.hung() == 1; }));
  const uint64_t reconciled = bridge_->stats().reconciles;
  docker_.Put(MakeContainer("bbb", "web", {80}));
  Event("bbb", "start");
  ASSERT_TRUE(Eventually([&] { return bridge_->stats().reconciles > reconciled; }));
  adapter_.ReleaseHung(absl::OkStatus(), /*apply=*/true);
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  ASSERT_THAT(BackendIds(), ElementsAre("host1:web:80"));
  EXPECT_EQ(adapter_.entries().at("host1:web:80").container_id, "bbb");
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_THAT(BackendIds(), ElementsAre("host1:web:80"));
}

// 12.1, the other order and SERVICE_ID conflicts: the most recently created running container
// owns a shared ID; when it dies the ID goes back to the other one, and when both are gone it is
// removed. It used to keep the dead container's registration.
TEST_F(BridgeTest, SharedServiceIdBelongsToTheNewestRunningContainer) {
  StartBridge();
  docker::Container older = MakeContainer("aaa", "a", {80});
  older.env = {"SERVICE_ID=shared"};
  older.created = "2026-12-01T10:00:00.000000001Z";
  docker::Container newer = MakeContainer("bbb", "b", {81});
  newer.env = {"SERVICE_ID=shared"};
  newer.created = "2026-12-01T10:00:00.5Z";
  docker_.Put(older);
  Event("aaa", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  docker_.Put(newer);
  Event("bbb", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(adapter_.entries().at("shared").port, 10081);
  // A restart of the older one (same creation time) does not take the ID back.
  Event("aaa", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(adapter_.entries().at("shared").port, 10081);
  docker_.Exit("bbb", 0);
  Event("bbb", "die");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  ASSERT_THAT(BackendIds(), ElementsAre("shared"));
  EXPECT_EQ(adapter_.entries().at("shared").port, 10080);
  EXPECT_EQ(adapter_.entries().at("shared").container_id, "aaa");
  docker_.Remove("aaa");
  Event("aaa", "destroy");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), IsEmpty());
}

// 12.3: the scheduler ran the resync (which waits up to 60 s for its work) and only then the
// refresh, on one thread: a backlog behind a hung backend let TTLs expire.
TEST(BridgeSchedulerTest, RefreshKeepsItsPeriodWhileAResyncWaitsOnAHungBackend) {
  FakeDocker docker;
  FakeAdapter adapter;
  BridgeConfig config;
  config.hostname = kHost;
  config.refresh_interval = absl::Milliseconds(20);
  docker.Put(MakeContainer("aaa", "web", {80}));
  adapter.Hang("register");
  Bridge bridge(&docker, &adapter, SimpleDerive, config);
  bridge.Start();
  bridge.RequestResync();
  ASSERT_TRUE(Eventually([&] { return adapter.hung() == 1; }));
  const int before = adapter.refreshes();
  EXPECT_TRUE(Eventually([&] { return adapter.refreshes() >= before + 3; }))
      << "no TTL refresh while the resync waits";
  adapter.ReleaseHung(absl::OkStatus(), /*apply=*/true);
  bridge.Stop();
}

// 12.4: a refresh running while a service is deregistered re-created it (ZooKeeper re-creates
// missing ephemeral nodes, etcd re-puts keys), and the entry stayed for good.
TEST_F(BridgeTest, RefreshDoesNotResurrectAServiceDeregisteredMeanwhile) {
  std::thread refresh;
  ASSERT_NO_FATAL_FAILURE(StartWithWebAndHungRefresh({}, &refresh));
  docker_.Remove("aaa");
  Event("aaa", "destroy");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), IsEmpty());
  adapter_.ReleaseHung(absl::OkStatus(), /*apply=*/true);  // Re-creates host1:web:80.
  refresh.join();
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), IsEmpty());
}

// 12.4, found by the convergence test (seed 117): the refresh only looked at writes made while
// it ran, but a resync listing can also make the bridge forget an entry, without a write. Here
// the entry vanishes behind the bridge's back (as after a backend state loss) while its
// container's claim is kept (-deregister=on-success); the resync finds no entry, so when the
// container is removed there is nothing to deregister and the slot goes. The hung refresh then
// re-creates the entry from its snapshot, and nobody knew it was there any more.
TEST_F(BridgeTest, RefreshDoesNotResurrectAnEntryAResyncForgot) {
  BridgeConfig config;
  config.deregister_on_success = true;
  std::thread refresh;
  ASSERT_NO_FATAL_FAILURE(StartWithWebAndHungRefresh(config, &refresh));
  // Exit 2: the claim is kept, the entry left alone (no write).
  docker_.Exit("aaa", 2);
  Event("aaa", "die");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  // The entry vanishes; the resync's listing makes the bridge forget it (nothing to write for
  // a kept claim).
  adapter_.Drop("host1:web:80");
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  // The container goes: the bridge believes nothing is registered, so it writes nothing.
  docker_.Remove("aaa");
  Event("aaa", "destroy");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  ASSERT_THAT(BackendIds(), IsEmpty());
  adapter_.ReleaseHung(absl::OkStatus(), /*apply=*/true);  // Re-creates host1:web:80.
  refresh.join();
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), IsEmpty());
  // And for good: a resync afterwards does not bring it back either.
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_THAT(BackendIds(), IsEmpty());
}

// Found by the convergence test (seed 109, 1 run in 40 of the suite): a refresh whose snapshot
// held an entry that was deregistered meanwhile (its container removed, the slot erased) puts
// that entry back and re-creates the slot to remove it again. A resync listing asked for before
// the refresh, answered without the entry and applied after it, told the re-created slot that the
// backend lacked it: the bridge forgot the entry before its worker came to delete it, and it
// stayed for good (no slot, no -cleanup).
TEST_F(BridgeTest, AListingOlderThanARefreshDoesNotForgetWhatTheRefreshPutBack) {
  BridgeConfig config;
  config.workers = 1;  // Held busy below, so that the listing is applied before the delete.
  // web registered; a refresh takes its snapshot and hangs before it re-creates anything.
  std::thread refresh;
  ASSERT_NO_FATAL_FAILURE(StartWithWebAndHungRefresh(config, &refresh));
  // The container goes: its entry is deregistered and its slot erased.
  docker_.Remove("aaa");
  Event("aaa", "destroy");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  ASSERT_THAT(BackendIds(), IsEmpty());
  // The one worker is held in another container's register (done, its reply on the way back),
  // and a resync's listing (no web) likewise.
  absl::Notification worker_held, release_worker, listed, release_listing;
  adapter_.SetReturnHook([&](const std::string& op, const std::string& id) {
    if (op == "register" && id == "host1:o:90") {
      worker_held.Notify();
      release_worker.WaitForNotification();
    } else if (op == "services") {
      listed.Notify();
      release_listing.WaitForNotification();
    }
  });
  docker_.Put(MakeContainer("ooo", "o", {90}));
  Event("ooo", "start");
  worker_held.WaitForNotification();
  const uint64_t resyncs = bridge_->stats().resyncs;
  std::thread resync([&] { EXPECT_THAT(bridge_->SyncNow(), IsOk()); });
  listed.WaitForNotification();
  // The refresh ends: it re-created web, and the bridge must remove it once more.
  adapter_.ReleaseHung(absl::OkStatus(), /*apply=*/true);
  refresh.join();
  ASSERT_THAT(BackendIds(), ElementsAre("host1:o:90", "host1:web:80"));
  // The listing, answered before the refresh put web back, is applied now.
  release_listing.Notify();
  ASSERT_TRUE(Eventually([&] { return bridge_->stats().resyncs == resyncs + 1; }));
  release_worker.Notify();
  resync.join();
  adapter_.SetReturnHook(nullptr);
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), ElementsAre("host1:o:90"));
  // And for good: a resync afterwards does not bring it back either.
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_THAT(BackendIds(), ElementsAre("host1:o:90"));
}

// The backend loses this host's entries (ZooKeeper session expiry, etcd lease loss, a Consul
// agent restarted empty) while a register's reply is on its way back: the register was applied
// before the loss, so the entry is gone, and the state-lost rewrite already ran while the slot
// was busy. The register's success must not then tell the bridge the entry is there.
TEST_F(BridgeTest, ARegisterInFlightAcrossAStateLossIsWrittenAgain) {
  StartBridge();
  absl::Notification held, release;
  adapter_.SetReturnHook([&](const std::string& op, const std::string& id) {
    if (op == "register" && id == "host1:web:80" && !held.HasBeenNotified()) {
      held.Notify();
      release.WaitForNotification();
    }
  });
  docker_.Put(MakeContainer("aaa", "web", {80}));
  Event("aaa", "start");
  held.WaitForNotification();
  ASSERT_THAT(BackendIds(), ElementsAre("host1:web:80"));
  adapter_.LoseState();
  ASSERT_THAT(BackendIds(), IsEmpty());
  release.Notify();
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  adapter_.SetReturnHook(nullptr);
  EXPECT_THAT(BackendIds(), ElementsAre("host1:web:80")) << "the lost entry was not written again";
}

// The same refresh, ending while the deregister of its entry is in flight: the delete is done
// and its reply on the way back when the refresh puts the entry back. The refresh finds the slot
// busy and marks it unknown; the deregister's success must not then tell it the entry is gone.
TEST_F(BridgeTest, ADeregisterInFlightDoesNotForgetWhatARefreshPutBackAfterIt) {
  std::thread refresh;
  ASSERT_NO_FATAL_FAILURE(StartWithWebAndHungRefresh({}, &refresh));
  absl::Notification deleted, release_delete;
  adapter_.SetReturnHook([&](const std::string& op, const std::string& id) {
    if (op == "deregister" && id == "host1:web:80" && !deleted.HasBeenNotified()) {
      deleted.Notify();
      release_delete.WaitForNotification();
    }
  });
  docker_.Remove("aaa");
  Event("aaa", "destroy");
  deleted.WaitForNotification();
  ASSERT_THAT(BackendIds(), IsEmpty());
  // The refresh ends now: it re-creates web after the delete.
  adapter_.ReleaseHung(absl::OkStatus(), /*apply=*/true);
  refresh.join();
  ASSERT_THAT(BackendIds(), ElementsAre("host1:web:80"));
  release_delete.Notify();
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  adapter_.SetReturnHook(nullptr);
  EXPECT_THAT(BackendIds(), IsEmpty());
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_THAT(BackendIds(), IsEmpty());
}

// 12.4: the refresh snapshot included entries being deleted (a failed deregistration waiting
// for its retry).
TEST_F(BridgeTest, RefreshLeavesOutServicesBeingDeregistered) {
  docker_.Put(MakeContainer("aaa", "web", {80}));
  docker_.Put(MakeContainer("bbb", "db", {5432}));
  StartBridge();
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  adapter_.FailOp("deregister", absl::UnavailableError("down"));
  docker_.Remove("aaa");
  Event("aaa", "destroy");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  ASSERT_THAT(bridge_->RefreshNow(), IsOk());
  EXPECT_THAT(adapter_.last_refresh(), ElementsAre("host1:db:5432"));
}

// 12.7: a resync never re-inspected a tracked running container, so Docker-side changes without
// a start/die event (network connect/disconnect, a rename whose event was dropped) stayed wrong.
// It now re-inspects exactly the containers whose list entry changed.
TEST_F(BridgeTest, ResyncHealsDockerDriftAndInspectsOnlyWhatChanged) {
  docker::Container web = MakeContainer("aaa", "web", {80});
  web.networks = {{"net1", "172.18.0.2", ""}};
  docker_.Put(web);
  docker_.Put(MakeContainer("bbb", "db", {5432}));
  StartBridge();
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_EQ(adapter_.entries().at("host1:web:80").ip, "172.18.0.2");
  // docker network disconnect net1 / connect net2: no container event at all.
  web.networks = {{"net2", "172.19.0.5", ""}};
  docker_.Put(web);
  int inspects = docker_.inspects();
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_EQ(adapter_.entries().at("host1:web:80").ip, "172.19.0.5");
  EXPECT_EQ(docker_.inspects(), inspects + 1);
  // docker rename web web2, its event lost.
  web.name = "web2";
  docker_.Put(web);
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_THAT(BackendIds(), ElementsAre("host1:db:5432", "host1:web2:80"));
  // Unchanged: no inspect, no write.
  inspects = docker_.inspects();
  const int writes = adapter_.writes();
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_EQ(docker_.inspects(), inspects);
  EXPECT_EQ(adapter_.writes(), writes);
}

// 12.8: Stop() joined workers stuck in a hung backend call and deregistered one service after
// the other: it never returned while the backend hung. Now it waits until its deadline, runs
// -deregister-on-exit in parallel, and aborts what still runs.
TEST_F(BridgeTest, StopIsBoundedWhenTheBackendHangs) {
  for (int i = 0; i < 8; ++i) {
    docker_.Put(MakeContainer(absl::StrCat("id", i), absl::StrCat("c", i), {80}));
  }
  std::atomic<int> cancels{0};
  BridgeConfig config;
  config.deregister_on_exit = true;
  config.stop_timeout = absl::Milliseconds(200);
  config.cancel_calls = [&] {
    ++cancels;
    adapter_.AbortCalls();
  };
  StartBridge(config);
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  // One worker hangs on a registration, and every deregistration hangs too.
  adapter_.Hang("register");
  adapter_.Hang("deregister");
  docker_.Put(MakeContainer("late", "late", {80}));
  Event("late", "start");
  ASSERT_TRUE(Eventually([&] { return adapter_.hung() == 1; }));
  absl::Notification stopped;
  std::thread stopper([&] {
    bridge_->Stop();
    stopped.Notify();
  });
  const bool bounded = stopped.WaitForNotificationWithTimeout(absl::Seconds(30));
  if (!bounded) adapter_.AbortCalls();  // Let the old code finish, to report the failure.
  stopper.join();
  EXPECT_TRUE(bounded) << "Stop() did not return while the backend hung";
  EXPECT_EQ(cancels.load(), 1);
  EXPECT_EQ(adapter_.aborts(), 2) << "once from cancel_calls, once from Stop() itself";
  // -deregister-on-exit ran in parallel (4 workers), not one service after the other.
  EXPECT_GE(adapter_.max_concurrent("deregister"), 2);
}

// A backend whose calls are not HTTP transfers (ZooKeeper) is not reached by cancel_calls
// (AbortHttpTransfers): Stop() waited for its call to time out. Now Stop() also aborts the
// adapter's own calls at its deadline.
TEST_F(BridgeTest, StopAbortsTheAdaptersOwnCalls) {
  BridgeConfig config;
  config.stop_timeout = absl::Milliseconds(200);  // No cancel_calls: only the adapter can help.
  StartBridge(config);
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  adapter_.Hang("register");
  docker_.Put(MakeContainer("late", "late", {80}));
  Event("late", "start");
  ASSERT_TRUE(Eventually([&] { return adapter_.hung() == 1; }));
  absl::Notification stopped;
  std::thread stopper([&] {
    bridge_->Stop();
    stopped.Notify();
  });
  const bool bounded = stopped.WaitForNotificationWithTimeout(absl::Seconds(30));
  if (!bounded) adapter_.ReleaseHung(absl::CancelledError("test gave up"), false);
  stopper.join();
  EXPECT_TRUE(bounded) << "Stop() waited for a hung adapter call";
  EXPECT_EQ(adapter_.aborts(), 1);
}

// Backends that key entries by name (consulkv, etcd, skydns2: "<Name>/<ID>") or by IP
// (ZooKeeper): when a service ID's name or IP changed (a rename with a fixed SERVICE_ID, a new
// SERVICE_NAME, another claimant), the bridge wrote the new entry and left the old one behind.
class MovedEntryTest : public BridgeTest {
 protected:
  void SetUp() override { adapter_.SetKeyByName(true); }
  // The body of the AResyncThatLists* tests (below).
  void ResyncListingTheOldKey(bool current_gone);
  // Container "aaa" named `name`, one service with the fixed ID "svc".
  void PutNamed(const std::string& name) {
    docker::Container c = MakeContainer("aaa", name, {80});
    c.env = {"SERVICE_ID=svc"};
    docker_.Put(c);
  }
};

// Found by the convergence test (seed 58): a backend keyed by name lists an ID twice while an
// old entry is left; the resync kept one entry per ID (the last listed) and made it `held`,
// forgetting the entry the bridge knew at the other key. Here B's kept entry ("alpha/svc") was
// forgotten for A's leftover ("zeta/svc"), and stayed after B was removed.
TEST_F(MovedEntryTest, AResyncListingAnIdTwiceForgetsNeitherEntry) {
  BridgeConfig config;
  config.deregister_on_success = true;
  StartBridge(config);
  docker::Container a = MakeContainer("aaa", "zeta", {80});
  a.env = {"SERVICE_ID=svc"};
  docker_.Put(a);
  Event("aaa", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  ASSERT_THAT(BackendIds(), ElementsAre("zeta/svc"));
  // B (the larger container ID: the owner) takes the ID over; A's old entry cannot be removed.
  adapter_.FailOp("deregister", absl::UnavailableError("down"));
  docker::Container b = MakeContainer("bbb", "alpha", {80});
  b.env = {"SERVICE_ID=svc"};
  docker_.Put(b);
  Event("bbb", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  ASSERT_THAT(BackendIds(), ElementsAre("alpha/svc", "zeta/svc"));
  // A goes, then B exits with code 2 (its entry is kept). One at a time: with both pending, a
  // worker may settle the slot between them, while A owns the ID again and B's entry is the old
  // one, which is then removed as such (allowed for a kept entry, but not what this tests).
  docker_.Remove("aaa");
  Event("aaa", "destroy");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  docker_.Exit("bbb", 2);
  Event("bbb", "die");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  ASSERT_THAT(BackendIds(), ElementsAre("alpha/svc", "zeta/svc"));
  // The backend answers again; the resync lists svc twice and removes A's leftover.
  adapter_.FailOp("deregister", absl::OkStatus());
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), ElementsAre("alpha/svc"));
  // B goes for good: so does its entry.
  docker_.Remove("bbb");
  Event("bbb", "destroy");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), IsEmpty());
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_THAT(BackendIds(), IsEmpty());
}

TEST_F(MovedEntryTest, ANewNameDeletesTheOldKeyAfterWritingTheNewOne) {
  StartBridge();
  PutNamed("web");
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_THAT(BackendIds(), ElementsAre("web/svc"));
  PutNamed("web2");  // Re-derived by the next resync (its list fingerprint changed).
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_THAT(BackendIds(), ElementsAre("web2/svc"));
  EXPECT_EQ(adapter_.registers(), 2);
  EXPECT_EQ(adapter_.deregisters(), 1);
  // Nothing left to do.
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_EQ(adapter_.writes(), 3);
}

TEST_F(MovedEntryTest, AFailedDeleteOfTheOldKeyIsRetried) {
  StartBridge();
  PutNamed("web");
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  adapter_.FailOp("deregister", absl::UnavailableError("down"), "svc");
  PutNamed("web2");
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_THAT(BackendIds(), ElementsAre("web/svc", "web2/svc")) << "new first, old not yet";
  adapter_.FailOp("deregister", absl::OkStatus(), "svc");
  clock_.Advance(absl::Minutes(2));
  bridge_->RetryDueNow();
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), ElementsAre("web2/svc"));
}

TEST_F(MovedEntryTest, MovingBackBeforeTheOldKeyIsGoneKeepsTheCurrentEntry) {
  StartBridge();
  PutNamed("web");
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  adapter_.FailOp("deregister", absl::UnavailableError("down"), "svc");
  PutNamed("web2");
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  PutNamed("web");  // Back at the key that was about to be deleted.
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  adapter_.FailOp("deregister", absl::OkStatus(), "svc");
  clock_.Advance(absl::Minutes(2));
  bridge_->RetryDueNow();
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), ElementsAre("web/svc"));
}

TEST_F(MovedEntryTest, TheLastClaimantGoingAwayRemovesOldAndCurrentKeys) {
  StartBridge();
  PutNamed("web");
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  adapter_.FailOp("deregister", absl::UnavailableError("down"), "svc");
  PutNamed("web2");
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  adapter_.FailOp("deregister", absl::OkStatus(), "svc");
  docker_.Put(MakeContainer("aaa", "web2", {80}, /*running=*/false));
  Event("aaa", "die");
  clock_.Advance(absl::Minutes(2));
  bridge_->RetryDueNow();
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), ::testing::IsEmpty());
}

// Found by the convergence test (seed 50, 2 of 10 runs): a refresh that started before the move
// re-created the old entry after the bridge had deleted it, and nothing deleted it again.
TEST_F(MovedEntryTest, ARefreshThatPutsTheOldKeyBackIsUndone) {
  adapter_.SetRefreshRecreates(true);
  StartBridge();
  PutNamed("web");
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  std::thread refresh;
  ASSERT_NO_FATAL_FAILURE(StartHungRefresh(&refresh));
  PutNamed("web2");
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_THAT(BackendIds(), ElementsAre("web2/svc"));
  adapter_.ReleaseHung(absl::OkStatus(), /*apply=*/true);  // Re-creates web/svc.
  refresh.join();
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), ElementsAre("web2/svc"));
}

// The same, with the refresh ending while the delete of the old key is in flight (done, its
// reply on the way back): the old key must stay to delete, not be crossed off by that reply.
TEST_F(MovedEntryTest, ARefreshEndingDuringTheOldKeysDeleteIsUndone) {
  adapter_.SetRefreshRecreates(true);
  StartBridge();
  PutNamed("web");
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  std::thread refresh;
  ASSERT_NO_FATAL_FAILURE(StartHungRefresh(&refresh));
  absl::Notification deleted, release_delete;
  adapter_.SetReturnHook([&](const std::string& op, const std::string& id) {
    if (op == "deregister" && id == "svc" && !deleted.HasBeenNotified()) {
      deleted.Notify();
      release_delete.WaitForNotification();
    }
  });
  PutNamed("web2");
  Event("aaa", "rename");
  deleted.WaitForNotification();
  ASSERT_THAT(BackendIds(), ElementsAre("web2/svc"));
  adapter_.ReleaseHung(absl::OkStatus(), /*apply=*/true);  // Re-creates web/svc.
  refresh.join();
  ASSERT_THAT(BackendIds(), ElementsAre("web/svc", "web2/svc"));
  release_delete.Notify();
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  adapter_.SetReturnHook(nullptr);
  EXPECT_THAT(BackendIds(), ElementsAre("web2/svc"));
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_THAT(BackendIds(), ElementsAre("web2/svc"));
}

// Found by the convergence test (seed 58, ASan, key-by-name): a refresh that started while
// "web/svc" was current re-created it after a resync had found it gone (a kept entry that
// expired). The bridge believed the ID held nothing, so when another container took the ID it
// wrote "x/svc" and left "web/svc" beside it for good: a resync lists the ID once (here as
// "x/svc", which is what the bridge wants) and never sees its second entry.
TEST_F(MovedEntryTest, ARefreshThatPutsBackWhatAResyncFoundGoneIsUndone) {
  adapter_.SetRefreshRecreates(true);
  BridgeConfig config;
  config.deregister_on_success = true;
  StartBridge(config);
  docker::Container older = MakeContainer("aaa", "web", {80});
  older.env = {"SERVICE_ID=svc"};
  older.created = "2026-12-01T10:00:00Z";
  docker_.Put(older);
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  ASSERT_THAT(BackendIds(), ElementsAre("web/svc"));
  std::thread refresh;  // Renews web/svc.
  ASSERT_NO_FATAL_FAILURE(StartHungRefresh(&refresh));
  // Exit 1 under on-success: the entry is kept (no write), and no longer refreshed...
  docker_.Exit("aaa", 1);
  Event("aaa", "die");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  // ...so its TTL runs out, and a resync finds it gone.
  adapter_.Drop("web/svc");
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  ASSERT_THAT(BackendIds(), IsEmpty());
  adapter_.ReleaseHung(absl::OkStatus(), /*apply=*/true);  // Re-creates web/svc.
  refresh.join();
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  docker::Container newer = MakeContainer("bbb", "x", {81});
  newer.env = {"SERVICE_ID=svc"};
  newer.created = "2026-12-01T11:00:00Z";
  docker_.Put(newer);
  Event("bbb", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), ElementsAre("x/svc"));
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_THAT(BackendIds(), ElementsAre("x/svc"));
}

// Found by the convergence test (seed 58, ASan, 1 run in 50): while the delete of an old key
// failed, the backend held the ID twice; a resync listing (one entry per ID) showed the old key,
// so the bridge took it for the held entry, forgot the current one, and -- the owner wanting the
// old key back -- deleted the entry it now held as an "old" one. A refresh then put it back
// beside the forgotten one, and no resync could see the second entry of the ID. With
// `current_gone` the current entry is gone before the listing (a TTL ran out): the old key is
// then rightly held, but must not be deleted as an old entry either.
TEST_F(MovedEntryTest, AResyncThatListsTheOldKeyNeitherForgetsNorDeletesTheCurrentOne) {
  ResyncListingTheOldKey(/*current_gone=*/false);
}

TEST_F(MovedEntryTest, AResyncThatListsOnlyTheOldKeyDoesNotDeleteItAsOld) {
  ResyncListingTheOldKey(/*current_gone=*/true);
}

void MovedEntryTest::ResyncListingTheOldKey(bool current_gone) {
  adapter_.SetRefreshRecreates(true);
  BridgeConfig config;
  config.workers = 1;  // Held busy below, so that what the resync found is acted on later.
  StartBridge(config);
  PutNamed("x");
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  adapter_.FailOp("deregister", absl::UnavailableError("down"), "svc");
  PutNamed("web");
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  // "x/svc" sorts after "web/svc": a listing by ID shows the old entry.
  ASSERT_THAT(BackendIds(), ElementsAre("web/svc", "x/svc"));
  adapter_.FailOp("deregister", absl::OkStatus(), "svc");
  if (current_gone) adapter_.Drop("web/svc");
  // The one worker hangs on another container's register...
  adapter_.Hang("register", "host1:o:90");
  docker_.Put(MakeContainer("ooo", "o", {90}));
  Event("ooo", "start");
  ASSERT_TRUE(Eventually([&] { return adapter_.hung() == 1; }));
  // ...while the container takes its old name back and a resync lists the backend.
  PutNamed("x");
  Event("aaa", "rename");
  std::thread resync([&] { EXPECT_THAT(bridge_->SyncNow(), IsOk()); });
  EXPECT_TRUE(Eventually([&] { return absl::StrContains(bridge_->PendingWork(), "dirty:svc"); }));
  adapter_.ReleaseHung(absl::OkStatus(), /*apply=*/true);
  resync.join();
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), ElementsAre("o/host1:o:90", "x/svc"));
  ASSERT_THAT(bridge_->RefreshNow(), IsOk());
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_THAT(BackendIds(), ElementsAre("o/host1:o:90", "x/svc"));
}

TEST_F(BridgeTest, AKeyByIdBackendNeedsNoDeleteWhenTheNameChanges) {
  StartBridge();
  docker::Container c = MakeContainer("aaa", "web", {80});
  c.env = {"SERVICE_ID=svc"};
  docker_.Put(c);
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  c.name = "web2";
  docker_.Put(c);
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_EQ(adapter_.entries().at("svc").name, "web2");
  EXPECT_EQ(adapter_.deregisters(), 0);
}

// 12.9: inspect retries had no backoff (every retry_initial, forever).
TEST_F(BridgeTest, InspectRetriesBackOff) {
  BridgeConfig config;
  config.retry_initial = absl::Seconds(1);
  StartBridge(config);
  docker_.Put(MakeContainer("aaa", "web", {80}));
  docker_.FailInspect("aaa", absl::UnavailableError("docker busy"));
  Event("aaa", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(docker_.inspects(), 1);
  clock_.Advance(absl::Seconds(1));
  bridge_->RetryDueNow();
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(docker_.inspects(), 2);
  clock_.Advance(absl::Seconds(1));  // The second delay is 1.6-2 s.
  bridge_->RetryDueNow();
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(docker_.inspects(), 2);
  docker_.FailInspect("aaa", absl::OkStatus());
  clock_.Advance(absl::Seconds(1));
  bridge_->RetryDueNow();
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(docker_.inspects(), 3);
  EXPECT_THAT(BackendIds(), ElementsAre("host1:web:80"));
}

// 12.9: one container whose inspect kept failing disabled -cleanup for good. Now only IDs named
// after that container are spared.
TEST_F(BridgeTest, CleanupRemovesWhatNobodyOwnsDespiteAFailingInspect) {
  for (const char* id : {"host1:vanished:80", "host1:web:80"}) {
    Service s;
    s.id = id;
    adapter_.Seed(s);
  }
  docker_.Put(MakeContainer("aaa", "web", {80}));
  docker_.FailInspect("aaa", absl::UnavailableError("docker busy"));
  BridgeConfig config;
  config.cleanup = true;
  StartBridge(config);
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_THAT(BackendIds(), ElementsAre("host1:web:80"));
  docker_.FailInspect("aaa", absl::OkStatus());
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  EXPECT_THAT(BackendIds(), ElementsAre("host1:web:80"));
  EXPECT_EQ(adapter_.entries().at("host1:web:80").container_id, "aaa");
}

// 12.10: the adapter outlives the bridge in main; the bridge left its state-lost callback in it.
TEST_F(BridgeTest, StopClearsTheStateLostCallback) {
  StartBridge();
  EXPECT_TRUE(adapter_.has_state_lost_callback());
  bridge_->Stop();
  EXPECT_FALSE(adapter_.has_state_lost_callback());
  bridge_.reset();
  adapter_.LoseState();  // Must not reach the destroyed bridge.
}

// Issue 11: write retries are jittered, so services that failed together do not all retry at
// the same instant.
TEST_F(BridgeTest, RetriesOfServicesThatFailedTogetherSpreadOut) {
  BridgeConfig config;
  config.retry_initial = absl::Seconds(1);
  config.jitter_seed = 42;
  StartBridge(config);
  adapter_.FailOp("register", absl::UnavailableError("backend down"));
  for (int i = 0; i < 40; ++i) {
    const std::string id = absl::StrCat("id", i);
    docker_.Put(MakeContainer(id, absl::StrCat("c", i), {80}));
    Event(id, "start");
  }
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  ASSERT_EQ(adapter_.registers(), 40);
  clock_.Advance(absl::Milliseconds(900));  // Delays are 0.8-1.0 s.
  bridge_->RetryDueNow();
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_GT(adapter_.registers(), 40);
  EXPECT_LT(adapter_.registers(), 80);
}

// --- Network connect/disconnect (SERVICE_NETWORK, issue 15) -------------------------------------

class BridgeNetworkTest : public BridgeTest {
 protected:
  // Registers each port on the container's "backnet" address, or nothing when it has none:
  // what DeriveServices does for SERVICE_NETWORK=backnet.
  void StartBackendBridge() {
    BridgeConfig config;
    config.hostname = kHost;
    config.workers = 2;
    bridge_ = std::make_unique<Bridge>(
        &docker_, &adapter_,
        [](const docker::Container& c) {
          std::vector<Service> services = SimpleDerive(c);
          auto backnet = std::find_if(c.networks.begin(), c.networks.end(),
                                      [](const auto& n) { return n.name == "backnet"; });
          if (backnet == c.networks.end()) return std::vector<Service>();
          for (Service& s : services) s.ip = backnet->ip_address;
          return services;
        },
        config, [this] { return clock_.Now(); });
    bridge_->Start();
  }
  void NetworkEvent(const std::string& action, const std::string& container,
                    const std::string& network = "backnet") {
    docker::Event e;
    e.type = "network";
    e.action = action;
    e.id = "net-" + network;
    e.name = network;
    e.container = container;
    bridge_->OnEvent(e);
  }
  std::string BackendIp(const std::string& id) {
    auto entries = adapter_.entries();
    auto it = entries.find(id);
    return it == entries.end() ? "" : it->second.ip;
  }
};

TEST_F(BridgeNetworkTest, RegistrationFollowsDisconnectAndConnect) {
  docker::Container c = MakeContainer("aaa", "web", {80});
  c.networks = {{"backnet", "172.20.0.2", ""}, {"frontnet", "172.18.0.2", ""}};
  docker_.Put(c);
  StartBackendBridge();
  ASSERT_TRUE(bridge_->SyncNow().ok());
  EXPECT_EQ(BackendIp("host1:web:80"), "172.20.0.2");

  // docker network disconnect backnet web: no address on the chosen network any more.
  c.networks = {{"frontnet", "172.18.0.2", ""}};
  docker_.Put(c);
  NetworkEvent("disconnect", "aaa");
  ASSERT_TRUE(Eventually([&] { return adapter_.entries().empty(); })) << bridge_->PendingWork();
  EXPECT_EQ(adapter_.deregisters(), 1);

  // docker network connect backnet web (a new address): registered again, there.
  c.networks = {{"backnet", "172.20.0.7", ""}, {"frontnet", "172.18.0.2", ""}};
  docker_.Put(c);
  NetworkEvent("connect", "aaa");
  ASSERT_TRUE(Eventually([&] { return BackendIp("host1:web:80") == "172.20.0.7"; }))
      << bridge_->PendingWork();
  EXPECT_EQ(adapter_.registers(), 2);
  // Every event was a re-inspect: the initial sync's, then one per network event.
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(20)));
  EXPECT_EQ(docker_.inspects(), 3);
}

TEST_F(BridgeNetworkTest, ContainerWithoutServicesStaysTrackedForItsConnect) {
  // Running but not on backnet yet: no services, and still followed.
  docker::Container c = MakeContainer("aaa", "web", {80});
  c.networks = {{"frontnet", "172.18.0.2", ""}};
  docker_.Put(c);
  StartBackendBridge();
  ASSERT_TRUE(bridge_->SyncNow().ok());
  EXPECT_THAT(BackendIds(), IsEmpty());
  c.networks.push_back({"backnet", "172.20.0.2", ""});
  docker_.Put(c);
  NetworkEvent("connect", "aaa");
  ASSERT_TRUE(Eventually([&] { return BackendIp("host1:web:80") == "172.20.0.2"; }))
      << bridge_->PendingWork();
}

TEST_F(BridgeNetworkTest, IgnoresUntrackedContainersAndOtherNetworkEvents) {
  docker::Container running = MakeContainer("aaa", "web", {80});
  running.networks = {{"backnet", "172.20.0.2", ""}};
  docker_.Put(running);
  // Created, not started: Docker connects it to its networks before the start event.
  docker::Container created = MakeContainer("bbb", "new", {80}, /*running=*/false);
  created.state.status = "created";
  docker_.Put(created);
  StartBackendBridge();
  ASSERT_TRUE(bridge_->SyncNow().ok());
  const int inspects = docker_.inspects();
  NetworkEvent("connect", "bbb");
  NetworkEvent("create", "");
  NetworkEvent("destroy", "");
  NetworkEvent("connect", "");  // A network's ID as the Actor, no container: nothing to follow.
  NetworkEvent("prune", "aaa");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(20)));
  EXPECT_EQ(docker_.inspects(), inspects);
  EXPECT_EQ(bridge_->stats().events, 5u);
  // The tracked one is followed.
  NetworkEvent("disconnect", "aaa");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(20)));
  EXPECT_EQ(docker_.inspects(), inspects + 1);
  // Podman's shape: the container is the Actor, no "container" attribute.
  docker::Event podman;
  podman.type = "network";
  podman.action = "connect";
  podman.id = "aaa";
  podman.name = "web";
  bridge_->OnEvent(podman);
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(20)));
  EXPECT_EQ(docker_.inspects(), inspects + 2);
}
}  // namespace
}  // namespace registrator

namespace registrator {
namespace {

// --- Docker health (issue 15) ---

docker::Container WithHealth(docker::Container c, const std::string& health,
                             const std::string& output = "") {
  c.state.health = health;
  c.state.health_output = output;
  return c;
}

// A health_status event is followed at once: the entry's health is updated on its own, with no
// re-registration (Consul would otherwise see every health change as a definition change).
TEST_F(BridgeTest, HealthStatusEventUpdatesTheHealthWithoutReRegistering) {
  StartBridge();
  docker_.Put(WithHealth(MakeContainer("aaa", "web", {80}), "starting"));
  Event("aaa", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  ASSERT_THAT(BackendIds(), ElementsAre("host1:web:80"));
  EXPECT_EQ(adapter_.health("host1:web:80")->status, "starting");
  EXPECT_EQ(adapter_.registers(), 1);
  EXPECT_EQ(adapter_.health_writes(), 0);  // Register wrote it.

  docker_.Put(WithHealth(MakeContainer("aaa", "web", {80}), "healthy", "ok\n"));
  Event("aaa", "health_status: healthy");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(adapter_.health("host1:web:80"), (DockerHealth{"healthy", "ok\n"}));
  EXPECT_EQ(adapter_.registers(), 1);
  EXPECT_EQ(adapter_.health_writes(), 1);
  EXPECT_EQ(bridge_->stats().health_updates, 1u);

  docker_.Put(WithHealth(MakeContainer("aaa", "web", {80}), "unhealthy", "down"));
  Event("aaa", "health_status: unhealthy");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(adapter_.health("host1:web:80"), (DockerHealth{"unhealthy", "down"}));
  EXPECT_EQ(adapter_.registers(), 1);
  EXPECT_EQ(adapter_.health_writes(), 2);
  // Same health again (an event replayed after a reconnect): nothing to write.
  Event("aaa", "health_status: unhealthy");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(adapter_.writes() + adapter_.health_writes(), 3);
}

TEST_F(BridgeTest, RequireHealthyRegistersOnlyWhileHealthy) {
  BridgeConfig config;
  config.require_healthy = true;
  StartBridge(config);
  docker_.Put(WithHealth(MakeContainer("aaa", "web", {80}), "starting"));
  docker_.Put(MakeContainer("bbb", "plain", {81}));  // No healthcheck: unaffected.
  Event("aaa", "start");
  Event("bbb", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), ElementsAre("host1:plain:81"));

  docker_.Put(WithHealth(MakeContainer("aaa", "web", {80}), "healthy"));
  Event("aaa", "health_status: healthy");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), ElementsAre("host1:plain:81", "host1:web:80"));

  docker_.Put(WithHealth(MakeContainer("aaa", "web", {80}), "unhealthy"));
  Event("aaa", "health_status: unhealthy");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), ElementsAre("host1:plain:81"));
  EXPECT_EQ(adapter_.deregisters(), 1);

  // Healthy again: back; a resync of that state writes nothing.
  docker_.Put(WithHealth(MakeContainer("aaa", "web", {80}), "healthy"));
  Event("aaa", "health_status: healthy");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), ElementsAre("host1:plain:81", "host1:web:80"));
  const int writes = adapter_.writes() + adapter_.health_writes();
  ASSERT_TRUE(bridge_->SyncNow().ok());
  EXPECT_EQ(adapter_.writes() + adapter_.health_writes(), writes);
}

// Without -require-healthy an unhealthy container stays registered (its health says so).
TEST_F(BridgeTest, WithoutRequireHealthyUnhealthyContainersStayRegistered) {
  StartBridge();
  docker_.Put(WithHealth(MakeContainer("aaa", "web", {80}), "unhealthy", "boom"));
  Event("aaa", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_THAT(BackendIds(), ElementsAre("host1:web:80"));
  EXPECT_EQ(adapter_.health("host1:web:80"), (DockerHealth{"unhealthy", "boom"}));
}

// A resync finds a health change whose event was missed (the list entry's fingerprint carries
// the health), and re-asserts a health the backend lost or that was changed behind our back;
// an unchanged host still makes zero writes.
TEST_F(BridgeTest, ResyncReassertsHealthAndFindsMissedHealthChanges) {
  docker_.Put(WithHealth(MakeContainer("aaa", "web", {80}), "healthy", "ok"));
  StartBridge();
  ASSERT_TRUE(bridge_->SyncNow().ok());
  ASSERT_EQ(adapter_.health("host1:web:80"), (DockerHealth{"healthy", "ok"}));
  const int inspects = docker_.inspects();
  ASSERT_TRUE(bridge_->SyncNow().ok());
  EXPECT_EQ(adapter_.writes() + adapter_.health_writes(), 1);
  EXPECT_EQ(docker_.inspects(), inspects);

  adapter_.SeedHealth("host1:web:80", {"unhealthy", "forged"});
  ASSERT_TRUE(bridge_->SyncNow().ok());
  EXPECT_EQ(adapter_.health("host1:web:80"), (DockerHealth{"healthy", "ok"}));
  EXPECT_EQ(adapter_.registers(), 1);
  EXPECT_EQ(adapter_.health_writes(), 1);

  docker_.Put(WithHealth(MakeContainer("aaa", "web", {80}), "unhealthy", "bad"));  // No event.
  ASSERT_TRUE(bridge_->SyncNow().ok());
  EXPECT_EQ(adapter_.health("host1:web:80"), (DockerHealth{"unhealthy", "bad"}));
  EXPECT_EQ(adapter_.registers(), 1);
  EXPECT_EQ(adapter_.health_writes(), 2);
}

TEST_F(BridgeTest, RefreshReassertsTheHealthDockerReports) {
  BridgeConfig config;
  StartBridge(config);
  docker_.Put(WithHealth(MakeContainer("aaa", "web", {80}), "healthy", "ok"));
  Event("aaa", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  adapter_.SeedHealth("host1:web:80", {"unhealthy", "forged"});
  ASSERT_TRUE(bridge_->RefreshNow().ok());
  EXPECT_EQ(adapter_.health("host1:web:80"), (DockerHealth{"healthy", "ok"}));
}

// A failed health write is retried with backoff; a backend that lost the check gets the entry
// registered again.
TEST_F(BridgeTest, FailedHealthWritesAreRetriedAndALostCheckIsReRegistered) {
  StartBridge();
  docker_.Put(WithHealth(MakeContainer("aaa", "web", {80}), "starting"));
  Event("aaa", "start");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  adapter_.FailOp("health", absl::UnavailableError("agent down"));
  docker_.Put(WithHealth(MakeContainer("aaa", "web", {80}), "healthy"));
  Event("aaa", "health_status: healthy");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(adapter_.health("host1:web:80")->status, "starting");
  EXPECT_EQ(bridge_->stats().health_update_failures, 1u);
  adapter_.FailOp("health", absl::OkStatus());
  clock_.Advance(absl::Minutes(2));
  bridge_->RetryDueNow();
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(adapter_.health("host1:web:80")->status, "healthy");

  adapter_.Drop("host1:web:80");  // SetHealth now answers NOT_FOUND.
  docker_.Put(WithHealth(MakeContainer("aaa", "web", {80}), "unhealthy"));
  Event("aaa", "health_status: unhealthy");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(adapter_.health("host1:web:80")->status, "unhealthy");
  EXPECT_EQ(adapter_.registers(), 2);
}

// Issue 16: a watching backend reports drift and the bridge repairs it from a backend listing
// alone, without -resync and without asking Docker anything; entries it does not hold (another
// host's, or this host's that no container claims) are left as they are.
TEST_F(BridgeTest, WatchRepairsDeletedAndAlteredEntriesAndNothingElse) {
  for (int i = 0; i < 5; ++i)
    docker_.Put(MakeContainer(absl::StrCat("id", i), absl::StrCat("c", i), {80}));
  adapter_.SetWatchable(true);
  StartBridge();
  ASSERT_TRUE(adapter_.watching());
  EXPECT_TRUE(bridge_->stats().watching);
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  const int docker_lists = docker_.lists();
  const int inspects = docker_.inspects();
  const int writes = adapter_.writes();

  Service foreign;
  foreign.id = "host2:web:80";
  foreign.name = "web";
  foreign.ip = "10.9.9.9";
  foreign.port = 1;
  Service stray = foreign;
  stray.id = "host1:gone:80";  // This host's pattern, but no container claims it.
  adapter_.Seed(foreign);
  adapter_.Seed(stray);
  adapter_.Drop("host1:c1:80");
  Service altered = adapter_.entries().at("host1:c2:80");
  altered.port = 1;
  adapter_.Seed(altered);

  ASSERT_TRUE(Eventually([&] {
    const auto entries = adapter_.entries();
    return entries.count("host1:c1:80") == 1 && entries.at("host1:c2:80").port == 10080;
  })) << bridge_->PendingWork();
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(adapter_.writes(), writes + 2);
  EXPECT_EQ(adapter_.entries().at("host2:web:80").ip, "10.9.9.9");
  EXPECT_EQ(adapter_.entries().at("host1:gone:80").port, 1);
  EXPECT_EQ(docker_.lists(), docker_lists);
  EXPECT_EQ(docker_.inspects(), inspects);
  EXPECT_EQ(bridge_->stats().resyncs, 1u);  // Only SyncNow's.
  EXPECT_GE(bridge_->stats().drift_checks, 1u);
}

// The bridge's own writes trigger the watch too: 2,000 registrations in a burst cost a number of
// listings bounded by the rate limit, not one per write.
TEST_F(BridgeTest, WatchTriggersOfABurstAreCoalesced) {
  adapter_.SetWatchable(true);
  BridgeConfig config;
  config.drift_min_interval = absl::Milliseconds(50);
  config.drift_max_interval = absl::Milliseconds(50);
  const absl::Time start = absl::Now();
  StartBridge(config);
  for (int i = 0; i < 2000; ++i) {
    docker_.Put(MakeContainer(absl::StrCat("id", i), absl::StrCat("c", i), {80}));
    Event(absl::StrCat("id", i), "start");
  }
  ASSERT_TRUE(Eventually([&] { return adapter_.entries().size() == 2000; }));
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(20)));
  const absl::Duration took = absl::Now() - start;
  const int lists = adapter_.lists();
  EXPECT_GE(adapter_.watch_events(), 1);
  // At most one listing per interval (plus the first, which is not delayed).
  EXPECT_LE(lists, 2 + took / absl::Milliseconds(50)) << "in " << took;
  EXPECT_LT(lists, 2000);
  EXPECT_EQ(adapter_.registers(), 2000);
}

// Issue 14: while the bridge's own writes are queued or running, the watch mostly reports those,
// so a drift check waits for them to drain (here a register hangs) and then repairs what was
// deleted behind the bridge's back.
TEST_F(BridgeTest, DriftCheckWaitsForTheBridgesOwnWrites) {
  for (int i = 0; i < 3; ++i)
    docker_.Put(MakeContainer(absl::StrCat("id", i), absl::StrCat("c", i), {80}));
  adapter_.SetWatchable(true);
  BridgeConfig config;
  config.drift_busy_max_delay = absl::Hours(1);
  StartBridge(config);
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  adapter_.Hang("register");
  docker_.Put(MakeContainer("id9", "c9", {80}));
  Event("id9", "start");
  ASSERT_TRUE(Eventually([&] { return adapter_.hung() == 1; }));
  const int lists = adapter_.lists();
  adapter_.Drop("host1:c0:80");
  // Not a wait for a condition: a bridge that did not wait for its writes would list within its
  // 100 ms rate limit; this one must not list at all while the register hangs.
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(adapter_.lists(), lists);
  EXPECT_EQ(adapter_.entries().count("host1:c0:80"), 0u);
  adapter_.ReleaseHung(absl::OkStatus(), /*apply=*/true);
  ASSERT_TRUE(Eventually([&] { return adapter_.entries().count("host1:c0:80") == 1; }));
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(adapter_.entries().count("host1:c9:80"), 1u);
  EXPECT_GT(adapter_.lists(), lists);
}

// ...but not forever: writes that never drain (a hung backend call here, endless churn in
// production) delay a drift check by drift_busy_max_delay at most.
TEST_F(BridgeTest, DriftCheckWaitsForWritesAtMostTheBusyDelay) {
  for (int i = 0; i < 3; ++i)
    docker_.Put(MakeContainer(absl::StrCat("id", i), absl::StrCat("c", i), {80}));
  adapter_.SetWatchable(true);
  BridgeConfig config;
  config.drift_busy_max_delay = absl::Milliseconds(50);
  StartBridge(config);
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  adapter_.Hang("register", "host1:c9:80");
  docker_.Put(MakeContainer("id9", "c9", {80}));
  Event("id9", "start");
  ASSERT_TRUE(Eventually([&] { return adapter_.hung() == 1; }));
  adapter_.Drop("host1:c0:80");
  ASSERT_TRUE(Eventually([&] { return adapter_.entries().count("host1:c0:80") == 1; }));
  EXPECT_EQ(adapter_.hung(), 1);  // Repaired while the bridge's own write still hangs.
  adapter_.ReleaseHung(absl::OkStatus(), /*apply=*/true);
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
}

// A watch that breaks reports drift once it is back: the bridge re-checks everything (here a
// deletion the watch missed) from one listing.
TEST_F(BridgeTest, ABrokenWatchMakesTheBridgeRecheckEverything) {
  for (int i = 0; i < 3; ++i)
    docker_.Put(MakeContainer(absl::StrCat("id", i), absl::StrCat("c", i), {80}));
  adapter_.SetWatchable(true);
  StartBridge();
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  const uint64_t checks = bridge_->stats().drift_checks;
  adapter_.DropUnseen("host1:c0:80");  // While the watch is down: nobody sees it...
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(adapter_.entries().count("host1:c0:80"), 0u);
  EXPECT_EQ(bridge_->stats().drift_checks, checks);
  adapter_.BreakWatch();  // ...until the adapter re-establishes the watch and reports.
  ASSERT_TRUE(Eventually([&] { return adapter_.entries().count("host1:c0:80") == 1; }));
  EXPECT_GT(bridge_->stats().drift_checks, checks);
}

// Without a watch (the default backend) nothing changes: no drift thread listing, and the
// watch is stopped by Stop() when there is one.
TEST_F(BridgeTest, StopStopsTheWatchAndAnUnwatchableBackendIsNeverListedForDrift) {
  docker_.Put(MakeContainer("aaa", "web", {80}));
  StartBridge();
  ASSERT_THAT(bridge_->SyncNow(), IsOk());
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_FALSE(bridge_->stats().watching);
  adapter_.Drop("host1:web:80");
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(bridge_->stats().drift_checks, 0u);
  EXPECT_EQ(adapter_.entries().count("host1:web:80"), 0u);
  bridge_->Stop();

  FakeAdapter watched;
  watched.SetWatchable(true);
  {
    BridgeConfig config;
    config.hostname = kHost;
    Bridge bridge(&docker_, &watched, SimpleDerive, config);
    bridge.Start();
    EXPECT_TRUE(watched.watching());
    bridge.Stop();
    EXPECT_FALSE(watched.watching());
  }
  EXPECT_EQ(watched.watch_starts(), 1);
}

}  // namespace
}  // namespace registrator
