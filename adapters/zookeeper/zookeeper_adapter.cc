// The ZooKeeper RegistryAdapter: services as ephemeral nodes, over zookeeper_session.h.
#include "adapters/zookeeper/zookeeper_adapter.h"

#include <zookeeper/zookeeper.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "adapters/zookeeper/zookeeper_adapter_testing.h"
#include "adapters/zookeeper/zookeeper_codec.h"
#include "adapters/zookeeper/zookeeper_session.h"
#include "registrator/common/backoff.h"
#include "registrator/common/log.h"
#include "registrator/model/state_lost_notifier.h"

namespace registrator::zookeeper {
namespace {

// How long destroying an aborted adapter waits for its session to close (see the destructor).
constexpr absl::Duration kAbortedCloseWait = absl::Milliseconds(100);

// What the drift watch shares with the client library's threads, which call OnEvent with it as
// context for every watch it set (also after StopWatch, while the session lives: hence shared,
// kept alive by whoever holds the session).
struct WatchHub {
  // Library thread: records what fired; the adapter's watch thread acts on it.
  static void OnEvent(zhandle_t* /*handle*/, int type, int state, const char* path, void* context) {
    auto* hub = static_cast<WatchHub*>(context);
    absl::MutexLock lock(&hub->mu);
    if (!hub->active) return;
    if (type == ZOO_SESSION_EVENT) {
      // Delivered to every watch set: flags, not counts.
      if (state == ZOO_CONNECTING_STATE) {
        hub->lost = true;
        hub->down = true;
      } else if (state == ZOO_EXPIRED_SESSION_STATE) {
        // Its watches are gone with it: a new session (which Arm opens) sets them all again.
        hub->lost = true;
        hub->down = false;
        hub->rearm_all = true;
      } else if (state == ZOO_CONNECTED_STATE && hub->down) {
        // The library set the watches again on reconnect; we do it too (re-arming an armed watch
        // is a no-op) and re-check, as changes while disconnected may have been missed.
        hub->down = false;
        hub->rearm_all = true;
      }
    } else if (type == ZOO_CHILD_EVENT) {
      hub->fired = true;
      if (path != nullptr) hub->arm_parents.insert(path);
    } else if (type == ZOO_CREATED_EVENT || type == ZOO_DELETED_EVENT ||
               type == ZOO_CHANGED_EVENT) {
      hub->fired = true;
      if (path != nullptr) hub->arm_nodes.insert(path);
    }
    hub->cv.Signal();
  }

  absl::Mutex mu;
  absl::CondVar cv;
  bool active ABSL_GUARDED_BY(mu) = false;  // Between StartWatch and StopWatch.
  bool stop ABSL_GUARDED_BY(mu) = false;
  bool fired ABSL_GUARDED_BY(mu) = false;               // A watch fired: report drift.
  bool lost ABSL_GUARDED_BY(mu) = false;                // Connection lost or session expired: log.
  bool down ABSL_GUARDED_BY(mu) = false;                // Not connected since `lost`.
  bool rearm_all ABSL_GUARDED_BY(mu) = false;           // (Re)connected: set every watch again.
  std::set<std::string> arm_nodes ABSL_GUARDED_BY(mu);  // Watches to set.
  std::set<std::string> arm_parents ABSL_GUARDED_BY(mu);
  // This host's nodes: what this adapter registered and has not deregistered.
  std::set<std::string> nodes ABSL_GUARDED_BY(mu);
};

class ZookeeperAdapter : public RegistryAdapter {
 public:
  ZookeeperAdapter(Target target, std::string hostname, const SessionSettings& settings,
                   std::function<void()> before_session_open)
      : target_(std::move(target)),
        hostname_(std::move(hostname)),
        settings_(settings),
        before_session_open_(std::move(before_session_open)) {}

  ~ZookeeperAdapter() override {
    StopWatch();
    std::shared_ptr<Session> session;
    bool aborted = false;
    {
      absl::MutexLock lock(&mu_);
      session = std::move(session_);
      aborted = aborted_;
    }
    if (session == nullptr) return;
    if (!aborted) {
      session.reset();  // Closes the session: the server removes our ephemeral nodes.
      return;
    }
    // Stopping because the server did not answer (AbortCalls). zookeeper_close sends the close
    // request at once and then waits up to 1.5 s for the server's reply, which a hung server
    // never sends: close on a thread of its own and wait only briefly, so a hung backend never
    // holds up the exit. The thread owns the session to the end (its completions may still
    // run); if the process exits first, the server expires the session instead.
    auto closed = std::make_shared<absl::Notification>();
    // The hub too: the session's library threads may call into it until it is closed.
    std::thread([session = std::move(session), closed, hub = hub_]() mutable {
      session.reset();
      closed->Notify();
    }).detach();
    closed->WaitForNotificationWithTimeout(kAbortedCloseWait);
  }

  absl::Status Ping() override {
    absl::StatusOr<std::shared_ptr<Session>> session = Connected();
    if (!session.ok()) return session.status();
    const absl::Time deadline = CallDeadline();
    std::shared_ptr<Reply> reply = (*session)->Exists("/");
    if (absl::Status s = (*session)->Await(deadline, *reply, "exists", "/"); !s.ok()) return s;
    return ToStatus(reply->rc, "exists", "/");
  }

  absl::Status Register(const Service& service) override {
    if (absl::Status s = CheckName(service); !s.ok()) return s;
    absl::StatusOr<std::shared_ptr<Session>> session = Connected();
    if (!session.ok()) return session.status();
    const absl::Time deadline = CallDeadline();
    absl::Status status = RegisterWith(**session, service, deadline);
    if (status.ok()) {
      const std::string path = NodePath(target_.base, service);
      absl::MutexLock lock(&hub_->mu);
      hub_->nodes.insert(path);
      if (hub_->active) {
        hub_->arm_nodes.insert(path);
        hub_->arm_parents.insert(NamePath(target_.base, service.name));
        hub_->cv.Signal();
      }
    }
    return status;
  }

  absl::Status Deregister(const Service& service) override {
    if (absl::Status s = CheckName(service); !s.ok()) return s;
    absl::StatusOr<std::shared_ptr<Session>> connected = Connected();
    if (!connected.ok()) return connected.status();
    Session& session = **connected;
    const absl::Time deadline = CallDeadline();
    const std::string path = NodePath(target_.base, service);
    if (absl::Status s = DeleteIfHeldBy(session, path, service.id, deadline); !s.ok()) return s;
    {
      absl::MutexLock lock(&hub_->mu);
      hub_->nodes.erase(path);
    }
    // Upstream removes the Name node once it has no children left. A sibling registered
    // meanwhile (or the node we left to another service) makes this fail with ZNOTEMPTY, which
    // is exactly right; a Register that just re-created the Name node and loses it here
    // re-creates it again (RegisterWith).
    const std::string name_path = NamePath(target_.base, service.name);
    std::shared_ptr<Reply> reply = session.Delete(name_path, -1);
    if (absl::Status s = session.Await(deadline, *reply, "delete", name_path); !s.ok()) return s;
    if (reply->rc != ZOK && reply->rc != ZNONODE && reply->rc != ZNOTEMPTY) {
      return ToStatus(reply->rc, "delete", name_path);
    }
    return absl::OkStatus();
  }

  absl::Status Refresh(const std::vector<Service>& services) override {
    if (services.empty()) return absl::OkStatus();
    absl::StatusOr<std::shared_ptr<Session>> connected = Connected();
    if (!connected.ok()) return connected.status();
    Session& session = **connected;
    const absl::Time deadline = CallDeadline();
    const int64_t own = session.Id();
    // Ask for all nodes at once, then re-create what is missing or held by another session.
    std::vector<std::shared_ptr<Reply>> replies;
    replies.reserve(services.size());
    for (const Service& service : services) {
      replies.push_back(CheckName(service).ok() ? session.Exists(NodePath(target_.base, service))
                                                : nullptr);
    }
    absl::Status first_error;
    int failed = 0;
    bool gave_up = false;
    for (size_t i = 0; i < services.size(); ++i) {
      const Service& service = services[i];
      const std::string path = NodePath(target_.base, service);
      absl::Status status;
      if (replies[i] == nullptr) {
        status = CheckName(service);
      } else if (status = session.Await(deadline, *replies[i], "exists", path); status.ok()) {
        const int rc = replies[i]->rc;
        const bool ours = rc == ZOK && replies[i]->stat.ephemeralOwner == own;
        if (!ours) {
          if (rc != ZOK && rc != ZNONODE) {
            status = ToStatus(rc, "exists", path);
          } else {
            REG_LOG_INFO("zookeeper: re-creating lost node of ", service.id, " at ", path);
            status = RegisterWith(session, service, deadline);
          }
        }
      }
      if (!status.ok()) {
        ++failed;
        if (first_error.ok()) first_error = status;
        // The server is gone, the call's time is up or we are stopping: the rest would only
        // wait and fail too.
        if (absl::IsUnavailable(status) || absl::IsCancelled(status)) {
          gave_up = true;
          break;
        }
      }
    }
    if (failed == 0) return absl::OkStatus();
    return absl::Status(
        first_error.code(),
        absl::StrCat("zookeeper: refresh failed for ", failed, " of ", services.size(), " services",
                     gave_up ? " (gave up on the rest)" : "", "; first: ", first_error.message()));
  }

  absl::StatusOr<std::vector<RegisteredService>> Services() override {
    absl::StatusOr<std::shared_ptr<Session>> connected = Connected();
    if (!connected.ok()) return connected.status();
    const absl::Time deadline = CallDeadline();
    Session& session = **connected;
    const int64_t own = session.Id();
    std::vector<RegisteredService> result;
    std::shared_ptr<Reply> names = session.Children(target_.base);
    if (absl::Status s = session.Await(deadline, *names, "list", target_.base); !s.ok()) return s;
    if (names->rc == ZNONODE) return result;  // Nothing registered yet.
    if (names->rc != ZOK) return ToStatus(names->rc, "list", target_.base);
    // Pipelined: all child lists, then all node reads, each batch in flight at once.
    std::vector<std::shared_ptr<Reply>> lists;
    for (const std::string& name : names->children) {
      lists.push_back(session.Children(NamePath(target_.base, name)));
    }
    struct Pending {
      std::string name;
      std::string node;
      std::string path;
      std::shared_ptr<Reply> reply;
    };
    std::vector<Pending> pending;
    for (size_t i = 0; i < lists.size(); ++i) {
      const std::string name_path = NamePath(target_.base, names->children[i]);
      if (absl::Status s = session.Await(deadline, *lists[i], "list", name_path); !s.ok()) return s;
      if (lists[i]->rc == ZNONODE) continue;  // Removed meanwhile.
      if (lists[i]->rc != ZOK) return ToStatus(lists[i]->rc, "list", name_path);
      for (const std::string& node : lists[i]->children) {
        std::string path = absl::StrCat(name_path, "/", node);
        std::shared_ptr<Reply> reply = session.Get(path);
        pending.push_back({names->children[i], node, std::move(path), std::move(reply)});
      }
    }
    for (Pending& p : pending) {
      if (absl::Status s = session.Await(deadline, *p.reply, "read", p.path); !s.ok()) return s;
      if (p.reply->rc == ZNONODE) continue;
      if (p.reply->rc != ZOK) return ToStatus(p.reply->rc, "read", p.path);
      absl::StatusOr<ZnodeBody> body = DecodeBody(p.reply->value);
      if (!body.ok()) {
        REG_LOG_DEBUG("zookeeper: skipping ", p.path, ": ", body.status().message());
        continue;
      }
      if (body->id.empty()) {
        REG_LOG_DEBUG("zookeeper: skipping ", p.path, ": no \"ID\" (not written by us)");
        continue;
      }
      RegisteredService entry;
      Service& service = entry.service;
      service.id = body->id;
      // Name, IP and port come from the path, so Deregister finds this very node even when its
      // data says otherwise.
      service.name = p.name;
      absl::StatusOr<std::pair<std::string, int>> address = ParseNodeName(p.node);
      if (!address.ok()) {
        REG_LOG_DEBUG("zookeeper: skipping ", p.path, ": ", address.status().message());
        continue;
      }
      service.ip = address->first;
      service.port = address->second;
      service.tags = body->tags;
      service.attrs = body->attrs;
      service.container_id = body->container_id;
      service.exposed_port = body->private_port;
      service.host_port = body->public_port;
      entry.fingerprint = p.reply->value;
      if (!p.reply->has_stat || p.reply->stat.ephemeralOwner != own) {
        // Not a node Register would leave behind: it dies with another session, or never.
        entry.fingerprint =
            absl::StrCat("owner:", p.reply->stat.ephemeralOwner, ":", entry.fingerprint);
      }
      result.push_back(std::move(entry));
    }
    return result;
  }

  // A Name node is left empty when a session of this host ends without deregistering (a
  // crash, a SIGKILL, a hang past the session timeout): its ephemeral children go with the
  // session, and only a Deregister would have removed the Name node. Removes every empty Name
  // node that lists this host; one that lists only other hosts, or none (upstream's, or made by
  // hand), is not this host's to remove. The delete is for the version read and fails harmlessly
  // when a child appeared meanwhile (ZNOTEMPTY) or the data changed (ZBADVERSION); a Register
  // that loses its Name node this way re-creates it (RegisterWith).
  absl::Status CleanupLeftovers() override {
    if (hostname_.empty()) return absl::OkStatus();
    absl::StatusOr<std::shared_ptr<Session>> connected = Connected();
    if (!connected.ok()) return connected.status();
    Session& session = **connected;
    const absl::Time deadline = CallDeadline();
    std::shared_ptr<Reply> names = session.Children(target_.base);
    if (absl::Status s = session.Await(deadline, *names, "list", target_.base); !s.ok()) return s;
    if (names->rc == ZNONODE) return absl::OkStatus();
    if (names->rc != ZOK) return ToStatus(names->rc, "list", target_.base);
    std::vector<std::shared_ptr<Reply>> reads;
    for (const std::string& name : names->children) {
      reads.push_back(session.Get(NamePath(target_.base, name)));
    }
    std::vector<std::pair<std::string, std::shared_ptr<Reply>>> deletes;
    for (size_t i = 0; i < reads.size(); ++i) {
      const std::string name_path = NamePath(target_.base, names->children[i]);
      if (absl::Status s = session.Await(deadline, *reads[i], "read", name_path); !s.ok()) return s;
      const Reply& node = *reads[i];
      if (node.rc != ZOK || !node.has_stat || node.stat.numChildren != 0 ||
          !NameNodeListsHost(node.value, hostname_)) {
        continue;
      }
      deletes.emplace_back(name_path, session.Delete(name_path, node.stat.version));
    }
    for (auto& [name_path, reply] : deletes) {
      if (absl::Status s = session.Await(deadline, *reply, "delete", name_path); !s.ok()) return s;
      if (reply->rc == ZOK) {
        REG_LOG_INFO("cleanup: removed the empty Name node ", name_path);
      } else if (reply->rc != ZNONODE && reply->rc != ZNOTEMPTY && reply->rc != ZBADVERSION) {
        return ToStatus(reply->rc, "delete", name_path);
      }
    }
    return absl::OkStatus();
  }

  // The name (and for ZooKeeper the IP and port) is in the key: see RegistryAdapter::EntryKey.
  std::string EntryKey(const Service& service) const override {
    return NodePath(target_.base, service);
  }

  std::string Fingerprint(const Service& service) const override {
    return EncodeBody(BodyFor(service));
  }

  void SetStateLostCallback(std::function<void()> request) override {
    state_lost_.Set(std::move(request));
  }

  void AbortCalls() override {
    std::shared_ptr<Session> session;
    {
      absl::MutexLock lock(&mu_);
      aborted_ = true;
      session = session_;
    }
    if (session != nullptr) session->Abort();
  }

  // Exists watches on this host's nodes (they fire on delete, re-create and data change) and
  // child watches on their Name nodes (a node added or removed beside them), set again after
  // every trigger and after a reconnect or a new session, by a thread of our own.
  absl::Status StartWatch(std::function<void()> drifted) override {
    {
      absl::MutexLock lock(&hub_->mu);
      if (hub_->active) return absl::FailedPreconditionError("already watching");
      hub_->active = true;
      hub_->stop = false;
      hub_->rearm_all = true;
    }
    watch_thread_ = std::thread([this, drifted = std::move(drifted)] { WatchLoop(drifted); });
    return absl::OkStatus();
  }

  void StopWatch() override {
    {
      absl::MutexLock lock(&hub_->mu);
      hub_->active = false;
      hub_->stop = true;
      hub_->cv.SignalAll();
    }
    if (watch_thread_.joinable()) watch_thread_.join();
  }

  absl::StatusOr<std::pair<int64_t, std::string>> SessionCredentials() {
    std::shared_ptr<Session> session;
    {
      absl::MutexLock lock(&mu_);
      session = session_;
    }
    if (session == nullptr || !session->WaitConnected(absl::ZeroDuration())) {
      return absl::FailedPreconditionError("no connected session");
    }
    return session->Credentials();
  }

 private:
  void WatchLoop(const std::function<void()>& drifted) {
    bool broken = false;
    int failures = 0;
    WatchHub& hub = *hub_;
    while (true) {
      bool report = false;
      bool all = false;
      std::set<std::string> nodes;
      std::set<std::string> parents;
      {
        absl::MutexLock lock(&hub.mu);
        hub.mu.Await(absl::Condition(
            +[](WatchHub* h) ABSL_NO_THREAD_SAFETY_ANALYSIS {
              return h->stop || h->fired || h->lost ||
                     (!h->down &&
                      (h->rearm_all || !h->arm_nodes.empty() || !h->arm_parents.empty()));
            },
            &hub));
        if (hub.stop) break;
        if (hub.lost && !broken) {
          REG_LOG_WARN("zookeeper: watch broken (connection to ", target_.connect_string,
                       " lost); drift is repaired by -resync/-ttl-refresh until it is back");
          broken = true;
          report = true;
        }
        hub.lost = false;
        report = report || hub.fired;
        hub.fired = false;
        all = hub.rearm_all && !hub.down;
        if (all) {
          hub.rearm_all = false;
          hub.arm_nodes.clear();
          hub.arm_parents.clear();
          nodes = hub.nodes;
          for (const std::string& node : nodes) parents.insert(ParentOf(node));
        } else if (!hub.down) {
          // Only what is still ours (a deregistered node's watch fires once more, and ends).
          for (const std::string& node : hub.arm_nodes) {
            if (hub.nodes.count(node) > 0) nodes.insert(node);
          }
          for (const std::string& parent : hub.arm_parents) parents.insert(parent);
          hub.arm_nodes.clear();
          hub.arm_parents.clear();
        }
      }
      if (report) drifted();
      if (!all && nodes.empty() && parents.empty()) continue;
      absl::Status status = Arm(nodes, parents);
      if (!status.ok()) {
        if (!broken && !absl::IsCancelled(status) && !absl::IsFailedPrecondition(status)) {
          REG_LOG_WARN("zookeeper: watch broken (", status.message(),
                       "); drift is repaired by -resync/-ttl-refresh until it is back");
          broken = true;
          drifted();
        }
        absl::MutexLock lock(&hub.mu);
        // Everything again once the session answers (whatever was not set is unknown).
        hub.rearm_all = true;
        const absl::Time until =
            absl::Now() + BackoffDelay(absl::Milliseconds(250), absl::Seconds(5), failures++, 0.5);
        while (!hub.stop && !hub.cv.WaitWithDeadline(&hub.mu, until)) {
        }
        continue;
      }
      failures = 0;
      if (all && broken) {
        REG_LOG_INFO("zookeeper: watch re-established; checking for drift");
        broken = false;
        drifted();
      }
    }
  }

  static std::string ParentOf(const std::string& path) {
    const size_t slash = path.rfind('/');
    return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
  }

  // Sets the watches (all requests in flight at once) on the current session. Never opens a
  // session or waits for a connection (the bridge's calls do; StopWatch must not wait for
  // that): not connected is UNAVAILABLE, tried again with backoff. Waits for the answers in
  // short steps so that StopWatch is prompt.
  absl::Status Arm(const std::set<std::string>& nodes, const std::set<std::string>& parents) {
    std::shared_ptr<Session> current;
    {
      absl::MutexLock lock(&mu_);
      if (aborted_) return Stopping();
      current = session_;
    }
    // Before the bridge's first call: nothing registered, nothing broken.
    if (current == nullptr) return absl::FailedPreconditionError("zookeeper: no session yet");
    if (!current->WaitConnected(absl::ZeroDuration())) {
      return absl::UnavailableError(
          absl::StrCat("zookeeper: not connected to ", target_.connect_string));
    }
    Session& session = *current;
    const absl::Time deadline = CallDeadline();
    std::vector<std::pair<std::string, std::shared_ptr<Reply>>> replies;
    replies.reserve(nodes.size() + parents.size());
    for (const std::string& node : nodes) {
      replies.emplace_back(node, session.WatchExists(node, &WatchHub::OnEvent, hub_.get()));
    }
    for (const std::string& parent : parents) {
      replies.emplace_back(parent, session.WatchChildren(parent, &WatchHub::OnEvent, hub_.get()));
    }
    absl::Status first;
    for (const auto& [path, reply] : replies) {
      absl::Status status;
      while (true) {
        status = session.Await(std::min(deadline, absl::Now() + absl::Milliseconds(100)), *reply,
                               "watch", path);
        if (status.ok() || absl::IsCancelled(status) || absl::Now() >= deadline) break;
        absl::MutexLock lock(&hub_->mu);
        if (hub_->stop) return absl::CancelledError("zookeeper: watch stopping");
      }
      // A missing node (or Name node) still gets its exists watch; a missing parent's child
      // watch is not set, but the node's exists watch sees its re-creation.
      if (status.ok() && reply->rc != ZOK && reply->rc != ZNONODE) {
        status = ToStatus(reply->rc, "watch", path);
      }
      if (!status.ok() && first.ok()) first = status;
    }
    return first;
  }

  // The current session, connected; a new one when the old one expired. Opening one (DNS,
  // thread start-up) and closing one (joins threads) happen outside the lock; one thread opens
  // while the others wait for it, as for a connection, at most the connect timeout.
  absl::StatusOr<std::shared_ptr<Session>> Connected() {
    absl::Time deadline = absl::Now() + settings_.connect_timeout;
    for (int attempt = 0; attempt < 2; ++attempt) {
      std::shared_ptr<Session> stale;
      std::shared_ptr<Session> session;
      bool open_here = false;
      {
        absl::MutexLock lock(&mu_);
        struct Waited {
          const bool* opening;
          const bool* aborted;
        } waited{&opening_, &aborted_};
        mu_.AwaitWithDeadline(absl::Condition(
                                  +[](Waited* w) { return !*w->opening || *w->aborted; }, &waited),
                              deadline);
        if (aborted_) return Stopping();
        if (opening_) {
          return absl::UnavailableError(
              absl::StrCat("zookeeper: still opening a session to ", target_.connect_string,
                           " after ", absl::FormatDuration(settings_.connect_timeout)));
        }
        if (session_ != nullptr && session_->Unrecoverable()) {
          REG_LOG_INFO("zookeeper: ", session_->StateName(), "; opening a new session to ",
                       target_.connect_string);
          stale = std::move(session_);
        }
        if (session_ == nullptr) {
          opening_ = true;
          open_here = true;
        }
        session = session_;
      }
      stale.reset();
      if (open_here) {
        if (before_session_open_) before_session_open_();
        absl::StatusOr<std::shared_ptr<Session>> opened =
            Session::Open(target_, settings_.session_timeout, [this] { OnSessionExpired(); });
        absl::MutexLock lock(&mu_);
        opening_ = false;
        if (!opened.ok()) return opened.status();
        session_ = std::move(*opened);
        session = session_;
        // AbortCalls ran while this session was being opened: it must not wait either.
        if (aborted_) session_->Abort();
        // The wait for the connection starts now: a slow open (DNS) is not the server's fault.
        deadline = absl::Now() + settings_.connect_timeout;
      }
      if (session->WaitConnected(deadline - absl::Now())) return session;
      if (Aborted()) return Stopping();
      if (!session->Unrecoverable()) {
        return absl::UnavailableError(absl::StrCat(
            "zookeeper: not connected to ", target_.connect_string, " after ",
            absl::FormatDuration(settings_.connect_timeout), " (", session->StateName(), ")"));
      }
      // Expired (or auth failed) while we waited: one more try with a fresh session.
    }
    return absl::UnavailableError(
        absl::StrCat("zookeeper: cannot keep a session with ", target_.connect_string));
  }

  bool Aborted() {
    absl::MutexLock lock(&mu_);
    return aborted_;
  }

  absl::Status Stopping() const {
    return absl::CancelledError(absl::StrCat("zookeeper: not calling ", target_.connect_string,
                                             ": registrator is stopping"));
  }

  void OnSessionExpired() {
    REG_LOG_WARN("zookeeper: session with ", target_.connect_string,
                 " expired; its ephemeral nodes are gone, asking for re-registration");
    state_lost_.Notify();
  }

  // A call's requests all share one deadline, one session timeout after it got its connection:
  // the library fails a single request after 2/3 of that without an answer, and this keeps a
  // call of several requests (Register, Services) within the same bound.
  absl::Time CallDeadline() const { return absl::Now() + settings_.session_timeout; }

  // Deletes the node at `path` only while it holds `service_id`: the path has no ID in it, so
  // after a rename (register new, then deregister old) the node belongs to the new service.
  // Deletes the version it read, so a Register between the read and the delete is not undone
  // (ZBADVERSION: read again). Anything else there (another ID, no ID, not our JSON) is left.
  absl::Status DeleteIfHeldBy(Session& session, const std::string& path,
                              const std::string& service_id, absl::Time deadline) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      std::shared_ptr<Reply> existing = session.Get(path);
      if (absl::Status s = session.Await(deadline, *existing, "read", path); !s.ok()) return s;
      if (existing->rc == ZNONODE) return absl::OkStatus();
      if (existing->rc != ZOK) return ToStatus(existing->rc, "read", path);
      absl::StatusOr<ZnodeBody> body = DecodeBody(existing->value);
      if (!body.ok() || !HoldsId(*body, service_id)) {
        REG_LOG_INFO("zookeeper: not deleting ", path, " for ", service_id, ": it now holds ",
                     body.ok() ? absl::StrCat("\"", body->id, "\"") : "data not written by us");
        return absl::OkStatus();
      }
      std::shared_ptr<Reply> deleted = session.Delete(path, existing->stat.version);
      if (absl::Status s = session.Await(deadline, *deleted, "delete", path); !s.ok()) return s;
      if (deleted->rc == ZOK || deleted->rc == ZNONODE) {
        REG_LOG_DEBUG("zookeeper: deregistered ", service_id, " at ", path);
        return absl::OkStatus();
      }
      if (deleted->rc != ZBADVERSION) return ToStatus(deleted->rc, "delete", path);
    }
    return absl::AbortedError(absl::StrCat("zookeeper: deregister ", service_id, " at ", path,
                                           ": the node kept changing under us"));
  }

  // Adds this host to the Name node's list of hosts (zookeeper_codec.h), so a later -cleanup
  // may remove the Name node once it is empty. Best effort: the registration itself is done,
  // and a Name node this host cannot write (another user's ACL) or that keeps changing just
  // stays unlisted, i.e. is never removed by this host's cleanup. Versioned, so two hosts
  // listing themselves at once do not drop each other.
  void ListThisHost(Session& session, const std::string& name_path, absl::Time deadline) {
    if (hostname_.empty()) return;
    for (int attempt = 0; attempt < 3; ++attempt) {
      std::shared_ptr<Reply> node = session.Get(name_path);
      if (!session.Await(deadline, *node, "read", name_path).ok() || node->rc != ZOK) return;
      if (NameNodeListsHost(node->value, hostname_)) return;
      std::vector<std::string> hosts = DecodeNameNodeHosts(node->value);
      hosts.push_back(hostname_);
      std::shared_ptr<Reply> set =
          session.Set(name_path, EncodeNameNode(hosts), node->stat.version);
      if (!session.Await(deadline, *set, "set", name_path).ok()) return;
      if (set->rc == ZOK) return;
      if (set->rc != ZBADVERSION) {
        REG_LOG_DEBUG("zookeeper: cannot list this host in ", name_path, ": ", zerror(set->rc));
        return;
      }
    }
  }

  // Creates `path` and every missing ancestor as persistent, empty nodes.
  absl::Status CreatePersistent(Session& session, const std::string& path, absl::Time deadline) {
    std::string prefix;
    for (absl::string_view level : absl::StrSplit(path, '/', absl::SkipEmpty())) {
      absl::StrAppend(&prefix, "/", level);
      std::shared_ptr<Reply> reply = session.Create(prefix, "", ZOO_PERSISTENT);
      if (absl::Status s = session.Await(deadline, *reply, "create", prefix); !s.ok()) return s;
      if (reply->rc != ZOK && reply->rc != ZNODEEXISTS) {
        return ToStatus(reply->rc, "create", prefix);
      }
    }
    return absl::OkStatus();
  }

  // Create, or make what is there equal to what Register writes. Reads first: even a failed
  // create is a transaction in ZooKeeper, and an unchanged registration must write nothing.
  // Retries when a concurrent Deregister removes the Name node, or the node changes between our
  // reads and writes.
  absl::Status RegisterWith(Session& session, const Service& service, absl::Time deadline) {
    const std::string path = NodePath(target_.base, service);
    const std::string data = Fingerprint(service);
    const int64_t own = session.Id();
    bool missing = false;  // Known not to exist: skip the read.
    for (int attempt = 0; attempt < 5; ++attempt) {
      if (!missing) {
        std::shared_ptr<Reply> existing = session.Get(path);
        if (absl::Status s = session.Await(deadline, *existing, "read", path); !s.ok()) return s;
        if (existing->rc != ZOK && existing->rc != ZNONODE) {
          return ToStatus(existing->rc, "read", path);
        }
        if (existing->rc == ZOK) {
          if (existing->stat.ephemeralOwner != own) {
            // Persistent, or held by another session that will take it along when it ends.
            std::shared_ptr<Reply> deleted = session.Delete(path, existing->stat.version);
            if (absl::Status s = session.Await(deadline, *deleted, "delete", path); !s.ok())
              return s;
            if (deleted->rc != ZOK && deleted->rc != ZNONODE && deleted->rc != ZBADVERSION) {
              return ToStatus(deleted->rc, "delete", path);
            }
            missing = deleted->rc != ZBADVERSION;
            continue;
          }
          if (existing->value == data) return absl::OkStatus();
          std::shared_ptr<Reply> set = session.Set(path, data, existing->stat.version);
          if (absl::Status s = session.Await(deadline, *set, "set", path); !s.ok()) return s;
          if (set->rc == ZOK) {
            REG_LOG_DEBUG("zookeeper: updated ", service.id, " at ", path);
            return absl::OkStatus();
          }
          if (set->rc != ZNONODE && set->rc != ZBADVERSION) return ToStatus(set->rc, "set", path);
          continue;
        }
      }
      std::shared_ptr<Reply> created = session.Create(path, data, ZOO_EPHEMERAL);
      if (absl::Status s = session.Await(deadline, *created, "create", path); !s.ok()) return s;
      if (created->rc == ZOK) {
        REG_LOG_DEBUG("zookeeper: registered ", service.id, " at ", path);
        ListThisHost(session, NamePath(target_.base, service.name), deadline);
        return absl::OkStatus();
      }
      if (created->rc == ZNONODE) {  // The Name node (or the base) is missing.
        const std::string name_path = NamePath(target_.base, service.name);
        if (absl::Status s = CreatePersistent(session, name_path, deadline); !s.ok()) return s;
        missing = true;
        continue;
      }
      if (created->rc != ZNODEEXISTS) return ToStatus(created->rc, "create", path);
      missing = false;  // Someone was faster: look at what they wrote.
    }
    return absl::AbortedError(absl::StrCat("zookeeper: register ", service.id, " at ", path,
                                           ": the node kept changing under us"));
  }

  const Target target_;
  const std::string hostname_;  // Listed in the Name nodes this host registers under.
  const SessionSettings settings_;
  const std::function<void()> before_session_open_;  // Tests only.
  StateLostNotifier state_lost_;
  const std::shared_ptr<WatchHub> hub_ = std::make_shared<WatchHub>();
  std::thread watch_thread_;
  absl::Mutex mu_;
  std::shared_ptr<Session> session_ ABSL_GUARDED_BY(mu_);
  bool opening_ ABSL_GUARDED_BY(mu_) = false;  // A thread is opening session_, unlocked.
  bool aborted_ ABSL_GUARDED_BY(mu_) = false;  // AbortCalls(): every call fails at once.
};

absl::StatusOr<std::unique_ptr<ZookeeperAdapter>> MakeAdapter(
    const BackendUri& uri, const AdapterOptions& options, const SessionSettings& settings,
    std::function<void()> before_session_open) {
  absl::StatusOr<Target> target = ParseUri(uri);
  if (!target.ok()) return target.status();
  if (settings.session_timeout <= absl::ZeroDuration() ||
      settings.connect_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("zookeeper: timeouts must be positive");
  }
  return std::make_unique<ZookeeperAdapter>(std::move(*target), options.hostname, settings,
                                            std::move(before_session_open));
}

}  // namespace

absl::StatusOr<AdapterForTesting> NewZookeeperAdapterForTesting(
    const BackendUri& uri, const AdapterOptions& options, const SessionSettings& settings,
    std::function<void()> before_session_open) {
  absl::StatusOr<std::unique_ptr<ZookeeperAdapter>> adapter =
      MakeAdapter(uri, options, settings, std::move(before_session_open));
  if (!adapter.ok()) return adapter.status();
  ZookeeperAdapter* raw = adapter->get();
  AdapterForTesting result;
  result.session_credentials = [raw] { return raw->SessionCredentials(); };
  result.adapter = std::move(*adapter);
  return result;
}

}  // namespace registrator::zookeeper

namespace registrator {

absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewZookeeperAdapter(
    const BackendUri& uri, const AdapterOptions& options) {
  // Ephemeral nodes need no TTL; the hostname goes into the Name nodes' host lists.
  absl::StatusOr<std::unique_ptr<zookeeper::ZookeeperAdapter>> adapter =
      zookeeper::MakeAdapter(uri, options, zookeeper::SessionSettings(), nullptr);
  if (!adapter.ok()) return adapter.status();
  return std::unique_ptr<RegistryAdapter>(std::move(*adapter));
}

}  // namespace registrator
