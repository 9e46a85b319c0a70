// Starts and stops a real ZooKeeper (standalone, loopback) for integration tests.
#include "testing/zookeeper_fixture.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace registrator::fakes {

ZookeeperServer::ZookeeperServer(const Options& options) : options_(options), dir_("zk") {}

ZookeeperServer::~ZookeeperServer() { Stop(/*kill=*/true); }

std::string ZookeeperServer::address() const { return absl::StrCat("127.0.0.1:", port_); }

absl::StatusOr<std::unique_ptr<ZookeeperServer>> ZookeeperServer::Start(const Options& options) {
  std::unique_ptr<ZookeeperServer> server(new ZookeeperServer(options));
  if (server->dir_.path().empty()) return absl::InternalError("cannot create a temp dir");
  server->port_ = FreeLoopbackPort();
  if (server->port_ <= 0) return absl::InternalError("no free loopback port");
  const std::string& d = server->dir_.path();
  // Only loopback, no admin server (it binds 8080 on every address), no JMX; forceSync off and a
  // small preallocation keep the test machine's disk quiet.
  std::ofstream cfg(absl::StrCat(d, "/zoo.cfg"));
  cfg << "tickTime=" << options.tick_time_ms << "\n"
      << "minSessionTimeout=" << 2 * options.tick_time_ms << "\n"
      << "maxSessionTimeout=" << options.max_session_timeout_ms << "\n"
      << "dataDir=" << d << "/data\n"
      << "clientPort=" << server->port_ << "\n"
      << "clientPortAddress=127.0.0.1\n"
      << "admin.enableServer=false\n"
      << "4lw.commands.whitelist=ruok,stat,mntr,srvr,conf,cons\n"
      << "forceSync=no\n"
      << "preAllocSize=1024\n";
  cfg.close();
  if (!cfg) return absl::InternalError(absl::StrCat("cannot write ", d, "/zoo.cfg"));
  absl::Status launched = server->Launch();
  if (!launched.ok()) return launched;
  return server;
}

absl::Status ZookeeperServer::Launch() {
  const std::string& d = dir_.path();
  absl::StatusOr<ChildProcess> child = ChildProcess::Start(
      {"java", "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
       "-Dzookeeper.admin.enableServer=false", "-cp",
       absl::StrCat(d, ":/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar"),
       "org.apache.zookeeper.server.ZooKeeperServerMain", absl::StrCat(d, "/zoo.cfg")},
      absl::StrCat(d, "/zk.log"));
  if (!child.ok()) return child.status();
  process_ = std::move(*child);
  paused_ = false;
  // `ruok` answers before the server serves; `srvr` shows the mode only once it does.
  const bool ready = WaitFor(
      [this] {
        absl::StatusOr<std::string> answer = FourLetter("srvr");
        return answer.ok() && absl::StrContains(*answer, "Mode: standalone");
      },
      options_.start_timeout, absl::Milliseconds(50));
  if (!ready) {
    const bool alive = process_.running();
    Stop(/*kill=*/true);
    return absl::DeadlineExceededError(absl::StrCat("zookeeper on port ", port_,
                                                    alive ? " did not become ready" : " exited",
                                                    "; log:\n", Log()));
  }
  return absl::OkStatus();
}

void ZookeeperServer::Stop(bool kill) {
  if (paused_) Resume();
  if (kill) {
    process_.Signal(SIGKILL);
    process_.Stop(absl::Seconds(5));
  } else {
    process_.Stop(absl::Seconds(10));
  }
}

absl::Status ZookeeperServer::Restart(bool kill) {
  Stop(kill);
  return Launch();
}

namespace {

// True when every thread of `pid` is stopped: SIGSTOP is asynchronous, and a JVM thread that has
// not stopped yet may still answer a request.
bool AllThreadsStopped(pid_t pid) {
  const std::string task_dir = absl::StrCat("/proc/", pid, "/task");
  DIR* dir = ::opendir(task_dir.c_str());
  if (dir == nullptr) return false;
  bool all = true;
  int threads = 0;
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    ++threads;
    const std::string stat = ReadFileOrEmpty(absl::StrCat(task_dir, "/", entry->d_name, "/stat"));
    // "<tid> (<comm>) <state> ...": the state follows the last ')'.
    const size_t paren = stat.rfind(')');
    if (paren == std::string::npos || paren + 2 >= stat.size() ||
        (stat[paren + 2] != 'T' && stat[paren + 2] != 't')) {
      all = false;
    }
  }
  ::closedir(dir);
  return all && threads > 0;
}

}  // namespace

void ZookeeperServer::Pause() {
  process_.Signal(SIGSTOP);
  paused_ = true;
  WaitFor([this] { return AllThreadsStopped(process_.pid()); }, absl::Seconds(5));
}

void ZookeeperServer::Resume() {
  process_.Signal(SIGCONT);
  paused_ = false;
}

absl::StatusOr<std::string> ZookeeperServer::FourLetter(const std::string& command) const {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("cannot connect to 127.0.0.1:", port_));
  }
  if (::send(fd, command.data(), command.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(command.size())) {
    ::close(fd);
    return absl::UnavailableError("send failed");
  }
  std::string answer;
  char buffer[4096];
  while (true) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;  // EOF (the server closes after answering), error or timeout.
    answer.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return answer;
}

std::string ZookeeperServer::Log() const {
  return ReadFileOrEmpty(absl::StrCat(dir_.path(), "/zk.log"));
}

}  // namespace registrator::fakes
