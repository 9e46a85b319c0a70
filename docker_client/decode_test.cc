// Decoder tests over payloads captured from a real dockerd 20.10 (testdata/docker), plus
// malformed input that must never crash and must come back as INVALID_ARGUMENT.
#include "docker_client/decode.h"

#include <simdjson.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "docker_client/fingerprint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/process.h"
#include "testing/status_matchers.h"

namespace registrator::docker {
namespace {

using ::registrator::fakes::IsOk;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

std::string ReadTestdata(const std::string& name) {
  std::string text = fakes::ReadFileOrEmpty("testdata/docker/" + name);
  EXPECT_FALSE(text.empty()) << "missing testdata/docker/" << name;
  return text;
}

Container Inspect(const std::string& file) {
  absl::StatusOr<Container> c = ParseContainerJson(ReadTestdata(file));
  EXPECT_THAT(c, IsOk()) << file << ": " << c.status();
  return c.ok() ? *c : Container{};
}

// inspect-all-samples.json is an array of five inspect documents; decode each one separately, as
// the client would receive it from /containers/<id>/json.
std::map<std::string, Container> InspectAllSamples() {
  const std::string text = ReadTestdata("inspect-all-samples.json");
  simdjson::dom::parser parser;
  simdjson::dom::array list;
  EXPECT_EQ(parser.parse(text).get(list), simdjson::SUCCESS);
  std::map<std::string, Container> by_name;
  for (simdjson::dom::element entry : list) {
    const std::string one = simdjson::minify(entry);
    absl::StatusOr<Container> c = ParseContainerJson(one);
    EXPECT_THAT(c, IsOk()) << c.status();
    if (!c.ok()) continue;
    EXPECT_EQ(c->raw_json, one);
    by_name[c->name] = *c;
  }
  return by_name;
}

TEST(ParseContainerJson, AllSamplesPublishedPort) {
  std::map<std::string, Container> all = InspectAllSamples();
  ASSERT_EQ(all.size(), 5u);
  const Container& c = all["files1"];
  EXPECT_EQ(c.id, "d7fc15186570a5c8affd413e7e5e09cc9dea217d68a3292470e0cfdca36fde24");
  EXPECT_EQ(c.name, "files1");
  EXPECT_EQ(c.image, "local/busybox:test");
  EXPECT_EQ(c.hostname, "d7fc15186570");
  EXPECT_THAT(c.env, ElementsAre("SERVICE_NAME=files", "SERVICE_TAGS=www,test"));
  EXPECT_THAT(c.labels, ElementsAre(Pair("com.example.role", "web")));
  EXPECT_THAT(c.exposed_ports, ElementsAre("80/tcp"));
  EXPECT_EQ(c.network_mode, "default");
  EXPECT_THAT(c.ports, ElementsAre(Pair("80/tcp", ElementsAre(PortBinding{"127.0.0.1", "18080"}))));
  EXPECT_EQ(c.ip_address, "172.17.0.2");
  EXPECT_THAT(c.networks, ElementsAre(NetworkEndpoint{"bridge", "172.17.0.2", ""}));
  ContainerState running;
  running.status = "running";
  running.running = true;
  EXPECT_EQ(c.state, running);
}

TEST(ParseContainerJson, AllSamplesRandomPortUdpHostExited) {
  std::map<std::string, Container> all = InspectAllSamples();
  ASSERT_EQ(all.size(), 5u);

  const Container& p = all["files2"];  // -P
  EXPECT_THAT(p.env, ElementsAre("SERVICE_80_NAME=files-alt", "SERVICE_CHECK_HTTP=/"));
  EXPECT_THAT(p.labels, IsEmpty());
  EXPECT_THAT(p.ports, ElementsAre(Pair("80/tcp", ElementsAre(PortBinding{"127.0.0.1", "32768"}))));

  const Container& multi = all["multi"];  // tcp + udp + exposed-only
  EXPECT_EQ(multi.id, "df1db31130ebcdf5ba7197a3c3f2e7af81237d1fcb00ef48952fc44062193e02");
  EXPECT_THAT(multi.env, ElementsAre("SERVICE_IGNORE="));
  EXPECT_THAT(multi.exposed_ports, ElementsAre("80/tcp", "81/udp", "8443/tcp"));
  EXPECT_THAT(multi.ports,
              ElementsAre(Pair("80/tcp", ElementsAre(PortBinding{"127.0.0.1", "18081"})),
                          Pair("81/udp", ElementsAre(PortBinding{"127.0.0.1", "18082"})),
                          Pair("8443/tcp", IsEmpty())));
  EXPECT_EQ(multi.ip_address, "172.17.0.4");

  const Container& host = all["hostnet"];
  EXPECT_EQ(host.network_mode, "host");
  EXPECT_EQ(host.hostname, "vm");
  EXPECT_THAT(host.env, ElementsAre("SERVICE_NAME=hostsvc"));
  EXPECT_THAT(host.ports, IsEmpty());
  EXPECT_EQ(host.ip_address, "");
  EXPECT_THAT(host.networks, ElementsAre(NetworkEndpoint{"host", "", ""}));

  const Container& exited = all["shortlived"];
  EXPECT_EQ(exited.id, "57ac1473c7841ff1f28edf3982f0eb2ef8a706a1ccbc87ff712d760598e5ec82");
  EXPECT_THAT(exited.env, IsEmpty());  // "Env": null
  EXPECT_THAT(exited.ports, IsEmpty());
  EXPECT_THAT(exited.networks, ElementsAre(NetworkEndpoint{"bridge", "", ""}));
  ContainerState state;
  state.status = "exited";
  state.exit_code = 3;
  EXPECT_EQ(exited.state, state);
}

TEST(ParseContainerJson, RawJsonIsTheInput) {
  const std::string text = ReadTestdata("inspect-sample-api.json");
  absl::StatusOr<Container> c = ParseContainerJson(text);
  ASSERT_THAT(c, IsOk()) << c.status();
  EXPECT_EQ(c->raw_json, text);
  EXPECT_EQ(c->name, "files1");
}

TEST(ParseContainerJson, UserNetwork) {
  Container c = Inspect("inspect-a-user-network.json");
  EXPECT_EQ(c.id, "3ddd917a301c2bf2df63cb374a7bf9172a5f5dcce59287d4f2e033991012df87");
  EXPECT_EQ(c.name, "web-a");
  EXPECT_EQ(c.image, "example/web:1.2");
  EXPECT_EQ(c.network_mode, "appnet");
  EXPECT_EQ(c.ip_address, "");
  EXPECT_THAT(c.networks, ElementsAre(NetworkEndpoint{"appnet", "172.19.0.2", ""}));
  EXPECT_THAT(c.ports, ElementsAre(Pair("80/tcp", ElementsAre(PortBinding{"127.0.0.1", "8081"}))));

  Container wide = Inspect("inspect-a-user-network-default-hostip.json");
  EXPECT_THAT(wide.ports, ElementsAre(Pair("80/tcp", ElementsAre(PortBinding{"0.0.0.0", "8081"},
                                                                 PortBinding{"::", "8081"}))));
  EXPECT_THAT(wide.networks, ElementsAre(NetworkEndpoint{"appnet", "172.18.0.2", ""}));

  Container exited = Inspect("inspect-a-user-network-exited-after-daemon-restart.json");
  EXPECT_THAT(exited.ports, IsEmpty());
  EXPECT_THAT(exited.networks, ElementsAre(NetworkEndpoint{"appnet", "", ""}));
  EXPECT_EQ(exited.state.status, "exited");
  EXPECT_EQ(exited.state.exit_code, 137);
  EXPECT_FALSE(exited.state.running);
}

TEST(ParseContainerJson, SidecarContainerMode) {
  Container c = Inspect("inspect-b-sidecar-container-mode.json");
  EXPECT_EQ(c.name, "sidecar-b");
  EXPECT_EQ(c.network_mode,
            "container:3ddd917a301c2bf2df63cb374a7bf9172a5f5dcce59287d4f2e033991012df87");
  EXPECT_EQ(c.hostname, "3ddd917a301c");
  EXPECT_THAT(c.env, ElementsAre("SERVICE_NAME=sidecar"));
  EXPECT_THAT(c.exposed_ports, ElementsAre("80/tcp"));
  EXPECT_THAT(c.ports, IsEmpty());
  EXPECT_THAT(c.networks, IsEmpty());
}

TEST(ParseContainerJson, Health) {
  Container ok = Inspect("inspect-c-healthy.json");
  EXPECT_EQ(ok.name, "health-ok");
  EXPECT_EQ(ok.state.health, "healthy");
  EXPECT_TRUE(ok.state.running);
  EXPECT_THAT(ok.ports, ElementsAre(Pair("80/tcp", IsEmpty())));  // "80/tcp": null
  Container bad = Inspect("inspect-c-unhealthy.json");
  EXPECT_EQ(bad.state.health, "unhealthy");
  EXPECT_EQ(bad.ip_address, "172.17.0.3");
}

// Docker health from a real dockerd (testdata/docker/README.md, "Docker health"): the status
// and the last probe's output, in each of the three states.
TEST(ParseContainerJson, HealthStatusAndLastProbeOutput) {
  Container starting = Inspect("inspect-health-starting.json");
  EXPECT_EQ(starting.name, "health-flip");
  EXPECT_EQ(starting.state.health, "starting");
  EXPECT_EQ(starting.state.health_output, "");  // No probe has run yet.
  Container healthy = Inspect("inspect-health-healthy.json");
  EXPECT_EQ(healthy.state.health, "healthy");
  // Log holds a failed probe, then the passing one: the last one counts.
  EXPECT_EQ(healthy.state.health_output, "/tmp/ok present\n");
  Container unhealthy = Inspect("inspect-health-unhealthy.json");
  EXPECT_EQ(unhealthy.state.health, "unhealthy");
  EXPECT_EQ(unhealthy.state.health_output, "/tmp/ok missing\n");
  EXPECT_EQ(unhealthy.id, healthy.id);
  // A container without a healthcheck has neither.
  Container plain = Inspect("inspect-a-user-network.json");
  EXPECT_EQ(plain.state.health, "");
  EXPECT_EQ(plain.state.health_output, "");
}

TEST(ParseContainerListJson, HealthFromTheStatusText) {
  std::map<std::string, std::string> health;
  for (const char* file :
       {"containers-json-health-healthy.json", "containers-json-health-unhealthy.json",
        "containers-json-health-starting.json"}) {
    absl::StatusOr<std::vector<ContainerSummary>> list = ParseContainerListJson(ReadTestdata(file));
    ASSERT_TRUE(list.ok()) << list.status();
    for (const ContainerSummary& s : *list) health[absl::StrCat(file, " ", s.name)] = s.health;
  }
  EXPECT_EQ(health["containers-json-health-healthy.json health-flip"], "healthy");
  EXPECT_EQ(health["containers-json-health-unhealthy.json health-flip"], "unhealthy");
  EXPECT_EQ(health["containers-json-health-starting.json health-starting"], "starting");
  // Paused ("Up 8 seconds (Paused)") and plain running containers show none.
  absl::StatusOr<std::vector<ContainerSummary>> more =
      ParseContainerListJson(ReadTestdata("containers-json-all-more.json"));
  ASSERT_TRUE(more.ok());
  for (const ContainerSummary& s : *more) {
    if (s.name == "health-ok") {
      EXPECT_EQ(s.health, "healthy");
    } else if (s.name == "health-fail") {
      EXPECT_EQ(s.health, "unhealthy");
    } else if (s.name == "paused-g" || s.name == "web-a") {
      EXPECT_EQ(s.health, "") << s.name;
    }
  }
}

// A missed health_status event is found by a resync: the list entry's fingerprint follows the
// health, and agrees with the inspect of the same moment.
TEST(StateFingerprint, FollowsDockerHealth) {
  for (const auto& [list_file, inspect_file] : std::vector<std::pair<std::string, std::string>>{
           {"containers-json-health-healthy.json", "inspect-health-healthy.json"},
           {"containers-json-health-unhealthy.json", "inspect-health-unhealthy.json"}}) {
    absl::StatusOr<std::vector<ContainerSummary>> list =
        ParseContainerListJson(ReadTestdata(list_file));
    ASSERT_TRUE(list.ok());
    ASSERT_EQ(list->size(), 1u);
    EXPECT_EQ(StateFingerprint((*list)[0]), StateFingerprint(Inspect(inspect_file))) << list_file;
  }
  EXPECT_NE(StateFingerprint(Inspect("inspect-health-healthy.json")),
            StateFingerprint(Inspect("inspect-health-unhealthy.json")));
}

TEST(ParseContainerJson, TwoNetworks) {
  Container c = Inspect("inspect-d-two-networks.json");
  EXPECT_EQ(c.network_mode, "appnet");
  EXPECT_THAT(c.networks, ElementsAre(NetworkEndpoint{"appnet", "172.19.0.3", ""},
                                      NetworkEndpoint{"backnet", "172.20.0.2", ""}));
  EXPECT_THAT(c.ports, ElementsAre(Pair("80/tcp", ElementsAre(PortBinding{"127.0.0.1", "8082"}))));
}

// Captured for SERVICE_NETWORK (testdata/docker/README.md, "network"): created on frontnet,
// connected to backnet before the start; then backnet disconnected and connected again.
TEST(ParseContainerJson, TwoUserNetworksConnectDisconnect) {
  Container c = Inspect("inspect-n-two-nets.json");
  EXPECT_EQ(c.network_mode, "frontnet");
  EXPECT_EQ(c.ip_address, "");
  EXPECT_THAT(c.networks, ElementsAre(NetworkEndpoint{"backnet", "172.19.0.2", ""},
                                      NetworkEndpoint{"frontnet", "172.18.0.2", ""}));
  EXPECT_THAT(c.env, ::testing::Contains("SERVICE_NETWORK=backnet"));
  EXPECT_THAT(c.labels, ElementsAre(Pair("SERVICE_81_NETWORK", "frontnet")));
  EXPECT_THAT(c.ports, ElementsAre(Pair("80/tcp", ElementsAre(PortBinding{"127.0.0.1", "18090"})),
                                   Pair("81/tcp", IsEmpty())));
  Container reconnected = Inspect("inspect-n-two-nets-reconnected.json");
  EXPECT_EQ(reconnected.networks, c.networks);
  // The list entry carries the networks too, so a resync notices a connect it missed.
  absl::StatusOr<std::vector<ContainerSummary>> list =
      ParseContainerListJson(ReadTestdata("containers-json-n-two-nets.json"));
  ASSERT_TRUE(list.ok()) << list.status();
  int found = 0;
  for (const ContainerSummary& s : *list) {
    if (s.id != c.id) continue;
    ++found;
    EXPECT_EQ(s.networks, c.networks);
    EXPECT_EQ(StateFingerprint(s), StateFingerprint(c));
  }
  EXPECT_EQ(found, 1);
}

TEST(ParseContainerJson, LabelsAndEnvKeptApartAndSorted) {
  Container c = Inspect("inspect-e-labels-env.json");
  EXPECT_THAT(c.labels, ElementsAre(Pair("SERVICE_80_CHECK_HTTP", "/health"),
                                    Pair("SERVICE_80_NAME", "label-web"),
                                    Pair("SERVICE_TAGS", "label\\,one,label-two")));
  EXPECT_THAT(c.env, ElementsAre("SERVICE_80_NAME=env-web", "SERVICE_TAGS=env\\,one,env-two",
                                 "SERVICE_80_CHECK_HTTP=/env-health"));
}

TEST(ParseContainerJson, NetNone) {
  Container c = Inspect("inspect-f-net-none.json");
  EXPECT_EQ(c.network_mode, "none");
  EXPECT_THAT(c.ports, IsEmpty());
  EXPECT_THAT(c.networks, ElementsAre(NetworkEndpoint{"none", "", ""}));
  EXPECT_THAT(c.env, ElementsAre("SERVICE_NAME=isolated"));
}

TEST(ParseContainerJson, PausedAndRestarting) {
  Container paused = Inspect("inspect-g-paused.json");
  ContainerState p;
  p.status = "paused";
  p.running = true;
  p.paused = true;
  EXPECT_EQ(paused.state, p);

  Container restarting = Inspect("inspect-g-restarting.json");
  ContainerState r;
  r.status = "restarting";
  r.running = true;
  r.restarting = true;
  r.exit_code = 1;
  EXPECT_EQ(restarting.state, r);
  EXPECT_THAT(restarting.ports, IsEmpty());
}

TEST(ParseContainerJson, Ipv6) {
  Container c = Inspect("inspect-h-ipv6-daemon.json");
  EXPECT_THAT(c.networks,
              ElementsAre(NetworkEndpoint{"bridge", "172.17.0.2", "fd00:dead:beef::242:ac11:2"}));
  EXPECT_THAT(c.ports, ElementsAre(Pair("80/tcp", ElementsAre(PortBinding{"127.0.0.1", "8083"}))));
  Container both = Inspect("inspect-h-ipv6-explicit-loopback.json");
  EXPECT_THAT(both.ports,
              ElementsAre(Pair("80/tcp", ElementsAre(PortBinding{"::1", "8085"},
                                                     PortBinding{"127.0.0.1", "8085"}))));
}

TEST(ParseContainerJson, MissingSectionsAreEmpty) {
  absl::StatusOr<Container> c = ParseContainerJson(R"({"Id":"abc","Name":"/x"})");
  ASSERT_THAT(c, IsOk()) << c.status();
  EXPECT_EQ(c->id, "abc");
  EXPECT_EQ(c->name, "x");
  EXPECT_EQ(c->image, "");
  EXPECT_THAT(c->ports, IsEmpty());
  EXPECT_EQ(c->state, ContainerState{});

  c = ParseContainerJson(
      R"({"Id":"abc","Config":null,"NetworkSettings":null,"State":null,"HostConfig":null})");
  ASSERT_THAT(c, IsOk()) << c.status();
  EXPECT_EQ(c->network_mode, "");
  EXPECT_THAT(c->env, IsEmpty());

  EXPECT_THAT(ParseContainerJson("{}"), IsOk());
}

TEST(ParseContainerJson, WrongTypesAreSkippedSoftly) {
  absl::StatusOr<Container> c = ParseContainerJson(R"({
    "Id": 12, "Name": "/ok",
    "Config": {"Image": ["x"], "Env": ["A=1", 5, null, "B=2"], "Labels": {"z": "1", "a": 2, "m": "3"},
               "ExposedPorts": ["80/tcp"], "Hostname": "h"},
    "HostConfig": {"NetworkMode": 7},
    "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": 1, "HostPort": "8080"}, "junk", null],
                                  "81/tcp": "junk"},
                        "Networks": {"bridge": null, "n2": {"IPAddress": "10.0.0.1"}},
                        "IPAddress": false},
    "State": {"Status": "running", "Running": "yes", "ExitCode": "3", "Health": "x"}
  })");
  ASSERT_THAT(c, IsOk()) << c.status();
  EXPECT_EQ(c->id, "");
  EXPECT_EQ(c->name, "ok");
  EXPECT_EQ(c->image, "");
  EXPECT_EQ(c->hostname, "h");
  EXPECT_THAT(c->env, ElementsAre("A=1", "B=2"));
  EXPECT_THAT(c->labels, ElementsAre(Pair("m", "3"), Pair("z", "1")));
  EXPECT_THAT(c->exposed_ports, IsEmpty());
  EXPECT_EQ(c->network_mode, "");
  EXPECT_THAT(c->ports, ElementsAre(Pair("80/tcp", ElementsAre(PortBinding{"", "8080"})),
                                    Pair("81/tcp", IsEmpty())));
  EXPECT_THAT(c->networks, ElementsAre(NetworkEndpoint{"bridge", "", ""},
                                       NetworkEndpoint{"n2", "10.0.0.1", ""}));
  ContainerState state;
  state.status = "running";
  EXPECT_EQ(c->state, state);
}

TEST(ParseContainerJson, MalformedInputIsInvalidArgument) {
  const std::string full = ReadTestdata("inspect-c-healthy.json");
  for (const std::string& bad :
       {std::string(""), std::string("   "), std::string("not json"), std::string("{"),
        std::string("{\"Id\":"), full.substr(0, full.size() / 2), full.substr(0, full.size() - 2),
        std::string("\xff\xfe{}", 4), std::string("{\"Id\":\"a\"} trailing")}) {
    absl::StatusOr<Container> c = ParseContainerJson(bad);
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << "input: " << bad;
    EXPECT_THAT(c.status().message(), HasSubstr("container inspect")) << c.status();
  }
  for (const char* not_object : {"[]", "null", "42", "\"x\"", "true"}) {
    absl::StatusOr<Container> c = ParseContainerJson(not_object);
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << not_object;
    EXPECT_THAT(c.status().message(), HasSubstr("not a JSON object")) << c.status();
  }
}

// The identity fields of list entries (id, name, image, state), for comparing with literals.
std::vector<ContainerSummary> Identities(std::vector<ContainerSummary> list) {
  for (ContainerSummary& s : list) s = ContainerSummary{s.id, s.name, s.image, s.state};
  return list;
}

TEST(ParseContainerListJson, Samples) {
  absl::StatusOr<std::vector<ContainerSummary>> all =
      ParseContainerListJson(ReadTestdata("containers-json-all-sample.json"));
  ASSERT_THAT(all, IsOk()) << all.status();
  EXPECT_THAT(
      Identities(*all),
      ElementsAre(
          ContainerSummary{"57ac1473c7841ff1f28edf3982f0eb2ef8a706a1ccbc87ff712d760598e5ec82",
                           "shortlived", "local/busybox:test", "exited"},
          ContainerSummary{"63ec5e1ef87d93e691bf7e7045eb3333942af04d1e837f1a452ac83bc5044505",
                           "hostnet", "local/busybox:test", "running"},
          ContainerSummary{"df1db31130ebcdf5ba7197a3c3f2e7af81237d1fcb00ef48952fc44062193e02",
                           "multi", "local/busybox:test", "running"},
          ContainerSummary{"457cab1e9b80c8f0c021a114e7b79d735dec402ebb0efcf8bea4f6b3029255d6",
                           "files2", "local/busybox:test", "running"},
          ContainerSummary{"d7fc15186570a5c8affd413e7e5e09cc9dea217d68a3292470e0cfdca36fde24",
                           "files1", "local/busybox:test", "running"}));

  absl::StatusOr<std::vector<ContainerSummary>> running =
      ParseContainerListJson(ReadTestdata("containers-json-sample.json"));
  ASSERT_THAT(running, IsOk()) << running.status();
  EXPECT_EQ(running->size(), 4u);

  absl::StatusOr<std::vector<ContainerSummary>> more =
      ParseContainerListJson(ReadTestdata("containers-json-all-more.json"));
  ASSERT_THAT(more, IsOk()) << more.status();
  ASSERT_EQ(more->size(), 9u);
  EXPECT_EQ(Identities(*more)[0],
            (ContainerSummary{"1142caebdb991fd27d5c02e0a184625c88bd186f4084e245a3c28905e1013382",
                              "restarting-g", "example/web:1.2", "restarting"}));
  EXPECT_EQ((*more)[1].state, "paused");
  EXPECT_EQ((*more)[4].name, "sidecar-b");

  absl::StatusOr<std::vector<ContainerSummary>> after =
      ParseContainerListJson(ReadTestdata("containers-json-all-more-after-ipv6-restart.json"));
  ASSERT_THAT(after, IsOk()) << after.status();
  EXPECT_FALSE(after->empty());
}

TEST(ParseContainerListJson, KeepsWhatAFingerprintNeeds) {
  absl::StatusOr<std::vector<ContainerSummary>> running =
      ParseContainerListJson(ReadTestdata("containers-json-sample.json"));
  ASSERT_THAT(running, IsOk()) << running.status();
  const ContainerSummary* multi = nullptr;
  for (const ContainerSummary& s : *running) {
    if (s.name == "multi") multi = &s;
  }
  ASSERT_NE(multi, nullptr);
  EXPECT_EQ(multi->network_mode, "default");
  EXPECT_THAT(multi->ports, UnorderedElementsAre(SummaryPort{80, 18081, "tcp", "127.0.0.1"},
                                                 SummaryPort{81, 18082, "udp", "127.0.0.1"},
                                                 SummaryPort{8443, 0, "tcp", ""}));
  EXPECT_THAT(multi->networks, ElementsAre(NetworkEndpoint{"bridge", "172.17.0.4", ""}));
}

// A resync re-inspects only containers whose list fingerprint differs from their last inspect's:
// for the same container in the same state, both payloads must give the same fingerprint, or
// every resync would inspect it again. Checked on every captured pair of list entry and inspect.
TEST(StateFingerprint, ListAndInspectAgreeOnCapturedPayloads) {
  std::map<std::string, ContainerSummary> listed;
  for (const char* file : {"containers-json-all-sample.json", "containers-json-all-more.json"}) {
    absl::StatusOr<std::vector<ContainerSummary>> list = ParseContainerListJson(ReadTestdata(file));
    ASSERT_THAT(list, IsOk()) << list.status();
    for (const ContainerSummary& s : *list) listed[s.id] = s;
  }
  std::vector<Container> inspected;
  for (const auto& [name, c] : InspectAllSamples()) inspected.push_back(c);
  for (const char* file :
       {"inspect-a-user-network.json", "inspect-b-sidecar-container-mode.json",
        "inspect-c-healthy.json", "inspect-c-unhealthy.json", "inspect-d-two-networks.json",
        "inspect-e-labels-env.json", "inspect-f-net-none.json", "inspect-g-paused.json",
        "inspect-g-restarting.json"}) {
    inspected.push_back(Inspect(file));
  }
  int compared = 0;
  for (const Container& c : inspected) {
    auto it = listed.find(c.id);
    if (it == listed.end() || it->second.state != c.state.status) continue;
    ++compared;
    EXPECT_EQ(StateFingerprint(c), StateFingerprint(it->second)) << c.name;
  }
  EXPECT_GE(compared, 10);
  // And it does see a change: another network IP, a moved port, a rename, a new state.
  Container c = inspected[0];
  const std::string base = StateFingerprint(c);
  Container renamed = c;
  renamed.name += "-2";
  Container moved = c;
  moved.ports.begin()->second.push_back({"0.0.0.0", "1"});
  Container connected = c;
  connected.networks.push_back({"other", "10.9.9.9", ""});
  Container paused = c;
  paused.state.status = "paused";
  for (const Container& changed : {renamed, moved, connected, paused}) {
    EXPECT_NE(StateFingerprint(changed), base);
  }
}

TEST(ParseContainerListJson, OddEntriesAndMalformed) {
  absl::StatusOr<std::vector<ContainerSummary>> list = ParseContainerListJson(
      R"([1, null, {"Id":"a","Names":[3,"/n1","/n2"],"State":"running"}, {"Names":null}])");
  ASSERT_THAT(list, IsOk()) << list.status();
  EXPECT_THAT(Identities(*list),
              ElementsAre(ContainerSummary{"a", "n1", "", "running"}, ContainerSummary{}));
  list = ParseContainerListJson(R"([{"Id":"b","Names":["/web/db-alias","/db"]},
                                    {"Id":"c","Names":["/x/y"]}])");
  ASSERT_THAT(list, IsOk()) << list.status();
  EXPECT_THAT(Identities(*list), ElementsAre(ContainerSummary{"b", "db", "", ""},
                                             ContainerSummary{"c", "x/y", "", ""}));
  ASSERT_THAT(ParseContainerListJson("[]"), IsOk());
  EXPECT_THAT(*ParseContainerListJson("[]"), IsEmpty());
  for (const char* bad : {"", "[", "[{]", "{}", "null"}) {
    EXPECT_EQ(ParseContainerListJson(bad).status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_THAT(ParseContainerListJson("{}").status().message(), HasSubstr("not a JSON array"));
}

std::vector<Event> ParseLines(const std::string& file) {
  std::vector<Event> events;
  for (absl::string_view line : absl::StrSplit(ReadTestdata(file), '\n', absl::SkipEmpty())) {
    absl::StatusOr<Event> e = ParseEventJson(line);
    EXPECT_THAT(e, IsOk()) << e.status() << " line: " << line;
    if (e.ok()) events.push_back(*e);
  }
  return events;
}

TEST(ParseEventJson, DockerEventsSample) {
  std::vector<Event> events = ParseLines("docker-events-sample.jsonl");
  ASSERT_EQ(events.size(), 54u);
  std::map<std::string, int> by_type;
  std::map<std::string, int> container_actions;
  for (const Event& e : events) {
    ++by_type[e.type];
    if (e.type == "container") ++container_actions[e.action];
    EXPECT_EQ(e.time, e.time_nano / 1000000000) << e.action << " " << e.id;
    EXPECT_EQ(e.id.size(), 64u);
  }
  EXPECT_THAT(by_type, UnorderedElementsAre(Pair("container", 40), Pair("network", 14)));
  EXPECT_THAT(
      container_actions,
      UnorderedElementsAre(Pair("kill", 9), Pair("start", 7), Pair("die", 7), Pair("create", 5),
                           Pair("destroy", 5), Pair("stop", 3), Pair("attach", 1),
                           Pair("restart", 1), Pair("pause", 1), Pair("unpause", 1)));
  Event first{"container",
              "create",
              "d7fc15186570a5c8affd413e7e5e09cc9dea217d68a3292470e0cfdca36fde24",
              "files1",
              "local/busybox:test",
              "",
              1795767505,
              1795767505366927270};
  EXPECT_EQ(events[0], first);
  // A network event has no "status"/"id": Action and Actor.ID are used.
  EXPECT_EQ(events[1].type, "network");
  EXPECT_EQ(events[1].action, "connect");
  EXPECT_EQ(events[1].id, "1629c71c5153d9414ad45d9ea4bafa6e022b6f753b4cfc8132be282eedfb8299");
  EXPECT_EQ(events[1].name, "bridge");
  EXPECT_EQ(events[1].time_nano, 1795767505384390748);

  Event die{"container",
            "die",
            "57ac1473c7841ff1f28edf3982f0eb2ef8a706a1ccbc87ff712d760598e5ec82",
            "shortlived",
            "local/busybox:test",
            "3",
            1795767511,
            1795767511428888139};
  EXPECT_THAT(events, ::testing::Contains(die));
}

TEST(ParseEventJson, ContainerFilteredStream) {
  std::vector<Event> events = ParseLines("events-container-filtered.jsonl");
  ASSERT_EQ(events.size(), 338u);
  std::map<std::string, int> actions;
  for (const Event& e : events) {
    EXPECT_EQ(e.type, "container");
    ++actions[e.action];
  }
  EXPECT_EQ(actions["exec_die"], 78);
  EXPECT_EQ(actions["exec_create: /bin/sh -c exit 1"], 39);
  EXPECT_EQ(actions["start"], 27);
  EXPECT_EQ(actions["die"], 25);
  EXPECT_EQ(actions["kill"], 20);
  EXPECT_EQ(actions["create"], 13);
  EXPECT_EQ(actions["stop"], 10);
  EXPECT_EQ(actions["destroy"], 2);
  EXPECT_EQ(actions["pause"], 2);
  EXPECT_EQ(actions["unpause"], 2);
  EXPECT_EQ(actions["restart"], 1);
  EXPECT_EQ(actions["health_status: healthy"], 1);
  EXPECT_EQ(actions["health_status: unhealthy"], 1);
  EXPECT_EQ(actions.size(), 16u);

  Event healthy{"container",
                "health_status: healthy",
                "9c50e72dc4ca929a4d55286c494358bf5e190b5b2e28c81878d9a72ef056e5c5",
                "health-ok",
                "example/web:1.2",
                "",
                1795774242,
                1795774242703334625};
  EXPECT_THAT(events, ::testing::Contains(healthy));
  Event die{"container",
            "die",
            "1142caebdb991fd27d5c02e0a184625c88bd186f4084e245a3c28905e1013382",
            "restarting-g",
            "example/web:1.2",
            "1",
            1795774258,
            1795774258290859223};
  EXPECT_THAT(events, ::testing::Contains(die));
}

TEST(ParseEventJson, HealthStatusEvents) {
  std::vector<Event> events = ParseLines("events-health-status.jsonl");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].action, "health_status: healthy");
  EXPECT_EQ(events[1].action, "health_status: unhealthy");
  EXPECT_EQ(events[0].name, "health-flip");
  EXPECT_EQ(events[0].id, Inspect("inspect-health-healthy.json").id);
}

// Captured with filters={"type":["container","network"]} while the two-network container was
// created, connected, disconnected and connected again (and odd network names were created).
TEST(ParseEventJson, NetworkEventsNameTheContainer) {
  std::vector<Event> events = ParseLines("events-network.jsonl");
  ASSERT_EQ(events.size(), 27u);
  const std::string two_nets = "a83c5695f640deeb5fdc640e64ab0d5f91f3a80fae44cb8a1bb117dae46b906f";
  const std::string backnet = "9c39bc70eef9cc8bffd8d22f087ee9cf873ac793d2007a7af6376a29a938741f";
  std::map<std::string, int> actions;
  for (const Event& e : events) {
    if (e.type == "container") {
      // Container events' Attributes are labels: never read as the connected container.
      EXPECT_EQ(e.container, "") << e.action;
      continue;
    }
    ASSERT_EQ(e.type, "network");
    ++actions[e.action];
    if (e.action == "connect" || e.action == "disconnect") {
      EXPECT_EQ(e.container.size(), 64u) << e.action << " " << e.name;
    } else {
      EXPECT_EQ(e.container, "") << e.action;
    }
  }
  EXPECT_THAT(actions, UnorderedElementsAre(Pair("create", 9), Pair("destroy", 7),
                                            Pair("connect", 5), Pair("disconnect", 2)));
  Event disconnect{"network", "disconnect", backnet, "backnet", "", "", 0, 0, two_nets};
  int disconnects = 0;
  for (Event e : events) {
    if (e.action != "disconnect") continue;
    e.time = e.time_nano = 0;
    EXPECT_EQ(e, disconnect);
    ++disconnects;
  }
  EXPECT_EQ(disconnects, 2);
}

TEST(ParseEventJson, LegacyFieldsAndFallbacks) {
  // Pre-1.22 shape: only status/id/from/time.
  absl::StatusOr<Event> e =
      ParseEventJson(R"({"status":"start","id":"abc","from":"img:1","time":1700000000})");
  ASSERT_THAT(e, IsOk()) << e.status();
  EXPECT_EQ(*e, (Event{"", "start", "abc", "", "img:1", "", 1700000000, 1700000000000000000}));
  // Action wins over status; Actor.ID over id.
  e = ParseEventJson(
      R"({"status":"old","Action":"die","id":"x","Actor":{"ID":"y","Attributes":null},"Type":"container","time":"bad","timeNano":5})");
  ASSERT_THAT(e, IsOk()) << e.status();
  EXPECT_EQ(*e, (Event{"container", "die", "y", "", "", "", 0, 5}));
  e = ParseEventJson(R"({"Actor":{"Attributes":{"exitCode":0,"name":"n"}}})");
  ASSERT_THAT(e, IsOk()) << e.status();
  EXPECT_EQ(e->exit_code, "");
  EXPECT_EQ(e->name, "n");
}

TEST(ParseEventJson, TimeTooLargeForNanosecondsCountsAsMissing) {
  // Found by tools/fuzz (backend_replies_fuzz): time * 1e9 overflowed int64 (UBSan).
  for (const char* time : {"1791058725078", "9223372036854775807", "-9223372036854775808"}) {
    absl::StatusOr<Event> e =
        ParseEventJson(absl::StrCat(R"({"status":"die","id":"x","time":)", time, "}"));
    ASSERT_THAT(e, IsOk()) << e.status();
    EXPECT_EQ(e->time_nano, 0) << time;
  }
  // The largest time that fits still converts; timeNano, when present, is taken as is.
  absl::StatusOr<Event> e = ParseEventJson(R"({"id":"x","time":9223372036})");
  ASSERT_THAT(e, IsOk()) << e.status();
  EXPECT_EQ(e->time_nano, 9223372036000000000);
  e = ParseEventJson(R"({"id":"x","time":1791058725078,"timeNano":7})");
  ASSERT_THAT(e, IsOk()) << e.status();
  EXPECT_EQ(e->time_nano, 7);
}

TEST(ParseEventJson, Malformed) {
  for (const char* bad : {"", "{", "{\"Type\":\"container\",", "garbage", "[1]", "null", "3"}) {
    EXPECT_EQ(ParseEventJson(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_THAT(ParseEventJson("[1]").status().message(), HasSubstr("event"));
}

TEST(ParseVersionJson, Samples) {
  for (const char* file : {"docker-version.json", "version.json"}) {
    absl::StatusOr<Version> v = ParseVersionJson(ReadTestdata(file));
    ASSERT_THAT(v, IsOk()) << v.status();
    EXPECT_EQ(v->version, "20.10.24+dfsg1") << file;
    EXPECT_EQ(v->api_version, "1.41") << file;
    EXPECT_EQ(v->min_api_version, "1.12") << file;
  }
  absl::StatusOr<Version> v = ParseVersionJson(R"({"ApiVersion":1.41})");
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(v->api_version, "");
  EXPECT_EQ(ParseVersionJson("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseVersionJson("[]").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseVersionJson("{\"Version\":").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace registrator::docker
