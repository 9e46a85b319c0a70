// The ZooKeeper RegistryAdapter: services as ephemeral nodes, over zookeeper_session.h.
#include "adapters/zookeeper/zookeeper_adapter.h"

#include <zookeeper/zookeeper.h>

#include <functional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "adapters/zookeeper/zookeeper_adapter_testing.h"
#include "adapters/zookeeper/zookeeper_codec.h"
#include "adapters/zookeeper/zookeeper_session.h"
#include "registrator/common/log.h"
#include "registrator/model/state_lost_notifier.h"

namespace registrator::zookeeper {
namespace {

class ZookeeperAdapter : public RegistryAdapter {
 public:
  ZookeeperAdapter(Target target, const SessionSettings& settings,
                   std::function<void()> before_session_open)
      : target_(std::move(target)),
        settings_(settings),
        before_session_open_(std::move(before_session_open)) {}

  ~ZookeeperAdapter() override {
    std::shared_ptr<Session> session;
    {
      absl::MutexLock lock(&mu_);
      session = std::move(session_);
    }
    session.reset();  // Closes the session: the server removes our ephemeral nodes.
  }

  absl::Status Ping() override {
    absl::StatusOr<std::shared_ptr<Session>> session = Connected();
    if (!session.ok()) return session.status();
    const absl::Time deadline = CallDeadline();
    std::shared_ptr<Reply> reply = (*session)->Exists("/");
    if (absl::Status s = Await(deadline, *reply, "exists", "/"); !s.ok()) return s;
    return ToStatus(reply->rc, "exists", "/");
  }

  absl::Status Register(const Service& service) override {
    if (absl::Status s = CheckName(service); !s.ok()) return s;
    absl::StatusOr<std::shared_ptr<Session>> session = Connected();
    if (!session.ok()) return session.status();
    const absl::Time deadline = CallDeadline();
    return RegisterWith(**session, service, deadline);
  }

  absl::Status Deregister(const Service& service) override {
    if (absl::Status s = CheckName(service); !s.ok()) return s;
    absl::StatusOr<std::shared_ptr<Session>> connected = Connected();
    if (!connected.ok()) return connected.status();
    Session& session = **connected;
    const absl::Time deadline = CallDeadline();
    const std::string path = NodePath(target_.base, service);
    if (absl::Status s = DeleteIfHeldBy(session, path, service.id, deadline); !s.ok()) return s;
    // Upstream removes the Name node once it has no children left. A sibling registered
    // meanwhile (or the node we left to another service) makes this fail with ZNOTEMPTY, which
    // is exactly right; a Register that just re-created the Name node and loses it here
    // re-creates it again (RegisterWith).
    const std::string name_path = NamePath(target_.base, service.name);
    std::shared_ptr<Reply> reply = session.Delete(name_path, -1);
    if (absl::Status s = Await(deadline, *reply, "delete", name_path); !s.ok()) return s;
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
      } else if (status = Await(deadline, *replies[i], "exists", path); status.ok()) {
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
        // The server is gone or the call's time is up: the rest would only wait and fail too.
        if (absl::IsUnavailable(status)) {
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
    if (absl::Status s = Await(deadline, *names, "list", target_.base); !s.ok()) return s;
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
      if (absl::Status s = Await(deadline, *lists[i], "list", name_path); !s.ok()) return s;
      if (lists[i]->rc == ZNONODE) continue;  // Removed meanwhile.
      if (lists[i]->rc != ZOK) return ToStatus(lists[i]->rc, "list", name_path);
      for (const std::string& node : lists[i]->children) {
        std::string path = absl::StrCat(name_path, "/", node);
        std::shared_ptr<Reply> reply = session.Get(path);
        pending.push_back({names->children[i], node, std::move(path), std::move(reply)});
      }
    }
    for (Pending& p : pending) {
      if (absl::Status s = Await(deadline, *p.reply, "read", p.path); !s.ok()) return s;
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

  std::string Fingerprint(const Service& service) const override {
    return EncodeBody(BodyFor(service));
  }

  void SetStateLostCallback(std::function<void()> request) override {
    state_lost_.Set(std::move(request));
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
        mu_.AwaitWithDeadline(absl::Condition(
                                  +[](bool* opening) { return !*opening; }, &opening_),
                              deadline);
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
        // The wait for the connection starts now: a slow open (DNS) is not the server's fault.
        deadline = absl::Now() + settings_.connect_timeout;
      }
      if (session->WaitConnected(deadline - absl::Now())) return session;
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
      if (absl::Status s = Await(deadline, *existing, "read", path); !s.ok()) return s;
      if (existing->rc == ZNONODE) return absl::OkStatus();
      if (existing->rc != ZOK) return ToStatus(existing->rc, "read", path);
      absl::StatusOr<ZnodeBody> body = DecodeBody(existing->value);
      if (!body.ok() || !HoldsId(*body, service_id)) {
        REG_LOG_INFO("zookeeper: not deleting ", path, " for ", service_id, ": it now holds ",
                     body.ok() ? absl::StrCat("\"", body->id, "\"") : "data not written by us");
        return absl::OkStatus();
      }
      std::shared_ptr<Reply> deleted = session.Delete(path, existing->stat.version);
      if (absl::Status s = Await(deadline, *deleted, "delete", path); !s.ok()) return s;
      if (deleted->rc == ZOK || deleted->rc == ZNONODE) {
        REG_LOG_DEBUG("zookeeper: deregistered ", service_id, " at ", path);
        return absl::OkStatus();
      }
      if (deleted->rc != ZBADVERSION) return ToStatus(deleted->rc, "delete", path);
    }
    return absl::AbortedError(absl::StrCat("zookeeper: deregister ", service_id, " at ", path,
                                           ": the node kept changing under us"));
  }

  // Creates `path` and every missing ancestor as persistent, empty nodes.
  absl::Status CreatePersistent(Session& session, const std::string& path, absl::Time deadline) {
    std::string prefix;
    for (absl::string_view level : absl::StrSplit(path, '/', absl::SkipEmpty())) {
      absl::StrAppend(&prefix, "/", level);
      std::shared_ptr<Reply> reply = session.Create(prefix, "", ZOO_PERSISTENT);
      if (absl::Status s = Await(deadline, *reply, "create", prefix); !s.ok()) return s;
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
        if (absl::Status s = Await(deadline, *existing, "read", path); !s.ok()) return s;
        if (existing->rc != ZOK && existing->rc != ZNONODE) {
          return ToStatus(existing->rc, "read", path);
        }
        if (existing->rc == ZOK) {
          if (existing->stat.ephemeralOwner != own) {
            // Persistent, or held by another session that will take it along when it ends.
            std::shared_ptr<Reply> deleted = session.Delete(path, existing->stat.version);
            if (absl::Status s = Await(deadline, *deleted, "delete", path); !s.ok()) return s;
            if (deleted->rc != ZOK && deleted->rc != ZNONODE && deleted->rc != ZBADVERSION) {
              return ToStatus(deleted->rc, "delete", path);
            }
            missing = deleted->rc != ZBADVERSION;
            continue;
          }
          if (existing->value == data) return absl::OkStatus();
          std::shared_ptr<Reply> set = session.Set(path, data, existing->stat.version);
          if (absl::Status s = Await(deadline, *set, "set", path); !s.ok()) return s;
          if (set->rc == ZOK) {
            REG_LOG_DEBUG("zookeeper: updated ", service.id, " at ", path);
            return absl::OkStatus();
          }
          if (set->rc != ZNONODE && set->rc != ZBADVERSION) return ToStatus(set->rc, "set", path);
          continue;
        }
      }
      std::shared_ptr<Reply> created = session.Create(path, data, ZOO_EPHEMERAL);
      if (absl::Status s = Await(deadline, *created, "create", path); !s.ok()) return s;
      if (created->rc == ZOK) {
        REG_LOG_DEBUG("zookeeper: registered ", service.id, " at ", path);
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
  const SessionSettings settings_;
  const std::function<void()> before_session_open_;  // Tests only.
  StateLostNotifier state_lost_;
  absl::Mutex mu_;
  std::shared_ptr<Session> session_ ABSL_GUARDED_BY(mu_);
  bool opening_ ABSL_GUARDED_BY(mu_) = false;  // A thread is opening session_, unlocked.
};

absl::StatusOr<std::unique_ptr<ZookeeperAdapter>> MakeAdapter(
    const BackendUri& uri, const SessionSettings& settings,
    std::function<void()> before_session_open) {
  absl::StatusOr<Target> target = ParseUri(uri);
  if (!target.ok()) return target.status();
  if (settings.session_timeout <= absl::ZeroDuration() ||
      settings.connect_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("zookeeper: timeouts must be positive");
  }
  return std::make_unique<ZookeeperAdapter>(std::move(*target), settings,
                                            std::move(before_session_open));
}

}  // namespace

absl::StatusOr<AdapterForTesting> NewZookeeperAdapterForTesting(
    const BackendUri& uri, const AdapterOptions& options, const SessionSettings& settings,
    std::function<void()> before_session_open) {
  (void)options;
  absl::StatusOr<std::unique_ptr<ZookeeperAdapter>> adapter =
      MakeAdapter(uri, settings, std::move(before_session_open));
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
  (void)options;  // Ephemeral nodes need no TTL; the hostname is only in the service IDs.
  absl::StatusOr<std::unique_ptr<zookeeper::ZookeeperAdapter>> adapter =
      zookeeper::MakeAdapter(uri, zookeeper::SessionSettings(), nullptr);
  if (!adapter.ok()) return adapter.status();
  return std::unique_ptr<RegistryAdapter>(std::move(*adapter));
}

}  // namespace registrator
