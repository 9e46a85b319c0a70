// DockerClient over registrator::HttpClient; see docker_client.h.
#include "docker_client/docker_client.h"

#include <simdjson.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "docker_client/decode.h"
#include "registrator/common/host_port.h"
#include "registrator/common/log.h"

namespace registrator::docker {
namespace {

constexpr absl::string_view kDefaultHost = "unix:///tmp/docker.sock";

// "1.41" -> {1, 41}; nullopt when not of that shape.
std::optional<std::pair<int, int>> ParseApiVersion(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, '.');
  int major = 0;
  int minor = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &major) ||
      !absl::SimpleAtoi(parts[1], &minor) || major < 0 || minor < 0) {
    return std::nullopt;
  }
  return std::make_pair(major, minor);
}

// Docker's error body is {"message": "..."}; fall back to the raw (bounded) body.
std::string ErrorMessage(absl::string_view body) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  std::string_view message;
  if (!body.empty() && parser.parse(body.data(), body.size()).get(root) == simdjson::SUCCESS &&
      root["message"].get(message) == simdjson::SUCCESS) {
    return std::string(message);
  }
  std::string raw(body.substr(0, 512));
  absl::StripTrailingAsciiWhitespace(&raw);
  return raw;
}

}  // namespace

absl::StatusOr<HttpEndpoint> ParseDockerHost(absl::string_view host, bool tls,
                                             absl::string_view cert_path) {
  HttpEndpoint endpoint;
  absl::string_view rest = host;
  if (absl::ConsumePrefix(&rest, "unix://") || absl::StartsWith(host, "/")) {
    if (rest.empty() || rest[0] != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("Docker host \"", host, "\": unix socket path must be absolute"));
    }
    endpoint.unix_socket = std::string(rest);
    endpoint.base_url = "http://localhost";
    return endpoint;
  }
  std::string scheme;
  if (absl::ConsumePrefix(&rest, "tcp://")) {
    scheme = tls ? "https" : "http";
  } else if (absl::ConsumePrefix(&rest, "http://")) {
    scheme = "http";
  } else if (absl::ConsumePrefix(&rest, "https://")) {
    scheme = "https";
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "Docker host \"", host, "\": unsupported, expected unix:///path or tcp://host:port"));
  }
  absl::ConsumeSuffix(&rest, "/");
  if (rest.empty() || absl::StrContains(rest, "/")) {
    return absl::InvalidArgumentError(
        absl::StrCat("Docker host \"", host, "\": expected host:port without a path"));
  }
  // Docker's default ports when none is given ("h", "[::1]").
  absl::StatusOr<HostPort> authority = SplitHostPort(rest, scheme == "https" ? 2376 : 2375);
  if (!authority.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Docker host \"", host, "\": ", authority.status().message()));
  }
  endpoint.base_url = absl::StrCat(scheme, "://", authority->ToString());
  if (scheme == "https" && !cert_path.empty()) {
    endpoint.ca_file = absl::StrCat(cert_path, "/ca.pem");
    endpoint.cert_file = absl::StrCat(cert_path, "/cert.pem");
    endpoint.key_file = absl::StrCat(cert_path, "/key.pem");
  }
  return endpoint;
}

absl::StatusOr<std::unique_ptr<DockerClient>> DockerClient::FromEnvironment(
    const std::map<std::string, std::string>& env) {
  auto lookup = [&env](const std::string& key) -> std::string {
    auto it = env.find(key);
    return it == env.end() ? "" : it->second;
  };
  std::string host = lookup("DOCKER_HOST");
  if (host.empty()) host = std::string(kDefaultHost);
  const bool tls = !lookup("DOCKER_TLS_VERIFY").empty();
  std::string cert_path = lookup("DOCKER_CERT_PATH");
  if (tls && cert_path.empty() && !lookup("HOME").empty()) {
    cert_path = absl::StrCat(lookup("HOME"), "/.docker");
  }
  absl::StatusOr<HttpEndpoint> endpoint = ParseDockerHost(host, tls, cert_path);
  if (!endpoint.ok()) return endpoint.status();
  if (tls && !absl::StartsWith(endpoint->base_url, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("DOCKER_TLS_VERIFY is set but DOCKER_HOST \"", host, "\" is not tcp://"));
  }
  return std::make_unique<DockerClient>(*std::move(endpoint));
}

absl::StatusOr<std::unique_ptr<DockerClient>> DockerClient::ForHost(absl::string_view host) {
  absl::StatusOr<HttpEndpoint> endpoint = ParseDockerHost(host);
  if (!endpoint.ok()) return endpoint.status();
  return std::make_unique<DockerClient>(*std::move(endpoint));
}

DockerClient::DockerClient(HttpEndpoint endpoint) : http_(std::move(endpoint)) {}

absl::Status DockerHttpError(long status, absl::string_view body, absl::string_view what) {
  const std::string message =
      absl::StrCat("Docker ", what, ": HTTP ", status, ": ", ErrorMessage(body));
  if (status == 404) return absl::NotFoundError(message);
  if (status == 400) return absl::InvalidArgumentError(message);
  if (status == 409) return absl::FailedPreconditionError(message);
  if (status >= 500) return absl::InternalError(message);
  return absl::UnknownError(message);
}

absl::StatusOr<std::string> DockerClient::Get(const std::string& path, absl::string_view what) {
  HttpRequest request;
  request.path = path;
  absl::StatusOr<HttpResponse> response = http_.Send(request);
  if (!response.ok()) {
    // Keep the code (UNAVAILABLE / DEADLINE_EXCEEDED) and say what we were doing.
    return absl::Status(response.status().code(),
                        absl::StrCat("Docker ", what, ": ", response.status().message()));
  }
  if (response->status < 200 || response->status >= 300) {
    return DockerHttpError(response->status, response->body, what);
  }
  return std::move(response->body);
}

std::string DockerClient::ApiPath(absl::string_view path) {
  {
    absl::MutexLock lock(&mu_);
    if (api_prefix_) return absl::StrCat(*api_prefix_, path);
  }
  // Not under the lock: never hold a lock across a network call. Two threads may both ask;
  // they get the same answer.
  absl::StatusOr<Version> version = GetVersion();
  std::string prefix;
  if (!version.ok()) {
    if (version.status().code() == absl::StatusCode::kUnavailable ||
        version.status().code() == absl::StatusCode::kDeadlineExceeded) {
      // Docker is not reachable now; ask again next time.
      return std::string(path);
    }
    REG_LOG_WARN("Docker API version negotiation failed, using unversioned paths: ",
                 version.status().ToString());
  } else {
    std::optional<std::pair<int, int>> server = ParseApiVersion(version->api_version);
    const std::pair<int, int> ours = *ParseApiVersion(kMaxApiVersion);
    if (!server) {
      REG_LOG_WARN("Docker reports API version \"", version->api_version,
                   "\", using unversioned paths");
    } else {
      const std::pair<int, int> use = std::min(*server, ours);
      prefix = absl::StrCat("/v", use.first, ".", use.second);
    }
  }
  absl::MutexLock lock(&mu_);
  if (!api_prefix_) api_prefix_ = prefix;
  return absl::StrCat(*api_prefix_, path);
}

absl::Status DockerClient::Ping() {
  absl::StatusOr<std::string> body = Get("/_ping", "ping");
  return body.status();
}

absl::StatusOr<Version> DockerClient::GetVersion() {
  absl::StatusOr<std::string> body = Get("/version", "version");
  if (!body.ok()) return body.status();
  return ParseVersionJson(*body);
}

absl::StatusOr<std::vector<ContainerSummary>> DockerClient::ListContainers(
    bool all, absl::string_view status_filter) {
  std::string path = "/containers/json";
  std::vector<std::string> query;
  if (all) query.push_back("all=1");
  if (!status_filter.empty()) {
    // The value is a JSON string; Docker's status names never need escaping, but quote safely.
    std::string value;
    for (char c : status_filter) {
      if (c == '"' || c == '\\') value.push_back('\\');
      value.push_back(c);
    }
    query.push_back(
        absl::StrCat("filters=", UrlEncode(absl::StrCat(R"({"status":[")", value, R"("]})"))));
  }
  if (!query.empty()) absl::StrAppend(&path, "?", absl::StrJoin(query, "&"));
  absl::StatusOr<std::string> body = Get(ApiPath(path), "list containers");
  if (!body.ok()) return body.status();
  // Room for simdjson's padding, so the (possibly 10 MB) list is parsed in place, not copied.
  body->reserve(body->size() + simdjson::SIMDJSON_PADDING);
  return ParseContainerListJson(*body, body->capacity());
}

absl::StatusOr<Container> DockerClient::InspectContainer(absl::string_view id) {
  const std::string what = absl::StrCat("inspect container ", id);
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat("Docker ", what, ": empty id"));
  absl::StatusOr<std::string> body =
      Get(ApiPath(absl::StrCat("/containers/", UrlEncode(id), "/json")), what);
  if (!body.ok()) return body.status();
  absl::StatusOr<Container> container = ParseContainerJsonOwned(*std::move(body));
  if (!container.ok()) {
    return absl::Status(container.status().code(),
                        absl::StrCat(what, ": ", container.status().message()));
  }
  // Podman leaves Config.ExposedPorts empty when the container uses the host's (or another
  // container's) network: it drops the image's EXPOSE and any --expose. Docker keeps them, and
  // they are what a --net=host container registers, so take them from the image. For Docker
  // this asks only when the image exposes nothing either (a container inherits its image's).
  if (container->exposed_ports.empty() && !container->image_id.empty() &&
      (container->network_mode == "host" ||
       absl::StartsWith(container->network_mode, "container:"))) {
    const std::string image_what =
        absl::StrCat("inspect image ", container->image_id, " of container ", id);
    absl::StatusOr<std::string> image_body =
        Get(ApiPath(absl::StrCat("/images/", UrlEncode(container->image_id), "/json")), image_what);
    absl::StatusOr<Image> image =
        image_body.ok() ? ParseImageJson(*image_body) : absl::StatusOr<Image>(image_body.status());
    if (image.ok()) {
      container->exposed_ports = std::move(image->exposed_ports);
    } else {
      // Not fatal: the container is handled as it is, without exposed ports.
      REG_LOG_WARN("Docker ", image_what, ": ", image.status().message());
    }
  }
  return container;
}

}  // namespace registrator::docker
