// End to end, issue 16 ("instant repair by watching"): the registrator binary against a real
// dockerd and real etcd (v3 and v2 API) and ZooKeeper, without -resync and without -ttl-refresh,
// so only the drift watch can repair anything. Per backend: an entry of ours deleted behind
// registrator's back comes back, an altered one is restored, another host's entry is never
// touched (not even rewritten), and after the server is stopped and started again the broken
// watch is logged once, re-established, and repairs work again. Waits on conditions only.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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
#include "testing/zookeeper_client.h"
#include "testing/zookeeper_fixture.h"

namespace registrator {
namespace {

using fakes::EtcdFixture;
using fakes::FreeLoopbackPort;
using fakes::WaitFor;
using fakes::ZookeeperServer;
using fakes::ZookeeperTestClient;
using ::registrator::fakes::IsOk;

// How a test reads and meddles with one backend, by entry key.
struct Meddler {
  std::function<std::optional<std::string>(const std::string& key)> get;
  std::function<bool(const std::string& key, const std::string& value)> put;
  std::function<bool(const std::string& key)> del;
  std::function<void()> stop;
  std::function<absl::Status()> resume;
};

class WatchEndToEndTest : public fakes::EndToEndTest {
 protected:
  bool WaitForValue(const Meddler& m, const std::string& key,
                    const std::optional<std::string>& want,
                    absl::Duration timeout = absl::Seconds(20)) {
    return WaitFor([&] { return m.get(key) == want; }, timeout, absl::Milliseconds(20));
  }

  // The scenario every backend goes through. `key_a`/`key_b`: the entries of containers a and b
  // (registered by the caller, with values want_a/want_b); `foreign`: another host's key.
  void RepairScenario(const Meddler& m, const std::string& key_a, const std::string& want_a,
                      const std::string& key_b, const std::string& want_b,
                      const std::string& foreign, const std::string& foreign_value,
                      const std::string& broken_log) {
    ASSERT_TRUE(registrator_.WaitForOutput("watching the backend"));
    ASSERT_TRUE(m.put(foreign, foreign_value));

    // Deleted: back.
    ASSERT_TRUE(m.del(key_a));
    EXPECT_TRUE(WaitForValue(m, key_a, want_a)) << "deleted entry not restored";
    // Altered: restored.
    ASSERT_TRUE(m.put(key_b, "altered"));
    EXPECT_TRUE(WaitForValue(m, key_b, want_b)) << "altered entry not restored";
    // Another host's entry: never touched, even when it changes or goes.
    EXPECT_EQ(m.get(foreign), foreign_value);
    ASSERT_TRUE(m.put(foreign, foreign_value + "x"));
    ASSERT_TRUE(m.del(key_a));  // A repair after the foreign change proves it was looked at.
    EXPECT_TRUE(WaitForValue(m, key_a, want_a));
    EXPECT_EQ(m.get(foreign), foreign_value + "x");
    ASSERT_TRUE(m.del(foreign));
    ASSERT_TRUE(m.del(key_a));
    EXPECT_TRUE(WaitForValue(m, key_a, want_a));
    EXPECT_EQ(m.get(foreign), std::nullopt) << "another host's entry was re-created";

    // The watch breaks with the server; logged once, re-established, repairs work again.
    m.stop();
    ASSERT_TRUE(registrator_.WaitForOutput(broken_log)) << registrator_.Output();
    // Several reconnect attempts fail meanwhile: still one warning.
    ASSERT_THAT(m.resume(), IsOk());
    ASSERT_TRUE(registrator_.WaitForOutput("watch re-established", absl::Seconds(30)))
        << registrator_.Output();
    EXPECT_EQ(registrator_.CountOccurrences(broken_log), 1) << registrator_.Output();
    ASSERT_TRUE(m.del(key_b));
    EXPECT_TRUE(WaitForValue(m, key_b, want_b)) << "no repair after the watch came back";
    ASSERT_TRUE(m.put(key_a, "altered again"));
    EXPECT_TRUE(WaitForValue(m, key_a, want_a));
    EXPECT_TRUE(registrator_.running());
    // The drift check did it (not a resync, which never runs here). (An altered entry shows as
    // "differs" or, where the listing skips what it cannot parse (ZooKeeper), as "lacks".)
    EXPECT_TRUE(absl::StrContains(registrator_.Output(), "drift: backend lacks"));
    EXPECT_EQ(registrator_.CountOccurrences("resync: backend"), 0);
  }
};

// ---- etcd ------------------------------------------------------------------------------------

class EtcdWatchTest : public WatchEndToEndTest {
 protected:
  void TearDown() override {
    WatchEndToEndTest::TearDown();
    etcd_.reset();
  }
  std::string BackendState() override {
    if (etcd_ == nullptr) return "";
    std::string keys;
    etcd_->Etcdctl("get --prefix /", &keys);
    return absl::StrCat("\netcd keys:\n", keys);
  }
  Meddler V3() {
    Meddler m;
    m.get = [this](const std::string& key) -> std::optional<std::string> {
      std::string out;
      if (etcd_->Etcdctl(absl::StrCat("get --print-value-only '", key, "'"), &out) != 0) {
        return std::nullopt;
      }
      absl::string_view value = absl::StripTrailingAsciiWhitespace(out);
      if (value.empty()) return std::nullopt;
      return std::string(value);
    };
    m.put = [this](const std::string& key, const std::string& value) {
      return etcd_->Etcdctl(absl::StrCat("put '", key, "' '", value, "'")) == 0;
    };
    m.del = [this](const std::string& key) {
      return etcd_->Etcdctl(absl::StrCat("del '", key, "'")) == 0;
    };
    m.stop = [this] { etcd_->Stop(); };
    m.resume = [this] { return etcd_->Resume(); };
    return m;
  }
  // The v2 keys API with curl.
  Meddler V2() {
    Meddler m = V3();
    auto url = [this](const std::string& key) {
      return absl::StrCat(etcd_->base_url(), "/v2/keys", key);
    };
    m.get = [url](const std::string& key) -> std::optional<std::string> {
      std::string out;
      if (fakes::RunCommand(absl::StrCat("curl -sf '", url(key), "'"), &out) != 0) {
        return std::nullopt;
      }
      // {"action":"get","node":{"key":..,"value":"<value>",...}}: values here have no quotes.
      const size_t at = out.find("\"value\":\"");
      if (at == std::string::npos) return std::nullopt;
      const size_t start = at + 9;
      return out.substr(start, out.find('"', start) - start);
    };
    m.put = [url](const std::string& key, const std::string& value) {
      return fakes::RunCommand(absl::StrCat("curl -sf -XPUT '", url(key),
                                            "' --data-urlencode 'value=", value, "' >/dev/null")) ==
             0;
    };
    m.del = [url](const std::string& key) {
      // 404 (already gone) is fine.
      return fakes::RunCommand(absl::StrCat("curl -s -XDELETE '", url(key), "' >/dev/null")) == 0;
    };
    return m;
  }
  void Run(const std::string& scheme, bool v2) {
    fakes::EtcdFixtureOptions options;
    options.enable_v2 = v2;
    absl::StatusOr<std::unique_ptr<EtcdFixture>> etcd = EtcdFixture::Start(options);
    ASSERT_THAT(etcd, IsOk()) << etcd.status();
    etcd_ = *std::move(etcd);
    const std::string prefix = absl::StrCat("/", test_name_);
    // No -resync, no -ttl-refresh: only the watch repairs.
    StartRegistrator({}, absl::StrCat(scheme, "://", etcd_->endpoint(), prefix));
    const int port_a = FreeLoopbackPort();
    const int port_b = FreeLoopbackPort();
    ASSERT_FALSE(
        RunContainer("e2e-watch-a", {"-p", Publish(port_a), "-e", "SERVICE_NAME=wa"}).empty());
    ASSERT_FALSE(
        RunContainer("e2e-watch-b", {"-p", Publish(port_b), "-e", "SERVICE_NAME=wb"}).empty());
    const Meddler m = v2 ? V2() : V3();
    const std::string key_a = absl::StrCat(prefix, "/wa/", Id("e2e-watch-a"));
    const std::string key_b = absl::StrCat(prefix, "/wb/", Id("e2e-watch-b"));
    const std::string want_a = absl::StrCat("127.0.0.1:", port_a);
    const std::string want_b = absl::StrCat("127.0.0.1:", port_b);
    ASSERT_TRUE(WaitForValue(m, key_a, want_a));
    ASSERT_TRUE(WaitForValue(m, key_b, want_b));
    RepairScenario(m, key_a, want_a, key_b, want_b, absl::StrCat(prefix, "/wa/otherhost:x:80"),
                   "10.0.0.9:80", absl::StrCat(scheme, ": watch broken"));
  }

  std::unique_ptr<EtcdFixture> etcd_;
};

TEST_F(EtcdWatchTest, V3WatchRepairsDriftAndSurvivesARestart) { Run("etcd3", /*v2=*/false); }

TEST_F(EtcdWatchTest, V2WaitRepairsDriftAndSurvivesARestart) { Run("etcd2", /*v2=*/true); }

// ---- ZooKeeper --------------------------------------------------------------------------------

class ZookeeperWatchTest : public WatchEndToEndTest {
 protected:
  void TearDown() override {
    WatchEndToEndTest::TearDown();
    raw_.reset();
    zookeeper_.reset();
  }
  std::string BackendState() override {
    if (raw_ == nullptr) return "";
    std::string out = "\nzookeeper nodes:\n";
    for (const std::string& name : raw_->Children(base_)) {
      for (const std::string& node : raw_->Children(absl::StrCat(base_, "/", name))) {
        const std::string path = absl::StrCat(base_, "/", name, "/", node);
        absl::StrAppend(&out, path, " = ", raw_->Get(path).value_or("?"), "\n");
      }
    }
    return out;
  }
  Meddler Zk() {
    Meddler m;
    m.get = [this](const std::string& path) { return raw_->Get(path); };
    m.put = [this](const std::string& path, const std::string& data) {
      if (raw_->Exists(path)) return raw_->Set(path, data) == ZOK;
      return raw_->Create(path, data) == ZOK;
    };
    m.del = [this](const std::string& path) {
      const int rc = raw_->Delete(path);
      return rc == ZOK || rc == ZNONODE;
    };
    m.stop = [this] { zookeeper_->Stop(); };
    m.resume = [this] {
      absl::Status status = zookeeper_->Relaunch();
      if (status.ok() && !raw_->WaitConnected()) return absl::UnavailableError("raw client");
      return status;
    };
    return m;
  }

  std::unique_ptr<ZookeeperServer> zookeeper_;
  std::unique_ptr<ZookeeperTestClient> raw_;
  std::string base_;
};

TEST_F(ZookeeperWatchTest, WatchesRepairDriftAndSurviveARestart) {
  zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
  absl::StatusOr<std::unique_ptr<ZookeeperServer>> zk = ZookeeperServer::Start();
  ASSERT_THAT(zk, IsOk()) << zk.status();
  zookeeper_ = *std::move(zk);
  raw_ = std::make_unique<ZookeeperTestClient>(zookeeper_->address());
  ASSERT_TRUE(raw_->WaitConnected());
  base_ = absl::StrCat("/", test_name_);
  StartRegistrator({}, absl::StrCat("zookeeper://", zookeeper_->address(), base_));
  const int port_a = FreeLoopbackPort();
  const int port_b = FreeLoopbackPort();
  ASSERT_FALSE(
      RunContainer("e2e-watch-a", {"-p", Publish(port_a), "-e", "SERVICE_NAME=wa"}).empty());
  ASSERT_FALSE(
      RunContainer("e2e-watch-b", {"-p", Publish(port_b), "-e", "SERVICE_NAME=wb"}).empty());
  const Meddler m = Zk();
  const std::string key_a = absl::StrCat(base_, "/wa/127.0.0.1:", port_a);
  const std::string key_b = absl::StrCat(base_, "/wb/127.0.0.1:", port_b);
  ASSERT_TRUE(WaitFor([&] { return raw_->Exists(key_a) && raw_->Exists(key_b); }, absl::Seconds(20),
                      absl::Milliseconds(20)));
  const std::string want_a = raw_->Get(key_a).value_or("");
  const std::string want_b = raw_->Get(key_b).value_or("");
  ASSERT_TRUE(absl::StrContains(want_a, Id("e2e-watch-a"))) << want_a;
  RepairScenario(m, key_a, want_a, key_b, want_b, absl::StrCat(base_, "/wa/10.0.0.9:80"),
                 "{\"Name\":\"wa\",\"ID\":\"otherhost:x:80\"}", "zookeeper: watch broken");
}

}  // namespace
}  // namespace registrator
