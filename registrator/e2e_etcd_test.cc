// End to end: the registrator binary against a real dockerd and a real etcd (etcd:// and
// skydns2://). Checks the keys and values it writes, deregistration on stop, TTL leases kept
// alive while it runs and expiring after a crash or a failed container exit (-deregister
// on-success), -cleanup of this host's stale keys only, and that a restart or a resync of an
// unchanged host writes nothing (the key's mod_revision and the store's revision stay put).
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "testing/dockerd_fixture.h"
#include "testing/e2e_test_base.h"
#include "testing/etcd_fixture.h"
#include "testing/process.h"
#include "testing/registrator_process.h"
#include "testing/status_matchers.h"

namespace registrator {
namespace {

using fakes::DockerdFixture;
using fakes::EtcdFixture;
using fakes::FreeLoopbackPort;
using fakes::LocalHostname;
using fakes::RegistratorProcess;
using fakes::RegistratorResyncCount;
using fakes::WaitFor;
using ::registrator::fakes::IsOk;

// One key as etcdctl reads it.
struct EtcdKey {
  std::string value;
  int64_t mod_revision = 0;
  int64_t lease = 0;
  int64_t store_revision = 0;  // The header's revision: changes with every write anywhere.
};

class EtcdEndToEndTest : public fakes::EndToEndTest {
 protected:
  static void SetUpTestSuite() {
    EndToEndTest::SetUpTestSuite();
    absl::StatusOr<std::unique_ptr<EtcdFixture>> etcd = EtcdFixture::Start();
    ASSERT_THAT(etcd, IsOk()) << etcd.status();
    etcd_ = etcd->release();
  }
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
    EndToEndTest::TearDownTestSuite();
  }
  void SetUp() override {
    EndToEndTest::SetUp();
    ASSERT_NE(etcd_, nullptr);
    prefix_ = absl::StrCat("/", test_name_);
  }
  void TearDown() override {
    EndToEndTest::TearDown();
    // Leave nothing behind: a key left on a lease would expire during the next test and change
    // the store's revision under it.
    if (etcd_ != nullptr) etcd_->Etcdctl("del --prefix /");
  }
  std::string BackendState() override {
    std::string keys;
    etcd_->Etcdctl("get --prefix /", &keys);
    return absl::StrCat("\netcd keys:\n", keys);
  }

  std::string Uri() const { return absl::StrCat("etcd://", etcd_->endpoint(), prefix_); }
  void StartRegistrator(const std::vector<std::string>& flags, const std::string& uri,
                        const std::string& log_suffix = "") {
    EndToEndTest::StartRegistrator(flags, uri, {}, log_suffix);
  }
  // docker run -d --name <name> -p 127.0.0.1:<port>:80 <extra...> <image> <command...>
  void RunContainer(const std::string& name, int port, std::vector<std::string> extra,
                    const std::vector<std::string>& command = {}) {
    extra.insert(extra.begin(), {"-p", Publish(port)});
    ASSERT_FALSE(EndToEndTest::RunContainer(name, extra, command).empty());
  }

  static std::optional<EtcdKey> Get(const std::string& key) {
    std::string output;
    if (etcd_->Etcdctl(absl::StrCat("get '", key, "' -w fields"), &output) != 0) {
      ADD_FAILURE() << "etcdctl get " << key << ": " << output;
      return std::nullopt;
    }
    EtcdKey parsed;
    bool found = false;
    for (absl::string_view line : absl::StrSplit(output, '\n')) {
      std::pair<std::string, std::string> field = absl::StrSplit(line, absl::MaxSplits(" : ", 1));
      absl::string_view name = field.first;
      if (!absl::ConsumePrefix(&name, "\"") || !absl::ConsumeSuffix(&name, "\"")) continue;
      absl::string_view value = field.second;
      if (name == "Revision") {
        (void)absl::SimpleAtoi(value, &parsed.store_revision);
      } else if (name == "ModRevision") {
        (void)absl::SimpleAtoi(value, &parsed.mod_revision);
      } else if (name == "Lease") {
        (void)absl::SimpleAtoi(value, &parsed.lease);
      } else if (name == "Value") {
        absl::ConsumePrefix(&value, "\"");
        absl::ConsumeSuffix(&value, "\"");
        parsed.value = std::string(value);
        found = true;
      }
    }
    if (!found) return std::nullopt;
    return parsed;
  }
  static std::optional<std::string> Value(const std::string& key) {
    std::optional<EtcdKey> got = Get(key);
    if (!got) return std::nullopt;
    return got->value;
  }
  static bool WaitForValue(const std::string& key, const std::string& want,
                           absl::Duration timeout = absl::Seconds(20)) {
    return WaitFor([&] { return Value(key) == want; }, timeout, absl::Milliseconds(100));
  }
  static bool WaitForGone(const std::string& key, absl::Duration timeout = absl::Seconds(20)) {
    return WaitFor([&] { return !Value(key).has_value(); }, timeout, absl::Milliseconds(100));
  }
  // "etcdctl get --prefix --keys-only", one key per element.
  static std::vector<std::string> Keys(const std::string& prefix) {
    std::string output;
    etcd_->Etcdctl(absl::StrCat("get --prefix --keys-only '", prefix, "/'"), &output);
    return absl::StrSplit(output, '\n', absl::SkipWhitespace());
  }
  // Starts registrator with `flags`, stops etcd, starts a container, brings etcd back and
  // expects the container's key to appear.
  void RegisterDuringOutage(const std::vector<std::string>& flags) {
    StartRegistrator(flags, Uri());
    etcd_->Stop();
    const int port = FreeLoopbackPort();
    RunContainer("e2e-etcd-outage", port, {"-e", "SERVICE_NAME=outage"});
    ASSERT_TRUE(registrator_.WaitForOutput(absl::StrCat("register ", Id("e2e-etcd-outage"))))
        << "the failed write is logged";
    ASSERT_THAT(etcd_->Resume(), IsOk()) << etcd_->Log();
    const std::string key = absl::StrCat(prefix_, "/outage/", Id("e2e-etcd-outage"));
    EXPECT_TRUE(WaitForValue(key, absl::StrCat("127.0.0.1:", port), absl::Seconds(20)));
    EXPECT_TRUE(registrator_.running());
  }
  // Registers a container, stops etcd, stops the container, brings etcd back and expects the
  // key to go.
  void DeregisterDuringOutage(const std::vector<std::string>& flags) {
    StartRegistrator(flags, Uri());
    const int port = FreeLoopbackPort();
    RunContainer("e2e-etcd-outage-stop", port, {"-e", "SERVICE_NAME=outagestop"});
    const std::string key = absl::StrCat(prefix_, "/outagestop/", Id("e2e-etcd-outage-stop"));
    ASSERT_TRUE(WaitForValue(key, absl::StrCat("127.0.0.1:", port)));
    etcd_->Stop();
    ASSERT_EQ(docker_->Docker({"stop", "-t", "1", "e2e-etcd-outage-stop"}).exit_code, 0);
    ASSERT_TRUE(registrator_.WaitForOutput(
        absl::StrCat("deregister ", Id("e2e-etcd-outage-stop"), " failed")));
    ASSERT_THAT(etcd_->Resume(), IsOk()) << etcd_->Log();
    EXPECT_TRUE(WaitForGone(key, absl::Seconds(20)));
  }
  static EtcdFixture* etcd_;
  std::string prefix_;
};

EtcdFixture* EtcdEndToEndTest::etcd_ = nullptr;

TEST_F(EtcdEndToEndTest, RegistersOnStartDeregistersOnStop) {
  StartRegistrator({}, Uri());
  const int port = FreeLoopbackPort();
  RunContainer("e2e-etcd-web", port, {"-e", "SERVICE_NAME=web"});
  const std::string key = absl::StrCat(prefix_, "/web/", Id("e2e-etcd-web"));
  ASSERT_TRUE(WaitForValue(key, absl::StrCat("127.0.0.1:", port)));
  std::optional<EtcdKey> got = Get(key);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->lease, 0) << "no -ttl: no lease";
  EXPECT_EQ(Keys(prefix_), std::vector<std::string>{key});

  ASSERT_EQ(docker_->Docker({"stop", "-t", "1", "e2e-etcd-web"}).exit_code, 0);
  EXPECT_TRUE(WaitForGone(key));
  EXPECT_TRUE(Keys(prefix_).empty());
}

TEST_F(EtcdEndToEndTest, TtlKeepsKeysAliveWhileRunningAndExpiresAfterKill) {
  StartRegistrator({"-ttl", "3", "-ttl-refresh", "1"}, Uri());
  const int port = FreeLoopbackPort();
  RunContainer("e2e-etcd-ttl", port, {"-e", "SERVICE_NAME=ttl"});
  const std::string key = absl::StrCat(prefix_, "/ttl/", Id("e2e-etcd-ttl"));
  ASSERT_TRUE(WaitForValue(key, absl::StrCat("127.0.0.1:", port)));
  std::optional<EtcdKey> got = Get(key);
  ASSERT_TRUE(got.has_value());
  EXPECT_NE(got->lease, 0) << "-ttl: the key is on a lease";

  // Well past the TTL: refreshes must keep it, without rewriting the key.
  const absl::Time until = absl::Now() + absl::Seconds(5);
  while (absl::Now() < until) {
    ASSERT_TRUE(Value(key).has_value()) << "key expired while registrator was refreshing it";
    absl::SleepFor(absl::Milliseconds(250));
  }
  std::optional<EtcdKey> later = Get(key);
  ASSERT_TRUE(later.has_value());
  EXPECT_EQ(later->mod_revision, got->mod_revision) << "refresh rewrote the key";

  registrator_.Kill();
  const absl::Time killed = absl::Now();
  EXPECT_TRUE(WaitForGone(key, absl::Seconds(10)));
  // Not before the lease could have run out: at least a little after the kill.
  EXPECT_GT(absl::Now() - killed, absl::Seconds(1));
}

TEST_F(EtcdEndToEndTest, OnSuccessKeepsFailedContainersKeyUntilItsTtlRunsOut) {
  StartRegistrator({"-deregister", "on-success", "-ttl", "3", "-ttl-refresh", "1"}, Uri());
  const int healthy_port = FreeLoopbackPort();
  RunContainer("e2e-etcd-healthy", healthy_port, {"-e", "SERVICE_NAME=healthy"});
  const std::string healthy = absl::StrCat(prefix_, "/healthy/", Id("e2e-etcd-healthy"));
  ASSERT_TRUE(WaitForValue(healthy, absl::StrCat("127.0.0.1:", healthy_port)));

  // Long enough to be registered while it runs, then a failure exit.
  const int failing_port = FreeLoopbackPort();
  RunContainer("e2e-etcd-failing", failing_port, {"-e", "SERVICE_NAME=failing"},
               {"sh", "-c", "sleep 2; exit 3"});
  const std::string failing = absl::StrCat(prefix_, "/failing/", Id("e2e-etcd-failing"));
  ASSERT_TRUE(WaitForValue(failing, absl::StrCat("127.0.0.1:", failing_port)));
  ASSERT_TRUE(registrator_.WaitForOutput("(e2e-etcd-failing) exited with code 3"));
  EXPECT_TRUE(Value(failing).has_value()) << "on-success: a failed exit keeps the key";
  EXPECT_TRUE(WaitForGone(failing, absl::Seconds(10))) << "a kept key must expire with its TTL";
  EXPECT_TRUE(Value(healthy).has_value()) << "the healthy container's key must stay";
  // And keeps staying: its lease is still renewed.
  absl::SleepFor(absl::Seconds(2));
  EXPECT_TRUE(Value(healthy).has_value());
}

TEST_F(EtcdEndToEndTest, CleanupRemovesOnlyThisHostsStaleKeys) {
  const std::string mine = absl::StrCat(prefix_, "/x/", LocalHostname(), ":gone:80");
  const std::string other = absl::StrCat(prefix_, "/x/otherhost:gone:80");
  ASSERT_EQ(etcd_->Etcdctl(absl::StrCat("put '", mine, "' 127.0.0.1:1")), 0);
  ASSERT_EQ(etcd_->Etcdctl(absl::StrCat("put '", other, "' 10.0.0.1:1")), 0);
  StartRegistrator({"-cleanup", "-resync", "1"}, Uri());
  EXPECT_TRUE(WaitForGone(mine));
  EXPECT_TRUE(registrator_.WaitForOutput(
      absl::StrCat("cleanup: removed dangling ", LocalHostname(), ":gone:80")));
  EXPECT_EQ(Value(other), "10.0.0.1:1");
  // And on every resync: a stale key that appears later goes too.
  const std::string later = absl::StrCat(prefix_, "/y/", LocalHostname(), ":later:81:udp");
  ASSERT_EQ(etcd_->Etcdctl(absl::StrCat("put '", later, "' 127.0.0.1:2")), 0);
  EXPECT_TRUE(WaitForGone(later, absl::Seconds(10)));
  EXPECT_EQ(Value(other), "10.0.0.1:1");
}

TEST_F(EtcdEndToEndTest, UnchangedResyncAndRestartWriteNothing) {
  int http_port = FreeLoopbackPort();
  StartRegistrator({"-resync", "1", "-http", absl::StrCat("127.0.0.1:", http_port)}, Uri());
  const int port = FreeLoopbackPort();
  RunContainer("e2e-etcd-steady", port, {"-e", "SERVICE_NAME=steady"});
  const std::string key = absl::StrCat(prefix_, "/steady/", Id("e2e-etcd-steady"));
  ASSERT_TRUE(WaitForValue(key, absl::StrCat("127.0.0.1:", port)));
  std::optional<EtcdKey> before = Get(key);
  ASSERT_TRUE(before.has_value());

  // Two more resyncs of an unchanged host (waited for, not slept for: a slow machine only
  // takes longer).
  const int resyncs = RegistratorResyncCount(http_port);
  ASSERT_GE(resyncs, 0);
  EXPECT_TRUE(
      WaitFor([&] { return RegistratorResyncCount(http_port) >= resyncs + 2; }, absl::Seconds(30)))
      << "the resyncs did not run";
  std::optional<EtcdKey> after_resync = Get(key);
  ASSERT_TRUE(after_resync.has_value());
  EXPECT_EQ(after_resync->mod_revision, before->mod_revision);
  EXPECT_EQ(after_resync->store_revision, before->store_revision) << "a resync wrote something";

  // A new registrator over the populated etcd (SIGTERM keeps the keys without
  // -deregister-on-exit), again with resyncs.
  EXPECT_EQ(registrator_.Stop(), 0);
  EXPECT_TRUE(Value(key).has_value());
  http_port = FreeLoopbackPort();
  StartRegistrator({"-resync", "1", "-http", absl::StrCat("127.0.0.1:", http_port)}, Uri(), "-2");
  EXPECT_TRUE(WaitFor([&] { return RegistratorResyncCount(http_port) >= 3; }, absl::Seconds(30)))
      << "the resyncs did not run";
  std::optional<EtcdKey> after_restart = Get(key);
  ASSERT_TRUE(after_restart.has_value());
  EXPECT_EQ(after_restart->mod_revision, before->mod_revision);
  EXPECT_EQ(after_restart->store_revision, before->store_revision) << "the restart wrote something";
  EXPECT_FALSE(absl::StrContains(registrator_.Output(), "registered "));
}

TEST_F(EtcdEndToEndTest, RestoresKeysWhenItsLeaseIsRevoked) {
  StartRegistrator({"-ttl", "3", "-ttl-refresh", "1"}, Uri());
  const int port = FreeLoopbackPort();
  RunContainer("e2e-etcd-revoked", port, {"-e", "SERVICE_NAME=revoked"});
  const std::string key = absl::StrCat(prefix_, "/revoked/", Id("e2e-etcd-revoked"));
  ASSERT_TRUE(WaitForValue(key, absl::StrCat("127.0.0.1:", port)));
  std::optional<EtcdKey> before = Get(key);
  ASSERT_TRUE(before.has_value());
  ASSERT_NE(before->lease, 0);
  std::string output;
  ASSERT_EQ(etcd_->Etcdctl(absl::StrCat("lease revoke ", absl::Hex(before->lease)), &output), 0)
      << output;
  // Revoking the lease deletes its keys. The drift watch (or else the next refresh) finds the
  // key gone and the lease with it, takes a new lease and puts the key again: possibly before
  // this test could see it missing, so only the end state is checked -- the key under a new,
  // live lease.
  std::optional<EtcdKey> after;
  ASSERT_TRUE(WaitFor(
      [&] {
        after = Get(key);
        return after.has_value() && after->lease != before->lease;
      },
      absl::Seconds(10)))
      << "the key did not come back under a new lease";
  EXPECT_EQ(after->value, absl::StrCat("127.0.0.1:", port));
  EXPECT_NE(after->lease, 0);
  EXPECT_NE(after->mod_revision, before->mod_revision) << "the key was written again";
}

TEST_F(EtcdEndToEndTest, ResyncRestoresAKeyDeletedBehindItsBack) {
  StartRegistrator({"-resync", "1"}, Uri());
  const int port = FreeLoopbackPort();
  RunContainer("e2e-etcd-drift", port, {"-e", "SERVICE_NAME=drift"});
  const std::string key = absl::StrCat(prefix_, "/drift/", Id("e2e-etcd-drift"));
  ASSERT_TRUE(WaitForValue(key, absl::StrCat("127.0.0.1:", port)));
  ASSERT_EQ(etcd_->Etcdctl(absl::StrCat("put '", key, "' 10.9.9.9:1")), 0);
  EXPECT_TRUE(WaitForValue(key, absl::StrCat("127.0.0.1:", port), absl::Seconds(10)))
      << "a changed value is rewritten";
  ASSERT_EQ(etcd_->Etcdctl(absl::StrCat("del '", key, "'")), 0);
  EXPECT_TRUE(WaitForValue(key, absl::StrCat("127.0.0.1:", port), absl::Seconds(10)))
      << "a deleted key is rewritten";
}

TEST_F(EtcdEndToEndTest, CleanupRemovesTheKeyOfAContainerThatStoppedWhileItWasDown) {
  StartRegistrator({}, Uri());
  const int port = FreeLoopbackPort();
  RunContainer("e2e-etcd-stopped", port, {"-e", "SERVICE_NAME=stopped"});
  const std::string key = absl::StrCat(prefix_, "/stopped/", Id("e2e-etcd-stopped"));
  ASSERT_TRUE(WaitForValue(key, absl::StrCat("127.0.0.1:", port)));
  EXPECT_EQ(registrator_.Stop(), 0);
  ASSERT_EQ(docker_->Docker({"stop", "-t", "1", "e2e-etcd-stopped"}).exit_code, 0);
  EXPECT_TRUE(Value(key).has_value()) << "nobody was there to remove it";
  StartRegistrator({"-cleanup"}, Uri(), "-2");
  EXPECT_TRUE(WaitForGone(key));
}

// A register that failed during an etcd outage is retried (with backoff) once etcd is back.
// Regression: without -resync and -ttl-refresh the scheduler used to sleep through the retry.
TEST_F(EtcdEndToEndTest, RegistersWhatStartedDuringAnEtcdOutageOnceEtcdIsBack) {
  RegisterDuringOutage({});
}

TEST_F(EtcdEndToEndTest, RegistersWhatStartedDuringAnEtcdOutageOnceEtcdIsBackWithResync) {
  RegisterDuringOutage({"-resync", "3"});
}

// A deregistration that failed during an etcd outage is retried once etcd is back (the same
// regression: the key used to stay in etcd forever without -resync).
TEST_F(EtcdEndToEndTest, DeregistersWhatStoppedDuringAnEtcdOutageOnceEtcdIsBack) {
  DeregisterDuringOutage({});
}

TEST_F(EtcdEndToEndTest, DeregistersWhatStoppedDuringAnEtcdOutageOnceEtcdIsBackWithResync) {
  DeregisterDuringOutage({"-resync", "3"});
}

TEST_F(EtcdEndToEndTest, DockerRestartOfAContainerKeepsItRegistered) {
  StartRegistrator({}, Uri());
  const int port = FreeLoopbackPort();
  RunContainer("e2e-etcd-restarted", port, {"-e", "SERVICE_NAME=restarted"});
  const std::string key = absl::StrCat(prefix_, "/restarted/", Id("e2e-etcd-restarted"));
  ASSERT_TRUE(WaitForValue(key, absl::StrCat("127.0.0.1:", port)));
  ASSERT_EQ(docker_->Docker({"restart", "-t", "1", "e2e-etcd-restarted"}).exit_code, 0);
  ASSERT_TRUE(registrator_.WaitForOutput(absl::StrCat("registered ", Id("e2e-etcd-restarted")),
                                         absl::Seconds(20), 2));
  EXPECT_TRUE(WaitForValue(key, absl::StrCat("127.0.0.1:", port)));
}

// A new registrator takes over the keys a stopped one left on its lease: they must move to the
// new lease and outlive the old one.
TEST_F(EtcdEndToEndTest, RestartWithTtlMovesKeysOntoTheNewLease) {
  StartRegistrator({"-ttl", "3", "-ttl-refresh", "1"}, Uri());
  const int port = FreeLoopbackPort();
  RunContainer("e2e-etcd-takeover", port, {"-e", "SERVICE_NAME=takeover"});
  const std::string key = absl::StrCat(prefix_, "/takeover/", Id("e2e-etcd-takeover"));
  ASSERT_TRUE(WaitForValue(key, absl::StrCat("127.0.0.1:", port)));
  std::optional<EtcdKey> before = Get(key);
  ASSERT_TRUE(before.has_value());
  EXPECT_EQ(registrator_.Stop(), 0);
  StartRegistrator({"-ttl", "3", "-ttl-refresh", "1"}, Uri(), "-2");
  ASSERT_TRUE(WaitFor(
      [&] {
        std::optional<EtcdKey> now = Get(key);
        return now.has_value() && now->lease != 0 && now->lease != before->lease;
      },
      absl::Seconds(10)));
  // Well past the old lease's TTL.
  absl::SleepFor(absl::Seconds(4));
  EXPECT_EQ(Value(key), absl::StrCat("127.0.0.1:", port));
}

TEST_F(EtcdEndToEndTest, InternalRegistersTheContainerAddress) {
  StartRegistrator({"-internal"}, Uri());
  // Exposed only, not published: -internal still registers it.
  containers_.push_back("e2e-etcd-internal");
  ASSERT_EQ(docker_
                ->Docker({"run", "-d", "--name", "e2e-etcd-internal", "-e", "SERVICE_NAME=internal",
                          DockerdFixture::kImage})
                .exit_code,
            0);
  const std::string ip =
      docker_->Docker({"inspect", "-f", "{{.NetworkSettings.IPAddress}}", "e2e-etcd-internal"})
          .output;
  ASSERT_FALSE(ip.empty());
  EXPECT_TRUE(WaitForValue(absl::StrCat(prefix_, "/internal/", Id("e2e-etcd-internal")),
                           absl::StrCat(ip, ":80")));
}

TEST_F(EtcdEndToEndTest, DeregisterOnExitRemovesKeysOnSigterm) {
  StartRegistrator({"-deregister-on-exit"}, Uri());
  const int port = FreeLoopbackPort();
  RunContainer("e2e-etcd-onexit", port, {"-e", "SERVICE_NAME=onexit"});
  const std::string key = absl::StrCat(prefix_, "/onexit/", Id("e2e-etcd-onexit"));
  ASSERT_TRUE(WaitForValue(key, absl::StrCat("127.0.0.1:", port)));
  EXPECT_EQ(registrator_.Stop(), 0);
  EXPECT_FALSE(Value(key).has_value());
}

// docker-compose style re-creation: the same name (so the same service ID) on a new container
// right after the old one is removed. The key must end up with the new container's port.
TEST_F(EtcdEndToEndTest, RecreatedContainerWithTheSameNameEndsUpRegistered) {
  StartRegistrator({}, Uri());
  const std::string key = absl::StrCat(prefix_, "/recreated/", Id("e2e-etcd-recreated"));
  for (int round = 0; round < 3; ++round) {
    const int port = FreeLoopbackPort();
    if (round > 0) {
      ASSERT_EQ(docker_->Docker({"rm", "-f", "e2e-etcd-recreated"}).exit_code, 0);
    }
    RunContainer("e2e-etcd-recreated", port, {"-e", "SERVICE_NAME=recreated"});
    EXPECT_TRUE(WaitForValue(key, absl::StrCat("127.0.0.1:", port))) << "round " << round;
    // And it stays (no late deregistration of the old container's entry).
    absl::SleepFor(absl::Milliseconds(500));
    EXPECT_EQ(Value(key), absl::StrCat("127.0.0.1:", port)) << "round " << round;
  }
}

// etcd2:// against a server with the v2 API on: per-key TTLs, read back with the v2 keys API.
TEST_F(EtcdEndToEndTest, Etcd2ApiRegistersWithAKeyTtlThatExpiresAfterAKill) {
  fakes::EtcdFixtureOptions options;
  options.enable_v2 = true;
  absl::StatusOr<std::unique_ptr<EtcdFixture>> v2 = EtcdFixture::Start(options);
  ASSERT_THAT(v2, IsOk()) << v2.status();
  StartRegistrator({"-ttl", "3", "-ttl-refresh", "1"},
                   absl::StrCat("etcd2://", (*v2)->endpoint(), "/v2services"));
  const int port = FreeLoopbackPort();
  RunContainer("e2e-etcd-v2", port, {"-e", "SERVICE_NAME=v2"});
  const std::string url =
      absl::StrCat((*v2)->base_url(), "/v2/keys/v2services/v2/", Id("e2e-etcd-v2"));
  std::string answer;
  auto read = [&] {
    answer.clear();
    return fakes::RunCommand(absl::StrCat("curl -sf '", url, "'"), &answer) == 0;
  };
  ASSERT_TRUE(WaitFor(read, absl::Seconds(20))) << url;
  EXPECT_TRUE(absl::StrContains(answer, absl::StrCat("\"value\":\"127.0.0.1:", port, "\"")))
      << answer;
  EXPECT_TRUE(absl::StrContains(answer, "\"ttl\":")) << answer;
  // Past the TTL it is still there (refreshed), and after a kill it expires.
  absl::SleepFor(absl::Seconds(4));
  EXPECT_TRUE(read()) << "expired while registrator was refreshing it";
  registrator_.Kill();
  EXPECT_TRUE(WaitFor([&] { return !read(); }, absl::Seconds(10)));
}

TEST_F(EtcdEndToEndTest, Skydns2WritesTheRecordUnderTheReversedDomain) {
  StartRegistrator({}, absl::StrCat("skydns2://", etcd_->endpoint(), "/skydns.local"));
  const int port = FreeLoopbackPort();
  RunContainer("e2e-etcd-dns", port, {"-e", "SERVICE_NAME=dns"});
  const std::string key = absl::StrCat("/skydns/local/skydns/dns/", Id("e2e-etcd-dns"));
  EXPECT_TRUE(
      WaitForValue(key, absl::StrCat("{\\\"host\\\":\\\"127.0.0.1\\\",\\\"port\\\":", port, "}")));
  ASSERT_EQ(docker_->Docker({"rm", "-f", "e2e-etcd-dns"}).exit_code, 0);
  EXPECT_TRUE(WaitForGone(key));
}

}  // namespace
}  // namespace registrator
