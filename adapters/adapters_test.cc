// URI parsing and the scheme -> adapter choice.
#include "adapters/adapter_factory.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"

namespace registrator {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(BackendUriTest, SplitsSchemeHostsAndPath) {
  absl::StatusOr<BackendUri> uri = ParseBackendUri("etcd://a:2379,b:2379/services/x/");
  ASSERT_TRUE(uri.ok());
  EXPECT_EQ(uri->scheme, "etcd");
  EXPECT_EQ(uri->host, "a:2379,b:2379");
  EXPECT_THAT(uri->hosts, ElementsAre("a:2379", "b:2379"));
  EXPECT_EQ(uri->path, "/services/x");
  EXPECT_EQ(uri->userinfo, "");
}

TEST(BackendUriTest, UserinfoAndNoPath) {
  absl::StatusOr<BackendUri> uri = ParseBackendUri("ZooKeeper://user:pw@127.0.0.1:2181");
  ASSERT_TRUE(uri.ok());
  EXPECT_EQ(uri->scheme, "zookeeper");
  EXPECT_EQ(uri->userinfo, "user:pw");
  EXPECT_EQ(uri->host, "127.0.0.1:2181");
  EXPECT_EQ(uri->path, "");
}

TEST(BackendUriTest, UnixSocketSchemesKeepThePath) {
  absl::StatusOr<BackendUri> uri = ParseBackendUri("consul-unix:///run/consul/consul.sock");
  ASSERT_TRUE(uri.ok());
  EXPECT_EQ(uri->host, "");
  EXPECT_TRUE(uri->hosts.empty());
  EXPECT_EQ(uri->path, "/run/consul/consul.sock");
  EXPECT_EQ(ParseBackendUri("log://")->path, "");
  EXPECT_EQ(ParseBackendUri("consul://h:1/")->path, "");
}

TEST(BackendUriTest, RejectsWhatIsNotAUri) {
  for (const char* bad : {"", "consul", "consul:/x", "://host", "localhost:8500"}) {
    EXPECT_FALSE(ParseBackendUri(bad).ok()) << bad;
  }
}

TEST(AdapterFactoryTest, ChoosesByScheme) {
  AdapterOptions options;
  EXPECT_TRUE(CreateAdapter("log://", options).ok());
  absl::StatusOr<std::unique_ptr<RegistryAdapter>> unknown = CreateAdapter("nope://x", options);
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("unrecognized adapter \"nope\""));
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("log"));
  EXPECT_THAT(SupportedSchemes(), Contains("log"));
  for (const char* uri :
       {"consul://127.0.0.1:8500", "consul-unix:///run/consul.sock",
        "consulkv://127.0.0.1:8500/services", "consulkv-unix:///run/consul.sock:/services",
        "zookeeper://127.0.0.1:2181/services", "etcd://127.0.0.1:2379/services",
        "etcd2://127.0.0.1:2379", "etcd3://127.0.0.1:2379",
        "skydns2://127.0.0.1:2379/skydns.local"}) {
    auto adapter = CreateAdapter(uri, options);
    EXPECT_TRUE(adapter.ok()) << uri << ": " << adapter.status();
  }
  // The factory validates the URI without contacting anything.
  EXPECT_FALSE(CreateAdapter("skydns2://127.0.0.1:2379", options).ok());
}

}  // namespace
}  // namespace registrator
