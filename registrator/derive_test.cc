// Focused tests of the derivation rules, one rule per test, on hand-built containers. The
// table-driven tests over real inspect payloads are in derive_testdata_test.cc.
#include "registrator/derive.h"

#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registrator/common/log.h"

namespace registrator {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

constexpr char kId[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

// A running bridge container publishing 80/tcp on 0.0.0.0:8080.
docker::Container Web() {
  docker::Container c;
  c.id = kId;
  c.name = "web";
  c.image = "example/web:1.2";
  c.hostname = "c0ffee";
  c.network_mode = "default";
  c.exposed_ports = {"80/tcp"};
  c.ports["80/tcp"] = {{"0.0.0.0", "8080"}};
  c.ip_address = "172.17.0.2";
  c.networks = {{"bridge", "172.17.0.2", ""}};
  return c;
}

DeriveConfig Config() {
  DeriveConfig config;
  config.hostname = "dockerhost";
  config.resolved_host_ip = "10.0.0.5";
  return config;
}

std::vector<std::string> Names(const DeriveResult& r) {
  std::vector<std::string> names;
  for (const Service& s : r.services) names.push_back(s.name);
  return names;
}

// The only service, or a failure.
Service Only(const DeriveResult& r) {
  EXPECT_THAT(r.services, SizeIs(1));
  return r.services.empty() ? Service{} : r.services[0];
}

// --- Ports -------------------------------------------------------------------------------------

TEST(DerivePortsTest, PublishedPortGivesOneServiceWithOrigin) {
  DeriveConfig config = Config();
  config.ttl = 30;
  DeriveResult r = DeriveServices(Web(), config);
  Service s = Only(r);
  EXPECT_EQ(s.id, "dockerhost:web:80");
  EXPECT_EQ(s.name, "web");
  EXPECT_EQ(s.ip, "10.0.0.5");
  EXPECT_EQ(s.port, 8080);
  EXPECT_EQ(s.ttl, 30);
  EXPECT_EQ(s.container_id, kId);
  EXPECT_EQ(s.container_name, "web");
  EXPECT_EQ(s.container_hostname, "c0ffee");
  EXPECT_EQ(s.exposed_port, 80);
  EXPECT_EQ(s.host_port, 8080);
  EXPECT_EQ(s.protocol, "tcp");
  EXPECT_FALSE(s.has_check);
  EXPECT_THAT(r.warnings, IsEmpty());
  EXPECT_EQ(r.skipped_reason, "");
}

TEST(DerivePortsTest, ExposedPortIsSeededWithTheSameHostPort) {
  docker::Container c = Web();
  c.network_mode = "host";
  c.ports.clear();  // --net=host: Docker reports no bindings.
  c.ip_address = "";
  c.networks = {{"host", "", ""}};
  Service s = Only(DeriveServices(c, Config()));
  EXPECT_EQ(s.port, 80);
  EXPECT_EQ(s.host_port, 80);
  EXPECT_EQ(s.ip, "10.0.0.5");
}

TEST(DerivePortsTest, RuntimeBindingsOverrideTheSeed) {
  docker::Container c = Web();
  c.ports["80/tcp"] = {{"127.0.0.1", "32768"}};
  Service s = Only(DeriveServices(c, Config()));
  EXPECT_EQ(s.port, 32768);
  EXPECT_EQ(s.ip, "127.0.0.1");
}

TEST(DerivePortsTest, PublishedButNotExposedPortCounts) {
  docker::Container c = Web();
  c.exposed_ports.clear();
  Service s = Only(DeriveServices(c, Config()));
  EXPECT_EQ(s.port, 8080);
}

TEST(DerivePortsTest, ExposedOnlyPortIsSkippedWithoutInternal) {
  docker::Container c = Web();
  c.ports["80/tcp"] = {};  // "80/tcp": null
  DeriveResult r = DeriveServices(c, Config());
  EXPECT_THAT(r.services, IsEmpty());
  EXPECT_THAT(r.skipped_reason, HasSubstr("not published"));
}

TEST(DerivePortsTest, InternalRegistersContainerIpAndExposedPort) {
  docker::Container c = Web();
  c.ports["80/tcp"] = {};
  DeriveConfig config = Config();
  config.internal = true;
  Service s = Only(DeriveServices(c, config));
  EXPECT_EQ(s.ip, "172.17.0.2");
  EXPECT_EQ(s.port, 80);
  EXPECT_EQ(s.host_port, 0);
}

TEST(DerivePortsTest, InternalUsesExposedPortEvenWhenPublished) {
  DeriveConfig config = Config();
  config.internal = true;
  config.host_ip = "192.0.2.1";  // Not used with -internal.
  Service s = Only(DeriveServices(Web(), config));
  EXPECT_EQ(s.ip, "172.17.0.2");
  EXPECT_EQ(s.port, 80);
  EXPECT_EQ(s.host_port, 8080);
}

TEST(DerivePortsTest, InternalOnHostNetworkUsesTheHostIp) {
  docker::Container c = Web();
  c.network_mode = "host";
  c.ports.clear();
  c.ip_address = "";
  c.networks = {{"host", "", ""}};
  DeriveConfig config = Config();
  config.internal = true;
  EXPECT_EQ(Only(DeriveServices(c, config)).ip, "10.0.0.5");
}

TEST(DerivePortsTest, NoPortsAtAllIsSkippedWithReason) {
  docker::Container c = Web();
  c.exposed_ports.clear();
  c.ports.clear();
  DeriveResult r = DeriveServices(c, Config());
  EXPECT_THAT(r.services, IsEmpty());
  EXPECT_EQ(r.skipped_reason, "no exposed or published ports");
}

TEST(DerivePortsTest, NetworkModeNoneIsSkipped) {
  docker::Container c = Web();
  c.network_mode = "none";
  c.ports.clear();
  DeriveResult r = DeriveServices(c, Config());
  EXPECT_THAT(r.services, IsEmpty());
  EXPECT_THAT(r.skipped_reason, HasSubstr("none"));
}

TEST(DerivePortsTest, Ipv4BindingWinsOverIpv6Duplicates) {
  docker::Container c = Web();
  c.ports["80/tcp"] = {{"::", "8080"}, {"::1", "8080"}, {"127.0.0.1", "8080"}};
  Service s = Only(DeriveServices(c, Config()));
  EXPECT_EQ(s.ip, "127.0.0.1");
  EXPECT_EQ(s.port, 8080);
}

TEST(DerivePortsTest, FirstIpv4BindingWins) {
  docker::Container c = Web();
  c.ports["80/tcp"] = {{"127.0.0.2", "8081"}, {"127.0.0.3", "8082"}};
  EXPECT_EQ(Only(DeriveServices(c, Config())).port, 8081);
}

TEST(DerivePortsTest, OnlyIpv6BindingsUseTheFirst) {
  docker::Container c = Web();
  c.ports["80/tcp"] = {{"::1", "8085"}, {"fd00::1", "8086"}};
  Service s = Only(DeriveServices(c, Config()));
  EXPECT_EQ(s.ip, "::1");
  EXPECT_EQ(s.port, 8085);
}

TEST(DerivePortsTest, UnspecifiedIpv6BindingMeansTheHost) {
  docker::Container c = Web();
  c.ports["80/tcp"] = {{"::", "8080"}};
  EXPECT_EQ(Only(DeriveServices(c, Config())).ip, "10.0.0.5");
}

TEST(DerivePortsTest, EmptyHostIpMeansTheHost) {
  docker::Container c = Web();
  c.ports["80/tcp"] = {{"", "8080"}};
  EXPECT_EQ(Only(DeriveServices(c, Config())).ip, "10.0.0.5");
}

TEST(DerivePortsTest, UdpGetsIdSuffixAndTagSctpIsAccepted) {
  docker::Container c = Web();
  c.exposed_ports = {"53/udp", "9/sctp"};
  c.ports.clear();
  c.ports["53/udp"] = {{"0.0.0.0", "5353"}};
  c.ports["9/sctp"] = {{"0.0.0.0", "9009"}};
  DeriveResult r = DeriveServices(c, Config());
  ASSERT_THAT(r.services, SizeIs(2));
  EXPECT_EQ(r.services[0].id, "dockerhost:web:9");
  EXPECT_EQ(r.services[0].protocol, "sctp");
  EXPECT_THAT(r.services[0].tags, IsEmpty());
  EXPECT_EQ(r.services[1].id, "dockerhost:web:53:udp");
  EXPECT_EQ(r.services[1].protocol, "udp");
  EXPECT_THAT(r.services[1].tags, ElementsAre("udp"));
}

TEST(DerivePortsTest, PortWithoutProtocolIsTcpAndMergesWithTcpKey) {
  docker::Container c = Web();
  c.exposed_ports = {"80"};
  Service s = Only(DeriveServices(c, Config()));
  EXPECT_EQ(s.protocol, "tcp");
  EXPECT_EQ(s.port, 8080);
}

TEST(DerivePortsTest, ServicesAreSortedByPortThenProtocol) {
  docker::Container c = Web();
  c.ports.clear();
  c.exposed_ports.clear();
  c.ports["8443/tcp"] = {{"0.0.0.0", "1"}};
  c.ports["53/udp"] = {{"0.0.0.0", "2"}};
  c.ports["53/tcp"] = {{"0.0.0.0", "3"}};
  c.ports["443/tcp"] = {{"0.0.0.0", "4"}};
  DeriveResult r = DeriveServices(c, Config());
  EXPECT_THAT(Names(r), ElementsAre("web-53", "web-53", "web-443", "web-8443"));
  ASSERT_THAT(r.services, SizeIs(4));
  EXPECT_EQ(r.services[0].protocol, "tcp");
  EXPECT_EQ(r.services[1].protocol, "udp");
}

// --- IP rules ----------------------------------------------------------------------------------

TEST(DeriveIpTest, IpFlagOverridesBindingIp) {
  docker::Container c = Web();
  c.ports["80/tcp"] = {{"127.0.0.1", "8080"}};
  DeriveConfig config = Config();
  config.host_ip = "192.0.2.1";
  EXPECT_EQ(Only(DeriveServices(c, config)).ip, "192.0.2.1");
}

TEST(DeriveIpTest, UnresolvedHostKeepsAllAddresses) {
  DeriveConfig config = Config();
  config.resolved_host_ip = "";
  EXPECT_EQ(Only(DeriveServices(Web(), config)).ip, "0.0.0.0");
}

TEST(DeriveIpTest, LabelIpWithSlashSuffixDropped) {
  docker::Container c = Web();
  c.labels = {{"ip", "10.1.2.3/24"}};
  DeriveConfig config = Config();
  config.use_ip_from_label = "ip";
  config.host_ip = "192.0.2.1";
  DeriveResult r = DeriveServices(c, config);
  EXPECT_EQ(Only(r).ip, "10.1.2.3");
  EXPECT_EQ(Only(r).port, 8080);
}

TEST(DeriveIpTest, LabelIpDropsOnlyFromTheLastSlash) {
  docker::Container c = Web();
  c.labels = {{"ip", "a/b/c"}};
  DeriveConfig config = Config();
  config.use_ip_from_label = "ip";
  // Upstream would register "a/b"; an IP is a ZooKeeper path segment, so what is left after the
  // drop must not hold a "/" either: the default IP is used, with a warning.
  DeriveResult r = DeriveServices(c, config);
  EXPECT_EQ(Only(r).ip, "10.0.0.5");
  EXPECT_THAT(r.warnings, Contains(AllOf(HasSubstr("a/b/c"), HasSubstr("not an IP address"))));
}

TEST(DeriveIpTest, LabelIpBeatsInternal) {
  docker::Container c = Web();
  c.labels = {{"ip", "10.1.2.3"}};
  DeriveConfig config = Config();
  config.use_ip_from_label = "ip";
  config.internal = true;
  Service s = Only(DeriveServices(c, config));
  EXPECT_EQ(s.ip, "10.1.2.3");
  EXPECT_EQ(s.port, 80);
}

TEST(DeriveIpTest, MissingOrMalformedIpLabelWarnsAndKeepsDefault) {
  DeriveConfig config = Config();
  config.use_ip_from_label = "ip";
  DeriveResult r = DeriveServices(Web(), config);
  EXPECT_EQ(Only(r).ip, "10.0.0.5");
  EXPECT_THAT(r.warnings, Contains(AllOf(HasSubstr("web"), HasSubstr("\"ip\""))));

  docker::Container c = Web();
  c.labels = {{"ip", "10.0.0.1 oops"}};
  r = DeriveServices(c, config);
  EXPECT_EQ(Only(r).ip, "10.0.0.5");
  EXPECT_THAT(r.warnings, Contains(HasSubstr("10.0.0.1 oops")));
}

TEST(DeriveIpTest, UserDefinedNetworkUsesThatNetworksIp) {
  docker::Container c = Web();
  c.network_mode = "appnet";
  c.ip_address = "";
  c.networks = {{"appnet", "172.19.0.2", ""}, {"backnet", "172.20.0.2", ""}};
  c.ports["80/tcp"] = {{"127.0.0.1", "8081"}};
  Service s = Only(DeriveServices(c, Config()));
  EXPECT_EQ(s.ip, "172.19.0.2");
  EXPECT_EQ(s.port, 8081);
}

TEST(DeriveIpTest, UserDefinedNetworkPicksByNameNotOrder) {
  docker::Container c = Web();
  c.network_mode = "backnet";
  c.ip_address = "";
  c.networks = {{"appnet", "172.19.0.2", ""}, {"backnet", "172.20.0.2", ""}};
  EXPECT_EQ(Only(DeriveServices(c, Config())).ip, "172.20.0.2");
}

TEST(DeriveIpTest, UserDefinedNetworkFallsBackToFirstNetworkWithIp) {
  docker::Container c = Web();
  c.network_mode = "0123abcd";  // Network given by id: Networks is keyed by name.
  c.ip_address = "";
  c.networks = {{"appnet", "", ""}, {"backnet", "172.20.0.2", ""}};
  EXPECT_EQ(Only(DeriveServices(c, Config())).ip, "172.20.0.2");
}

TEST(DeriveIpTest, IpFlagBeatsUserDefinedNetwork) {
  docker::Container c = Web();
  c.network_mode = "appnet";
  c.networks = {{"appnet", "172.19.0.2", ""}};
  DeriveConfig config = Config();
  config.host_ip = "192.0.2.1";
  EXPECT_EQ(Only(DeriveServices(c, config)).ip, "192.0.2.1");
}

TEST(DeriveIpTest, InternalOnUserDefinedNetworkUsesThatNetworksIp) {
  docker::Container c = Web();
  c.network_mode = "backnet";
  c.ip_address = "";
  c.networks = {{"appnet", "172.19.0.2", ""}, {"backnet", "172.20.0.2", ""}};
  DeriveConfig config = Config();
  config.internal = true;
  EXPECT_EQ(Only(DeriveServices(c, config)).ip, "172.20.0.2");
}

TEST(DeriveIpTest, ContainerNetworkModeUsesLookup) {
  docker::Container c = Web();
  c.network_mode = "container:3ddd917a301c";
  c.ports.clear();
  c.ip_address = "";
  c.networks.clear();
  std::string asked;
  auto lookup = [&](absl::string_view ref, absl::string_view network) {
    asked = absl::StrCat(ref, network.empty() ? "" : "@", network);
    return std::string("172.19.0.2");
  };
  DeriveConfig config = Config();
  config.host_ip = "192.0.2.1";
  Service s = Only(DeriveServices(c, config, lookup));
  EXPECT_EQ(asked, "3ddd917a301c");
  EXPECT_EQ(s.ip, "172.19.0.2");
  EXPECT_EQ(s.port, 80);
}

TEST(DeriveIpTest, ContainerNetworkModeWithoutLookupWarnsAndKeepsHostIp) {
  docker::Container c = Web();
  c.network_mode = "container:other";
  c.ports.clear();
  DeriveResult r = DeriveServices(c, Config());
  EXPECT_EQ(Only(r).ip, "10.0.0.5");
  EXPECT_THAT(r.warnings, ElementsAre(AllOf(HasSubstr("0123456789ab (web)"),
                                            HasSubstr("HostConfig.NetworkMode"),
                                            HasSubstr("container:other"))));
  r = DeriveServices(c, Config(),
                     [](absl::string_view, absl::string_view) { return std::string(); });
  EXPECT_EQ(Only(r).ip, "10.0.0.5");
  EXPECT_THAT(r.warnings, SizeIs(1));
}

TEST(DeriveIpTest, NoIpAtAllSkipsThePortWithWarning) {
  docker::Container c = Web();
  c.ports["80/tcp"] = {};
  c.ip_address = "";
  c.networks = {{"bridge", "", ""}};
  DeriveConfig config = Config();
  config.internal = true;
  DeriveResult r = DeriveServices(c, config);
  EXPECT_THAT(r.services, IsEmpty());
  EXPECT_THAT(r.warnings, ElementsAre(HasSubstr("no IP address")));
  EXPECT_THAT(r.skipped_reason, HasSubstr("invalid"));
}

// --- Network choice (SERVICE_NETWORK, SERVICE_<port>_NETWORK, -network) ------------------------

// Default bridge, also on appnet and backnet (IPv6 only there); 80 and 81 published.
docker::Container OnThreeNetworks() {
  docker::Container c = Web();
  c.exposed_ports = {"80/tcp", "81/tcp"};
  c.ports["81/tcp"] = {{"0.0.0.0", "8081"}};
  c.networks = {
      {"appnet", "172.19.0.2", ""}, {"backnet", "", "fd00::5"}, {"bridge", "172.17.0.2", ""}};
  return c;
}

DeriveConfig Internal() {
  DeriveConfig config = Config();
  config.internal = true;
  return config;
}

TEST(DeriveNetworkTest, EnvLabelPortKeyAndFlagInThatOrder) {
  docker::Container c = OnThreeNetworks();
  DeriveConfig config = Internal();
  config.network = "bridge";
  DeriveResult r = DeriveServices(c, config);
  ASSERT_THAT(r.services, SizeIs(2));
  EXPECT_EQ(r.services[0].ip, "172.17.0.2");  // -network
  EXPECT_EQ(r.services[1].ip, "172.17.0.2");
  c.env = {"SERVICE_NETWORK=appnet"};
  r = DeriveServices(c, config);
  ASSERT_THAT(r.services, SizeIs(2));
  EXPECT_EQ(r.services[0].ip, "172.19.0.2");  // SERVICE_NETWORK beats -network
  EXPECT_EQ(r.services[1].ip, "172.19.0.2");
  c.labels = {{"SERVICE_81_NETWORK", "backnet"}};
  r = DeriveServices(c, config);
  ASSERT_THAT(r.services, SizeIs(2));
  EXPECT_EQ(r.services[0].ip, "172.19.0.2");
  EXPECT_EQ(r.services[1].ip, "fd00::5");  // The port's key; an IPv6-only network's address.
  c.env.push_back("SERVICE_80_NETWORK=bridge");
  c.labels.emplace_back("SERVICE_NETWORK", "backnet");  // Labels win over env, as for any key.
  r = DeriveServices(c, config);
  ASSERT_THAT(r.services, SizeIs(2));
  EXPECT_EQ(r.services[0].ip, "172.17.0.2");
  EXPECT_EQ(r.services[1].ip, "fd00::5");
  EXPECT_THAT(r.warnings, IsEmpty());
  // A control key, not an attribute (Consul Meta, ZooKeeper Attrs).
  for (const Service& s : r.services) EXPECT_THAT(s.attrs, IsEmpty());
}

TEST(DeriveNetworkTest, NotAttachedSkipsWithOneWarningForAllPorts) {
  docker::Container c = OnThreeNetworks();
  c.env = {"SERVICE_NETWORK=frontnet"};
  DeriveResult r = DeriveServices(c, Internal());
  EXPECT_THAT(r.services, IsEmpty());
  EXPECT_THAT(r.warnings,
              ElementsAre("container 0123456789ab (web): not attached to network \"frontnet\" "
                          "(SERVICE_NETWORK); its services on that network are skipped"));
  EXPECT_EQ(r.skipped_reason, "no service: 2 not attached to the chosen network");
  // An endpoint without any address (a stopped container's) is no address either.
  c.env = {"SERVICE_NETWORK=appnet"};
  c.networks[0].ip_address.clear();
  r = DeriveServices(c, Internal());
  EXPECT_THAT(r.services, IsEmpty());
  EXPECT_THAT(r.warnings, ElementsAre(HasSubstr("not attached to network \"appnet\"")));
  // Only the port whose network is missing goes.
  c.env = {"SERVICE_NETWORK=bridge", "SERVICE_81_NETWORK=frontnet"};
  r = DeriveServices(c, Internal());
  EXPECT_THAT(Names(r), ElementsAre("web-80"));
  EXPECT_THAT(r.warnings, ElementsAre(HasSubstr("\"frontnet\" (SERVICE_81_NETWORK)")));
}

TEST(DeriveNetworkTest, OnlyWhereTheContainersOwnAddressIsRegistered) {
  docker::Container c = OnThreeNetworks();
  c.env = {"SERVICE_NETWORK=frontnet"};  // Not attached: matters only where it is used.
  // Default bridge, published: the host's address.
  DeriveResult r = DeriveServices(c, Config());
  ASSERT_THAT(r.services, SizeIs(2));
  EXPECT_EQ(r.services[0].ip, "10.0.0.5");
  EXPECT_THAT(r.warnings, IsEmpty());
  // -ip, and the -useIpFromLabel label, beat the container's address even with -internal.
  DeriveConfig config = Internal();
  config.use_ip_from_label = "ip";
  c.labels = {{"ip", "192.0.2.7"}};
  r = DeriveServices(c, config);
  ASSERT_THAT(r.services, SizeIs(2));
  EXPECT_EQ(r.services[0].ip, "192.0.2.7");
  config = Config();
  config.host_ip = "192.0.2.1";
  c.network_mode = "appnet";
  EXPECT_EQ(DeriveServices(c, config).services.at(0).ip, "192.0.2.1");
  // --net=host registers the host.
  c.network_mode = "host";
  c.networks = {{"host", "", ""}};
  r = DeriveServices(c, Internal());
  ASSERT_THAT(r.services, SizeIs(2));
  EXPECT_EQ(r.services[0].ip, "10.0.0.5");
  // A user-defined NetworkMode without -internal: the chosen network replaces NetworkMode's.
  c = OnThreeNetworks();
  c.network_mode = "appnet";
  c.env = {"SERVICE_NETWORK=bridge"};
  r = DeriveServices(c, Config());
  ASSERT_THAT(r.services, SizeIs(2));
  EXPECT_EQ(r.services[0].ip, "172.17.0.2");
  EXPECT_EQ(r.services[0].port, 8080);
  c.env = {"SERVICE_NETWORK=frontnet"};
  r = DeriveServices(c, Config());
  EXPECT_THAT(r.services, IsEmpty());  // Never NetworkMode's address instead.
  EXPECT_THAT(r.warnings, ElementsAre(HasSubstr("not attached to network \"frontnet\"")));
}

TEST(DeriveNetworkTest, ContainerModeAsksForTheOtherContainersAddressOnIt) {
  docker::Container c = Web();
  c.network_mode = "container:db";
  c.ports.clear();
  c.ip_address.clear();
  c.networks.clear();
  c.env = {"SERVICE_NETWORK=backnet"};
  std::vector<std::string> asked;
  auto lookup = [&](absl::string_view ref, absl::string_view network) {
    asked.push_back(absl::StrCat(ref, "@", network));
    return network == "backnet" ? std::string("172.20.0.9") : std::string();
  };
  EXPECT_EQ(Only(DeriveServices(c, Config(), lookup)).ip, "172.20.0.9");
  c.env = {"SERVICE_NETWORK=frontnet"};
  DeriveResult r = DeriveServices(c, Config(), lookup);
  EXPECT_THAT(r.services, IsEmpty());
  EXPECT_THAT(r.warnings, ElementsAre(HasSubstr("not attached to network \"frontnet\"")));
  EXPECT_THAT(asked, ElementsAre("db@backnet", "db@frontnet"));
}

TEST(DeriveNetworkTest, InvalidNamesSkipTheServiceNamingTheField) {
  docker::Container c = OnThreeNetworks();
  c.labels = {{"SERVICE_80_NETWORK", "app\nnet"}, {"SERVICE_NETWORK", " "}};
  DeriveResult r = DeriveServices(c, Internal());
  EXPECT_THAT(r.services, IsEmpty());
  EXPECT_THAT(
      r.warnings,
      UnorderedElementsAre(
          AllOf(HasSubstr("container 0123456789ab (web): SERVICE_80_NETWORK \"app\\x0anet\""),
                HasSubstr("not a network name (contains the control character U+000A)"),
                HasSubstr("port 80/tcp skipped")),
          AllOf(HasSubstr("SERVICE_NETWORK \" \""), HasSubstr("empty or only whitespace"),
                HasSubstr("port 81/tcp skipped"))));
  EXPECT_THAT(r.skipped_reason, HasSubstr("2 invalid"));
  // Not valid UTF-8, and too long: refused too; the value in the warning is cut.
  c.labels = {{"SERVICE_NETWORK", std::string(2000, 'n')}};
  r = DeriveServices(c, Internal());
  EXPECT_THAT(r.services, IsEmpty());
  EXPECT_THAT(r.warnings,
              Contains(AllOf(HasSubstr("(2000 bytes)"), HasSubstr("more than the limit"))));
  c.labels = {{"SERVICE_NETWORK", "app\xffnet"}};
  EXPECT_THAT(DeriveServices(c, Internal()).warnings, Contains(HasSubstr("not valid UTF-8")));
  // A name Docker accepts, oddities included, is looked up as it is.
  c.labels = {{"SERVICE_NETWORK", "we ird/x:y"}};
  c.networks.push_back({"we ird/x:y", "10.9.9.9", ""});
  EXPECT_EQ(DeriveServices(c, Internal()).services.at(0).ip, "10.9.9.9");
}

// --- Metadata ----------------------------------------------------------------------------------

TEST(DeriveMetadataTest, LabelsWinOverEnv) {
  docker::Container c = Web();
  c.env = {"SERVICE_NAME=from-env", "SERVICE_REGION=eu"};
  c.labels = {{"SERVICE_NAME", "from-label"}};
  Service s = Only(DeriveServices(c, Config()));
  EXPECT_EQ(s.name, "from-label");
  EXPECT_THAT(s.attrs, ElementsAre(Pair("region", "eu")));
}

TEST(DeriveMetadataTest, PortSpecificBeatsGenericWhateverTheOrder) {
  docker::Container c = Web();
  c.env = {"SERVICE_80_NAME=specific"};
  c.labels = {{"SERVICE_NAME", "generic"}};  // Labels come later and usually win.
  EXPECT_EQ(Only(DeriveServices(c, Config())).name, "specific");
  c.env = {"SERVICE_80_NAME=specific", "SERVICE_NAME=generic"};
  c.labels.clear();
  EXPECT_EQ(Only(DeriveServices(c, Config())).name, "specific");
}

TEST(DeriveMetadataTest, PortSpecificKeysApplyToUdpToo) {
  docker::Container c = Web();
  c.exposed_ports = {"53/udp"};
  c.ports.clear();
  c.ports["53/udp"] = {{"0.0.0.0", "53"}};
  c.env = {"SERVICE_53_NAME=dns", "SERVICE_80_NAME=other"};
  EXPECT_EQ(Only(DeriveServices(c, Config())).name, "dns");
}

TEST(DeriveMetadataTest, KeysOfOtherPortsDoNotApply) {
  docker::Container c = Web();
  c.env = {"SERVICE_81_NAME=other", "SERVICE_81_REGION=x"};
  Service s = Only(DeriveServices(c, Config()));
  EXPECT_EQ(s.name, "web");
  EXPECT_THAT(s.attrs, IsEmpty());
}

TEST(DeriveMetadataTest, OnlyServicePrefixCountsAndRestIsLowerCased) {
  docker::Container c = Web();
  c.env = {"SERVICE_Check_HTTP=/h", "service_name=no", "OTHER=1", "SERVICE_NOVALUE",
           "SERVICE_EMPTY="};
  Service s = Only(DeriveServices(c, Config()));
  EXPECT_EQ(s.name, "web");
  EXPECT_THAT(s.attrs, ElementsAre(Pair("check_http", "/h"), Pair("empty", "")));
}

TEST(DeriveMetadataTest, AttrsAreSortedAndExcludeReservedKeys) {
  docker::Container c = Web();
  c.env = {"SERVICE_ZONE=z",       "SERVICE_NAME=n",  "SERVICE_ID=i",       "SERVICE_TAGS=t",
           "SERVICE_IGNORE=false", "SERVICE_ALPHA=a", "SERVICE_80_MIDDLE=m"};
  Service s = Only(DeriveServices(c, Config()));
  EXPECT_THAT(s.attrs, ElementsAre(Pair("alpha", "a"), Pair("middle", "m"), Pair("zone", "z")));
  EXPECT_EQ(s.meta, s.attrs);
}

// --- Name, group, ID ---------------------------------------------------------------------------

TEST(DeriveNameTest, ImageBaseName) {
  using derive_internal::ImageBaseName;
  EXPECT_EQ(ImageBaseName("gliderlabs/foo:1.2"), "foo");
  EXPECT_EQ(ImageBaseName("reg:5000/a/b:t"), "b");
  EXPECT_EQ(ImageBaseName("reg:5000/a/b"), "b");
  EXPECT_EQ(ImageBaseName("redis"), "redis");
  EXPECT_EQ(ImageBaseName("redis:7"), "redis");
  EXPECT_EQ(ImageBaseName("library/redis@sha256:0123abcd"), "redis");
  EXPECT_EQ(ImageBaseName("reg:5000/a/b:t@sha256:0123abcd"), "b");
  EXPECT_EQ(ImageBaseName("a/b/"), "b");
  EXPECT_EQ(ImageBaseName(""), "");
  EXPECT_EQ(ImageBaseName("@sha256:00"), "");
}

TEST(DeriveNameTest, NameKeyBeatsImage) {
  docker::Container c = Web();
  c.env = {"SERVICE_NAME=api"};
  EXPECT_EQ(Only(DeriveServices(c, Config())).name, "api");
}

TEST(DeriveNameTest, EmptyNameValueFallsBackToImage) {
  docker::Container c = Web();
  c.env = {"SERVICE_NAME="};
  EXPECT_EQ(Only(DeriveServices(c, Config())).name, "web");
}

TEST(DeriveNameTest, ExplicitSkipsPortsWithoutName) {
  docker::Container c = Web();
  c.exposed_ports = {"80/tcp", "443/tcp"};
  c.ports["443/tcp"] = {{"0.0.0.0", "8443"}};
  c.env = {"SERVICE_443_NAME=secure"};
  DeriveConfig config = Config();
  config.explicit_only = true;
  DeriveResult r = DeriveServices(c, config);
  EXPECT_THAT(Names(r), ElementsAre("secure"));
  c.env.clear();
  r = DeriveServices(c, config);
  EXPECT_THAT(r.services, IsEmpty());
  EXPECT_THAT(r.skipped_reason, HasSubstr("-explicit"));
}

TEST(DeriveNameTest, GroupSuffixOnlyForNamesNotFromPortKeys) {
  docker::Container c = Web();
  c.exposed_ports = {"80/tcp", "443/tcp"};
  c.ports["443/tcp"] = {{"0.0.0.0", "8443"}};
  c.env = {"SERVICE_NAME=app", "SERVICE_443_NAME=secure"};
  EXPECT_THAT(Names(DeriveServices(c, Config())), ElementsAre("app-80", "secure"));
}

TEST(DeriveNameTest, NoGroupSuffixForASingleKeptPort) {
  docker::Container c = Web();
  c.exposed_ports = {"80/tcp", "443/tcp"};
  c.ports["443/tcp"] = {};  // Exposed only ("443/tcp": null): not kept.
  c.env = {"SERVICE_NAME=app"};
  EXPECT_THAT(Names(DeriveServices(c, Config())), ElementsAre("app"));
}

TEST(DeriveNameTest, GroupCountsPortsBeforeIgnore) {
  docker::Container c = Web();
  c.exposed_ports = {"80/tcp", "443/tcp"};
  c.ports["443/tcp"] = {{"0.0.0.0", "8443"}};
  c.env = {"SERVICE_443_IGNORE=true"};
  EXPECT_THAT(Names(DeriveServices(c, Config())), ElementsAre("web-80"));
}

TEST(DeriveIdTest, IdKeysOverrideDefault) {
  docker::Container c = Web();
  c.env = {"SERVICE_ID=custom"};
  EXPECT_EQ(Only(DeriveServices(c, Config())).id, "custom");
  c.env = {"SERVICE_ID=custom", "SERVICE_80_ID=custom-80"};
  EXPECT_EQ(Only(DeriveServices(c, Config())).id, "custom-80");
}

TEST(DeriveIdTest, DuplicateIdIsDroppedWithWarning) {
  docker::Container c = Web();
  c.exposed_ports = {"80/tcp", "443/tcp"};
  c.ports["443/tcp"] = {{"0.0.0.0", "8443"}};
  c.env = {"SERVICE_ID=same"};
  DeriveResult r = DeriveServices(c, Config());
  ASSERT_THAT(r.services, SizeIs(1));
  EXPECT_EQ(r.services[0].exposed_port, 80);
  EXPECT_THAT(r.warnings, ElementsAre(AllOf(HasSubstr("\"same\""), HasSubstr("443/tcp"))));
}

TEST(DeriveIdTest, MissingContainerNameUsesShortId) {
  docker::Container c = Web();
  c.name = "";
  EXPECT_EQ(Only(DeriveServices(c, Config())).id, "dockerhost:0123456789ab:80");
}

// --- Tags and ignore ---------------------------------------------------------------------------

TEST(DeriveTagsTest, OrderEscapesTemplateExtraAndUdp) {
  docker::Container c = Web();
  c.exposed_ports = {"53/udp"};
  c.ports.clear();
  c.ports["53/udp"] = {{"0.0.0.0", "53"}};
  c.env = {R"(SERVICE_TAGS=z,a\,b,,m)"};
  c.raw_json = R"({"Config":{"Hostname":"c0ffee","Labels":{"team":"core"}}})";
  DeriveConfig config = Config();
  config.tags_template = R"(h-{{.Config.Hostname}},{{index .Config.Labels "team"}},extra)";
  EXPECT_THAT(Only(DeriveServices(c, config)).tags,
              ElementsAre("z", "a,b", "m", "h-c0ffee", "core", "extra", "udp"));
}

TEST(DeriveTagsTest, PortSpecificTagsReplaceGeneric) {
  docker::Container c = Web();
  c.env = {"SERVICE_TAGS=a", "SERVICE_80_TAGS=b,c"};
  EXPECT_THAT(Only(DeriveServices(c, Config())).tags, ElementsAre("b", "c"));
}

TEST(DeriveTagsTest, InvalidTemplateWarnsAndIsNotApplied) {
  DeriveConfig config = Config();
  config.tags_template = "{{.Name | upper}}";
  DeriveResult r = DeriveServices(Web(), config);
  EXPECT_THAT(Only(r).tags, IsEmpty());
  EXPECT_THAT(r.warnings, ElementsAre(HasSubstr("-tags")));
}

TEST(DeriveIgnoreTest, TruthyValuesIgnore) {
  for (const char* value : {"true", "1", "yes", "anything"}) {
    docker::Container c = Web();
    c.env = {std::string("SERVICE_IGNORE=") + value};
    DeriveResult r = DeriveServices(c, Config());
    EXPECT_THAT(r.services, IsEmpty()) << value;
    EXPECT_THAT(r.skipped_reason, HasSubstr("ignored")) << value;
  }
}

TEST(DeriveIgnoreTest, FalseZeroNoAndEmptyDoNotIgnore) {
  for (const char* value : {"false", "FALSE", "0", "no", "No", ""}) {
    docker::Container c = Web();
    c.env = {std::string("SERVICE_IGNORE=") + value};
    EXPECT_THAT(DeriveServices(c, Config()).services, SizeIs(1)) << value;
  }
}

TEST(DeriveIgnoreTest, PortSpecificIgnore) {
  docker::Container c = Web();
  c.exposed_ports = {"80/tcp", "443/tcp"};
  c.ports["443/tcp"] = {{"0.0.0.0", "8443"}};
  c.labels = {{"SERVICE_80_IGNORE", "yes"}};
  DeriveResult r = DeriveServices(c, Config());
  ASSERT_THAT(r.services, SizeIs(1));
  EXPECT_EQ(r.services[0].exposed_port, 443);
  // A port-specific "false" un-ignores one port of an ignored container.
  c.labels = {{"SERVICE_443_IGNORE", "false"}, {"SERVICE_IGNORE", "true"}};
  r = DeriveServices(c, Config());
  ASSERT_THAT(r.services, SizeIs(1));
  EXPECT_EQ(r.services[0].exposed_port, 443);
}

// --- Consul Meta -------------------------------------------------------------------------------

TEST(DeriveMetaTest, FiltersWhatConsulRejectsWithWarnings) {
  docker::Container c = Web();
  c.env = {"SERVICE_CHECK_TCP=true", "SERVICE_GOOD-KEY_1=v",
           "SERVICE_BAD.KEY=v",      "SERVICE_" + std::string(65, 'K') + "=v",
           "SERVICE_CONSUL-X=v",     "SERVICE_BIG=" + std::string(513, 'v'),
           "SERVICE_ÜMLAUT=v"};
  DeriveResult r = DeriveServices(c, Config());
  Service s = Only(r);
  EXPECT_THAT(s.attrs, SizeIs(7));
  EXPECT_THAT(s.meta, ElementsAre(Pair("good-key_1", "v")));
  EXPECT_THAT(r.warnings, SizeIs(5));
  EXPECT_THAT(r.warnings, Contains(AllOf(HasSubstr("0123456789ab (web)"), HasSubstr("bad.key"))));
}

// 63: Consul takes 64, and the Consul adapter adds "registrator-check" for services with a check.
TEST(DeriveMetaTest, AtMost63Keys) {
  docker::Container c = Web();
  for (int i = 0; i < 70; ++i) c.env.push_back("SERVICE_K" + std::to_string(100 + i) + "=v");
  DeriveResult r = DeriveServices(c, Config());
  Service s = Only(r);
  EXPECT_THAT(s.attrs, SizeIs(70));
  EXPECT_THAT(s.meta, SizeIs(63));
  EXPECT_EQ(s.meta.back().first, "k162");
  EXPECT_THAT(r.warnings, SizeIs(7));
}

// --- Checks ------------------------------------------------------------------------------------

Service WithEnv(std::vector<std::string> env, DeriveResult* result = nullptr) {
  docker::Container c = Web();
  c.ports["80/tcp"] = {{"127.0.0.1", "8080"}};
  c.env = std::move(env);
  DeriveResult r = DeriveServices(c, Config());
  if (result != nullptr) *result = r;
  return Only(r);
}

TEST(DeriveCheckTest, Http) {
  Service s = WithEnv(
      {"SERVICE_CHECK_HTTP=/health", "SERVICE_CHECK_HTTP_METHOD=HEAD", "SERVICE_CHECK_TIMEOUT=2s"});
  ASSERT_TRUE(s.has_check);
  ServiceCheck want;
  want.http = "http://127.0.0.1:8080/health";
  want.method = "HEAD";
  want.interval = "10s";
  want.timeout = "2s";
  EXPECT_EQ(s.check, want);
  EXPECT_THAT(s.meta, IsEmpty());
}

TEST(DeriveCheckTest, Https) {
  Service s = WithEnv({"SERVICE_CHECK_HTTPS=/h", "SERVICE_CHECK_HTTPS_METHOD=POST",
                       "SERVICE_CHECK_HTTP_METHOD=HEAD", "SERVICE_CHECK_INTERVAL=1m30s"});
  EXPECT_EQ(s.check.http, "https://127.0.0.1:8080/h");
  EXPECT_EQ(s.check.method, "POST");
  EXPECT_EQ(s.check.interval, "1m30s");
}

TEST(DeriveCheckTest, HttpBeatsEverythingElse) {
  Service s = WithEnv({"SERVICE_CHECK_TCP=true", "SERVICE_CHECK_TTL=30s",
                       "SERVICE_CHECK_SCRIPT=true", "SERVICE_CHECK_HTTP=/"});
  EXPECT_EQ(s.check.http, "http://127.0.0.1:8080/");
  EXPECT_EQ(s.check.tcp, "");
  EXPECT_EQ(s.check.ttl, "");
  EXPECT_THAT(s.check.script_args, IsEmpty());
}

TEST(DeriveCheckTest, ScriptSplitWithSubstitution) {
  Service s = WithEnv({R"(SERVICE_CHECK_SCRIPT=nc -z "$SERVICE_IP" ${SERVICE_PORT} '$SERVICE_IP')",
                       "SERVICE_CHECK_TTL=30s"});
  EXPECT_THAT(s.check.script_args, ElementsAre("nc", "-z", "127.0.0.1", "8080", "127.0.0.1"));
  EXPECT_EQ(s.check.interval, "10s");
  EXPECT_EQ(s.check.ttl, "");
}

TEST(DeriveCheckTest, UnterminatedScriptDropsTheCheckWithWarning) {
  DeriveResult r;
  Service s = WithEnv({"SERVICE_CHECK_SCRIPT=echo 'oops"}, &r);
  EXPECT_FALSE(s.has_check);
  EXPECT_THAT(r.warnings, ElementsAre(AllOf(HasSubstr("check_script"), HasSubstr("echo 'oops"))));
}

TEST(DeriveCheckTest, TtlHasNoInterval) {
  Service s = WithEnv({"SERVICE_CHECK_TTL=30s", "SERVICE_CHECK_TCP=true",
                       "SERVICE_CHECK_INTERVAL=5s", "SERVICE_CHECK_TIMEOUT=1s"});
  ServiceCheck want;
  want.ttl = "30s";
  EXPECT_EQ(s.check, want);
}

TEST(DeriveCheckTest, InvalidTtlDropsTheCheck) {
  DeriveResult r;
  Service s = WithEnv({"SERVICE_CHECK_TTL=30"}, &r);
  EXPECT_FALSE(s.has_check);
  EXPECT_THAT(r.warnings, ElementsAre(HasSubstr("check_ttl")));
}

TEST(DeriveCheckTest, Tcp) {
  Service s = WithEnv({"SERVICE_CHECK_TCP=true", "SERVICE_CHECK_GRPC=true"});
  EXPECT_EQ(s.check.tcp, "127.0.0.1:8080");
  EXPECT_EQ(s.check.grpc, "");
  EXPECT_EQ(s.check.interval, "10s");
}

TEST(DeriveCheckTest, TcpFalseMeansNoCheck) {
  EXPECT_FALSE(WithEnv({"SERVICE_CHECK_TCP=false"}).has_check);
  EXPECT_EQ(WithEnv({"SERVICE_CHECK_TCP=no", "SERVICE_CHECK_GRPC=1"}).check.grpc, "127.0.0.1:8080");
}

TEST(DeriveCheckTest, GrpcTlsFlags) {
  Service s = WithEnv({"SERVICE_CHECK_GRPC=true"});
  EXPECT_EQ(s.check.grpc, "127.0.0.1:8080");
  EXPECT_FALSE(s.check.grpc_use_tls);
  s = WithEnv({"SERVICE_CHECK_GRPC=true", "SERVICE_CHECK_TLS_SKIP_VERIFY=true"});
  EXPECT_FALSE(s.check.tls_skip_verify);  // Only meaningful with TLS.
  s = WithEnv({"SERVICE_CHECK_GRPC=true", "SERVICE_CHECK_GRPC_USE_TLS=true",
               "SERVICE_CHECK_TLS_SKIP_VERIFY=true"});
  EXPECT_TRUE(s.check.grpc_use_tls);
  EXPECT_TRUE(s.check.tls_skip_verify);
  s = WithEnv({"SERVICE_CHECK_GRPC=true", "SERVICE_CHECK_GRPC_USE_TLS=false"});
  EXPECT_FALSE(s.check.grpc_use_tls);
}

TEST(DeriveCheckTest, CommonFields) {
  Service s = WithEnv({"SERVICE_CHECK_TCP=1", "SERVICE_CHECK_INITIAL_STATUS=passing",
                       "SERVICE_CHECK_DEREGISTER_AFTER=90m", "SERVICE_CHECK_TIMEOUT=500ms"});
  EXPECT_EQ(s.check.initial_status, "passing");
  EXPECT_EQ(s.check.deregister_after, "90m");
  EXPECT_EQ(s.check.timeout, "500ms");
}

TEST(DeriveCheckTest, InvalidDurationsAreWarnedAndDropped) {
  DeriveResult r;
  Service s = WithEnv(
      {"SERVICE_CHECK_HTTP=/", "SERVICE_CHECK_INTERVAL=10 seconds", "SERVICE_CHECK_TIMEOUT=-1s",
       "SERVICE_CHECK_DEREGISTER_AFTER=soon", "SERVICE_CHECK_INITIAL_STATUS=great"},
      &r);
  ASSERT_TRUE(s.has_check);
  EXPECT_EQ(s.check.interval, "10s");
  EXPECT_EQ(s.check.timeout, "");
  EXPECT_EQ(s.check.deregister_after, "");
  EXPECT_EQ(s.check.initial_status, "");
  EXPECT_THAT(r.warnings, UnorderedElementsAre(
                              AllOf(HasSubstr("check_deregister_after"), HasSubstr("\"soon\"")),
                              HasSubstr("check_initial_status"), HasSubstr("check_interval"),
                              HasSubstr("check_timeout")));
}

TEST(DeriveCheckTest, Ipv6AddressesAreBracketed) {
  docker::Container c = Web();
  c.ports["80/tcp"] = {{"::1", "8085"}};
  c.env = {"SERVICE_CHECK_HTTP=/h"};
  EXPECT_EQ(Only(DeriveServices(c, Config())).check.http, "http://[::1]:8085/h");
  c.env = {"SERVICE_CHECK_TCP=true"};
  EXPECT_EQ(Only(DeriveServices(c, Config())).check.tcp, "[::1]:8085");
}

TEST(DeriveCheckTest, PortSpecificCheck) {
  Service s = WithEnv({"SERVICE_CHECK_HTTP=/generic", "SERVICE_80_CHECK_HTTP=/specific"});
  EXPECT_EQ(s.check.http, "http://127.0.0.1:8080/specific");
}

TEST(DurationTest, GoSyntax) {
  using derive_internal::IsValidGoDuration;
  for (const char* ok : {"10s", "1m30s", "500ms", "1.5h", "0", "0s", ".5s", "5.s",
                         "1h2m3s4ms5us6ns", "3\xC2\xB5s", "3\xCE\xBCs", "+5s", "2562047h"}) {
    EXPECT_TRUE(IsValidGoDuration(ok)) << ok;
  }
  for (const char* bad : {"", "10", "s", "10 s", "1.2.3s", ".s", "-1s", "10sec", "1d", "5S", "abc",
                          "9999999999h", "1e3s", "+", "-", "10s "}) {
    EXPECT_FALSE(IsValidGoDuration(bad)) << bad;
  }
}

// --- Bad input ---------------------------------------------------------------------------------

TEST(DeriveBadInputTest, GarbagePortKeysAreWarnedOthersStillDerived) {
  docker::Container c = Web();
  c.exposed_ports = {"80/tcp", "abc/tcp", "70000/tcp",
                     "0/tcp",  "-1/tcp",  "81/foo",
                     "",       "/tcp",    "99999999999999999999999/udp"};
  c.ports["x/y"] = {{"0.0.0.0", "1"}};
  DeriveResult r = DeriveServices(c, Config());
  Service s = Only(r);
  EXPECT_EQ(s.id, "dockerhost:web:80");
  EXPECT_EQ(s.name, "web");  // Bad ports are not kept, so this is no group.
  EXPECT_THAT(r.warnings, SizeIs(9));
  EXPECT_THAT(r.warnings, Contains(AllOf(HasSubstr("0123456789ab (web)"),
                                         HasSubstr("Config.ExposedPorts"), HasSubstr("abc/tcp"))));
  EXPECT_THAT(r.warnings, Contains(AllOf(HasSubstr("NetworkSettings.Ports"), HasSubstr("x/y"))));
}

TEST(DeriveBadInputTest, BadHostPortSkipsTheBinding) {
  docker::Container c = Web();
  c.exposed_ports = {"80/tcp", "81/tcp"};
  c.ports["80/tcp"] = {{"0.0.0.0", "http"}};
  c.ports["81/tcp"] = {{"0.0.0.0", "99999"}, {"0.0.0.0", "8081"}};
  DeriveResult r = DeriveServices(c, Config());
  Service s = Only(r);
  EXPECT_EQ(s.exposed_port, 81);
  EXPECT_EQ(s.port, 8081);
  EXPECT_THAT(r.warnings, ElementsAre(HasSubstr("\"http\""), HasSubstr("\"99999\"")));
}

TEST(DeriveBadInputTest, BadPortKeysInMetadata) {
  docker::Container c = Web();
  c.env = {"SERVICE_-1_NAME=neg", "SERVICE_99999999999999999999_NAME=huge",
           "SERVICE_0_NAME=zero", "SERVICE_80_=empty",
           "SERVICE_=x",          "SERVICE_80X_NAME=notport"};
  DeriveResult r = DeriveServices(c, Config());
  Service s = Only(r);
  EXPECT_EQ(s.name, "web");
  EXPECT_THAT(s.attrs, ElementsAre(Pair("80x_name", "notport")));
  EXPECT_THAT(r.warnings, SizeIs(5));
  EXPECT_THAT(r.warnings, Contains(AllOf(HasSubstr("Config.Env"), HasSubstr("SERVICE_-1_NAME"))));
}

TEST(DeriveBadInputTest, EmptyImageWithoutNameSkipsWithWarning) {
  docker::Container c = Web();
  c.image = "";
  DeriveResult r = DeriveServices(c, Config());
  EXPECT_THAT(r.services, IsEmpty());
  EXPECT_THAT(r.warnings, ElementsAre(HasSubstr("Config.Image")));
  EXPECT_FALSE(r.skipped_reason.empty());
  c.env = {"SERVICE_NAME=named"};
  EXPECT_EQ(Only(DeriveServices(c, Config())).name, "named");
}

TEST(DeriveBadInputTest, EmptyContainer) {
  DeriveResult r = DeriveServices(docker::Container{}, DeriveConfig{});
  EXPECT_THAT(r.services, IsEmpty());
  EXPECT_FALSE(r.skipped_reason.empty());
}

TEST(DeriveBadInputTest, UnicodeAndSpacesPassThrough) {
  docker::Container c = Web();
  c.name = "wéb x";
  c.env = {"SERVICE_NAME=sérvice name", "SERVICE_TAGS= a ,ü", "SERVICE_NOTE=日本"};
  DeriveResult r = DeriveServices(c, Config());
  Service s = Only(r);
  EXPECT_EQ(s.name, "sérvice name");
  EXPECT_EQ(s.id, "dockerhost:wéb x:80");
  EXPECT_THAT(s.tags, ElementsAre(" a ", "ü"));
  EXPECT_THAT(s.meta, ElementsAre(Pair("note", "日本")));
}

TEST(DeriveBadInputTest, WarningsAreNotRepeatedPerPort) {
  docker::Container c = Web();
  c.exposed_ports = {"80/tcp", "81/tcp"};
  c.ports["81/tcp"] = {{"0.0.0.0", "8081"}};
  c.network_mode = "container:x";
  DeriveResult r = DeriveServices(c, Config());
  EXPECT_THAT(r.services, SizeIs(2));
  EXPECT_THAT(r.warnings, SizeIs(1));
}

// --- Hostile containers: nothing a label says reaches outside its own entry ---------------------

std::vector<std::string> Ids(const DeriveResult& r) {
  std::vector<std::string> ids;
  for (const Service& s : r.services) ids.push_back(s.id);
  return ids;
}

TEST(DeriveHostileTest, PathInjectionInTheNameSkipsOnlyThatService) {
  docker::Container c = Web();
  c.exposed_ports = {"80/tcp", "81/tcp"};
  c.ports["81/tcp"] = {{"0.0.0.0", "8081"}};
  c.labels = {{"SERVICE_80_NAME", "../../agent/service/deregister/victim"},
              {"SERVICE_81_NAME", "fine"}};
  DeriveResult r = DeriveServices(c, Config());
  EXPECT_THAT(Names(r), ElementsAre("fine"));
  EXPECT_THAT(r.warnings, Contains(AllOf(HasSubstr("container 0123456789ab (web)"),
                                         HasSubstr("port 80/tcp"), HasSubstr("service name"),
                                         HasSubstr("invalid name"), HasSubstr("service skipped"))));
}

TEST(DeriveHostileTest, DotSegmentsAndSlashesInTheIdAreRefused) {
  for (const char* id : {"..", ".", "../../members/abc", "a/b", "x/../y"}) {
    docker::Container c = Web();
    c.labels = {{"SERVICE_ID", id}};
    DeriveResult r = DeriveServices(c, Config());
    EXPECT_THAT(r.services, IsEmpty()) << id;
    EXPECT_THAT(r.warnings, Contains(AllOf(HasSubstr("invalid ID"), HasSubstr("(web)")))) << id;
    EXPECT_THAT(r.skipped_reason, HasSubstr("1 invalid")) << id;
  }
}

TEST(DeriveHostileTest, ControlCharactersNulBadUtf8AndLongKeysAreRefused) {
  for (const std::string& name :
       {std::string("a\nb"), std::string("a\0b", 3), std::string("a\x7f"), std::string("\xc0\xaf"),
        std::string("a\xc2\x85"), std::string(513, 'n')}) {
    docker::Container c = Web();
    c.labels = {{"SERVICE_NAME", name}};
    DeriveResult r = DeriveServices(c, Config());
    EXPECT_THAT(r.services, IsEmpty()) << name;
    EXPECT_THAT(r.warnings, Contains(HasSubstr("invalid name"))) << name;
  }
}

TEST(DeriveHostileTest, UpstreamIdsWithDotsUnderscoresAndDashesStayValid) {
  docker::Container c = Web();
  c.name = "/my.app_1-x";
  c.exposed_ports = {"53/udp"};
  c.ports = {{"53/udp", {{"0.0.0.0", "5353"}}}};
  DeriveResult r = DeriveServices(c, Config());
  EXPECT_THAT(Ids(r), ElementsAre("dockerhost:my.app_1-x:53:udp"));
  EXPECT_THAT(r.warnings, IsEmpty());
  c.labels = {{"SERVICE_NAME", "a..b"}, {"SERVICE_ID", "...:x"}};
  EXPECT_THAT(Ids(DeriveServices(c, Config())), ElementsAre("...:x"));
}

TEST(DeriveHostileTest, TenThousandServiceLabelsAreBoundedWithOneWarning) {
  docker::Container c = Web();
  for (int i = 0; i < 10000; ++i) {
    c.labels.emplace_back("SERVICE_K" + std::to_string(i), "v");
  }
  DeriveResult r = DeriveServices(c, Config());
  Service s = Only(r);
  EXPECT_EQ(s.attrs.size(), 128u);
  // One line for the keys beyond the limit, then Consul Meta's per-key lines up to the cap.
  ASSERT_THAT(r.warnings, SizeIs(33));
  EXPECT_THAT(r.warnings.front(), HasSubstr("9872 SERVICE_* keys beyond the limit of 128"));
  EXPECT_THAT(r.warnings.back(), HasSubstr("34 more warnings not shown"));
}

TEST(DeriveHostileTest, MegabyteLabelAndHugeCheckScriptAreDroppedWithAWarning) {
  docker::Container c = Web();
  c.labels = {{"SERVICE_BLOB", std::string(1 << 20, 'x')},
              {"SERVICE_CHECK_SCRIPT", std::string(100 * 1024, 'y')},
              {"SERVICE_NAME", "web"}};
  DeriveResult r = DeriveServices(c, Config());
  Service s = Only(r);
  EXPECT_EQ(s.name, "web");
  EXPECT_THAT(s.attrs, IsEmpty());
  EXPECT_FALSE(s.has_check);
  ASSERT_THAT(r.warnings, SizeIs(2));
  for (const std::string& w : r.warnings) {
    EXPECT_THAT(w, HasSubstr("over the limit of 8192"));
    EXPECT_LT(w.size(), 600u) << "a warning must not carry the value";
  }
}

TEST(DeriveHostileTest, ManyMediumValuesStopAtTheByteBudget) {
  docker::Container c = Web();
  for (int i = 0; i < 100; ++i) {
    c.labels.emplace_back("SERVICE_V" + std::to_string(100 + i), std::string(8000, 'v'));
  }
  DeriveResult r = DeriveServices(c, Config());
  Service s = Only(r);
  size_t bytes = 0;
  for (const auto& [key, value] : s.attrs) bytes += key.size() + value.size();
  EXPECT_LE(bytes, 65536u);
  EXPECT_EQ(s.attrs.size(), 8u);
  EXPECT_THAT(r.warnings, Contains(HasSubstr("92 SERVICE_* keys ignored: together over")));
}

TEST(DeriveHostileTest, SixtyFiveThousandPortsGiveAtMost256Services) {
  docker::Container c = Web();
  c.exposed_ports.clear();
  c.ports.clear();
  for (int port = 1; port <= 65535; ++port) {
    c.ports[std::to_string(port) + "/tcp"] = {{"0.0.0.0", std::to_string(port)}};
  }
  DeriveResult r = DeriveServices(c, Config());
  ASSERT_THAT(r.services, SizeIs(256));
  EXPECT_EQ(r.services.front().exposed_port, 1);
  EXPECT_EQ(r.services.back().exposed_port, 256);
  EXPECT_THAT(r.warnings, ElementsAre(HasSubstr("65535 ports; only the first 256")));
}

TEST(DeriveHostileTest, ThousandsOfBadKeysCostAFewWarningLines) {
  docker::Container c = Web();
  for (int i = 0; i < 5000; ++i) {
    c.labels.emplace_back("SERVICE_99999" + std::to_string(i) + "_NAME", "x");
  }
  DeriveResult r = DeriveServices(c, Config());
  EXPECT_THAT(r.services, SizeIs(1));
  ASSERT_THAT(r.warnings, SizeIs(33));
  EXPECT_THAT(r.warnings.back(), HasSubstr("4968 more warnings not shown"));
}

}  // namespace
}  // namespace registrator

namespace registrator {
namespace {

// --- Docker health -----------------------------------------------------------------------------

TEST(DeriveDockerHealthTest, EveryServiceCarriesTheContainersHealth) {
  docker::Container c = Web();
  c.exposed_ports.push_back("81/tcp");
  c.ports["81/tcp"] = {{"0.0.0.0", "8081"}};
  c.state.health = "unhealthy";
  c.state.health_output = "connection refused\n";
  DeriveResult r = DeriveServices(c, Config());
  ASSERT_THAT(r.services, SizeIs(2));
  for (const Service& s : r.services) {
    EXPECT_EQ(s.docker_health, (DockerHealth{"unhealthy", "connection refused\n"})) << s.id;
  }
  // No healthcheck: nothing, whatever stray output.
  c.state.health = "";
  EXPECT_EQ(DeriveServices(c, Config()).services[0].docker_health, DockerHealth{});
}

// The output goes to the backend: bounded like Consul's OutputMaxSize, cut on a UTF-8 character
// boundary, and with the operator's secrets redacted as in every log line.
TEST(DeriveDockerHealthTest, OutputIsBoundedAndRedacted) {
  docker::Container c = Web();
  c.state.health = "healthy";
  // "é" is two bytes; placed so that byte 4096 is its second half.
  c.state.health_output = std::string(kMaxDockerHealthOutput - 1, 'a') + "\xC3\xA9" + "tail";
  Service s = Only(DeriveServices(c, Config()));
  EXPECT_EQ(s.docker_health.output, std::string(kMaxDockerHealthOutput - 1, 'a'));

  SetLogSecrets({"hunter2-token"});
  c.state.health_output = "token=hunter2-token ok";
  s = Only(DeriveServices(c, Config()));
  SetLogSecrets({});
  EXPECT_EQ(s.docker_health.output, "token=*** ok");
}

}  // namespace
}  // namespace registrator
