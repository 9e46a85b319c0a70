// The etcd-family drift watch (RegistryAdapter::StartWatch, issue 16): one thread holding one
// long poll on the adapter's prefix, reporting every change under it.
//
// v3: a watch stream through the JSON gateway's POST <base>/watch, with progress notifications;
// after a reconnect it resumes from the last revision seen + 1, and when that revision was
// compacted away it reports (the bridge re-checks everything) and watches from now.
// v2: GET /v2/keys<prefix>/?wait=true&recursive=true&waitIndex=<last modifiedIndex + 1>, one
// event per request; "event index cleared" (errorCode 401) reports and waits from now.
// A broken watch (server gone, stream closed, bad reply) is logged once, reported, and tried
// again with backoff; once it is live again that is logged and reported too. Steady state: no
// requests at all beyond the one held open.
#ifndef ADAPTERS_ETCD_ETCD_WATCH_H_
#define ADAPTERS_ETCD_ETCD_WATCH_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "adapters/etcd/etcd_transport.h"

namespace registrator::etcd {

class Watcher {
 public:
  // `key_prefix`: every key of the adapter starts with it ("<prefix>/"); `v2_dir_path`: the v2
  // keys path of the prefix directory ("/v2/keys/a/b/").
  Watcher(Transport* transport, std::string key_prefix, std::string v2_dir_path);
  ~Watcher();
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  // Starts the watch thread (no network call here); `drifted` is called from it.
  void Start(std::function<void()> drifted);
  // Ends the long poll and joins the thread; `drifted` is not called after it returns.
  void Stop();

 private:
  void Run();
  // One v3 watch stream, until it ends (OK: restart at once, after a compaction). Sets *live
  // once etcd created the watch.
  absl::Status WatchV3(const ApiChoice& api, bool* live);
  // One v2 wait, until its event (OK) or an error. Sets *live once etcd answered.
  absl::Status WaitV2(const ApiChoice& api, bool* live);
  // A fresh StreamCancel for the next long poll; nullptr once stopping.
  std::shared_ptr<StreamCancel> NextCancel();
  // Sleeps up to `delay`; false when stopping.
  bool Sleep(absl::Duration delay);
  // The watch is live: logs a recovery and reports (a listing finds what happened meanwhile).
  void Live();

  Transport* const transport_;
  const std::string key_prefix_;
  const std::string v2_dir_path_;
  std::function<void()> drifted_;  // Set before the thread starts.
  // Watch thread only: where to resume.
  int64_t next_revision_ = 0;  // v3: 0 = from now.
  int64_t wait_index_ = 0;     // v2: 0 = from now.
  bool broken_ = false;        // Logged as broken, not live since.

  absl::Mutex mu_;
  absl::CondVar cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<StreamCancel> cancel_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace registrator::etcd

#endif  // ADAPTERS_ETCD_ETCD_WATCH_H_
