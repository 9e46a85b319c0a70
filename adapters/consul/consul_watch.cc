// BlockingWatch (see consul_watch.h): the blocking-query loop with Consul's documented client
// rules (api-docs/features/blocking, "Implementation details"): reset the index when it goes
// backwards, never block on an index below 1, rate-limit the loop.
#include "adapters/consul/consul_watch.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "registrator/common/backoff.h"
#include "registrator/common/log.h"

namespace registrator::consul {
namespace {

constexpr char kIndexHeader[] = "X-Consul-Index";
constexpr char kHashHeader[] = "X-Consul-ContentHash";

// Go duration syntax for ?wait=, whole seconds or milliseconds.
std::string WaitParam(absl::Duration wait) {
  if (wait % absl::Seconds(1) == absl::ZeroDuration()) {
    return absl::StrCat(absl::ToInt64Seconds(wait), "s");
  }
  return absl::StrCat(absl::ToInt64Milliseconds(wait), "ms");
}

}  // namespace

BlockingWatch::BlockingWatch(HttpEndpoint endpoint, const AdapterOptions& options, std::string path,
                             BlockOn block_on, std::string name, BlockingWatchOptions watch_options)
    : agent_(std::move(endpoint), options),
      path_(std::move(path)),
      block_on_(block_on),
      name_(std::move(name)),
      watch_options_(watch_options) {}

BlockingWatch::~BlockingWatch() { Stop(); }

absl::Status BlockingWatch::Start(std::function<void()> drifted) {
  if (thread_.joinable()) return absl::FailedPreconditionError("the watch is already running");
  {
    absl::MutexLock lock(&mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this, drifted = std::move(drifted)] { Run(drifted); });
  return absl::OkStatus();
}

void BlockingWatch::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (cancel_ != nullptr) cancel_->Cancel();
  }
  if (thread_.joinable()) thread_.join();
}

void BlockingWatch::NoteOwnWrite() {
  if (block_on_ != BlockOn::kHash) return;
  absl::MutexLock lock(&mu_);
  ++own_writes_;
  if (parked_on_hash_ && cancel_ != nullptr) cancel_->Cancel();
}

bool BlockingWatch::OwnWriteSinceBaseline() const {
  if (block_on_ != BlockOn::kHash) return false;
  absl::MutexLock lock(&mu_);
  return own_writes_ != baseline_writes_;
}

int64_t BlockingWatch::requests() const {
  absl::MutexLock lock(&mu_);
  return requests_;
}

bool BlockingWatch::SleepUntil(absl::Time until) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithDeadline(absl::Condition(&stopping_), until);
  return !stopping_;
}

void BlockingWatch::Run(const std::function<void()>& drifted) {
  Backoff backoff(watch_options_.backoff_initial, watch_options_.backoff_max);
  // The baseline: no index/hash yet means the next read does not block (index 0).
  uint64_t index = 0;
  std::string hash;
  bool have_baseline = false;
  bool broken = false;
  const char separator = path_.find('?') == std::string::npos ? '?' : '&';
  // Consul adds up to wait/16 of jitter; give the transfer that plus slack before calling the
  // connection dead.
  const absl::Duration timeout = watch_options_.wait + watch_options_.wait / 16 + absl::Seconds(15);
  absl::Time last_fresh_read = absl::InfinitePast();
  while (true) {
    if (have_baseline && OwnWriteSinceBaseline()) {
      // Our write since that read: the hash may be what a deletion brings back (see
      // NoteOwnWrite). Read afresh instead of parking on it, at most once per min_interval so a
      // burst of our writes (10,000 registers at start) does not become a busy poll.
      have_baseline = false;
      if (!SleepUntil(last_fresh_read + watch_options_.min_interval)) return;
    }
    std::string path = path_;
    if (have_baseline) {
      if (block_on_ == BlockOn::kIndex) {
        // Never block on an index below 1: index=0 answers at once, which would spin.
        absl::StrAppend(&path, std::string(1, separator), "index=", std::max<uint64_t>(index, 1));
      } else {
        absl::StrAppend(&path, std::string(1, separator), "hash=", UrlEncode(hash));
      }
      absl::StrAppend(&path, "&wait=", WaitParam(watch_options_.wait));
    }
    const absl::Time started = absl::Now();
    StreamCancel* cancel = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      if (have_baseline && block_on_ == BlockOn::kHash && own_writes_ != baseline_writes_) {
        have_baseline = false;  // As above; a write that came in since then.
        path = path_;
      }
      if (!have_baseline) {
        baseline_writes_ = own_writes_;
        last_fresh_read = started;
      }
      parked_on_hash_ = have_baseline && block_on_ == BlockOn::kHash;
      cancel_ = std::make_unique<StreamCancel>();
      cancel = cancel_.get();
      ++requests_;
    }
    absl::StatusOr<HttpResponse> response =
        agent_.LongPoll(path, timeout, {kIndexHeader, kHashHeader}, cancel);
    bool overtaken = false;  // Cut short by our own write (NoteOwnWrite), not by Stop.
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      overtaken = parked_on_hash_ && cancel_->cancelled();
      parked_on_hash_ = false;
      cancel_ = nullptr;
    }
    // The next round reads afresh (own_writes_ moved) and reports what it finds.
    if (overtaken) continue;
    // What this answer says; an empty error means it is usable.
    std::string error;
    uint64_t new_index = 0;
    std::string new_hash;
    if (!response.ok()) {
      error = std::string(response.status().message());
    } else if (response->status != 200 &&
               !(block_on_ == BlockOn::kIndex && response->status == 404)) {
      // (A KV prefix with no key answers 404, with an index to block on.)
      error = StatusFromResponse(*response, absl::StrCat(name_, " watch")).ToString();
    } else if (block_on_ == BlockOn::kIndex &&
               !absl::SimpleAtoi(response->Header(kIndexHeader), &new_index)) {
      error = absl::StrCat("the answer has no ", kIndexHeader, " (is this Consul?)");
    } else if (block_on_ == BlockOn::kHash && (new_hash = response->Header(kHashHeader)).empty()) {
      error = absl::StrCat("the answer has no ", kHashHeader, " (Consul before 1.3?)");
    }
    if (!error.empty()) {
      if (!broken) {
        REG_LOG_WARN(name_, ": watch of ", path_, " broken (", error,
                     "); drift is repaired by refresh/resync until it is back; retrying");
        broken = true;
        drifted();
      }
      // Whatever happened meanwhile, start over from a fresh read.
      have_baseline = false;
      if (!SleepUntil(absl::Now() + backoff.Next())) return;
      continue;
    }
    backoff.Reset();
    if (!have_baseline) {
      // A fresh read: the entries may have changed before it (at start, after a break, after a
      // reset, after a change), so the bridge checks once, and this read is the new baseline.
      if (broken) REG_LOG_INFO(name_, ": watch of ", path_, " re-established");
      broken = false;
      have_baseline = true;
      index = new_index;
      hash = new_hash;
      drifted();
      continue;
    }
    if (block_on_ == BlockOn::kIndex && new_index < index) {
      // The index went backwards (the agent restarted without its data, a snapshot was
      // restored, tombstones were reaped): our index means nothing any more. Reset to 0: the
      // next read answers at once, gives a new baseline and reports the drift.
      have_baseline = false;
      continue;
    }
    // Equal: the wait ran out (or an idempotent write); nothing to report.
    if (block_on_ == BlockOn::kIndex ? new_index == index : new_hash == hash) continue;
    drifted();
    if (block_on_ == BlockOn::kIndex) {
      // An index only grows: whatever happens during the pause below moves it past this one.
      index = new_index;
    } else {
      // A hash does not: the bridge's repair (a new hash) and another deletion (back to this
      // hash) during the pause would look like no change at all, and the watch would park on a
      // listing that lacks an entry. So the read after the pause is a fresh one, reported
      // unconditionally, and the watch parks on what it returned, with no gap in between.
      have_baseline = false;
    }
    if (!SleepUntil(started + watch_options_.min_interval)) return;
  }
}

}  // namespace registrator::consul
