// EventStream over HttpClient::Stream; see event_stream.h.
#include "docker_client/event_stream.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "docker_client/decode.h"
#include "registrator/common/backoff.h"
#include "registrator/common/log.h"

namespace registrator::docker {
namespace {

// Docker keeps the last 256 events for since= replays; remembering more delivered keys than
// that is enough to recognise every replayed duplicate.
constexpr size_t kRecentKeys = 1024;

// Podman parses since= as a float64 (testdata/podman/README.md): at today's times that is exact
// to about 0.24 µs, so "since=<last event's time>" may come back rounded up and skip an event
// that followed within that margin. Resuming 1 µs earlier cannot skip one; what it replays twice
// is dropped as a duplicate.
constexpr int64_t kSinceMarginNanos = 1000;

}  // namespace

std::string FormatDockerTimestamp(int64_t time_nano) {
  if (time_nano < 0) time_nano = 0;
  return absl::StrFormat("%d.%09d", time_nano / 1000000000, time_nano % 1000000000);
}

EventStream::EventStream(DockerClient& client, EventStreamOptions options)
    : client_(client), options_(std::move(options)) {}

EventStream::~EventStream() { Stop(); }

absl::Status EventStream::Start(EventSink* sink) {
  absl::MutexLock lock(&mu_);
  if (started_) return absl::FailedPreconditionError("Docker event stream already started");
  if (sink == nullptr) return absl::InvalidArgumentError("Docker event stream: null sink");
  started_ = true;
  sink_ = sink;
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void EventStream::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  cancel_.Cancel();
  if (thread_.joinable()) thread_.join();
}

bool EventStream::stopping() {
  absl::MutexLock lock(&mu_);
  return stopping_;
}

std::string EventStream::EventsPath() {
  std::string path = absl::StrCat("/events?filters=", UrlEncode(R"({"type":["container"]})"));
  if (last_time_nano_ > 0) {
    absl::StrAppend(&path, "&since=", FormatDockerTimestamp(last_time_nano_ - kSinceMarginNanos));
  }
  return client_.ApiPath(path);
}

void EventStream::Run() {
  Backoff backoff(options_.initial_backoff, options_.max_backoff);
  bool first = true;
  while (!stopping()) {
    HttpRequest request;
    request.path = EventsPath();
    pending_.clear();
    skipping_long_line_ = false;
    bool connected = false;
    const absl::Status status = client_.http().Stream(
        request, [this](absl::string_view data) { return OnData(data); }, &cancel_,
        [&] {
          connected = true;
          backoff.Reset();
          REG_LOG_INFO("Docker event stream connected: ", request.path);
          sink_->OnConnected(first);
          first = false;
        });
    if (stopping()) break;
    // Docker ends each event with a newline; a last line without one is still an event.
    if (!pending_.empty() && !skipping_long_line_) HandleLine(pending_);
    pending_.clear();
    const absl::Status why =
        status.ok() ? absl::UnavailableError("Docker closed the event stream") : status;
    if (connected) {
      REG_LOG_WARN("Docker event stream dropped: ", why.ToString());
      sink_->OnDisconnected(why);
    } else {
      REG_LOG_WARN("Docker event stream: cannot connect: ", why.ToString());
    }
    const absl::Duration delay = backoff.Next();
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), delay);
  }
}

bool EventStream::OnData(absl::string_view data) {
  if (stopping()) return false;
  while (!data.empty()) {
    const size_t newline = data.find('\n');
    if (newline == absl::string_view::npos) {
      if (!skipping_long_line_) {
        pending_.append(data.data(), data.size());
        if (pending_.size() > options_.max_line_bytes) {
          REG_LOG_WARN("Docker event stream: dropping a line longer than ", options_.max_line_bytes,
                       " bytes");
          pending_.clear();
          skipping_long_line_ = true;
        }
      }
      return true;
    }
    if (!skipping_long_line_) {
      pending_.append(data.data(), newline);
      HandleLine(pending_);
    }
    pending_.clear();
    skipping_long_line_ = false;
    data.remove_prefix(newline + 1);
  }
  return true;
}

void EventStream::HandleLine(absl::string_view line) {
  line = absl::StripAsciiWhitespace(line);
  if (line.empty()) return;
  absl::StatusOr<Event> event = ParseEventJson(line);
  if (!event.ok()) {
    REG_LOG_WARN("Docker event stream: skipping undecodable line (", event.status().message(),
                 "): ", line.substr(0, 200));
    return;
  }
  EventKey key(event->time_nano, event->id, event->action);
  if (recent_.count(key) > 0) {
    REG_LOG_DEBUG("Docker event stream: dropping replayed ", event->action, " of ", event->id);
    return;
  }
  recent_.insert(key);
  recent_order_.push_back(std::move(key));
  if (recent_order_.size() > kRecentKeys) {
    recent_.erase(recent_order_.front());
    recent_order_.pop_front();
  }
  if (event->time_nano > last_time_nano_) last_time_nano_ = event->time_nano;
  sink_->OnEvent(*event);
}

}  // namespace registrator::docker
