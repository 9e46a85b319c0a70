// The etcd drift watch (see etcd_watch.h).
#include "adapters/etcd/etcd_watch.h"

#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "adapters/etcd/etcd_codec.h"
#include "registrator/common/backoff.h"
#include "registrator/common/log.h"

namespace registrator::etcd {
namespace {

// Reconnect backoff: quick at first (a restarted member is back within a second or two), and
// never so slow that a repaired backend waits long for its repairs.
constexpr absl::Duration kRetryInitial = absl::Milliseconds(250);
constexpr absl::Duration kRetryMax = absl::Seconds(5);
// A v3 stream line or a v2 event bigger than this is not a watch message.
constexpr size_t kMaxMessageBytes = 8 << 20;

}  // namespace

Watcher::Watcher(Transport* transport, std::string key_prefix, std::string v2_dir_path)
    : transport_(transport),
      key_prefix_(std::move(key_prefix)),
      v2_dir_path_(std::move(v2_dir_path)) {}

Watcher::~Watcher() { Stop(); }

void Watcher::Start(std::function<void()> drifted) {
  drifted_ = std::move(drifted);
  thread_ = std::thread([this] { Run(); });
}

void Watcher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (cancel_ != nullptr) cancel_->Cancel();
    cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<StreamCancel> Watcher::NextCancel() {
  absl::MutexLock lock(&mu_);
  if (stopping_) return nullptr;
  cancel_ = std::make_shared<StreamCancel>();
  return cancel_;
}

bool Watcher::Sleep(absl::Duration delay) {
  const absl::Time deadline = absl::Now() + delay;
  absl::MutexLock lock(&mu_);
  while (!stopping_ && !cv_.WaitWithDeadline(&mu_, deadline)) {
  }
  return !stopping_;
}

void Watcher::Live() {
  if (broken_) {
    REG_LOG_INFO(transport_->backend_name(), ": watch re-established; checking for drift");
    broken_ = false;
  }
  // Also the first time: whatever changed before the watch was live is found by one listing.
  drifted_();
}

void Watcher::Run() {
  int failures = 0;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
    }
    // Not Api(): its /version probe could hold Stop() for a request's timeout. The bridge's
    // first call probes; until then there is nothing to watch anyway.
    std::optional<ApiChoice> api = transport_->KnownApi();
    if (!api.has_value()) {
      if (!Sleep(kRetryInitial)) break;
      continue;
    }
    bool live = false;
    absl::Status status;
    if (api->api == EtcdApi::kV2) {
      status = WaitV2(*api, &live);
    } else {
      status = WatchV3(*api, &live);
    }
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
    }
    if (live) failures = 0;
    if (status.ok()) continue;  // A v2 event, or a v3 watch restarted after a compaction.
    if (!broken_) {
      REG_LOG_WARN(transport_->backend_name(), ": watch broken (", status.message(),
                   "); drift is repaired by -resync/-ttl-refresh until it is back");
      broken_ = true;
      drifted_();
    } else {
      REG_LOG_DEBUG(transport_->backend_name(), ": watch still down: ", status.message());
    }
    if (!Sleep(BackoffDelay(kRetryInitial, kRetryMax, failures++, 0.5))) break;
  }
}

absl::Status Watcher::WatchV3(const ApiChoice& api, bool* live) {
  std::shared_ptr<StreamCancel> cancel = NextCancel();
  if (cancel == nullptr) return absl::CancelledError("stopping");
  HttpRequest request;
  request.method = "POST";
  request.path = absl::StrCat(api.v3_base, "/watch");
  request.headers = {"Content-Type: application/json"};
  request.body = V3WatchCreateBody(key_prefix_, PrefixRangeEnd(key_prefix_), next_revision_);
  std::string buffer;
  absl::Status failure;    // What ended the stream from our side.
  bool compacted = false;  // The resume revision is gone: watch again from now.
  auto on_data = [&](absl::string_view data) {
    buffer.append(data.data(), data.size());
    size_t start = 0;
    for (size_t end; (end = buffer.find('\n', start)) != std::string::npos; start = end + 1) {
      absl::string_view line(buffer.data() + start, end - start);
      if (line.empty() || line == "\r") continue;
      absl::StatusOr<WatchMessage> message = ParseV3WatchMessage(line);
      if (!message.ok()) {
        failure = message.status();
        return false;
      }
      if (message->compact_revision > 0) {
        REG_LOG_INFO(transport_->backend_name(), ": watch resumed at revision ", next_revision_,
                     ", compacted (up to ", message->compact_revision,
                     "); checking everything and watching from now");
        next_revision_ = 0;
        compacted = true;
        drifted_();
        return false;
      }
      if (message->canceled) {
        failure = absl::UnavailableError(
            absl::StrCat("watch canceled by etcd: ", message->cancel_reason));
        return false;
      }
      // Everything up to the header's revision has been delivered (events and progress
      // notifications alike): a reconnect resumes after it.
      if (message->revision > 0) next_revision_ = message->revision + 1;
      if (message->created) {
        *live = true;
        Live();
      }
      if (message->events > 0) drifted_();
    }
    buffer.erase(0, start);
    if (buffer.size() > kMaxMessageBytes) {
      failure = absl::ResourceExhaustedError("watch message too large");
      return false;
    }
    return true;
  };
  absl::Status status = transport_->Stream(api, std::move(request), on_data, cancel.get(), nullptr);
  if (compacted) return absl::OkStatus();
  if (!failure.ok()) return failure;
  if (status.ok()) return absl::UnavailableError("etcd closed the watch stream");
  return status;
}

absl::Status Watcher::WaitV2(const ApiChoice& api, bool* live) {
  std::shared_ptr<StreamCancel> cancel = NextCancel();
  if (cancel == nullptr) return absl::CancelledError("stopping");
  HttpRequest request;
  request.path = absl::StrCat(v2_dir_path_, "?wait=true&recursive=true");
  if (wait_index_ > 0) absl::StrAppend(&request.path, "&waitIndex=", wait_index_);
  std::string body;
  auto on_data = [&](absl::string_view data) {
    body.append(data.data(), data.size());
    return body.size() <= kMaxMessageBytes;
  };
  // etcd flushes the headers at once, before any event: the wait is in place from then on.
  auto on_live = [&] {
    *live = true;
    // Only when it was down (or the first time): a wait per event must not cost a listing.
    if (broken_ || wait_index_ == 0) Live();
  };
  absl::Status status = transport_->Stream(api, std::move(request), on_data, cancel.get(), on_live);
  if (!status.ok()) {
    // errorCode 401, "The event in requested index is outdated and cleared": more than etcd's
    // 1000 remembered events happened since; whatever they were, one listing finds it.
    if (absl::StrContains(status.message(), "\"errorCode\":401")) {
      REG_LOG_INFO(transport_->backend_name(), ": watch index ", wait_index_,
                   " cleared; checking everything and waiting from now");
      wait_index_ = 0;
      drifted_();
      return absl::OkStatus();
    }
    return status;
  }
  if (body.empty()) return absl::OkStatus();  // Closed without an event: wait again.
  absl::StatusOr<int64_t> index = ParseV2WatchEvent(body);
  if (!index.ok()) return index.status();
  wait_index_ = *index + 1;
  drifted_();
  return absl::OkStatus();
}

}  // namespace registrator::etcd
