// URI validation and the factory of the ZooKeeper adapter; no server involved (the factory must
// not touch the network, so an address nobody listens on is fine).
#include <functional>

#include "adapters/zookeeper/zookeeper_adapter.h"
#include "gtest/gtest.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"

namespace registrator {
namespace {

absl::StatusOr<ZookeeperTarget> Parse(const char* text) {
  absl::StatusOr<BackendUri> uri = ParseBackendUri(text);
  if (!uri.ok()) return uri.status();
  return ParseZookeeperUri(*uri);
}

TEST(ZookeeperUriTest, HostsBaseAndAuth) {
  absl::StatusOr<ZookeeperTarget> t = Parse("zookeeper://127.0.0.1:2181/services");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->connect_string, "127.0.0.1:2181");
  EXPECT_EQ(t->base, "/services");
  EXPECT_EQ(t->auth, "");

  t = Parse("zookeeper://u:p@a:1,b:2,[::1]:3/x/y/");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->connect_string, "a:1,b:2,[::1]:3");
  EXPECT_EQ(t->base, "/x/y");
  EXPECT_EQ(t->auth, "u:p");
}

TEST(ZookeeperUriTest, EmptyPathIsRootAndPortDefaults) {
  for (const char* text : {"zookeeper://zk", "zookeeper://zk/"}) {
    absl::StatusOr<ZookeeperTarget> t = Parse(text);
    ASSERT_TRUE(t.ok()) << text << ": " << t.status();
    EXPECT_EQ(t->connect_string, "zk:2181");
    EXPECT_EQ(t->base, "/");
  }
}

TEST(ZookeeperUriTest, Rejects) {
  for (const char* text : {"zookeeper:///base", "zookeeper://h:0/b", "zookeeper://h:70000/b",
                           "zookeeper://h:x/b", "zookeeper://h:/b", "zookeeper://:1/b",
                           "zookeeper://::1:2181/b", "zookeeper://[::1/b", "zookeeper://[::1]x/b",
                           "zookeeper://h:1//b", "zookeeper://h:1/a/../b", "zookeeper://h:1/a/./b",
                           "zookeeper://user@h:1/b", "zookeeper://:p@h:1/b", "etcd://h:1/b"}) {
    absl::StatusOr<ZookeeperTarget> t = Parse(text);
    EXPECT_FALSE(t.ok()) << text << " -> " << (t.ok() ? t->connect_string + t->base : "");
    if (!t.ok()) {
      EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << text;
    }
  }
}

TEST(ZookeeperUriTest, FactoryValidatesWithoutConnecting) {
  absl::StatusOr<BackendUri> uri = ParseBackendUri("zookeeper://127.0.0.1:1/base");
  ASSERT_TRUE(uri.ok());
  // Usable as a plain (uri, options) factory, as the bridge registers them by scheme.
  std::function<absl::StatusOr<std::unique_ptr<RegistryAdapter>>(const BackendUri&,
                                                                 const AdapterOptions&)>
      factory = &NewZookeeperAdapter;
  absl::StatusOr<std::unique_ptr<RegistryAdapter>> adapter = factory(*uri, AdapterOptions());
  ASSERT_TRUE(adapter.ok()) << adapter.status();
  absl::StatusOr<BackendUri> bad = ParseBackendUri("zookeeper://127.0.0.1:1/a//b");
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(NewZookeeperAdapter(*bad, AdapterOptions()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ZookeeperUriTest, FingerprintIsTheNodeDataAndFollowsTheService) {
  absl::StatusOr<BackendUri> uri = ParseBackendUri("zookeeper://127.0.0.1:1/base");
  ASSERT_TRUE(uri.ok());
  auto adapter = NewZookeeperAdapter(*uri, AdapterOptions());
  ASSERT_TRUE(adapter.ok());
  Service s;
  s.id = "h:c:80";
  s.name = "web";
  s.ip = "1.2.3.4";
  s.port = 8080;
  s.exposed_port = 80;
  const std::string fp = (*adapter)->Fingerprint(s);
  EXPECT_EQ(fp, (*adapter)->Fingerprint(s));
  EXPECT_EQ(fp,
            R"({"Name":"web","IP":"1.2.3.4","PublicPort":8080,"PrivatePort":80,"ContainerID":"",)"
            R"("Tags":[],"Attrs":{},"ID":"h:c:80"})");
  Service changed = s;
  changed.tags = {"x"};
  EXPECT_NE((*adapter)->Fingerprint(changed), fp);
  changed = s;
  changed.port = 8081;
  EXPECT_NE((*adapter)->Fingerprint(changed), fp);
}

}  // namespace
}  // namespace registrator
