// Faults against the Consul stand-in (in this process; no real Consul can run here), with the
// registrator binary and a real dockerd: the agent down for 30 s while containers start and stop
// (with and without -resync), the agent hung (the stand-in's hang mode: requests are read and held
// unanswered, then applied in arrival order when released) with and without a SIGTERM to
// registrator during the hang, and a SIGKILLed registrator restarted with -cleanup. Every scenario
// ends with the agent holding exactly the running containers' services; the time that took (from
// the moment the fault healed) is printed as a FAULT-RESULT line.
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "simdjson.h"
#include "testing/consul_standin/consul_standin.h"
#include "testing/fault_test_base.h"
#include "testing/process.h"
#include "testing/status_matchers.h"

namespace registrator {
namespace {

using fakes::ConsulStandin;
using fakes::IsOk;
using fakes::WaitFor;

constexpr absl::Duration kOutage = absl::Seconds(30);
// Longer than registrator's HTTP request timeout (10 s): calls in flight give up.
constexpr absl::Duration kHang = absl::Seconds(12);

class ConsulFaultTest : public fakes::FaultTest {
 protected:
  void SetUp() override {
    EndToEndTest::SetUp();
    consul_ = std::make_unique<ConsulStandin>();
    ASSERT_THAT(consul_->ListenTcp(), IsOk());
    port_ = consul_->port();
  }
  void TearDown() override {
    consul_->SetHung(false);
    EndToEndTest::TearDown();
  }
  std::string BackendName() const override { return "consul (stand-in)"; }
  std::string BackendState() override {
    std::string state;
    for (const std::string& entry : Held()) absl::StrAppend(&state, entry, "\n");
    return absl::StrCat("\nagent services:\n", state);
  }
  // "<ID>=<Address>:<Port>" for every service the agent holds (read without HTTP, so the hang
  // mode does not hold the checker).
  std::set<std::string> Held() override {
    const fakes::StandinReply reply = consul_->Handle("GET", "/v1/agent/services", {}, "", {});
    if (reply.status != 200) return {absl::StrCat("<agent/services: ", reply.status, ">")};
    simdjson::ondemand::parser parser;
    simdjson::padded_string json(reply.body);
    simdjson::ondemand::document doc;
    simdjson::ondemand::object services;
    if (parser.iterate(json).get(doc) || doc.get_object().get(services)) {
      return {absl::StrCat("<unparsable: ", reply.body, ">")};
    }
    std::set<std::string> held;
    for (auto field : services) {
      std::string_view id;
      simdjson::ondemand::object service;
      std::string_view address;
      int64_t port = 0;
      if (field.unescaped_key().get(id) || field.value().get_object().get(service) ||
          service["Address"].get_string().get(address) || service["Port"].get_int64().get(port)) {
        return {absl::StrCat("<unparsable: ", reply.body, ">")};
      }
      held.insert(absl::StrCat(std::string(id), "=", std::string(address), ":", port));
    }
    return held;
  }
  std::string ExpectedEntry(const std::string& container, const App& app) const override {
    return absl::StrCat(Id(container), "=127.0.0.1:", app.port);
  }
  std::string Uri() const { return absl::StrCat("consul://127.0.0.1:", port_); }

  void DownWhileContainersChange(const std::vector<std::string>& flags,
                                 const std::string& scenario) {
    StartRegistrator(flags, Uri());
    StartApp("f-c-a", "a");
    StartApp("f-c-b", "b");
    AwaitSteadyState();
    consul_->Stop();  // The agent's state is kept, as a restarted agent reloads it.
    const absl::Time down = absl::Now();
    StopApp("f-c-a");
    StartApp("f-c-c", "c");
    absl::SleepFor(kOutage / 2 - (absl::Now() - down));  // The outage is the scenario.
    StopApp("f-c-b");
    StartApp("f-c-d", "d");
    absl::SleepFor(kOutage - (absl::Now() - down));
    ASSERT_THAT(consul_->ListenTcp("127.0.0.1", port_), IsOk());
    ExpectConverges(scenario, absl::Now());
    EXPECT_TRUE(registrator_.running());
  }

  std::unique_ptr<ConsulStandin> consul_;
  int port_ = 0;
};

TEST_F(ConsulFaultTest, DownFor30sWhileContainersChange) {
  DownWhileContainersChange({}, "backend down 30 s, no -resync");
}

TEST_F(ConsulFaultTest, DownFor30sWhileContainersChangeWithResync) {
  DownWhileContainersChange({"-resync", "5"}, "backend down 30 s, -resync 5");
}

TEST_F(ConsulFaultTest, HungWhileContainersChange) {
  StartRegistrator({}, Uri());
  StartApp("f-c-a", "a");
  StartApp("f-c-b", "b");
  AwaitSteadyState();
  consul_->SetHung(true);
  const absl::Time hung = absl::Now();
  StopApp("f-c-a");
  StartApp("f-c-c", "c");
  ASSERT_TRUE(WaitFor([&] { return consul_->held_requests() >= 2; }, absl::Seconds(10)))
      << "registrator's writes never reached the hung agent";
  absl::SleepFor(kHang - (absl::Now() - hung));  // The hang is the scenario.
  consul_->SetHung(false);
  ExpectConverges("backend hung 12 s (stand-in hang mode)", absl::Now());
  EXPECT_TRUE(registrator_.running());
}

TEST_F(ConsulFaultTest, SigtermDuringHangThenRestartWithCleanup) {
  StartRegistrator({}, Uri());
  StartApp("f-c-a", "a");
  StartApp("f-c-b", "b");
  AwaitSteadyState();
  consul_->SetHung(true);
  StopApp("f-c-a");
  StartApp("f-c-c", "c");
  ASSERT_TRUE(WaitFor([&] { return consul_->held_requests() >= 2; }, absl::Seconds(10)))
      << "registrator's writes never reached the hung agent";
  StopDuringHang("SIGTERM during backend hang");
  // The agent comes back and processes what it had read (registrator is gone by then).
  consul_->SetHung(false);
  NoteBeforeHeal();
  const absl::Time restarted = absl::Now();
  StartRegistrator({"-cleanup"}, Uri(), {}, "-2");
  ExpectConverges("SIGTERM during hang, restart with -cleanup", restarted);
}

TEST_F(ConsulFaultTest, SigkillWithChangesWhileDownThenRestartWithCleanup) {
  StartRegistrator({}, Uri());
  StartApp("f-c-a", "a");
  StartApp("f-c-b", "b");
  AwaitSteadyState();
  registrator_.Kill();
  StopApp("f-c-a");
  StartApp("f-c-c", "c");
  NoteBeforeHeal();
  const absl::Time restarted = absl::Now();
  StartRegistrator({"-cleanup"}, Uri(), {}, "-2");
  ExpectConverges("SIGKILL, changes while down, restart with -cleanup", restarted);
}

}  // namespace
}  // namespace registrator
