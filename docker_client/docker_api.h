// The Docker Engine calls registrator makes, as an interface so the bridge can be tested
// against a fake. Only reads: registrator never changes anything in Docker.
#ifndef DOCKER_CLIENT_DOCKER_API_H_
#define DOCKER_CLIENT_DOCKER_API_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "docker_client/types.h"

namespace registrator::docker {

class DockerApi {
 public:
  virtual ~DockerApi() = default;

  virtual absl::Status Ping() = 0;
  virtual absl::StatusOr<Version> GetVersion() = 0;
  // GET /containers/json; `all` includes stopped containers. `status_filter` (e.g. "running")
  // adds filters={"status":[...]} when non-empty.
  virtual absl::StatusOr<std::vector<ContainerSummary>> ListContainers(
      bool all, absl::string_view status_filter = "") = 0;
  // GET /containers/<id>/json. NOT_FOUND when the container no longer exists.
  virtual absl::StatusOr<Container> InspectContainer(absl::string_view id) = 0;
};

// Receives the container event feed. Called from the stream's own thread, in order.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void OnEvent(const Event& event) = 0;
  // The stream is (re)connected and live. `first` is false after a drop: events may have been
  // missed beyond what since= replays, so the receiver should resync.
  virtual void OnConnected(bool first) = 0;
  // The stream dropped; it will reconnect with backoff.
  virtual void OnDisconnected(const absl::Status& why) = 0;
};

}  // namespace registrator::docker

#endif  // DOCKER_CLIENT_DOCKER_API_H_
