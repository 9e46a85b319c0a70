// The fault suites' shared fixture; see fault_test_base.h.
#include "testing/fault_test_base.h"

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "testing/process.h"

namespace registrator::fakes {

void FaultTest::SetUpTestSuite() {
  absl::StatusOr<std::unique_ptr<DockerdFixture>> docker = DockerdFixture::Start(absl::Minutes(10));
  ASSERT_TRUE(docker.ok()) << docker.status();
  docker_ = docker->release();
}

void FaultTest::StartApp(const std::string& container, const std::string& service,
                         const std::vector<std::string>& extra) {
  App app{service, FreeLoopbackPort()};
  std::vector<std::string> args = {"-p", Publish(app.port), "-e",
                                   absl::StrCat("SERVICE_NAME=", service)};
  args.insert(args.end(), extra.begin(), extra.end());
  apps_[container] = app;
  ASSERT_FALSE(RunContainer(container, args).empty()) << container;
}

void FaultTest::StopApp(const std::string& container) {
  ASSERT_EQ(docker_->Docker({"stop", "-t", "1", container}).exit_code, 0) << container;
}

std::set<std::string> FaultTest::ExpectedNow() {
  DockerdFixture::Result ps = docker_->Docker({"ps", "--format", "{{.Names}}"});
  std::set<std::string> expected;
  if (ps.exit_code != 0) {
    expected.insert("<docker ps failed>");
    return expected;
  }
  for (absl::string_view name : absl::StrSplit(ps.output, '\n', absl::SkipWhitespace())) {
    auto app = apps_.find(std::string(name));
    if (app != apps_.end()) expected.insert(ExpectedEntry(app->first, app->second));
  }
  return expected;
}

namespace {

std::vector<std::string> Minus(const std::set<std::string>& a, const std::set<std::string>& b) {
  std::vector<std::string> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

}  // namespace

void FaultTest::NoteBeforeHeal() {
  const std::set<std::string> held = Held();
  const std::set<std::string> expected = ExpectedNow();
  noted_lost_ = static_cast<int>(Minus(expected, held).size());
  noted_stale_ = static_cast<int>(Minus(held, expected).size());
}

FaultTest::Convergence FaultTest::ExpectConverges(const std::string& scenario, absl::Time healed,
                                                  absl::Duration timeout, absl::Duration settle) {
  Convergence result;
  std::set<std::string> held = Held();
  std::set<std::string> expected = ExpectedNow();
  result.lost_at_heal =
      noted_lost_ >= 0 ? noted_lost_ : static_cast<int>(Minus(expected, held).size());
  result.stale_at_heal =
      noted_stale_ >= 0 ? noted_stale_ : static_cast<int>(Minus(held, expected).size());
  noted_lost_ = noted_stale_ = -1;
  const absl::Time deadline = healed + timeout;
  absl::Time matched_since = absl::InfiniteFuture();
  while (true) {
    const absl::Time now = absl::Now();
    if (held == expected) {
      if (matched_since == absl::InfiniteFuture()) matched_since = now;
      if (now - matched_since >= settle) {
        result.converged = true;
        break;
      }
    } else {
      matched_since = absl::InfiniteFuture();
    }
    if (now > deadline) break;
    absl::SleepFor(absl::Milliseconds(100));
    held = Held();
    expected = ExpectedNow();
  }
  result.elapsed = (result.converged ? matched_since : absl::Now()) - healed;
  result.lost = Minus(expected, held);
  result.stale = Minus(held, expected);
  const std::string line = absl::StrFormat(
      "FAULT-RESULT | %s | %s | %s | lost %d | stale %d | (at heal: lost %d, stale %d)", scenario,
      BackendName(),
      result.converged ? absl::StrFormat("%.2f s", absl::ToDoubleSeconds(result.elapsed))
                       : absl::StrFormat("not within %.0f s", absl::ToDoubleSeconds(timeout)),
      result.lost.size(), result.stale.size(), result.lost_at_heal, result.stale_at_heal);
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  EXPECT_TRUE(result.converged) << line << "\nlost: " << absl::StrJoin(result.lost, ", ")
                                << "\nstale: " << absl::StrJoin(result.stale, ", ");
  return result;
}

void FaultTest::AwaitSteadyState() {
  std::set<std::string> held;
  std::set<std::string> expected;
  const bool steady = WaitFor(
      [&] {
        held = Held();
        expected = ExpectedNow();
        return held == expected;
      },
      absl::Seconds(30), absl::Milliseconds(100));
  ASSERT_TRUE(steady) << "before the fault: held {" << absl::StrJoin(held, ", ") << "}, expected {"
                      << absl::StrJoin(expected, ", ") << "}";
}

absl::Duration FaultTest::StopRegistratorMeasured(const std::string& scenario,
                                                  absl::Duration grace) {
  const absl::Time before = absl::Now();
  const int status = registrator_.Stop(grace);
  const absl::Duration took = absl::Now() - before;
  std::printf("FAULT-RESULT | %s | %s | SIGTERM -> exit %.2f s (status %d)\n", scenario.c_str(),
              BackendName().c_str(), absl::ToDoubleSeconds(took),
              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  std::fflush(stdout);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "exit status " << status << " (SIGKILLed after the grace period if signalled)";
  return took;
}

absl::Duration FaultTest::StopDuringHang(const std::string& scenario) {
  const absl::Duration took = StopRegistratorMeasured(scenario, absl::Seconds(10));
  const std::string output = registrator_.Output();
  const size_t signalled = output.find("received signal");
  EXPECT_NE(signalled, std::string::npos) << "no stop line:\n" << output;
  if (signalled == std::string::npos) return took;
  const size_t aborted = output.find("aborting their calls", signalled);
  if (aborted == std::string::npos) {
    // Nothing was running at the deadline (every call had failed before): nothing to cut short.
    std::printf("FAULT-RESULT-NOTE | %s | %s | no call was running at the stop deadline\n",
                scenario.c_str(), BackendName().c_str());
    return took;
  }
  int abandoned = 0;
  // A read cut short (the drift check's or a resync's listing) abandons no write; it says why
  // it failed.
  int reads_cut = 0;
  for (absl::string_view line : absl::StrSplit(absl::string_view(output).substr(aborted), '\n')) {
    if (absl::StrContains(line, " abandoned: ")) ++abandoned;
    if (absl::StrContains(line, "listing the backend failed") &&
        absl::StrContains(line, "registrator is stopping")) {
      ++reads_cut;
    }
    EXPECT_FALSE(absl::StrContains(line, "register ") && absl::StrContains(line, " failed: "))
        << "a write still running at the stop deadline ended by its own timeout, not by the "
           "abort: "
        << line;
  }
  EXPECT_GT(abandoned + reads_cut, 0) << "calls were aborted but none reports it:\n"
                                      << output.substr(aborted);
  std::printf(
      "FAULT-RESULT-NOTE | %s | %s | %d writes abandoned, %d listings cut at the stop deadline\n",
      scenario.c_str(), BackendName().c_str(), abandoned, reads_cut);
  std::fflush(stdout);
  return took;
}

}  // namespace registrator::fakes
