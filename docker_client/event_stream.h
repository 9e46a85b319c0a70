// EventStream: follows Docker's GET /events (container events) on its own thread and hands each
// decoded event to an EventSink, in order. It reconnects with capped exponential backoff when
// the stream drops, resumes with since=<last delivered event's time, less 1 µs> so Docker replays
// what happened meanwhile (from its in-memory buffer; Podman from its events log), and drops the
// replayed duplicates.
#ifndef DOCKER_CLIENT_EVENT_STREAM_H_
#define DOCKER_CLIENT_EVENT_STREAM_H_

#include <cstdint>
#include <deque>
#include <set>
#include <string>
#include <thread>
#include <tuple>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "docker_client/docker_api.h"
#include "docker_client/docker_client.h"
#include "registrator/common/http_client.h"

namespace registrator::docker {

struct EventStreamOptions {
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  // A line longer than this without a newline is not a Docker event: it is dropped.
  size_t max_line_bytes = 1 << 20;
};

// "1795767505.366927270": the seconds.nanoseconds form Docker's since= accepts.
std::string FormatDockerTimestamp(int64_t time_nano);

class EventStream {
 public:
  EventStream(DockerClient& client, EventStreamOptions options = {});
  ~EventStream();  // Stops.
  EventStream(const EventStream&) = delete;
  EventStream& operator=(const EventStream&) = delete;

  // Starts the stream thread. `sink` must outlive Stop(). The first connect has no since=: the
  // caller resyncs after OnConnected(true). FAILED_PRECONDITION if already started.
  absl::Status Start(EventSink* sink);
  // Cancels the stream promptly (also a backoff wait) and joins the thread. Idempotent. After
  // Stop returns no sink method runs any more.
  void Stop();

 private:
  // Key of a delivered event, to recognise it when since= replays it.
  using EventKey = std::tuple<int64_t, std::string, std::string>;

  void Run();
  // Splits `data` into lines (keeping a partial line in `pending_`) and delivers each event.
  bool OnData(absl::string_view data);
  void HandleLine(absl::string_view line);
  std::string EventsPath();
  bool stopping();

  DockerClient& client_;
  const EventStreamOptions options_;
  EventSink* sink_ = nullptr;
  std::thread thread_;
  StreamCancel cancel_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;

  // Owned by the stream thread only.
  std::string pending_;
  bool skipping_long_line_ = false;
  int64_t last_time_nano_ = 0;
  std::deque<EventKey> recent_order_;
  std::set<EventKey> recent_;
};

}  // namespace registrator::docker

#endif  // DOCKER_CLIENT_EVENT_STREAM_H_
