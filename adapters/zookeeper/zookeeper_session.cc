// One ZooKeeper client session: the zhandle_t's owner, its state, and requests bounded in time.
#include "adapters/zookeeper/zookeeper_session.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "registrator/common/log.h"

namespace registrator::zookeeper {
namespace {

// The client library logs every connect attempt; that belongs in our debug log, not on stderr.
void LibraryLog(const char* message) {
  absl::string_view text(message == nullptr ? "" : message);
  REG_LOG_DEBUG("zookeeper client: ", absl::StripTrailingAsciiWhitespace(text));
}

std::string NameOfState(int state) {
  if (state == ZOO_CONNECTED_STATE) return "connected";
  if (state == ZOO_CONNECTING_STATE) return "connecting";
  if (state == ZOO_ASSOCIATING_STATE) return "associating";
  if (state == ZOO_EXPIRED_SESSION_STATE) return "session expired";
  if (state == ZOO_AUTH_FAILED_STATE) return "authentication failed";
  if (state == ZOO_READONLY_STATE) return "read-only";
  if (state == ZOO_NOTCONNECTED_STATE || state == 0) return "not connected";
  return absl::StrCat("state ", state);
}

void KeepStat(const Stat* stat, Reply& reply) {
  if (stat == nullptr) return;
  reply.stat = *stat;
  reply.has_stat = true;
}

}  // namespace

absl::Status ToStatus(int rc, absl::string_view what, absl::string_view path) {
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

Session::Session(std::function<void()> on_expired, bool digest_auth)
    : on_expired_(std::move(on_expired)),
      create_acl_(digest_auth ? &ZOO_CREATOR_ALL_ACL : &ZOO_OPEN_ACL_UNSAFE) {}

absl::StatusOr<std::shared_ptr<Session>> Session::Open(const Target& target,
                                                       absl::Duration session_timeout,
                                                       std::function<void()> on_expired) {
  std::shared_ptr<Session> session(new Session(std::move(on_expired), !target.auth.empty()));
  errno = 0;
  session->handle_ = zookeeper_init2(target.connect_string.c_str(), &Session::Watcher,
                                     static_cast<int>(absl::ToInt64Milliseconds(session_timeout)),
                                     nullptr, session.get(), 0, &LibraryLog);
  if (session->handle_ == nullptr) {
    return absl::UnavailableError(absl::StrCat("zookeeper: cannot open a session to \"",
                                               target.connect_string, "\": ", strerror(errno)));
  }
  if (!target.auth.empty()) {
    // Queued now, sent on connect (and again after every reconnect) before any request. A
    // refusal shows as the AUTH_FAILED state, which WaitConnected reports.
    auto* holder = new Pending{session.get(), std::make_shared<Reply>()};
    const int rc = zoo_add_auth(session->handle_, "digest", target.auth.data(),
                                static_cast<int>(target.auth.size()), &Session::OnVoid, holder);
    if (rc != ZOK) {
      delete holder;
      return ToStatus(rc, "add digest auth for", target.connect_string);
    }
  }
  return session;
}

void Session::Complete(const void* data, const std::function<void(Reply&)>& fill) {
  // The completion data is a heap-allocated Pending; the completion takes it back.
  auto* pending = static_cast<Pending*>(const_cast<void*>(data));
  Session* session = pending->session;
  std::shared_ptr<Reply> reply = std::move(pending->reply);
  delete pending;
  absl::MutexLock lock(&session->mu_);
  fill(*reply);
  reply->done = true;
}

void Session::OnVoid(int rc, const void* data) {
  Complete(data, [&](Reply& reply) { reply.rc = rc; });
}

void Session::OnString(int rc, const char* value, const void* data) {
  Complete(data, [&](Reply& reply) {
    reply.rc = rc;
    if (value != nullptr) reply.value = value;
  });
}

void Session::OnStat(int rc, const Stat* stat, const void* data) {
  Complete(data, [&](Reply& reply) {
    reply.rc = rc;
    KeepStat(stat, reply);
  });
}

void Session::OnData(int rc, const char* value, int value_len, const Stat* stat, const void* data) {
  Complete(data, [&](Reply& reply) {
    reply.rc = rc;
    if (value != nullptr && value_len > 0) reply.value.assign(value, value_len);
    KeepStat(stat, reply);
  });
}

void Session::OnStrings(int rc, const String_vector* strings, const void* data) {
  Complete(data, [&](Reply& reply) {
    reply.rc = rc;
    if (strings != nullptr) {
      for (int i = 0; i < strings->count; ++i) reply.children.emplace_back(strings->data[i]);
    }
  });
}

void Session::Abort() {
  absl::MutexLock lock(&mu_);
  aborted_ = true;
}

absl::Status Session::Await(absl::Time deadline, const Reply& reply, absl::string_view what,
                            absl::string_view path) {
  struct Waited {
    const Reply* reply;
    const bool* aborted;
  } waited{&reply, &aborted_};
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithDeadline(absl::Condition(
                            +[](Waited* w) { return w->reply->done || *w->aborted; }, &waited),
                        deadline);
  if (reply.done) return absl::OkStatus();
  if (aborted_) {
    return absl::CancelledError(
        absl::StrCat("zookeeper: ", what, " ", path, ": abandoned, registrator is stopping"));
  }
  return absl::UnavailableError(
      absl::StrCat("zookeeper: ", what, " ", path, ": no answer within the call's time"));
}

Session::~Session() {
  if (handle_ != nullptr) zookeeper_close(handle_);
}

bool Session::WaitConnected(absl::Duration timeout) {
  struct Watched {
    const int* state;
    const bool* aborted;
  } watched{&state_, &aborted_};
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(
                           +[](Watched* w) {
                             return *w->aborted || *w->state == ZOO_CONNECTED_STATE ||
                                    *w->state == ZOO_EXPIRED_SESSION_STATE ||
                                    *w->state == ZOO_AUTH_FAILED_STATE;
                           },
                           &watched),
                       timeout);
  return state_ == ZOO_CONNECTED_STATE && !aborted_;
}

bool Session::Unrecoverable() {
  absl::MutexLock lock(&mu_);
  return state_ == ZOO_EXPIRED_SESSION_STATE || state_ == ZOO_AUTH_FAILED_STATE ||
         is_unrecoverable(handle_) == ZINVALIDSTATE;
}

std::string Session::StateName() {
  absl::MutexLock lock(&mu_);
  return NameOfState(state_);
}

int64_t Session::Id() const { return zoo_client_id(handle_)->client_id; }

std::pair<int64_t, std::string> Session::Credentials() const {
  const clientid_t* id = zoo_client_id(handle_);
  return {id->client_id, std::string(id->passwd, sizeof(id->passwd))};
}

void Session::Watcher(zhandle_t* /*handle*/, int type, int state, const char* /*path*/,
                      void* context) {
  if (type != ZOO_SESSION_EVENT) return;  // Node watches have watchers of their own.
  auto* self = static_cast<Session*>(context);
  bool report = false;
  bool lost_connection = false;
  bool reconnected = false;
  {
    absl::MutexLock lock(&self->mu_);
    lost_connection = self->state_ == ZOO_CONNECTED_STATE && state == ZOO_CONNECTING_STATE;
    reconnected =
        self->was_connected_ && self->state_ != ZOO_CONNECTED_STATE && state == ZOO_CONNECTED_STATE;
    self->state_ = state;
    if (state == ZOO_CONNECTED_STATE) self->was_connected_ = true;
    // Only a session that existed had nodes to lose; report it once.
    // Not after Abort(): the owner is shutting down and may already be gone.
    if (state == ZOO_EXPIRED_SESSION_STATE && self->was_connected_ && !self->reported_ &&
        !self->aborted_) {
      self->reported_ = true;
      report = true;
    }
  }
  // Connection loss is routine (server restart, leader change): the library reconnects to the
  // same session, which keeps our nodes. Only expiry loses them.
  if (lost_connection) REG_LOG_WARN("zookeeper: connection lost; reconnecting to the session");
  if (reconnected) REG_LOG_INFO("zookeeper: reconnected; session and its nodes kept");
  REG_LOG_DEBUG("zookeeper: session ", NameOfState(state));
  if (report) self->on_expired_();
}

std::shared_ptr<Reply> Session::Start(const std::function<int(zhandle_t*, const void*)>& start) {
  auto reply = std::make_shared<Reply>();
  {
    // Stopping: send nothing more to a server that may be hung; Await reports CANCELLED.
    absl::MutexLock lock(&mu_);
    if (aborted_) {
      reply->rc = ZCLOSING;
      reply->done = true;
      return reply;
    }
  }
  auto* holder = new Pending{this, reply};
  const int rc = start(handle_, holder);
  if (rc != ZOK) {
    // These are rejected before a completion is registered, so no callback will free `holder`.
    // Other synchronous failures (out of memory while queueing) may have registered it: leak
    // rather than risk a double free.
    if (rc == ZBADARGUMENTS || rc == ZINVALIDSTATE) delete holder;
    absl::MutexLock lock(&mu_);
    reply->rc = rc;
    reply->done = true;
  }
  return reply;
}

std::shared_ptr<Reply> Session::Exists(const std::string& path) {
  return Start([&](zhandle_t* zh, const void* data) {
    return zoo_aexists(zh, path.c_str(), 0, &Session::OnStat, data);
  });
}

std::shared_ptr<Reply> Session::Get(const std::string& path) {
  return Start([&](zhandle_t* zh, const void* data) {
    return zoo_aget(zh, path.c_str(), 0, &Session::OnData, data);
  });
}

std::shared_ptr<Reply> Session::Children(const std::string& path) {
  return Start([&](zhandle_t* zh, const void* data) {
    return zoo_aget_children(zh, path.c_str(), 0, &Session::OnStrings, data);
  });
}

std::shared_ptr<Reply> Session::Delete(const std::string& path, int version) {
  return Start([&](zhandle_t* zh, const void* data) {
    return zoo_adelete(zh, path.c_str(), version, &Session::OnVoid, data);
  });
}

std::shared_ptr<Reply> Session::Create(const std::string& path, const std::string& data, int mode) {
  return Start([&](zhandle_t* zh, const void* completion) {
    return zoo_acreate(zh, path.c_str(), data.data(), static_cast<int>(data.size()), create_acl_,
                       mode, &Session::OnString, completion);
  });
}

std::shared_ptr<Reply> Session::Set(const std::string& path, const std::string& data, int version) {
  return Start([&](zhandle_t* zh, const void* completion) {
    return zoo_aset(zh, path.c_str(), data.data(), static_cast<int>(data.size()), version,
                    &Session::OnStat, completion);
  });
}

std::shared_ptr<Reply> Session::WatchExists(const std::string& path, watcher_fn watcher,
                                            void* context) {
  return Start([&](zhandle_t* zh, const void* data) {
    return zoo_awexists(zh, path.c_str(), watcher, context, &Session::OnStat, data);
  });
}

std::shared_ptr<Reply> Session::WatchChildren(const std::string& path, watcher_fn watcher,
                                              void* context) {
  return Start([&](zhandle_t* zh, const void* data) {
    return zoo_awget_children(zh, path.c_str(), watcher, context, &Session::OnStrings, data);
  });
}

}  // namespace registrator::zookeeper
