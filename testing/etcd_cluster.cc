// A 3-member etcd cluster for fault tests; see etcd_cluster.h.
#include "testing/etcd_cluster.h"

#include <signal.h>

#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace registrator::fakes {

absl::StatusOr<std::unique_ptr<EtcdCluster>> EtcdCluster::Start(absl::Duration timeout) {
  std::unique_ptr<EtcdCluster> cluster(new EtcdCluster());
  cluster->dir_ = std::make_unique<TempDir>("etcdc");
  if (cluster->dir_->path().empty()) return absl::InternalError("cannot create a temp dir");
  std::set<int> ports;
  for (int i = 0; i < kMembers; ++i) {
    Member& member = cluster->members_[i];
    member.name = absl::StrCat("m", i);
    member.client_port = FreeLoopbackPort();
    member.peer_port = FreeLoopbackPort();
    ports.insert(member.client_port);
    ports.insert(member.peer_port);
  }
  // FreeLoopbackPort may hand out a port twice once it was closed again.
  if (ports.size() != 2 * kMembers || *ports.begin() <= 0) {
    return absl::UnavailableError("no distinct free loopback ports");
  }
  absl::Status launched = cluster->Launch(timeout);
  if (!launched.ok()) return launched;
  return cluster;
}

EtcdCluster::~EtcdCluster() {
  for (Member& member : members_) member.process.Stop(absl::Seconds(5));
}

std::string EtcdCluster::endpoints() const {
  std::vector<std::string> all;
  for (const Member& member : members_)
    all.push_back(absl::StrCat("127.0.0.1:", member.client_port));
  return absl::StrJoin(all, ",");
}

std::string EtcdCluster::live_endpoints() const {
  std::vector<std::string> live;
  for (const Member& member : members_) {
    if (member.alive) live.push_back(absl::StrCat("127.0.0.1:", member.client_port));
  }
  return absl::StrJoin(live, ",");
}

absl::Status EtcdCluster::Launch(absl::Duration timeout) {
  std::vector<std::string> initial;
  for (const Member& member : members_) {
    initial.push_back(absl::StrCat(member.name, "=http://127.0.0.1:", member.peer_port));
  }
  const std::string initial_cluster = absl::StrJoin(initial, ",");
  for (Member& member : members_) {
    const std::string client = absl::StrCat("http://127.0.0.1:", member.client_port);
    const std::string peer = absl::StrCat("http://127.0.0.1:", member.peer_port);
    const std::string data = absl::StrCat(dir_->path(), "/", member.name);
    absl::StatusOr<ChildProcess> child = ChildProcess::Start(
        {"etcd", absl::StrCat("--name=", member.name), absl::StrCat("--data-dir=", data),
         absl::StrCat("--listen-client-urls=", client),
         absl::StrCat("--advertise-client-urls=", client),
         absl::StrCat("--listen-peer-urls=", peer),
         absl::StrCat("--initial-advertise-peer-urls=", peer),
         absl::StrCat("--initial-cluster=", initial_cluster), "--initial-cluster-state=new",
         "--initial-cluster-token=registrator-faults", "--log-level=warn", "--logger=zap"},
        absl::StrCat(data, ".log"));
    if (!child.ok()) return child.status();
    member.process = std::move(*child);
    member.alive = true;
  }
  // etcdctl exits 0 only when every listed endpoint is healthy (it can commit a proposal).
  const bool healthy = WaitFor(
      [&] {
        for (Member& member : members_) {
          if (!member.process.running()) return true;
        }
        return Etcdctl("endpoint health --command-timeout=2s") == 0;
      },
      timeout, absl::Milliseconds(200));
  for (Member& member : members_) {
    if (!member.process.running()) {
      return absl::UnavailableError(
          absl::StrCat("etcd member ", member.name, " exited; logs:\n", Logs()));
    }
  }
  if (!healthy) return absl::DeadlineExceededError(absl::StrCat("cluster not healthy:\n", Logs()));
  return absl::OkStatus();
}

absl::StatusOr<int> EtcdCluster::Leader() const {
  // `-w fields` prints one `"Name" : value` line per field and endpoint, endpoints in order.
  int leader = -1;
  for (int i = 0; i < kMembers; ++i) {
    if (!members_[i].alive) continue;
    std::string output;
    const std::string args =
        absl::StrCat("ETCDCTL_API=3 etcdctl --command-timeout=2s --endpoints=127.0.0.1:",
                     members_[i].client_port, " endpoint status -w fields 2>&1");
    if (RunCommand(args, &output) != 0) continue;
    uint64_t member_id = 0;
    uint64_t leader_id = 0;
    for (absl::string_view line : absl::StrSplit(output, '\n')) {
      std::pair<absl::string_view, absl::string_view> field =
          absl::StrSplit(line, absl::MaxSplits(" : ", 1));
      if (field.first == "\"MemberID\"") (void)absl::SimpleAtoi(field.second, &member_id);
      if (field.first == "\"Leader\"") (void)absl::SimpleAtoi(field.second, &leader_id);
    }
    if (member_id != 0 && member_id == leader_id) {
      if (leader != -1) return absl::UnavailableError("two members claim to lead");
      leader = i;
    }
  }
  if (leader == -1) return absl::UnavailableError("no member reports itself leader");
  return leader;
}

void EtcdCluster::Kill(int index) {
  Member& member = members_[index];
  member.process.Signal(SIGKILL);
  member.process.Stop(absl::Seconds(5));  // Reaps it.
  member.alive = false;
}

int EtcdCluster::Etcdctl(const std::string& args, std::string* output) const {
  return RunCommand(
      absl::StrCat("ETCDCTL_API=3 etcdctl --endpoints=", live_endpoints(), " ", args, " 2>&1"),
      output);
}

std::string EtcdCluster::Logs() const {
  std::string logs;
  for (const Member& member : members_) {
    absl::StrAppend(&logs, "--- ", member.name, ":\n",
                    ReadFileOrEmpty(absl::StrCat(dir_->path(), "/", member.name, ".log")));
  }
  return logs;
}

}  // namespace registrator::fakes
