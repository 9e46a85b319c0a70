// A real 3-member etcd cluster on loopback for fault tests: each member on its own free client and
// peer ports with its own data dir, all started together (members wait for each other to form the
// first quorum). A member can be SIGKILLed (a crash) to force a leader election; every member that
// is still running is stopped, and the files removed, when the cluster is destroyed.
#ifndef TESTING_ETCD_CLUSTER_H_
#define TESTING_ETCD_CLUSTER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "testing/process.h"

namespace registrator::fakes {

class EtcdCluster {
 public:
  static constexpr int kMembers = 3;

  // Starts the members and waits (up to `timeout`) until every one reports healthy.
  static absl::StatusOr<std::unique_ptr<EtcdCluster>> Start(
      absl::Duration timeout = absl::Seconds(60));
  ~EtcdCluster();
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  // "127.0.0.1:<c1>,127.0.0.1:<c2>,127.0.0.1:<c3>": the host part of an etcd:// URI.
  std::string endpoints() const;
  // The client endpoints of the members that are still running, comma-separated.
  std::string live_endpoints() const;
  // The index of the current leader as the running members report it, or an error when they do
  // not agree on one (e.g. during an election).
  absl::StatusOr<int> Leader() const;
  // SIGKILL member `index`: no goodbye to its peers, as in a crash or a lost machine.
  void Kill(int index);
  bool alive(int index) const { return members_[index].alive; }

  // `ETCDCTL_API=3 etcdctl --endpoints=<live members> <args>`; exit status, stdout in `output`.
  int Etcdctl(const std::string& args, std::string* output = nullptr) const;
  // Every member's log, for failure messages.
  std::string Logs() const;

 private:
  struct Member {
    std::string name;
    int client_port = 0;
    int peer_port = 0;
    ChildProcess process;
    bool alive = false;
  };
  EtcdCluster() = default;
  absl::Status Launch(absl::Duration timeout);

  std::unique_ptr<TempDir> dir_;
  Member members_[kMembers];
};

}  // namespace registrator::fakes

#endif  // TESTING_ETCD_CLUSTER_H_
