// A scriptable stand-in for dockerd's HTTP API on a unix socket (cpp-httplib), for the client
// and event stream unit tests: canned answers per path, a record of every request target, and
// an /events endpoint whose chunks the test pushes and whose connection the test can drop.
// Only GET is served: any other method fails the test that is running (registrator never writes
// to Docker).
#ifndef DOCKER_CLIENT_FAKE_DOCKER_SERVER_H_
#define DOCKER_CLIENT_FAKE_DOCKER_SERVER_H_

#include <httplib.h>

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "testing/process.h"

namespace registrator::docker {

class FakeDockerServer {
 public:
  FakeDockerServer();
  ~FakeDockerServer();  // Stops.
  FakeDockerServer(const FakeDockerServer&) = delete;
  FakeDockerServer& operator=(const FakeDockerServer&) = delete;

  // Canned answer for GET `path` (without the /vX.Y prefix and without the query).
  void SetResponse(const std::string& path, int status, const std::string& body);
  // Answer /events with this status and body instead of streaming (e.g. 500).
  void FailEvents(int status, const std::string& body);

  // Binds the socket and serves on a thread.
  absl::Status Start();
  void Stop();

  const std::string& socket_path() const { return socket_path_; }
  std::string host() const { return "unix://" + socket_path_; }

  // Every request target ("/v1.41/containers/json?all=1"), in arrival order.
  std::vector<std::string> targets();
  // Requests with a method other than GET ("POST /v1.41/containers/x/kill"): each also fails
  // the running test (ADD_FAILURE); registrator must only read from Docker.
  std::vector<std::string> non_get_requests();
  // Targets of /events requests only.
  std::vector<std::string> event_targets();

  // Bytes for the open /events stream (the next one, if none is open yet).
  void PushEvents(const std::string& chunk);
  // Ends the open /events streams abruptly (no terminating chunk), as a dying daemon does.
  void DropEventStreams();
  // Ends the open /events streams cleanly (terminating chunk), as Docker does on shutdown.
  void EndEventStreams();
  // Number of /events streams currently open.
  int open_event_streams();

 private:
  struct Canned {
    int status = 200;
    std::string body;
  };
  static std::string StripVersion(const std::string& path);

  fakes::TempDir dir_{"fdk"};
  std::string socket_path_;
  httplib::Server server_;
  std::thread thread_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Canned> responses_ ABSL_GUARDED_BY(mu_);
  bool events_fail_ ABSL_GUARDED_BY(mu_) = false;
  Canned events_failure_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> targets_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> non_get_requests_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> event_targets_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> event_chunks_ ABSL_GUARDED_BY(mu_);
  int drop_generation_ ABSL_GUARDED_BY(mu_) = 0;
  int end_generation_ ABSL_GUARDED_BY(mu_) = 0;
  int open_streams_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace registrator::docker

#endif  // DOCKER_CLIENT_FAKE_DOCKER_SERVER_H_
