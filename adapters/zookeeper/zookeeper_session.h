// The ZooKeeper C client made safe to call from C++ threads: Session is the RAII owner of one
// zhandle_t (closed on destruction), follows the session's state from the library's watcher,
// reports an expiry once, and starts asynchronous requests whose answers are awaited with a
// deadline, so no call waits on the server without a bound.
#ifndef ADAPTERS_ZOOKEEPER_ZOOKEEPER_SESSION_H_
#define ADAPTERS_ZOOKEEPER_ZOOKEEPER_SESSION_H_

#include <zookeeper/zookeeper.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "adapters/zookeeper/zookeeper_codec.h"

namespace registrator::zookeeper {

struct SessionSettings {
  // Requested session timeout (the server clamps it to [2, 20] ticks by default). Upstream uses
  // 10 s too. Also the bound of one adapter call's requests together.
  absl::Duration session_timeout = absl::Seconds(10);
  // How long a call waits for the session to be connected before failing with UNAVAILABLE.
  absl::Duration connect_timeout = absl::Seconds(3);
};

// Maps a ZooKeeper result code of `what` ("create", "read"...) on `path` to a Status:
// UNAVAILABLE for connection trouble, NOT_FOUND for ZNONODE, ALREADY_EXISTS, PERMISSION_DENIED,
// FAILED_PRECONDITION for ZNOTEMPTY/ZBADVERSION, INVALID_ARGUMENT, else INTERNAL.
absl::Status ToStatus(int rc, absl::string_view what, absl::string_view path);

// One asynchronous request's answer. Shared between the caller, who may stop waiting at its
// deadline (or when the session is aborted), and the library's completion thread, which may
// answer later (or with ZCLOSING when the handle is closed): whoever lets go last frees it. The
// completion fills the fields and sets `done` under the session's lock; read them only after
// Session::Await returned OK.
struct Reply {
  bool done = false;
  int rc = ZSYSTEMERROR;
  std::string value;
  bool has_stat = false;
  Stat stat{};
  std::vector<std::string> children;
};

class Session {
 public:
  // Starts the library's two threads and the first connection attempt, and queues digest auth
  // when `target.auth` is set. Slow: zookeeper_init resolves host names (DNS) and starts
  // threads here, so never call it with a lock held. `on_expired` runs on the library's thread,
  // at most once, when a session that had been connected expires (its ephemeral nodes are gone).
  static absl::StatusOr<std::shared_ptr<Session>> Open(const Target& target,
                                                       absl::Duration session_timeout,
                                                       std::function<void()> on_expired);
  // Closes the handle, which joins the library's threads: no callback into this object runs
  // afterwards. Closing a connected session makes the server delete its ephemeral nodes at once.
  // Must not run on the library's own threads (i.e. not from `on_expired`).
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Waits until connected, unrecoverable or aborted; true when connected.
  bool WaitConnected(absl::Duration timeout);
  // Shutdown: every Await in progress returns CANCELLED at once, and so does every later one
  // (later requests are not even sent). Only the ZooKeeper client library itself gives up on
  // a request the server does not answer, after 2/3 of the session timeout; an HTTP abort
  // cannot reach it, so without this a hung server holds a stopping process that long.
  // An expiry after this is not reported (the owner is shutting down). Idempotent; the handle
  // stays open until the destructor closes it.
  void Abort();
  // Waits for `reply` (one of this session's requests) until `deadline`: OK once it is done,
  // UNAVAILABLE when the deadline passes first (the request stays queued in the library, which
  // frees its Reply when it answers or is closed), CANCELLED once Abort() was called.
  absl::Status Await(absl::Time deadline, const Reply& reply, absl::string_view what,
                     absl::string_view path);
  // Expired or authentication failed: this handle is done for, a new one is needed.
  bool Unrecoverable();
  // "connected", "session expired"...: for log and error messages.
  std::string StateName();
  // The server's id of this session (the ephemeralOwner of the nodes it creates); valid once
  // connected.
  int64_t Id() const;
  // Id and password: enough for another handle to take over this session (tests expire it so).
  std::pair<int64_t, std::string> Credentials() const;

  // Requests, started at once so several can be in flight; wait for each with Await. `version`
  // -1 means any version.
  std::shared_ptr<Reply> Exists(const std::string& path);
  std::shared_ptr<Reply> Get(const std::string& path);
  std::shared_ptr<Reply> Children(const std::string& path);
  std::shared_ptr<Reply> Delete(const std::string& path, int version);
  // ACL: creator-only with digest auth, else open (ZooKeeper's default for unauthenticated use).
  std::shared_ptr<Reply> Create(const std::string& path, const std::string& data, int mode);
  std::shared_ptr<Reply> Set(const std::string& path, const std::string& data, int version);
  // Exists / Children that also leave a one-shot watch on `path` (set even when the node does
  // not exist yet, for exists): `watcher` runs on the library's thread with `context` when the
  // node is created, deleted or changed (children: a child added or removed), and with every
  // session event (connection lost, reconnected, expired) until it fired.
  std::shared_ptr<Reply> WatchExists(const std::string& path, watcher_fn watcher, void* context);
  std::shared_ptr<Reply> WatchChildren(const std::string& path, watcher_fn watcher, void* context);

 private:
  Session(std::function<void()> on_expired, bool digest_auth);
  static void Watcher(zhandle_t* handle, int type, int state, const char* path, void* context);
  // A request's completion data: the session whose lock guards the reply, and the reply.
  struct Pending {
    Session* session;
    std::shared_ptr<Reply> reply;
  };
  // Takes back the completion data of a request, fills its reply with `fill` and marks it done,
  // under the session's lock (which wakes Await). The library calls completions only while the
  // handle is open, i.e. before ~Session has returned, so `session` is alive.
  static void Complete(const void* data, const std::function<void(Reply&)>& fill);
  static void OnVoid(int rc, const void* data);
  static void OnString(int rc, const char* value, const void* data);
  static void OnStat(int rc, const Stat* stat, const void* data);
  static void OnData(int rc, const char* value, int value_len, const Stat* stat, const void* data);
  static void OnStrings(int rc, const String_vector* strings, const void* data);
  // Calls `start` (a zoo_a* call) with the completion data for a new Reply.
  std::shared_ptr<Reply> Start(const std::function<int(zhandle_t*, const void*)>& start);

  const std::function<void()> on_expired_;
  ACL_vector* const create_acl_;
  zhandle_t* handle_ = nullptr;  // Set once in Open, closed in the destructor.
  absl::Mutex mu_;
  int state_ ABSL_GUARDED_BY(mu_) = 0;
  bool was_connected_ ABSL_GUARDED_BY(mu_) = false;
  bool reported_ ABSL_GUARDED_BY(mu_) = false;
  bool aborted_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace registrator::zookeeper

#endif  // ADAPTERS_ZOOKEEPER_ZOOKEEPER_SESSION_H_
