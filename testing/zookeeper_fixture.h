// A real ZooKeeper 3.8 server for integration tests: standalone, on a free loopback port, with its
// own config and data under a short temp dir. It can be stopped, restarted on the same port and
// data (sessions and their ephemeral nodes survive), and frozen with SIGSTOP to simulate a hung
// server. Everything is torn down on destruction.
#ifndef TESTING_ZOOKEEPER_FIXTURE_H_
#define TESTING_ZOOKEEPER_FIXTURE_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "testing/process.h"

namespace registrator::fakes {

class ZookeeperServer {
 public:
  struct Options {
    // Small ticks make session expiry tests fast: the server accepts session timeouts from
    // 2 ticks up to max_session_timeout.
    int tick_time_ms = 200;
    int max_session_timeout_ms = 60000;
    // How long to wait for "Mode: standalone" after starting the JVM.
    absl::Duration start_timeout = absl::Seconds(60);
  };

  // Starts the server and waits until it serves clients.
  static absl::StatusOr<std::unique_ptr<ZookeeperServer>> Start(const Options& options);
  static absl::StatusOr<std::unique_ptr<ZookeeperServer>> Start() { return Start(Options()); }

  ~ZookeeperServer();
  ZookeeperServer(const ZookeeperServer&) = delete;
  ZookeeperServer& operator=(const ZookeeperServer&) = delete;

  int port() const { return port_; }
  // "127.0.0.1:<port>", the C client's connect string.
  std::string address() const;
  const std::string& dir() const { return dir_.path(); }

  // Stops the JVM. `kill` = SIGKILL (a crash: nothing is closed, sessions stay in the data dir);
  // otherwise SIGTERM. Resumes a paused server first.
  void Stop(bool kill = false);
  // Stop(kill) and start again on the same port and data dir; waits until it serves.
  absl::Status Restart(bool kill = true);
  // SIGSTOP / SIGCONT: the socket stays open but nothing answers. Pause returns once every
  // thread of the JVM is stopped.
  void Pause();
  void Resume();
  bool paused() const { return paused_; }

  // Sends a four-letter command ("srvr", "ruok", ...) and returns the whole answer.
  absl::StatusOr<std::string> FourLetter(const std::string& command) const;
  // The server log (stdout+stderr of the JVM), for failure messages.
  std::string Log() const;

 private:
  explicit ZookeeperServer(const Options& options);
  absl::Status Launch();

  Options options_;
  TempDir dir_;
  int port_ = 0;
  ChildProcess process_;
  bool paused_ = false;
};

}  // namespace registrator::fakes

#endif  // TESTING_ZOOKEEPER_FIXTURE_H_
