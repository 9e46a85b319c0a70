#include "adapters/zookeeper/zookeeper_adapter.h"

#include <zookeeper/zookeeper.h>

#include <functional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "adapters/zookeeper/znode.h"
#include "registrator/common/log.h"

namespace registrator {
namespace {

using zookeeper::BodyFor;
using zookeeper::DecodeBody;
using zookeeper::EncodeBody;
using zookeeper::NodeName;
using zookeeper::ParseNodeName;
using zookeeper::ZnodeBody;

// The client library logs every connect attempt; that belongs in our debug log, not on stderr.
void LibraryLog(const char* message) {
  absl::string_view text(message == nullptr ? "" : message);
  REG_LOG_DEBUG("zookeeper client: ", absl::StripTrailingAsciiWhitespace(text));
}

std::string StateName(int state) {
  if (state == ZOO_CONNECTED_STATE) return "connected";
  if (state == ZOO_CONNECTING_STATE) return "connecting";
  if (state == ZOO_ASSOCIATING_STATE) return "associating";
  if (state == ZOO_EXPIRED_SESSION_STATE) return "session expired";
  if (state == ZOO_AUTH_FAILED_STATE) return "authentication failed";
  if (state == ZOO_READONLY_STATE) return "read-only";
  if (state == ZOO_NOTCONNECTED_STATE || state == 0) return "not connected";
  return absl::StrCat("state ", state);
}

// Maps a ZooKeeper result code of an operation on `path` to a Status.
absl::Status ZkStatus(int rc, absl::string_view what, absl::string_view path) {
  if (rc == ZOK) return absl::OkStatus();
  const std::string message = absl::StrCat("zookeeper: ", what, " ", path, ": ", zerror(rc));
  if (rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT || rc == ZSESSIONEXPIRED ||
      rc == ZSESSIONMOVED || rc == ZCLOSING || rc == ZINVALIDSTATE) {
    return absl::UnavailableError(message);
  }
  if (rc == ZNOAUTH || rc == ZAUTHFAILED) return absl::PermissionDeniedError(message);
  if (rc == ZBADARGUMENTS || rc == ZNOCHILDRENFOREPHEMERALS) {
    return absl::InvalidArgumentError(message);
  }
  if (rc == ZNONODE) return absl::NotFoundError(message);
  if (rc == ZNODEEXISTS) return absl::AlreadyExistsError(message);
  if (rc == ZNOTEMPTY || rc == ZBADVERSION) return absl::FailedPreconditionError(message);
  return absl::InternalError(message);
}

// One asynchronous request's answer. Shared between the caller, who may stop waiting at its
// deadline, and the library's completion thread, which may answer later (or with ZCLOSING when
// the handle is closed): whoever lets go last frees it.
struct Reply {
  absl::Notification done;
  int rc = ZSYSTEMERROR;
  std::string value;
  bool has_stat = false;
  Stat stat{};
  std::vector<std::string> children;
};

std::shared_ptr<Reply> TakeReply(const void* data) {
  auto* holder = static_cast<std::shared_ptr<Reply>*>(const_cast<void*>(data));
  std::shared_ptr<Reply> reply = std::move(*holder);
  delete holder;
  return reply;
}

void OnVoid(int rc, const void* data) {
  std::shared_ptr<Reply> reply = TakeReply(data);
  reply->rc = rc;
  reply->done.Notify();
}

void OnString(int rc, const char* value, const void* data) {
  std::shared_ptr<Reply> reply = TakeReply(data);
  reply->rc = rc;
  if (value != nullptr) reply->value = value;
  reply->done.Notify();
}

void OnStat(int rc, const Stat* stat, const void* data) {
  std::shared_ptr<Reply> reply = TakeReply(data);
  reply->rc = rc;
  if (stat != nullptr) {
    reply->stat = *stat;
    reply->has_stat = true;
  }
  reply->done.Notify();
}

void OnData(int rc, const char* value, int value_len, const Stat* stat, const void* data) {
  std::shared_ptr<Reply> reply = TakeReply(data);
  reply->rc = rc;
  if (value != nullptr && value_len > 0) reply->value.assign(value, value_len);
  if (stat != nullptr) {
    reply->stat = *stat;
    reply->has_stat = true;
  }
  reply->done.Notify();
}

void OnStrings(int rc, const String_vector* strings, const void* data) {
  std::shared_ptr<Reply> reply = TakeReply(data);
  reply->rc = rc;
  if (strings != nullptr) {
    for (int i = 0; i < strings->count; ++i) reply->children.emplace_back(strings->data[i]);
  }
  reply->done.Notify();
}

// One zhandle_t and the state of its session. The handle is closed on destruction; sessions are
// shared so a call in flight keeps its handle alive while another thread replaces it.
class ZkSession {
 public:
  static absl::StatusOr<std::shared_ptr<ZkSession>> Open(const ZookeeperTarget& target,
                                                         absl::Duration session_timeout,
                                                         std::function<void()> on_expired) {
    std::shared_ptr<ZkSession> session(new ZkSession(std::move(on_expired)));
    errno = 0;
    session->zh_ = zookeeper_init2(target.connect_string.c_str(), &ZkSession::Watcher,
                                   static_cast<int>(absl::ToInt64Milliseconds(session_timeout)),
                                   nullptr, session.get(), 0, &LibraryLog);
    if (session->zh_ == nullptr) {
      return absl::UnavailableError(absl::StrCat("zookeeper: cannot open a session to \"",
                                                 target.connect_string, "\": ", strerror(errno)));
    }
    if (!target.auth.empty()) {
      // Queued now, sent on connect (and again after every reconnect) before any request.
      auto* holder = new std::shared_ptr<Reply>(std::make_shared<Reply>());
      const int rc = zoo_add_auth(session->zh_, "digest", target.auth.data(),
                                  static_cast<int>(target.auth.size()), &OnVoid, holder);
      if (rc != ZOK) {
        delete holder;
        return ZkStatus(rc, "add digest auth for", target.connect_string);
      }
    }
    return session;
  }

  ~ZkSession() {
    // Joins the library's threads: no callback into this object runs afterwards. Closing a
    // connected session makes the server delete its ephemeral nodes at once.
    if (zh_ != nullptr) zookeeper_close(zh_);
  }

  zhandle_t* handle() const { return zh_; }

  // Waits until connected or unrecoverable; true when connected.
  bool WaitConnected(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(
                             +[](int* state) {
                               return *state == ZOO_CONNECTED_STATE ||
                                      *state == ZOO_EXPIRED_SESSION_STATE ||
                                      *state == ZOO_AUTH_FAILED_STATE;
                             },
                             &state_),
                         timeout);
    return state_ == ZOO_CONNECTED_STATE;
  }

  // Expired or authentication failed: this handle is done for, a new one is needed.
  bool Unrecoverable() {
    absl::MutexLock lock(&mu_);
    return state_ == ZOO_EXPIRED_SESSION_STATE || state_ == ZOO_AUTH_FAILED_STATE ||
           is_unrecoverable(zh_) == ZINVALIDSTATE;
  }

  int State() {
    absl::MutexLock lock(&mu_);
    return state_;
  }

  int64_t SessionId() { return zoo_client_id(zh_)->client_id; }

  std::pair<int64_t, std::string> ClientId() {
    const clientid_t* id = zoo_client_id(zh_);
    return {id->client_id, std::string(id->passwd, sizeof(id->passwd))};
  }

 private:
  explicit ZkSession(std::function<void()> on_expired) : on_expired_(std::move(on_expired)) {}

  static void Watcher(zhandle_t* /*zh*/, int type, int state, const char* /*path*/, void* context) {
    if (type != ZOO_SESSION_EVENT) return;  // We set no node watches.
    auto* self = static_cast<ZkSession*>(context);
    bool report = false;
    bool lost_connection = false;
    bool reconnected = false;
    {
      absl::MutexLock lock(&self->mu_);
      lost_connection = self->state_ == ZOO_CONNECTED_STATE && state == ZOO_CONNECTING_STATE;
      reconnected = self->was_connected_ && self->state_ != ZOO_CONNECTED_STATE &&
                    state == ZOO_CONNECTED_STATE;
      self->state_ = state;
      if (state == ZOO_CONNECTED_STATE) self->was_connected_ = true;
      // Only a session that existed had nodes to lose; report it once.
      if (state == ZOO_EXPIRED_SESSION_STATE && self->was_connected_ && !self->reported_) {
        self->reported_ = true;
        report = true;
      }
    }
    // Connection loss is routine (server restart, leader change): the library reconnects to the
    // same session, which keeps our nodes. Only expiry loses them.
    if (lost_connection) REG_LOG_WARN("zookeeper: connection lost; reconnecting to the session");
    if (reconnected) REG_LOG_INFO("zookeeper: reconnected; session and its nodes kept");
    REG_LOG_DEBUG("zookeeper: session ", StateName(state));
    if (report) self->on_expired_();
  }

  const std::function<void()> on_expired_;
  zhandle_t* zh_ = nullptr;
  absl::Mutex mu_;
  int state_ ABSL_GUARDED_BY(mu_) = 0;
  bool was_connected_ ABSL_GUARDED_BY(mu_) = false;
  bool reported_ ABSL_GUARDED_BY(mu_) = false;
};

// Starts one asynchronous request; `start` calls a zoo_a* function with the given completion
// data. The reply is notified by the completion, or here when the request was not queued.
std::shared_ptr<Reply> Begin(ZkSession& session,
                             const std::function<int(zhandle_t*, const void*)>& start) {
  auto reply = std::make_shared<Reply>();
  auto* holder = new std::shared_ptr<Reply>(reply);
  const int rc = start(session.handle(), holder);
  if (rc != ZOK) {
    // These are rejected before a completion is registered, so no callback will free `holder`.
    // Other synchronous failures (out of memory while queueing) may have registered it: leak
    // rather than risk a double free.
    if (rc == ZBADARGUMENTS || rc == ZINVALIDSTATE) delete holder;
    reply->rc = rc;
    reply->done.Notify();
  }
  return reply;
}

class ZookeeperAdapter : public RegistryAdapter {
 public:
  ZookeeperAdapter(ZookeeperTarget target, const ZookeeperSettings& settings)
      : target_(std::move(target)),
        settings_(settings),
        acl_(target_.auth.empty() ? &ZOO_OPEN_ACL_UNSAFE : &ZOO_CREATOR_ALL_ACL) {}

  ~ZookeeperAdapter() override {
    std::shared_ptr<ZkSession> session;
    {
      absl::MutexLock lock(&mu_);
      session = std::move(session_);
    }
    session.reset();  // Closes the session: the server removes our ephemeral nodes.
  }

  absl::Status Ping() override {
    absl::StatusOr<std::shared_ptr<ZkSession>> session = Connected();
    if (!session.ok()) return session.status();
    const absl::Time deadline = CallDeadline();
    std::shared_ptr<Reply> reply = Exists(**session, "/");
    if (absl::Status s = Await(deadline, *reply, "exists", "/"); !s.ok()) return s;
    return ZkStatus(reply->rc, "exists", "/");
  }

  absl::Status Register(const Service& service) override {
    if (absl::Status s = ValidateName(service); !s.ok()) return s;
    absl::StatusOr<std::shared_ptr<ZkSession>> session = Connected();
    if (!session.ok()) return session.status();
    const absl::Time deadline = CallDeadline();
    return RegisterWith(**session, service, deadline);
  }

  absl::Status Deregister(const Service& service) override {
    if (absl::Status s = ValidateName(service); !s.ok()) return s;
    absl::StatusOr<std::shared_ptr<ZkSession>> session = Connected();
    if (!session.ok()) return session.status();
    const absl::Time deadline = CallDeadline();
    const std::string path = NodePath(service);
    std::shared_ptr<Reply> reply = Delete(**session, path);
    if (absl::Status s = Await(deadline, *reply, "delete", path); !s.ok()) return s;
    if (reply->rc != ZOK && reply->rc != ZNONODE) return ZkStatus(reply->rc, "delete", path);
    // Upstream removes the Name node once it has no children left. A sibling registered
    // meanwhile makes this fail with ZNOTEMPTY, which is exactly right.
    const std::string name_path = NamePath(service.name);
    reply = Delete(**session, name_path);
    if (absl::Status s = Await(deadline, *reply, "delete", name_path); !s.ok()) return s;
    if (reply->rc != ZOK && reply->rc != ZNONODE && reply->rc != ZNOTEMPTY) {
      return ZkStatus(reply->rc, "delete", name_path);
    }
    REG_LOG_DEBUG("zookeeper: deregistered ", service.id, " at ", path);
    return absl::OkStatus();
  }

  absl::Status Refresh(const std::vector<Service>& services) override {
    if (services.empty()) return absl::OkStatus();
    absl::StatusOr<std::shared_ptr<ZkSession>> session = Connected();
    if (!session.ok()) return session.status();
    const absl::Time deadline = CallDeadline();
    const int64_t own = (*session)->SessionId();
    // Ask for all nodes at once, then re-create what is missing or held by another session.
    std::vector<std::shared_ptr<Reply>> replies;
    for (const Service& service : services) {
      replies.push_back(ValidateName(service).ok() ? Exists(**session, NodePath(service))
                                                   : nullptr);
    }
    absl::Status first_error;
    int failed = 0;
    bool gave_up = false;
    for (size_t i = 0; i < services.size(); ++i) {
      const Service& service = services[i];
      absl::Status status;
      if (replies[i] == nullptr) {
        status = ValidateName(service);
      } else if (status = Await(deadline, *replies[i], "exists", NodePath(service)); status.ok()) {
        const int rc = replies[i]->rc;
        const bool ours = rc == ZOK && replies[i]->stat.ephemeralOwner == own;
        if (!ours) {
          if (rc != ZOK && rc != ZNONODE) {
            status = ZkStatus(rc, "exists", NodePath(service));
          } else {
            REG_LOG_INFO("zookeeper: re-creating lost node of ", service.id, " at ",
                         NodePath(service));
            status = RegisterWith(**session, service, deadline);
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
    absl::StatusOr<std::shared_ptr<ZkSession>> connected = Connected();
    if (!connected.ok()) return connected.status();
    const absl::Time deadline = CallDeadline();
    ZkSession& session = **connected;
    const int64_t own = session.SessionId();
    std::vector<RegisteredService> result;
    std::shared_ptr<Reply> names = Children(session, target_.base);
    if (absl::Status s = Await(deadline, *names, "list", target_.base); !s.ok()) return s;
    if (names->rc == ZNONODE) return result;  // Nothing registered yet.
    if (names->rc != ZOK) return ZkStatus(names->rc, "list", target_.base);
    // Pipelined: all child lists, then all node reads, each batch in flight at once.
    std::vector<std::shared_ptr<Reply>> lists;
    for (const std::string& name : names->children) {
      lists.push_back(Children(session, NamePath(name)));
    }
    struct Pending {
      std::string name;
      std::string node;
      std::string path;
      std::shared_ptr<Reply> reply;
    };
    std::vector<Pending> pending;
    for (size_t i = 0; i < lists.size(); ++i) {
      const std::string name_path = NamePath(names->children[i]);
      if (absl::Status s = Await(deadline, *lists[i], "list", name_path); !s.ok()) return s;
      if (lists[i]->rc == ZNONODE) continue;  // Removed meanwhile.
      if (lists[i]->rc != ZOK) return ZkStatus(lists[i]->rc, "list", name_path);
      for (const std::string& node : lists[i]->children) {
        std::string path = absl::StrCat(name_path, "/", node);
        std::shared_ptr<Reply> reply = Get(session, path);
        pending.push_back({names->children[i], node, std::move(path), std::move(reply)});
      }
    }
    for (Pending& p : pending) {
      if (absl::Status s = Await(deadline, *p.reply, "read", p.path); !s.ok()) return s;
      if (p.reply->rc == ZNONODE) continue;
      if (p.reply->rc != ZOK) return ZkStatus(p.reply->rc, "read", p.path);
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
      if (address.ok()) {
        service.ip = address->first;
        service.port = address->second;
      } else {
        REG_LOG_DEBUG("zookeeper: skipping ", p.path, ": ", address.status().message());
        continue;
      }
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
    absl::MutexLock lock(&callback_mu_);
    state_lost_ = std::move(request);
  }

  absl::StatusOr<std::pair<int64_t, std::string>> SessionForTesting() {
    absl::MutexLock lock(&mu_);
    if (session_ == nullptr || session_->State() != ZOO_CONNECTED_STATE) {
      return absl::FailedPreconditionError("no connected session");
    }
    return session_->ClientId();
  }

 private:
  // The current session, connected; a new one when the old one expired.
  absl::StatusOr<std::shared_ptr<ZkSession>> Connected() {
    for (int attempt = 0; attempt < 2; ++attempt) {
      std::shared_ptr<ZkSession> stale;  // Closed outside the lock: closing joins threads.
      std::shared_ptr<ZkSession> session;
      {
        absl::MutexLock lock(&mu_);
        if (session_ != nullptr && session_->Unrecoverable()) {
          REG_LOG_INFO("zookeeper: ", StateName(session_->State()), "; opening a new session to ",
                       target_.connect_string);
          stale = std::move(session_);
        }
        if (session_ == nullptr) {
          absl::StatusOr<std::shared_ptr<ZkSession>> opened =
              ZkSession::Open(target_, settings_.session_timeout, [this] { OnSessionExpired(); });
          if (!opened.ok()) return opened.status();
          session_ = std::move(*opened);
        }
        session = session_;
      }
      stale.reset();
      if (session->WaitConnected(settings_.connect_timeout)) return session;
      if (!session->Unrecoverable()) {
        return absl::UnavailableError(absl::StrCat("zookeeper: not connected to ",
                                                   target_.connect_string, " after ",
                                                   absl::FormatDuration(settings_.connect_timeout),
                                                   " (", StateName(session->State()), ")"));
      }
      // Expired (or auth failed) while we waited: one more try with a fresh session.
    }
    return absl::UnavailableError(
        absl::StrCat("zookeeper: cannot keep a session with ", target_.connect_string));
  }

  void OnSessionExpired() {
    REG_LOG_WARN("zookeeper: session with ", target_.connect_string,
                 " expired; its ephemeral nodes are gone, asking for re-registration");
    std::function<void()> callback;
    {
      absl::MutexLock lock(&callback_mu_);
      callback = state_lost_;
    }
    if (callback) callback();
  }

  absl::Status ValidateName(const Service& service) const {
    if (service.name.empty() || service.name == "." || service.name == ".." ||
        service.name.find('/') != std::string::npos ||
        service.name.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("zookeeper: service ", service.id, ": name \"", service.name,
                       "\" cannot be a znode name (empty, \".\", \"..\" or containing \"/\")"));
    }
    return absl::OkStatus();
  }

  std::string NamePath(absl::string_view name) const {
    return target_.base == "/" ? absl::StrCat("/", name) : absl::StrCat(target_.base, "/", name);
  }

  std::string NodePath(const Service& service) const {
    return absl::StrCat(NamePath(service.name), "/", NodeName(service.ip, service.port));
  }

  // A call's requests all share one deadline, one session timeout after it got its connection:
  // the library fails a single request after 2/3 of that without an answer, and this keeps a
  // call of several requests (Register, Services) within the same bound.
  absl::Time CallDeadline() const { return absl::Now() + settings_.session_timeout; }

  absl::Status Await(absl::Time deadline, Reply& reply, absl::string_view what,
                     absl::string_view path) const {
    if (reply.done.WaitForNotificationWithDeadline(deadline)) return absl::OkStatus();
    return absl::UnavailableError(
        absl::StrCat("zookeeper: ", what, " ", path, ": no answer within ",
                     absl::FormatDuration(settings_.session_timeout), " of the call"));
  }

  std::shared_ptr<Reply> Exists(ZkSession& session, const std::string& path) {
    return Begin(session, [&](zhandle_t* zh, const void* data) {
      return zoo_aexists(zh, path.c_str(), 0, &OnStat, data);
    });
  }
  std::shared_ptr<Reply> Get(ZkSession& session, const std::string& path) {
    return Begin(session, [&](zhandle_t* zh, const void* data) {
      return zoo_aget(zh, path.c_str(), 0, &OnData, data);
    });
  }
  std::shared_ptr<Reply> Children(ZkSession& session, const std::string& path) {
    return Begin(session, [&](zhandle_t* zh, const void* data) {
      return zoo_aget_children(zh, path.c_str(), 0, &OnStrings, data);
    });
  }
  std::shared_ptr<Reply> Delete(ZkSession& session, const std::string& path, int version = -1) {
    return Begin(session, [&](zhandle_t* zh, const void* data) {
      return zoo_adelete(zh, path.c_str(), version, &OnVoid, data);
    });
  }
  std::shared_ptr<Reply> Create(ZkSession& session, const std::string& path,
                                const std::string& value, int mode) {
    return Begin(session, [&](zhandle_t* zh, const void* data) {
      return zoo_acreate(zh, path.c_str(), value.data(), static_cast<int>(value.size()), acl_, mode,
                         &OnString, data);
    });
  }
  std::shared_ptr<Reply> Set(ZkSession& session, const std::string& path, const std::string& value,
                             int version) {
    return Begin(session, [&](zhandle_t* zh, const void* data) {
      return zoo_aset(zh, path.c_str(), value.data(), static_cast<int>(value.size()), version,
                      &OnStat, data);
    });
  }

  // Creates `path` and every missing ancestor as persistent, empty nodes.
  absl::Status CreatePersistent(ZkSession& session, const std::string& path, absl::Time deadline) {
    std::string prefix;
    for (absl::string_view level : absl::StrSplit(path, '/', absl::SkipEmpty())) {
      absl::StrAppend(&prefix, "/", level);
      std::shared_ptr<Reply> reply = Create(session, prefix, "", ZOO_PERSISTENT);
      if (absl::Status s = Await(deadline, *reply, "create", prefix); !s.ok()) return s;
      if (reply->rc != ZOK && reply->rc != ZNODEEXISTS) {
        return ZkStatus(reply->rc, "create", prefix);
      }
    }
    return absl::OkStatus();
  }

  // Create, or make what is there equal to what Register writes. Reads first: even a failed
  // create is a transaction in ZooKeeper, and an unchanged registration must write nothing.
  // Retries when a concurrent Deregister removes the Name node, or the node changes between our
  // reads and writes.
  absl::Status RegisterWith(ZkSession& session, const Service& service, absl::Time deadline) {
    const std::string path = NodePath(service);
    const std::string data = Fingerprint(service);
    const int64_t own = session.SessionId();
    bool missing = false;  // Known not to exist: skip the read.
    for (int attempt = 0; attempt < 5; ++attempt) {
      if (!missing) {
        std::shared_ptr<Reply> existing = Get(session, path);
        if (absl::Status s = Await(deadline, *existing, "read", path); !s.ok()) return s;
        if (existing->rc != ZOK && existing->rc != ZNONODE) {
          return ZkStatus(existing->rc, "read", path);
        }
        if (existing->rc == ZOK) {
          if (existing->stat.ephemeralOwner != own) {
            // Persistent, or held by another session that will take it along when it ends.
            std::shared_ptr<Reply> deleted = Delete(session, path, existing->stat.version);
            if (absl::Status s = Await(deadline, *deleted, "delete", path); !s.ok()) return s;
            if (deleted->rc != ZOK && deleted->rc != ZNONODE && deleted->rc != ZBADVERSION) {
              return ZkStatus(deleted->rc, "delete", path);
            }
            missing = deleted->rc != ZBADVERSION;
            continue;
          }
          if (existing->value == data) return absl::OkStatus();
          std::shared_ptr<Reply> set = Set(session, path, data, existing->stat.version);
          if (absl::Status s = Await(deadline, *set, "set", path); !s.ok()) return s;
          if (set->rc == ZOK) {
            REG_LOG_DEBUG("zookeeper: updated ", service.id, " at ", path);
            return absl::OkStatus();
          }
          if (set->rc != ZNONODE && set->rc != ZBADVERSION) return ZkStatus(set->rc, "set", path);
          continue;
        }
      }
      std::shared_ptr<Reply> created = Create(session, path, data, ZOO_EPHEMERAL);
      if (absl::Status s = Await(deadline, *created, "create", path); !s.ok()) return s;
      if (created->rc == ZOK) {
        REG_LOG_DEBUG("zookeeper: registered ", service.id, " at ", path);
        return absl::OkStatus();
      }
      if (created->rc == ZNONODE) {  // The Name node (or the base) is missing.
        if (absl::Status s = CreatePersistent(session, NamePath(service.name), deadline); !s.ok())
          return s;
        missing = true;
        continue;
      }
      if (created->rc != ZNODEEXISTS) return ZkStatus(created->rc, "create", path);
      missing = false;  // Someone was faster: look at what they wrote.
    }
    return absl::AbortedError(absl::StrCat("zookeeper: register ", service.id, " at ", path,
                                           ": the node kept changing under us"));
  }

  const ZookeeperTarget target_;
  const ZookeeperSettings settings_;
  ACL_vector* const acl_;
  absl::Mutex callback_mu_;
  std::function<void()> state_lost_ ABSL_GUARDED_BY(callback_mu_);
  absl::Mutex mu_;
  std::shared_ptr<ZkSession> session_ ABSL_GUARDED_BY(mu_);
};

absl::Status BadUri(const BackendUri& uri, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("zookeeper URI \"", uri.scheme, "://",
                                                 uri.userinfo.empty() ? "" : "<userinfo>@",
                                                 uri.host, uri.path, "\": ", why));
}

}  // namespace

absl::StatusOr<ZookeeperTarget> ParseZookeeperUri(const BackendUri& uri) {
  if (uri.scheme != "zookeeper") return BadUri(uri, "scheme must be zookeeper");
  if (uri.hosts.empty()) return BadUri(uri, "needs at least one host:port");
  ZookeeperTarget target;
  std::vector<std::string> hosts;
  for (const std::string& host : uri.hosts) {
    absl::string_view name = host;
    absl::string_view port;
    if (!host.empty() && host.front() == '[') {  // [v6]:port
      const size_t close = host.find(']');
      if (close == std::string::npos || close == 1) {
        return BadUri(uri, absl::StrCat("bad IPv6 host \"", host, "\""));
      }
      name = absl::string_view(host).substr(0, close + 1);
      absl::string_view rest = absl::string_view(host).substr(close + 1);
      if (!rest.empty()) {
        if (rest.front() != ':') return BadUri(uri, absl::StrCat("bad host \"", host, "\""));
        port = rest.substr(1);
      }
    } else {
      const size_t colon = host.find(':');
      if (colon != std::string::npos) {
        if (host.find(':', colon + 1) != std::string::npos) {
          return BadUri(uri, absl::StrCat("IPv6 host \"", host, "\" needs brackets: [addr]:port"));
        }
        name = absl::string_view(host).substr(0, colon);
        port = absl::string_view(host).substr(colon + 1);
      } else {
        port = "2181";
      }
    }
    if (name.empty()) return BadUri(uri, absl::StrCat("empty host name in \"", host, "\""));
    int number = 0;
    if (port.empty() || !absl::ascii_isdigit(static_cast<unsigned char>(port.front())) ||
        !absl::SimpleAtoi(port, &number) || number < 1 || number > 65535) {
      return BadUri(uri, absl::StrCat("bad port in \"", host, "\""));
    }
    hosts.push_back(absl::StrCat(name, ":", number));
  }
  target.connect_string = absl::StrJoin(hosts, ",");
  target.base = uri.path.empty() ? "/" : uri.path;
  if (target.base.front() != '/') return BadUri(uri, "base path must start with /");
  for (absl::string_view level : absl::StrSplit(absl::string_view(target.base).substr(1), '/')) {
    if (target.base == "/") break;
    if (level.empty() || level == "." || level == ".." ||
        level.find('\0') != absl::string_view::npos) {
      return BadUri(uri, "base path has an empty, \".\" or \"..\" level");
    }
  }
  if (!uri.userinfo.empty()) {
    if (uri.userinfo.find(':') == std::string::npos || uri.userinfo.front() == ':') {
      return BadUri(uri, "userinfo must be user:password (digest auth)");
    }
    target.auth = uri.userinfo;
  }
  return target;
}

absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewZookeeperAdapter(
    const BackendUri& uri, const AdapterOptions& options) {
  return NewZookeeperAdapterWithSettings(uri, options, ZookeeperSettings());
}

absl::StatusOr<std::unique_ptr<RegistryAdapter>> NewZookeeperAdapterWithSettings(
    const BackendUri& uri, const AdapterOptions& options, const ZookeeperSettings& settings) {
  (void)options;  // Ephemeral nodes need no TTL; the hostname is only in the service IDs.
  absl::StatusOr<ZookeeperTarget> target = ParseZookeeperUri(uri);
  if (!target.ok()) return target.status();
  if (settings.session_timeout <= absl::ZeroDuration() ||
      settings.connect_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("zookeeper: timeouts must be positive");
  }
  return std::unique_ptr<RegistryAdapter>(new ZookeeperAdapter(std::move(*target), settings));
}

absl::StatusOr<std::pair<int64_t, std::string>> ZookeeperSessionForTesting(
    RegistryAdapter& adapter) {
  auto* zk = dynamic_cast<ZookeeperAdapter*>(&adapter);
  if (zk == nullptr) return absl::FailedPreconditionError("not a zookeeper adapter");
  return zk->SessionForTesting();
}

}  // namespace registrator
