// EventStream resuming against an engine that parses since= as Podman 4.3 does (strconv.ParseFloat
// then math.Modf, then "strictly after"): no event may be lost across a reconnect, even one that
// followed the last delivered event by a few nanoseconds.
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "docker_client/docker_client.h"
#include "docker_client/event_stream.h"
#include "docker_client/fake_docker_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/process.h"

namespace registrator::docker {
namespace {

using ::testing::ElementsAre;

class RecordingSink : public EventSink {
 public:
  void OnEvent(const Event& e) override { Add(absl::StrCat(e.action, " ", e.time_nano)); }
  void OnConnected(bool first) override { Add(first ? "connected first" : "connected again"); }
  void OnDisconnected(const absl::Status&) override { Add("disconnected"); }
  std::vector<std::string> calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  bool WaitForCount(size_t n) {
    return fakes::WaitFor([&] { return calls().size() >= n; }, absl::Seconds(10));
  }

 private:
  void Add(std::string call) {
    absl::MutexLock lock(&mu_);
    calls_.push_back(std::move(call));
  }
  absl::Mutex mu_;
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
};

// A line as Podman 4.3 sends it (testdata/podman/events-container-filtered.jsonl).
std::string PodmanEvent(const std::string& action, int64_t time_nano) {
  const std::string id = "21478a13c420dab4e5e102f66c6e3100253f31ccbdeaf5316cb1ee384068c2f4";
  return absl::StrCat(
      R"({"status":")", action, R"(","id":")", id,
      R"(","from":"localhost/registrator-test/busybox:1","Type":"container","Action":")", action,
      R"(","Actor":{"ID":")", id,
      R"(","Attributes":{"containerExitCode":"0","image":"localhost/registrator-test/busybox:1","name":"pm-labels","podId":""}},"scope":"local","time":)",
      time_nano / 1000000000, R"(,"timeNano":)", time_nano, "}\n");
}

// Podman's reading of since= (pkg/util ParseInputTime): a float64 split into whole seconds and
// nanoseconds, as nanoseconds since the epoch.
int64_t PodmanSince(const std::string& target) {
  const size_t at = target.find("&since=");
  EXPECT_NE(at, std::string::npos) << target;
  const double since = std::strtod(target.c_str() + at + 7, nullptr);
  double whole = 0;
  const double fraction = std::modf(since, &whole);
  return static_cast<int64_t>(whole) * 1000000000 + static_cast<int64_t>(fraction * 1e9);
}

TEST(PodmanEventStream, ResumesWithoutLosingAnEventRightAfterTheLastOne) {
  FakeDockerServer server;
  server.SetResponse("/version", 200, fakes::ReadFileOrEmpty("testdata/podman/version.json"));
  ASSERT_TRUE(server.Start().ok());
  std::unique_ptr<DockerClient> client = *DockerClient::ForHost(server.host());
  // From the capture: this kill's time as a float64 rounds *up* by 50 ns.
  constexpr int64_t kKill = 1796231208808748910;
  constexpr int64_t kDie = kKill + 10;  // Podman writes events nanoseconds apart at times.
  const std::vector<std::pair<std::string, int64_t>> history = {{"kill", kKill}, {"die", kDie}};

  RecordingSink sink;
  EventStreamOptions options;
  options.initial_backoff = absl::Milliseconds(20);
  options.max_backoff = absl::Milliseconds(100);
  EventStream stream(*client, options);
  ASSERT_TRUE(stream.Start(&sink).ok());
  ASSERT_TRUE(sink.WaitForCount(1));
  server.PushEvents(PodmanEvent("kill", kKill));
  ASSERT_TRUE(sink.WaitForCount(2));
  // The stream drops before "die" is sent; on reconnect the engine replays its log after since=.
  server.DropEventStreams();
  ASSERT_TRUE(
      fakes::WaitFor([&] { return server.event_targets().size() >= 2; }, absl::Seconds(10)));
  const int64_t since = PodmanSince(server.event_targets()[1]);
  std::string replay;
  for (const auto& [action, time] : history) {
    if (time > since) absl::StrAppend(&replay, PodmanEvent(action, time));
  }
  // Then a live event, so that the test never waits for one that will not come.
  constexpr int64_t kStart = kDie + 1000000000;
  server.PushEvents(replay + PodmanEvent("start", kStart));
  ASSERT_TRUE(fakes::WaitFor(
      [&] {
        return !sink.calls().empty() && sink.calls().back() == absl::StrCat("start ", kStart);
      },
      absl::Seconds(10)))
      << ::testing::PrintToString(sink.calls());
  stream.Stop();
  EXPECT_THAT(
      sink.calls(),
      ElementsAre("connected first", absl::StrCat("kill ", kKill), "disconnected",
                  "connected again", absl::StrCat("die ", kDie), absl::StrCat("start ", kStart)));
}

}  // namespace
}  // namespace registrator::docker
