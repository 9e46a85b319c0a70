// Decoding of Docker Engine API payloads with simdjson's DOM parser, error codes only (simdjson
// must never throw across our module boundary).
#include "docker_client/decode.h"

#include <simdjson.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace registrator::docker {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

// One parser per thread: a dom::parser is not thread-safe, and reusing it keeps its buffers.
simdjson::dom::parser& Parser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

// Documents larger than this are parsed by a parser of their own, freed after decoding: a
// parser keeps its buffers at the size of the largest document it has seen (several times the
// text), so one container list of 10,000 entries (~10 MB) would otherwise stay pinned on the
// resync thread for good. Inspect bodies (~5 KB) and events stay on the thread's parser.
constexpr size_t kLargeDocument = 256 * 1024;

// Parses `json` and returns its root element, or INVALID_ARGUMENT naming `what` and the reason.
// The element lives in `parser` (default: the thread's).
// `readable_bytes` as for ParseContainerListJson.
absl::StatusOr<element> ParseRoot(absl::string_view json, absl::string_view what,
                                  simdjson::dom::parser& parser = Parser(),
                                  size_t readable_bytes = 0) {
  if (json.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("Docker ", what, ": empty response body"));
  }
  element root;
  const bool padded = readable_bytes >= json.size() + simdjson::SIMDJSON_PADDING;
  const simdjson::error_code err =
      parser.parse(json.data(), json.size(), /*realloc_if_needed=*/!padded).get(root);
  if (err != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(
        absl::StrCat("Docker ", what, ": invalid JSON (", simdjson::error_message(err), ")"));
  }
  return root;
}

// ParseRoot for a reply whose top level must be a JSON object.
absl::StatusOr<object> ParseRootObject(absl::string_view json, absl::string_view what) {
  absl::StatusOr<element> root = ParseRoot(json, what);
  if (!root.ok()) return root.status();
  object top;
  if (root->get(top) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(
        absl::StrCat("Docker ", what, ": top level is not a JSON object"));
  }
  return top;
}

// Soft accessors: a missing key or a value of another type yields nothing.
std::optional<element> Field(const object& obj, absl::string_view key) {
  element value;
  if (obj.at_key(std::string_view(key.data(), key.size())).get(value) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  return value;
}

std::optional<object> ObjectField(const object& obj, absl::string_view key) {
  std::optional<element> value = Field(obj, key);
  object result;
  if (!value || value->get(result) != simdjson::SUCCESS) return std::nullopt;
  return result;
}

std::optional<array> ArrayField(const object& obj, absl::string_view key) {
  std::optional<element> value = Field(obj, key);
  array result;
  if (!value || value->get(result) != simdjson::SUCCESS) return std::nullopt;
  return result;
}

std::optional<std::string> AsString(const element& value) {
  std::string_view text;
  if (value.get(text) != simdjson::SUCCESS) return std::nullopt;
  return std::string(text);
}

// The string at `key`, or "" when missing or not a string.
std::string StringField(const object& obj, absl::string_view key) {
  std::optional<element> value = Field(obj, key);
  if (!value) return "";
  return AsString(*value).value_or("");
}

bool BoolField(const object& obj, absl::string_view key) {
  std::optional<element> value = Field(obj, key);
  bool result = false;
  if (!value || value->get(result) != simdjson::SUCCESS) return false;
  return result;
}

std::optional<int64_t> IntField(const object& obj, absl::string_view key) {
  std::optional<element> value = Field(obj, key);
  int64_t result = 0;
  if (!value || value->get(result) != simdjson::SUCCESS) return std::nullopt;
  return result;
}

// The health suffix Docker's list puts on a running container's Status (State.String() in the
// engine: " (healthy)", " (unhealthy)", " (health: starting)"); "" when there is none.
std::string HealthFromStatusText(absl::string_view text) {
  if (absl::EndsWith(text, "(healthy)")) return "healthy";
  if (absl::EndsWith(text, "(unhealthy)")) return "unhealthy";
  if (absl::EndsWith(text, "(health: starting)")) return "starting";
  return "";
}

std::string StripSlash(std::string name) {
  if (!name.empty() && name[0] == '/') name.erase(0, 1);
  return name;
}

// Labels (Config.Labels of an inspect, Labels of a list entry), sorted by key.
std::vector<std::pair<std::string, std::string>> DecodeLabels(const object& labels) {
  std::vector<std::pair<std::string, std::string>> result;
  for (auto [key, value] : labels) {
    if (std::optional<std::string> text = AsString(value)) {
      result.emplace_back(std::string(key), std::move(*text));
    }
  }
  std::stable_sort(result.begin(), result.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  return result;
}

// NetworkSettings.Networks (inspect and list alike), sorted by name.
std::vector<NetworkEndpoint> DecodeNetworks(const object& networks) {
  std::vector<NetworkEndpoint> result;
  for (auto [key, value] : networks) {
    NetworkEndpoint endpoint;
    endpoint.name = std::string(key);
    object net;
    if (value.get(net) == simdjson::SUCCESS) {
      endpoint.ip_address = StringField(net, "IPAddress");
      endpoint.global_ipv6_address = StringField(net, "GlobalIPv6Address");
    }
    result.push_back(std::move(endpoint));
  }
  std::stable_sort(result.begin(), result.end(),
                   [](const auto& a, const auto& b) { return a.name < b.name; });
  return result;
}

void DecodeConfig(const object& config, Container& c) {
  c.image = StringField(config, "Image");
  c.hostname = StringField(config, "Hostname");
  if (std::optional<array> env = ArrayField(config, "Env")) {
    for (element entry : *env) {
      if (std::optional<std::string> text = AsString(entry)) c.env.push_back(std::move(*text));
    }
  }
  if (std::optional<object> labels = ObjectField(config, "Labels"))
    c.labels = DecodeLabels(*labels);
  if (std::optional<object> exposed = ObjectField(config, "ExposedPorts")) {
    for (auto [key, value] : *exposed) c.exposed_ports.emplace_back(key);
  }
}

void DecodeNetworkSettings(const object& settings, Container& c) {
  c.ip_address = StringField(settings, "IPAddress");
  if (std::optional<object> ports = ObjectField(settings, "Ports")) {
    for (auto [key, value] : *ports) {
      std::vector<PortBinding>& bindings = c.ports[std::string(key)];
      array list;
      if (value.get(list) != simdjson::SUCCESS) continue;  // null: exposed, not published.
      for (element entry : list) {
        object binding;
        if (entry.get(binding) != simdjson::SUCCESS) continue;
        bindings.push_back({StringField(binding, "HostIp"), StringField(binding, "HostPort")});
      }
    }
  }
  if (std::optional<object> networks = ObjectField(settings, "Networks")) {
    c.networks = DecodeNetworks(*networks);
  }
}

void DecodeState(const object& state, ContainerState& s) {
  s.status = StringField(state, "Status");
  s.running = BoolField(state, "Running");
  s.paused = BoolField(state, "Paused");
  s.restarting = BoolField(state, "Restarting");
  s.dead = BoolField(state, "Dead");
  s.exit_code = IntField(state, "ExitCode").value_or(0);
  if (std::optional<object> health = ObjectField(state, "Health")) {
    s.health = StringField(*health, "Status");
    // Docker appends each probe to Log (the last 5 are kept, oldest first).
    if (std::optional<array> log = ArrayField(*health, "Log")) {
      for (element entry : *log) {
        object probe;
        if (entry.get(probe) == simdjson::SUCCESS) s.health_output = StringField(probe, "Output");
      }
    }
  }
}

// Podman's Docker-compatible inspect differs from Docker's in two places where it would change the
// services derived; both are mapped here to what Docker reports, so nothing downstream needs to
// know which engine it talks to.
void MapPodmanNetworking(Container& c) {
  // Podman reports NetworkMode "bridge" for every bridge network, also a user-defined one that
  // Docker would name, and fills the top-level IPAddress only on its default network. So a
  // container in "bridge" mode on exactly one network that is not Docker's "bridge", with no
  // top-level IP but an IP on that network, is on a user-defined network. (Docker's bridge mode
  // is always on the network named "bridge"; a stopped container has no IPs and no services.)
  if (c.network_mode == "bridge" && c.ip_address.empty() && c.networks.size() == 1 &&
      c.networks[0].name != "bridge" && !c.networks[0].ip_address.empty()) {
    c.network_mode = c.networks[0].name;
  }
  // With NetworkMode container:<id>, Podman reports the other container's NetworkSettings, so
  // its published ports would be registered a second time under this container. Docker reports
  // no ports here (it refuses -p in this mode); do the same.
  if (absl::StartsWith(c.network_mode, "container:")) c.ports.clear();
}

}  // namespace

namespace {

// ParseContainerJson without raw_json; `readable_bytes` as for ParseContainerListJson.
absl::StatusOr<Container> DecodeContainer(absl::string_view json, size_t readable_bytes) {
  absl::StatusOr<element> root = ParseRoot(json, "container inspect", Parser(), readable_bytes);
  if (!root.ok()) return root.status();
  object parsed;
  if (root->get(parsed) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("Docker container inspect: top level is not a JSON object");
  }
  const object top = parsed;
  Container c;
  c.id = StringField(top, "Id");
  c.name = StripSlash(StringField(top, "Name"));
  c.image_id = StringField(top, "Image");
  c.created = StringField(top, "Created");
  if (std::optional<object> config = ObjectField(top, "Config")) DecodeConfig(*config, c);
  if (std::optional<object> host_config = ObjectField(top, "HostConfig")) {
    c.network_mode = StringField(*host_config, "NetworkMode");
  }
  if (std::optional<object> settings = ObjectField(top, "NetworkSettings")) {
    DecodeNetworkSettings(*settings, c);
  }
  if (std::optional<object> state = ObjectField(top, "State")) DecodeState(*state, c.state);
  MapPodmanNetworking(c);
  return c;
}

}  // namespace

absl::StatusOr<Container> ParseContainerJson(absl::string_view json) {
  absl::StatusOr<Container> c = DecodeContainer(json, 0);
  if (c.ok()) c->raw_json = std::string(json);
  return c;
}

absl::StatusOr<Container> ParseContainerJsonOwned(std::string json) {
  json.reserve(json.size() + simdjson::SIMDJSON_PADDING);
  absl::StatusOr<Container> c = DecodeContainer(json, json.capacity());
  if (c.ok()) c->raw_json = std::move(json);
  return c;
}

absl::StatusOr<std::vector<ContainerSummary>> ParseContainerListJson(absl::string_view json,
                                                                     size_t readable_bytes) {
  std::unique_ptr<simdjson::dom::parser> own;
  if (json.size() > kLargeDocument) own = std::make_unique<simdjson::dom::parser>();
  absl::StatusOr<element> root =
      ParseRoot(json, "container list", own != nullptr ? *own : Parser(), readable_bytes);
  if (!root.ok()) return root.status();
  array list;
  if (root->get(list) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("Docker container list: top level is not a JSON array");
  }
  std::vector<ContainerSummary> result;
  // Sized once: growing by doubling held the old and the new array at once (~2 MB more for
  // 10,000 containers) on top of the list's body and DOM, at the start-up's memory peak (issue
  // 14). (size() is read from the tape.)
  result.reserve(list.size());
  for (element entry : list) {
    object obj;
    if (entry.get(obj) != simdjson::SUCCESS) continue;
    ContainerSummary summary;
    summary.id = StringField(obj, "Id");
    if (std::optional<array> names = ArrayField(obj, "Names")) {
      // Links add aliases like "/web/db"; the container's own name has a single slash.
      std::optional<std::string> first;
      for (element name : *names) {
        std::optional<std::string> text = AsString(name);
        if (!text) continue;
        std::string stripped = StripSlash(std::move(*text));
        if (stripped.find('/') == std::string::npos) {
          first = std::move(stripped);
          break;
        }
        if (!first) first = std::move(stripped);
      }
      summary.name = first.value_or("");
    }
    summary.image = StringField(obj, "Image");
    summary.state = StringField(obj, "State");
    summary.health = HealthFromStatusText(StringField(obj, "Status"));
    if (std::optional<object> host_config = ObjectField(obj, "HostConfig")) {
      summary.network_mode = StringField(*host_config, "NetworkMode");
    }
    if (std::optional<object> labels = ObjectField(obj, "Labels")) {
      summary.labels = DecodeLabels(*labels);
    }
    if (std::optional<array> ports = ArrayField(obj, "Ports")) {
      for (element entry : *ports) {
        object port;
        if (entry.get(port) != simdjson::SUCCESS) continue;
        SummaryPort p;
        p.private_port = static_cast<int>(IntField(port, "PrivatePort").value_or(0));
        p.public_port = static_cast<int>(IntField(port, "PublicPort").value_or(0));
        p.type = StringField(port, "Type");
        p.ip = StringField(port, "IP");
        summary.ports.push_back(std::move(p));
      }
    }
    if (std::optional<object> settings = ObjectField(obj, "NetworkSettings")) {
      if (std::optional<object> networks = ObjectField(*settings, "Networks")) {
        summary.networks = DecodeNetworks(*networks);
      }
    }
    result.push_back(std::move(summary));
  }
  return result;
}

absl::StatusOr<Event> ParseEventJson(absl::string_view json) {
  absl::StatusOr<object> parsed = ParseRootObject(json, "event");
  if (!parsed.ok()) return parsed.status();
  const object top = *parsed;
  Event e;
  e.type = StringField(top, "Type");
  e.action = StringField(top, "Action");
  if (e.action.empty()) e.action = StringField(top, "status");
  // Podman names Docker's "destroy" "remove"; Docker has no container "remove" event.
  if (e.type == "container" && e.action == "remove") e.action = "destroy";
  std::optional<object> actor = ObjectField(top, "Actor");
  if (actor) e.id = StringField(*actor, "ID");
  if (e.id.empty()) e.id = StringField(top, "id");
  if (actor) {
    if (std::optional<object> attributes = ObjectField(*actor, "Attributes")) {
      e.name = StringField(*attributes, "name");
      e.image = StringField(*attributes, "image");
      e.exit_code = StringField(*attributes, "exitCode");
      // A container's Attributes are its labels, which could hold a "container" key.
      if (e.type == "network") e.container = StringField(*attributes, "container");
    }
  }
  if (e.image.empty()) e.image = StringField(top, "from");
  e.time = IntField(top, "time").value_or(0);
  std::optional<int64_t> nanos = IntField(top, "timeNano");
  // A time too large for nanoseconds (not Docker's, only garbage) counts as missing, like a
  // time of the wrong type: multiplying it would overflow.
  int64_t derived = 0;
  if (__builtin_mul_overflow(e.time, int64_t{1000000000}, &derived)) derived = 0;
  e.time_nano = nanos ? *nanos : derived;
  return e;
}

absl::StatusOr<Image> ParseImageJson(absl::string_view json) {
  absl::StatusOr<object> parsed = ParseRootObject(json, "image inspect");
  if (!parsed.ok()) return parsed.status();
  const object top = *parsed;
  Image image;
  image.id = StringField(top, "Id");
  if (std::optional<object> config = ObjectField(top, "Config")) {
    if (std::optional<object> exposed = ObjectField(*config, "ExposedPorts")) {
      for (auto [key, value] : *exposed) image.exposed_ports.emplace_back(key);
    }
  }
  return image;
}

absl::StatusOr<Version> ParseVersionJson(absl::string_view json) {
  absl::StatusOr<object> parsed = ParseRootObject(json, "version");
  if (!parsed.ok()) return parsed.status();
  const object top = *parsed;
  Version v;
  v.version = StringField(top, "Version");
  v.api_version = StringField(top, "ApiVersion");
  v.min_api_version = StringField(top, "MinAPIVersion");
  return v;
}

}  // namespace registrator::docker
