// Drift watching for the Consul adapters (issue 16): one Consul read held open as a blocking
// query (api-docs/features/blocking), re-issued after every answer, calling `drifted` whenever
// the answer may have changed. Steady state is one parked request per `wait` (5 minutes): no
// polling and no writes.
#ifndef ADAPTERS_CONSUL_CONSUL_WATCH_H_
#define ADAPTERS_CONSUL_CONSUL_WATCH_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "adapters/consul/consul_transport.h"
#include "registrator/common/http_client.h"
#include "registrator/model/adapter_options.h"

namespace registrator::consul {

// How a read blocks: by Raft index (X-Consul-Index / ?index=: catalog, health, KV) or by content
// hash (X-Consul-ContentHash / ?hash=: the agent's own /v1/agent/services).
enum class BlockOn { kIndex, kHash };

struct BlockingWatchOptions {
  // Sent as ?wait=; Consul's default, so an idle watch costs one request per 5 minutes.
  absl::Duration wait = absl::Minutes(5);
  // Consul's advice: rate-limit the loop, so an endpoint whose answer keeps changing (a burst of
  // our own writes: 10,000 registers at start) cannot turn the watch into a busy poll that
  // fetches the whole listing again and again. A change is still reported at once; only the
  // next request waits for the rest of this interval, so a deletion right after another change
  // (our own repair write is one) is seen up to this much later. The bridge rate-limits its
  // drift listings to the same 100 ms (BridgeConfig::drift_min_interval).
  absl::Duration min_interval = absl::Milliseconds(100);
  // Reconnect backoff after a failed read.
  absl::Duration backoff_initial = absl::Milliseconds(200);
  absl::Duration backoff_max = absl::Seconds(10);
};

class BlockingWatch {
 public:
  // `path` is the read, with its query ("/v1/kv/svc/?recurse" or "/v1/agent/services"); `name`
  // starts log lines ("consul", "consulkv").
  BlockingWatch(HttpEndpoint endpoint, const AdapterOptions& options, std::string path,
                BlockOn block_on, std::string name, BlockingWatchOptions watch_options = {});
  ~BlockingWatch();
  BlockingWatch(const BlockingWatch&) = delete;
  BlockingWatch& operator=(const BlockingWatch&) = delete;

  // Starts the watch thread. `drifted` is called (from that thread) after the first answer (the
  // entries may have changed before the watch saw them), whenever the index grows or the hash
  // changes, when the index goes backwards (the agent lost or restored its state; the watch
  // resets to index 0), and once when the watch breaks (logged once; retried with backoff) and
  // again once it is back. FAILED_PRECONDITION if already running.
  absl::Status Start(std::function<void()> drifted);
  // Ends the parked request and joins the thread: `drifted` is not called once this returns.
  // Idempotent.
  void Stop();

  // Called by the adapter after each of its own writes to the watched entries (whatever the
  // outcome: a failed write may still have been applied). A hash says only "equal" or "not
  // equal": a read parked on the hash from before our write stays parked if a deletion brings
  // the listing back to exactly that content before the server re-checks it (our register, then
  // a deletion of that entry, ms apart: seen in e2e_watch_consul_test under load). So a parked
  // hash read older than our newest write is cut short and replaced by a fresh read, which is
  // reported like any change. An index only grows, so index-based watches ignore this.
  void NoteOwnWrite();

  // Requests sent so far (tests and benchmarks: an idle watch must not poll).
  int64_t requests() const;

 private:
  void Run(const std::function<void()>& drifted);
  // Hash watches: whether NoteOwnWrite ran since the baseline read was sent.
  bool OwnWriteSinceBaseline() const;
  // Sleeps until `until` or Stop(); false when stopping.
  bool SleepUntil(absl::Time until);

  AgentClient agent_;
  const std::string path_;
  const BlockOn block_on_;
  const std::string name_;
  const BlockingWatchOptions watch_options_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // The running request's cancel handle, one per request (a StreamCancel stays cancelled); null
  // between requests.
  std::unique_ptr<StreamCancel> cancel_ ABSL_GUARDED_BY(mu_);
  // Whether the running request is parked on a hash, and the count of our own writes when the
  // read that hash came from was sent.
  bool parked_on_hash_ ABSL_GUARDED_BY(mu_) = false;
  int64_t own_writes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t baseline_writes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t requests_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;  // Touched only by Start and Stop, which callers do not race.
};

}  // namespace registrator::consul

#endif  // ADAPTERS_CONSUL_CONSUL_WATCH_H_
