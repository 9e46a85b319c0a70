// Decoder tests over payloads captured from Podman 4.3.1's Docker-compatible API
// (testdata/podman, README there): Podman's payloads must decode to what Docker would report for
// the same containers, where the difference would change what registrator does.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "docker_client/decode.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/process.h"

namespace registrator::docker {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

constexpr char kImageId[] =
    "sha256:981cc08ac572991c7760741874b870a1e7ba9788d10d48512517a3def4752840";

std::string ReadTestdata(const std::string& name) {
  std::string text = fakes::ReadFileOrEmpty("testdata/podman/" + name);
  EXPECT_FALSE(text.empty()) << "missing testdata/podman/" << name;
  return text;
}

std::vector<Event> DecodeEvents(const std::string& file) {
  std::vector<Event> events;
  for (absl::string_view line : absl::StrSplit(ReadTestdata(file), '\n', absl::SkipEmpty())) {
    absl::StatusOr<Event> e = ParseEventJson(line);
    EXPECT_TRUE(e.ok()) << e.status() << ": " << line;
    if (e.ok()) events.push_back(*e);
  }
  return events;
}

TEST(PodmanVersion, ReportsDockerApiLevel) {
  absl::StatusOr<Version> v = ParseVersionJson(ReadTestdata("version.json"));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->version, "4.3.1");
  // The top-level ApiVersion is the Docker API level Podman emulates; the client negotiates
  // /v1.41 from it (the "Podman Engine" component's APIVersion 4.3.1 is libpod's own API).
  EXPECT_EQ(v->api_version, "1.41");
  EXPECT_EQ(v->min_api_version, "1.24");
}

TEST(PodmanList, RunningAllAndFiltered) {
  for (const char* file : {"containers-json.json", "containers-json-running-filter.json"}) {
    absl::StatusOr<std::vector<ContainerSummary>> list = ParseContainerListJson(ReadTestdata(file));
    ASSERT_TRUE(list.ok()) << file << ": " << list.status();
    std::map<std::string, ContainerSummary> by_name;
    for (const ContainerSummary& s : *list) by_name[s.name] = s;
    EXPECT_EQ(list->size(), 6u) << file;
    // Podman's list has no HostConfig.NetworkMode; what a resync fingerprints (ports, labels,
    // networks) decodes as from Docker's list.
    EXPECT_EQ(by_name["pm-web"],
              (ContainerSummary{"21e8f93bafff6841b3704e885cc9e4df6988d742192cf23885a431388095cad0",
                                "pm-web",
                                "localhost/registrator-test/busybox:1",
                                "running",
                                "",
                                {{"com.example.role", "web"}},
                                {{80, 18990, "tcp", "127.0.0.1"}},
                                {{"regpm", "10.213.8.2", ""}}}))
        << file;
    for (const auto& [name, s] : by_name) {
      EXPECT_EQ(s.state, "running") << file << " " << name;
      EXPECT_EQ(s.id.size(), 64u) << file << " " << name;
    }
  }
  absl::StatusOr<std::vector<ContainerSummary>> all =
      ParseContainerListJson(ReadTestdata("containers-json-all.json"));
  ASSERT_TRUE(all.ok()) << all.status();
  std::map<std::string, std::string> states;
  for (const ContainerSummary& s : *all) states[s.name] = s.state;
  EXPECT_THAT(states, ElementsAre(Pair("pm-exit3", "exited"), Pair("pm-host", "running"),
                                  Pair("pm-labels", "running"), Pair("pm-multi", "running"),
                                  Pair("pm-net", "running"), Pair("pm-none", "running"),
                                  Pair("pm-web", "running")));
}

// One row per captured inspect: the fields derivation reads, as Docker would report them.
struct InspectRow {
  std::string file;
  std::string name;
  std::string network_mode;
  std::string ip_address;
  std::vector<NetworkEndpoint> networks;
  std::vector<std::string> exposed_ports;
  std::map<std::string, std::vector<PortBinding>> ports;
  std::string status;
  int64_t exit_code = 0;
};

TEST(PodmanInspect, DecodesAsDockerWouldReport) {
  const std::vector<InspectRow> rows = {
      {"inspect-pm-web.json",
       "pm-web",
       "bridge",
       "10.213.8.2",
       {{"regpm", "10.213.8.2", ""}},
       {"80/tcp"},
       {{"80/tcp", {{"127.0.0.1", "18990"}}}},
       "running"},
      // -P: Podman binds all addresses and reports HostIp "".
      {"inspect-pm-random.json",
       "pm-random",
       "bridge",
       "10.213.8.3",
       {{"regpm", "10.213.8.3", ""}},
       {"80/tcp"},
       {{"80/tcp", {{"", "39957"}}}},
       "running"},
      {"inspect-pm-multi.json",
       "pm-multi",
       "bridge",
       "10.213.8.4",
       {{"regpm", "10.213.8.4", ""}},
       {"80/tcp", "81/udp", "8443/tcp"},
       {{"80/tcp", {{"127.0.0.1", "18991"}}},
        {"81/udp", {{"127.0.0.1", "18992"}}},
        {"8443/tcp", {}}},
       "running"},
      // Podman says NetworkMode "bridge"; Docker would say "appnet".
      {"inspect-pm-net.json",
       "pm-net",
       "appnet",
       "",
       {{"appnet", "10.213.9.2", ""}},
       {"80/tcp"},
       {{"80/tcp", {{"127.0.0.1", "18993"}}}},
       "running"},
      {"inspect-pm-labels.json",
       "pm-labels",
       "bridge",
       "10.213.8.5",
       {{"regpm", "10.213.8.5", ""}},
       {"80/tcp"},
       {{"80/tcp", {{"127.0.0.1", "18994"}}}},
       "running"},
      // Host network: Podman drops the image's EXPOSE and --expose (the client asks the image).
      {"inspect-pm-host.json", "pm-host", "host", "", {}, {}, {}, "running"},
      {"inspect-pm-host-expose.json", "pm-host-expose", "host", "", {}, {}, {}, "running"},
      {"inspect-pm-none.json", "pm-none", "none", "", {}, {}, {}, "running"},
      // container: mode: Podman reports pm-web's ports and network; its ports are dropped.
      {"inspect-pm-sidecar.json",
       "pm-sidecar",
       "container:21e8f93bafff6841b3704e885cc9e4df6988d742192cf23885a431388095cad0",
       "10.213.8.2",
       {{"regpm", "10.213.8.2", ""}},
       {},
       {},
       "running"},
      // Exited on the default network: no IPs, so NetworkMode stays "bridge".
      {"inspect-pm-exit3.json",
       "pm-exit3",
       "bridge",
       "",
       {{"regpm", "", ""}},
       {"80/tcp"},
       {{"80/tcp", {}}},
       "exited",
       3},
  };
  for (const InspectRow& row : rows) {
    SCOPED_TRACE(row.file);
    const std::string text = ReadTestdata(row.file);
    absl::StatusOr<Container> c = ParseContainerJson(text);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->name, row.name);
    EXPECT_EQ(c->id.size(), 64u);
    EXPECT_EQ(c->image, "localhost/registrator-test/busybox:1");
    EXPECT_EQ(c->image_id, kImageId);
    EXPECT_EQ(c->network_mode, row.network_mode);
    EXPECT_EQ(c->ip_address, row.ip_address);
    EXPECT_EQ(c->networks, row.networks);
    EXPECT_EQ(c->exposed_ports, row.exposed_ports);
    EXPECT_EQ(c->ports, row.ports);
    EXPECT_EQ(c->state.status, row.status);
    EXPECT_EQ(c->state.running, row.status == "running");
    EXPECT_EQ(c->state.exit_code, row.exit_code);
    EXPECT_EQ(c->raw_json, text);
  }
}

TEST(PodmanInspect, EnvAndLabels) {
  absl::StatusOr<Container> c = ParseContainerJson(ReadTestdata("inspect-pm-labels.json"));
  ASSERT_TRUE(c.ok()) << c.status();
  // Podman adds container=podman and HOSTNAME; its Env order is not the command line's.
  EXPECT_THAT(c->env,
              ElementsAre("container=podman", "SERVICE_80_CHECK_HTTP=/env-health",
                          "SERVICE_80_NAME=env-web", "SERVICE_TAGS=env\\,one,env-two",
                          "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                          "TERM=xterm", "HOSTNAME=21478a13c420"));
  EXPECT_THAT(c->labels, ElementsAre(Pair("SERVICE_80_CHECK_HTTP", "/health"),
                                     Pair("SERVICE_80_NAME", "label-web"),
                                     Pair("SERVICE_TAGS", "label\\,one,label-two")));
  EXPECT_EQ(c->hostname, "21478a13c420");
}

TEST(PodmanImage, ExposedPorts) {
  absl::StatusOr<Image> image = ParseImageJson(ReadTestdata("image-busybox.json"));
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->id, kImageId);
  EXPECT_THAT(image->exposed_ports, ElementsAre("80/tcp"));
  EXPECT_FALSE(ParseImageJson("[]").ok());
  EXPECT_FALSE(ParseImageJson("").ok());
  absl::StatusOr<Image> bare = ParseImageJson(R"({"Id":"x","Config":null})");
  ASSERT_TRUE(bare.ok());
  EXPECT_THAT(bare->exposed_ports, IsEmpty());
}

TEST(PodmanEvents, FilteredStreamDecodesInDockerTerms) {
  const std::vector<Event> events = DecodeEvents("events-container-filtered.jsonl");
  ASSERT_EQ(events.size(), 85u);
  std::set<std::string> actions;
  for (const Event& e : events) {
    EXPECT_EQ(e.type, "container");
    EXPECT_EQ(e.id.size(), 64u) << e.action;
    EXPECT_FALSE(e.name.empty());
    EXPECT_EQ(e.image, "localhost/registrator-test/busybox:1");
    // Seconds and nanoseconds, as Docker's: timeNano lies within the second of time.
    EXPECT_GE(e.time_nano, e.time * 1000000000) << e.action << " " << e.name;
    EXPECT_LT(e.time_nano, (e.time + 1) * 1000000000) << e.action << " " << e.name;
    EXPECT_GT(e.time, 1700000000);
    if (e.action != "die") {
      EXPECT_EQ(e.exit_code, "") << e.action;
    }
    actions.insert(e.action);
  }
  // "remove" arrives as Docker's "destroy"; init and cleanup are Podman's own.
  EXPECT_EQ(actions,
            (std::set<std::string>{"cleanup", "create", "destroy", "die", "init", "kill", "pause",
                                   "rename", "restart", "start", "stop", "unpause"}));
  // pm-exit3: start, die with its exit code, and (much later) destroy.
  std::vector<std::string> exit3;
  for (const Event& e : events) {
    if (e.id == "371ab15941a2550f07c852c8b4230cbe20f4fa6acb283edb51f81a860392b594") {
      exit3.push_back(e.action + (e.exit_code.empty() ? "" : " " + e.exit_code));
    }
  }
  EXPECT_THAT(exit3, ElementsAre("create", "init", "start", "die 3", "cleanup", "destroy"));
  const Event& first = events.front();
  EXPECT_EQ(first.action, "create");
  EXPECT_EQ(first.name, "pm-web");
  EXPECT_EQ(first.time, 1796231029);
  EXPECT_EQ(first.time_nano, 1796231029139198192);
}

TEST(PodmanEvents, UnfilteredStreamHasImageAndPodEvents) {
  const std::vector<Event> events = DecodeEvents("events-all.jsonl");
  ASSERT_EQ(events.size(), 104u);
  std::map<std::string, int> by_type;
  for (const Event& e : events) {
    ++by_type[e.type];
    if (e.type == "image") {
      EXPECT_EQ(e.action, "pull");
      EXPECT_EQ(e.id, "");  // Podman's image events carry no Actor.ID.
    }
    // A pod's "remove" is not a container's: it stays as sent.
    if (e.type == "pod") {
      EXPECT_NE(e.action, "destroy");
    }
  }
  EXPECT_THAT(by_type, ElementsAre(Pair("container", 85), Pair("image", 15), Pair("pod", 4)));
}

}  // namespace
}  // namespace registrator::docker
