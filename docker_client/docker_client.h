// DockerClient: the DockerApi over the Docker Engine HTTP API (unix socket, tcp, or tcp+TLS),
// built on registrator::HttpClient. It negotiates the API version once (GET /version) and then
// talks /v<min(server, 1.41)>/..., the version Docker 20.10 speaks and newer engines still accept.
#ifndef DOCKER_CLIENT_DOCKER_CLIENT_H_
#define DOCKER_CLIENT_DOCKER_CLIENT_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "docker_client/docker_api.h"
#include "docker_client/types.h"
#include "registrator/common/http_client.h"

namespace registrator::docker {

// The newest API version this client speaks.
inline constexpr absl::string_view kMaxApiVersion = "1.41";

// Turns a Docker host string into an endpoint:
//   "unix:///path/docker.sock" (or a bare absolute path) -> that unix socket;
//   "tcp://host:port" -> http://host:port, or https:// when `tls` (default port 2375 / 2376);
//   "http://host:port", "https://host:port" as given.
// With TLS, `cert_path` holds ca.pem, cert.pem and key.pem (as the docker CLI expects).
// Anything else (ssh://, npipe://, fd://, empty) is INVALID_ARGUMENT.
absl::StatusOr<HttpEndpoint> ParseDockerHost(absl::string_view host, bool tls = false,
                                             absl::string_view cert_path = "");

class DockerClient : public DockerApi {
 public:
  // DOCKER_HOST (default unix:///tmp/docker.sock), DOCKER_TLS_VERIFY (non-empty: https with
  // peer verification), DOCKER_CERT_PATH (default $HOME/.docker).
  static absl::StatusOr<std::unique_ptr<DockerClient>> FromEnvironment(
      const std::map<std::string, std::string>& env);
  // An explicit host string as accepted by ParseDockerHost (plain, no TLS).
  static absl::StatusOr<std::unique_ptr<DockerClient>> ForHost(absl::string_view host);

  explicit DockerClient(HttpEndpoint endpoint);
  DockerClient(const DockerClient&) = delete;
  DockerClient& operator=(const DockerClient&) = delete;

  absl::Status Ping() override;
  absl::StatusOr<Version> GetVersion() override;
  absl::StatusOr<std::vector<ContainerSummary>> ListContainers(
      bool all, absl::string_view status_filter = "") override;
  absl::StatusOr<Container> InspectContainer(absl::string_view id) override;

  // `path` (starting with "/") under the negotiated API version prefix, e.g. "/v1.41/events".
  // The first call asks GET /version; when that answers, the prefix is fixed for good; when it
  // fails, the path is returned unversioned and the next call asks again.
  std::string ApiPath(absl::string_view path);

  HttpClient& http() { return http_; }

 private:
  // Sends a GET and turns transport failures and non-2xx answers into a Status; `what` names the
  // request in error messages (e.g. "inspect container abc").
  absl::StatusOr<std::string> Get(const std::string& path, absl::string_view what);

  HttpClient http_;
  absl::Mutex mu_;
  std::optional<std::string> api_prefix_ ABSL_GUARDED_BY(mu_);
};

// Maps a non-2xx Docker answer to a Status carrying Docker's {"message": ...} (or the raw body):
// 404 NOT_FOUND, 400 INVALID_ARGUMENT, 409 FAILED_PRECONDITION, 5xx INTERNAL, else UNKNOWN.
absl::Status DockerHttpError(long status, absl::string_view body, absl::string_view what);

}  // namespace registrator::docker

#endif  // DOCKER_CLIENT_DOCKER_CLIENT_H_
