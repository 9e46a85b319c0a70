// A plain synchronous ZooKeeper C-client handle for tests: reads back what the code under test
// wrote and meddles behind its back (seeds nodes, deletes them, takes over a session), without
// sharing any code with the adapter it checks.
#ifndef TESTING_ZOOKEEPER_CLIENT_H_
#define TESTING_ZOOKEEPER_CLIENT_H_

#include <zookeeper/zookeeper.h>

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "testing/process.h"

namespace registrator::fakes {

class ZookeeperTestClient {
 public:
  // Connects in the background to `address` ("127.0.0.1:<port>"); with `session`, resumes that
  // session (its ID and password) instead of starting a new one.
  explicit ZookeeperTestClient(const std::string& address, const clientid_t* session = nullptr,
                               int timeout_ms = 4000) {
    handle_ = zookeeper_init(address.c_str(), &ZookeeperTestClient::Watcher, timeout_ms, session,
                             this, 0);
  }
  ~ZookeeperTestClient() { Close(); }
  ZookeeperTestClient(const ZookeeperTestClient&) = delete;
  ZookeeperTestClient& operator=(const ZookeeperTestClient&) = delete;

  void Close() {
    if (handle_ != nullptr) zookeeper_close(handle_);
    handle_ = nullptr;
  }
  bool WaitConnected(absl::Duration timeout = absl::Seconds(15)) {
    return WaitFor([this] { return connected_.load(); }, timeout);
  }
  // Connected, or told by the server that the session it resumes no longer exists; false when
  // neither happened within `timeout`.
  bool WaitConnectedOrExpired(absl::Duration timeout = absl::Seconds(15)) {
    return WaitFor([this] { return connected_.load() || expired_.load(); }, timeout);
  }
  bool expired() const { return expired_.load(); }
  // The node's data, or nullopt with `rc` set on any error (ZNONODE, ZNOAUTH...).
  std::optional<std::string> Get(const std::string& path, Stat* stat = nullptr, int* rc = nullptr) {
    char buffer[4096];
    int len = sizeof(buffer);
    Stat local;
    const int result = zoo_get(handle_, path.c_str(), 0, buffer, &len, stat ? stat : &local);
    if (rc != nullptr) *rc = result;
    if (result != ZOK) return std::nullopt;
    return std::string(buffer, len < 0 ? 0 : len);
  }
  bool Exists(const std::string& path) {
    return zoo_exists(handle_, path.c_str(), 0, nullptr) == ZOK;
  }
  std::vector<std::string> Children(const std::string& path) {
    String_vector strings{};
    std::vector<std::string> out;
    if (zoo_get_children(handle_, path.c_str(), 0, &strings) != ZOK) return out;
    for (int i = 0; i < strings.count; ++i) out.emplace_back(strings.data[i]);
    deallocate_String_vector(&strings);
    return out;
  }
  // A persistent, world-writable node; the ZooKeeper return code.
  int Create(const std::string& path, const std::string& data) {
    return zoo_create(handle_, path.c_str(), data.data(), static_cast<int>(data.size()),
                      &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, nullptr, 0);
  }
  int Delete(const std::string& path) { return zoo_delete(handle_, path.c_str(), -1); }
  // Replaces the data of an existing node (any version); the ZooKeeper return code.
  int Set(const std::string& path, const std::string& data) {
    return zoo_set(handle_, path.c_str(), data.data(), static_cast<int>(data.size()), -1);
  }

 private:
  static void Watcher(zhandle_t*, int type, int state, const char*, void* context) {
    if (type == ZOO_SESSION_EVENT) {
      auto* self = static_cast<ZookeeperTestClient*>(context);
      self->connected_ = state == ZOO_CONNECTED_STATE;
      if (state == ZOO_EXPIRED_SESSION_STATE) self->expired_ = true;
    }
  }
  zhandle_t* handle_ = nullptr;
  std::atomic<bool> connected_{false};
  std::atomic<bool> expired_{false};
};

}  // namespace registrator::fakes

#endif  // TESTING_ZOOKEEPER_CLIENT_H_
