// A 3-server ZooKeeper ensemble for fault tests; see zookeeper_ensemble.h.
#include "testing/zookeeper_ensemble.h"

#include <signal.h>

#include <fstream>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "testing/zookeeper_fixture.h"

namespace registrator::fakes {

std::string ZookeeperEnsemble::ServerDir(int index) const {
  return absl::StrCat(dir_->path(), "/s", index + 1);
}

absl::StatusOr<std::unique_ptr<ZookeeperEnsemble>> ZookeeperEnsemble::Start(
    const Options& options) {
  std::unique_ptr<ZookeeperEnsemble> ensemble(new ZookeeperEnsemble(options));
  ensemble->dir_ = std::make_unique<TempDir>("zke");
  if (ensemble->dir_->path().empty()) return absl::InternalError("cannot create a temp dir");
  std::set<int> ports;
  for (Server& server : ensemble->servers_) {
    server.client_port = FreeLoopbackPort();
    server.quorum_port = FreeLoopbackPort();
    server.election_port = FreeLoopbackPort();
    ports.insert({server.client_port, server.quorum_port, server.election_port});
  }
  if (ports.size() != 3 * kServers || *ports.begin() <= 0) {
    return absl::UnavailableError("no distinct free loopback ports");
  }
  std::string members;
  for (int i = 0; i < kServers; ++i) {
    absl::StrAppend(&members, "server.", i + 1, "=127.0.0.1:", ensemble->servers_[i].quorum_port,
                    ":", ensemble->servers_[i].election_port, "\n");
  }
  for (int i = 0; i < kServers; ++i) {
    const std::string d = ensemble->ServerDir(i);
    if (RunCommand(absl::StrCat("mkdir -p '", d, "/data' && echo ", i + 1, " > '", d,
                                "/data/myid'")) != 0) {
      return absl::InternalError(absl::StrCat("cannot prepare ", d));
    }
    // As the standalone fixture: loopback only, no admin server, no JMX port; forceSync off.
    // initLimit/syncLimit are in ticks: 10 s / 4 s with 200 ms ticks.
    std::ofstream cfg(absl::StrCat(d, "/zoo.cfg"));
    cfg << "tickTime=" << options.tick_time_ms << "\n"
        << "initLimit=50\nsyncLimit=20\n"
        << "minSessionTimeout=" << 2 * options.tick_time_ms << "\n"
        << "maxSessionTimeout=" << options.max_session_timeout_ms << "\n"
        << "dataDir=" << d << "/data\n"
        << "clientPort=" << ensemble->servers_[i].client_port << "\n"
        << "clientPortAddress=127.0.0.1\n"
        << "admin.enableServer=false\n"
        << "4lw.commands.whitelist=ruok,stat,mntr,srvr,conf,cons\n"
        << "forceSync=no\npreAllocSize=1024\n"
        << members;
    cfg.close();
    if (!cfg) return absl::InternalError(absl::StrCat("cannot write ", d, "/zoo.cfg"));
  }
  for (int i = 0; i < kServers; ++i) {
    const std::string d = ensemble->ServerDir(i);
    absl::StatusOr<ChildProcess> child = ChildProcess::Start(
        {"java", "-Xmx96m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
         "-Dzookeeper.admin.enableServer=false", "-cp",
         absl::StrCat(d, ":/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar"),
         "org.apache.zookeeper.server.quorum.QuorumPeerMain", absl::StrCat(d, "/zoo.cfg")},
        absl::StrCat(d, "/zk.log"));
    if (!child.ok()) return child.status();
    ensemble->servers_[i].process = std::move(*child);
    ensemble->servers_[i].alive = true;
  }
  // Serving once every server shows its role (before the election `srvr` says it is not
  // serving requests).
  const bool ready = WaitFor(
      [&] {
        for (int i = 0; i < kServers; ++i) {
          if (!ensemble->servers_[i].process.running()) return true;
          absl::StatusOr<std::string> answer =
              ZookeeperFourLetter(ensemble->servers_[i].client_port, "srvr");
          if (!answer.ok() || !(absl::StrContains(*answer, "Mode: leader") ||
                                absl::StrContains(*answer, "Mode: follower"))) {
            return false;
          }
        }
        return true;
      },
      options.start_timeout, absl::Milliseconds(200));
  for (Server& server : ensemble->servers_) {
    if (!server.process.running()) {
      return absl::UnavailableError(
          absl::StrCat("a ZooKeeper server exited; logs:\n", ensemble->Logs()));
    }
  }
  if (!ready) {
    return absl::DeadlineExceededError(
        absl::StrCat("ensemble not serving; logs:\n", ensemble->Logs()));
  }
  return ensemble;
}

ZookeeperEnsemble::~ZookeeperEnsemble() {
  for (Server& server : servers_) {
    server.process.Signal(SIGKILL);
    server.process.Stop(absl::Seconds(5));
  }
}

std::string ZookeeperEnsemble::address() const {
  std::vector<std::string> all;
  for (const Server& server : servers_)
    all.push_back(absl::StrCat("127.0.0.1:", server.client_port));
  return absl::StrJoin(all, ",");
}

int ZookeeperEnsemble::ServerOfSession(int64_t session_id) const {
  // `cons` lists each connection as "... sid=0x<hex>, ...".
  const std::string needle = absl::StrCat("sid=0x", absl::Hex(session_id), ",");
  for (int i = 0; i < kServers; ++i) {
    if (!servers_[i].alive) continue;
    absl::StatusOr<std::string> answer = ZookeeperFourLetter(servers_[i].client_port, "cons");
    if (answer.ok() && absl::StrContains(*answer, needle)) return i;
  }
  return -1;
}

void ZookeeperEnsemble::Kill(int index) {
  servers_[index].process.Signal(SIGKILL);
  servers_[index].process.Stop(absl::Seconds(5));
  servers_[index].alive = false;
}

std::string ZookeeperEnsemble::Logs() const {
  std::string logs;
  for (int i = 0; i < kServers; ++i) {
    absl::StrAppend(&logs, "--- server ", i + 1, ":\n",
                    ReadFileOrEmpty(absl::StrCat(ServerDir(i), "/zk.log")));
  }
  return logs;
}

}  // namespace registrator::fakes
