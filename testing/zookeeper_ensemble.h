// A real 3-server ZooKeeper 3.8 ensemble on loopback for fault tests: each server with its own
// client, quorum and election ports, config and data dir; small ticks so sessions expire in
// seconds. A server can be SIGKILLed (a crash) to make its clients fail over; every server still
// running is stopped, and the files removed, when the ensemble is destroyed.
#ifndef TESTING_ZOOKEEPER_ENSEMBLE_H_
#define TESTING_ZOOKEEPER_ENSEMBLE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "testing/process.h"

namespace registrator::fakes {

class ZookeeperEnsemble {
 public:
  static constexpr int kServers = 3;
  struct Options {
    int tick_time_ms = 200;
    int max_session_timeout_ms = 4000;
    // Three JVMs on a loaded 2-core machine: starting and electing a leader can take a while.
    absl::Duration start_timeout = absl::Seconds(90);
  };

  static absl::StatusOr<std::unique_ptr<ZookeeperEnsemble>> Start(const Options& options);
  ~ZookeeperEnsemble();
  ZookeeperEnsemble(const ZookeeperEnsemble&) = delete;
  ZookeeperEnsemble& operator=(const ZookeeperEnsemble&) = delete;

  // "127.0.0.1:<c1>,127.0.0.1:<c2>,127.0.0.1:<c3>": the C client's connect string.
  std::string address() const;
  int client_port(int index) const { return servers_[index].client_port; }
  // The server a session (ephemeralOwner / the client's session id) is connected to, from each
  // server's `cons` listing; -1 when none lists it.
  int ServerOfSession(int64_t session_id) const;
  // SIGKILL server `index`.
  void Kill(int index);
  bool alive(int index) const { return servers_[index].alive; }
  std::string Logs() const;

 private:
  struct Server {
    int client_port = 0;
    int quorum_port = 0;
    int election_port = 0;
    ChildProcess process;
    bool alive = false;
  };
  explicit ZookeeperEnsemble(const Options& options) : options_(options) {}
  std::string ServerDir(int index) const;

  Options options_;
  std::unique_ptr<TempDir> dir_;
  Server servers_[kServers];
};

}  // namespace registrator::fakes

#endif  // TESTING_ZOOKEEPER_ENSEMBLE_H_
