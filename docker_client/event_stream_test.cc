// EventStream against a fake dockerd: line splitting across chunks, bad lines, reconnect with
// since= and duplicate dropping, backoff on refused streams, and prompt Stop().
#include "docker_client/event_stream.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "docker_client/docker_client.h"
#include "docker_client/fake_docker_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/process.h"

namespace registrator::docker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// Records every sink call as one readable string, in order.
class RecordingSink : public EventSink {
 public:
  void OnEvent(const Event& e) override {
    Add(absl::StrCat("event ", e.action, " ", e.id, " ", e.name, " ", e.exit_code, " ",
                     e.time_nano));
  }
  void OnConnected(bool first) override { Add(first ? "connected first" : "connected again"); }
  void OnDisconnected(const absl::Status& why) override {
    Add(absl::StrCat("disconnected ", absl::StatusCodeToString(why.code())));
  }
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

std::string EventLine(const std::string& action, const std::string& id, int64_t time_nano,
                      const std::string& extra_attributes = "") {
  return absl::StrCat(R"({"status":")", action, R"(","id":")", id,
                      R"(","from":"img:1","Type":"container","Action":")", action,
                      R"(","Actor":{"ID":")", id, R"(","Attributes":{)", extra_attributes,
                      R"("image":"img:1","name":"n-)", id, R"("}},"scope":"local","time":)",
                      time_nano / 1000000000, R"(,"timeNano":)", time_nano, "}\n");
}

constexpr int64_t kT0 = 1795767505366927270;

class EventStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.SetResponse("/version", 200, R"({"Version":"20.10.24","ApiVersion":"1.41"})");
    ASSERT_TRUE(server_.Start().ok());
    client_ = *DockerClient::ForHost(server_.host());
  }
  void TearDown() override {
    stream_.reset();
    client_.reset();
  }
  void StartStream(EventStreamOptions options = {}) {
    stream_ = std::make_unique<EventStream>(*client_, options);
    ASSERT_TRUE(stream_->Start(&sink_).ok());
  }

  FakeDockerServer server_;
  std::unique_ptr<DockerClient> client_;
  RecordingSink sink_;
  std::unique_ptr<EventStream> stream_;
};

TEST_F(EventStreamTest, SplitsLinesAcrossChunksAndSkipsBadLines) {
  StartStream();
  ASSERT_TRUE(sink_.WaitForCount(1));
  EXPECT_THAT(server_.event_targets(),
              ElementsAre("/v1.41/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D"));

  const std::string start = EventLine("start", "aaa", kT0);
  const std::string die = EventLine("die", "aaa", kT0 + 5, R"("exitCode":"137",)");
  const std::string destroy = EventLine("destroy", "aaa", kT0 + 9);
  // One event in three pieces, then two events and a half in one chunk, then the rest, with a
  // garbage line, a blank line and a CRLF-terminated line in between.
  server_.PushEvents(start.substr(0, 10));
  server_.PushEvents(start.substr(10, 30));
  server_.PushEvents(start.substr(40));
  server_.PushEvents(absl::StrCat("this is not json\n\n", die.substr(0, die.size() - 1), "\r\n",
                                  destroy.substr(0, 20)));
  server_.PushEvents(destroy.substr(20));
  ASSERT_TRUE(sink_.WaitForCount(4));
  EXPECT_THAT(sink_.calls(),
              ElementsAre("connected first", absl::StrCat("event start aaa n-aaa  ", kT0),
                          absl::StrCat("event die aaa n-aaa 137 ", kT0 + 5),
                          absl::StrCat("event destroy aaa n-aaa  ", kT0 + 9)));
  stream_->Stop();
  EXPECT_THAT(sink_.calls(), SizeIs(4));  // Stop() delivers nothing more.
}

TEST_F(EventStreamTest, ReconnectsWithSinceAndDropsReplayedDuplicates) {
  EventStreamOptions options;
  options.initial_backoff = absl::Milliseconds(20);
  options.max_backoff = absl::Milliseconds(200);
  StartStream(options);
  ASSERT_TRUE(sink_.WaitForCount(1));
  server_.PushEvents(EventLine("create", "bbb", kT0) + EventLine("start", "bbb", kT0 + 1000));
  ASSERT_TRUE(sink_.WaitForCount(3));

  server_.DropEventStreams();
  ASSERT_TRUE(sink_.WaitForCount(5));  // disconnected, connected again
  ASSERT_THAT(server_.event_targets(), SizeIs(2));
  EXPECT_EQ(server_.event_targets()[1],
            "/v1.41/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D&since=1795767505."
            "366927270");  // 1 µs before the last event (Podman's float since=).
  // Docker replays events at or after since=: the last one again, then what is new.
  server_.PushEvents(EventLine("start", "bbb", kT0 + 1000) + EventLine("die", "bbb", kT0 + 2000) +
                     EventLine("start", "ccc", kT0 + 1000));
  ASSERT_TRUE(sink_.WaitForCount(7));
  EXPECT_THAT(
      sink_.calls(),
      ElementsAre("connected first", absl::StrCat("event create bbb n-bbb  ", kT0),
                  absl::StrCat("event start bbb n-bbb  ", kT0 + 1000), "disconnected UNAVAILABLE",
                  "connected again", absl::StrCat("event die bbb n-bbb  ", kT0 + 2000),
                  // Same time as a delivered event but another container: not a dup.
                  absl::StrCat("event start ccc n-ccc  ", kT0 + 1000)));

  // The next resume uses the newest delivered time.
  server_.DropEventStreams();
  ASSERT_TRUE(
      fakes::WaitFor([&] { return server_.event_targets().size() >= 3; }, absl::Seconds(10)));
  EXPECT_THAT(server_.event_targets()[2], HasSubstr("&since=1795767505.366928270"));
}

TEST_F(EventStreamTest, CleanEndOfStreamIsADisconnectAndReconnectsWithoutSince) {
  EventStreamOptions options;
  options.initial_backoff = absl::Milliseconds(10);
  options.max_backoff = absl::Milliseconds(50);
  StartStream(options);
  ASSERT_TRUE(sink_.WaitForCount(1));
  server_.EndEventStreams();
  ASSERT_TRUE(sink_.WaitForCount(3));
  EXPECT_THAT(sink_.calls(),
              ElementsAre("connected first", "disconnected UNAVAILABLE", "connected again"));
  // Nothing was delivered yet, so there is no since= to resume from.
  ASSERT_THAT(server_.event_targets(), SizeIs(2));
  EXPECT_EQ(server_.event_targets()[1], server_.event_targets()[0]);
}

TEST_F(EventStreamTest, RefusedStreamIsRetriedWithoutConnecting) {
  server_.FailEvents(500, R"({"message":"daemon busy"})");
  EventStreamOptions options;
  options.initial_backoff = absl::Milliseconds(10);
  options.max_backoff = absl::Milliseconds(50);
  StartStream(options);
  ASSERT_TRUE(
      fakes::WaitFor([&] { return server_.event_targets().size() >= 3; }, absl::Seconds(10)));
  stream_->Stop();
  // Never live, so neither connected nor disconnected was reported.
  EXPECT_THAT(sink_.calls(), IsEmpty());
}

TEST_F(EventStreamTest, StopWhileStreamIsIdleReturnsPromptly) {
  StartStream();
  ASSERT_TRUE(sink_.WaitForCount(1));
  ASSERT_TRUE(fakes::WaitFor([&] { return server_.open_event_streams() == 1; }, absl::Seconds(10)));
  const absl::Time before = absl::Now();
  stream_->Stop();
  // Liveness bound, not a performance target: without cancellation Stop would hang here.
  EXPECT_LT(absl::Now() - before, absl::Seconds(3));
  EXPECT_THAT(sink_.calls(), ElementsAre("connected first"));
  stream_->Stop();  // Idempotent.
}

TEST(EventStreamBackoff, StopDuringBackoffReturnsPromptly) {
  fakes::TempDir dir("evs");
  std::unique_ptr<DockerClient> client =
      *DockerClient::ForHost("unix://" + dir.path() + "/no.sock");
  EventStreamOptions options;
  options.initial_backoff = absl::Seconds(60);
  options.max_backoff = absl::Seconds(60);
  RecordingSink sink;
  EventStream stream(*client, options);
  ASSERT_TRUE(stream.Start(&sink).ok());
  EXPECT_EQ(stream.Start(&sink).code(), absl::StatusCode::kFailedPrecondition);
  absl::SleepFor(absl::Milliseconds(200));  // Let it fail once and enter the 60 s backoff.
  const absl::Time before = absl::Now();
  stream.Stop();
  EXPECT_LT(absl::Now() - before, absl::Seconds(10));
  EXPECT_THAT(sink.calls(), IsEmpty());
}

TEST(FormatDockerTimestamp, SecondsDotNanos) {
  EXPECT_EQ(FormatDockerTimestamp(1795767505366927270), "1795767505.366927270");
  EXPECT_EQ(FormatDockerTimestamp(1000000000), "1.000000000");
  EXPECT_EQ(FormatDockerTimestamp(5), "0.000000005");
  EXPECT_EQ(FormatDockerTimestamp(-1), "0.000000000");
}

}  // namespace
}  // namespace registrator::docker
