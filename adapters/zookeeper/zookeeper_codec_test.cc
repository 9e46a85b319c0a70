// The ZooKeeper codec: URI validation; node paths; the node body and name: exact bytes (they are
// the fingerprint), escaping that always yields valid JSON, and reading back what we and others
// write.
#include "adapters/zookeeper/zookeeper_codec.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registrator/model/backend_uri.h"
#include "simdjson.h"

namespace registrator::zookeeper {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

Service Sample() {
  Service s;
  s.id = "host1:web:80";
  s.name = "web";
  s.ip = "10.0.0.5";
  s.port = 32768;
  s.exposed_port = 80;
  s.container_id = "0123456789abcdef0123456789abcdef";
  s.tags = {"b", "a"};
  s.attrs = {{"region", "eu"}, {"check_http", "/health"}};
  return s;
}

TEST(ZnodeTest, EncodesUpstreamFieldsInFixedOrderPlusId) {
  EXPECT_EQ(EncodeBody(BodyFor(Sample())),
            R"({"Name":"web","IP":"10.0.0.5","PublicPort":32768,"PrivatePort":80,)"
            R"("ContainerID":"0123456789ab","Tags":["b","a"],)"
            R"("Attrs":{"check_http":"/health","region":"eu"},"ID":"host1:web:80"})");
}

TEST(ZnodeTest, EmptyTagsAndAttrsAreEmptyArrayAndObject) {
  Service s;
  s.id = "h:c:1";
  EXPECT_EQ(EncodeBody(BodyFor(s)),
            R"({"Name":"","IP":"","PublicPort":0,"PrivatePort":0,"ContainerID":"",)"
            R"("Tags":[],"Attrs":{},"ID":"h:c:1"})");
}

TEST(ZnodeTest, RepeatedAttrKeepsLastValue) {
  ZnodeBody body;
  body.attrs = {{"k", "1"}, {"a", "x"}, {"k", "2"}};
  EXPECT_THAT(EncodeBody(body), ::testing::HasSubstr(R"("Attrs":{"a":"x","k":"2"})"));
}

TEST(ZnodeTest, EscapesLikeGo) {
  ZnodeBody body;
  body.name = std::string("q\"b\\n\nr\rt\t\x01<>&\x7f") + "\xE2\x80\xA8\xE2\x80\xA9" + "é";
  const std::string json = EncodeBody(body);
  EXPECT_THAT(json, ::testing::HasSubstr(R"("Name":"q\"b\\n\nr\rt\t\u0001\u003c\u003e\u0026)"
                                         "\x7f"
                                         R"(\u2028\u2029)"
                                         "é\""));
}

TEST(ZnodeTest, InvalidUtf8BecomesReplacementCharAndStaysValidJson) {
  ZnodeBody body;
  // Lone continuation, overlong "/", a surrogate, a truncated sequence at the end.
  body.tags = {"a\x80z", "\xC0\xAF", "\xED\xA0\x80", "x\xE2\x82"};
  const std::string json = EncodeBody(body);
  EXPECT_THAT(json,
              ::testing::HasSubstr(
                  R"("Tags":["a\ufffdz","\ufffd\ufffd","\ufffd\ufffd\ufffd","x\ufffd\ufffd"])"));
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  EXPECT_EQ(parser.parse(json).get(root), simdjson::SUCCESS);
  absl::StatusOr<ZnodeBody> back = DecodeBody(json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->tags[0], "a\xEF\xBF\xBDz");
}

TEST(ZnodeTest, RoundTrip) {
  const ZnodeBody body = BodyFor(Sample());
  absl::StatusOr<ZnodeBody> back = DecodeBody(EncodeBody(body));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->name, "web");
  EXPECT_EQ(back->ip, "10.0.0.5");
  EXPECT_EQ(back->public_port, 32768);
  EXPECT_EQ(back->private_port, 80);
  EXPECT_EQ(back->container_id, "0123456789ab");
  EXPECT_THAT(back->tags, ElementsAre("b", "a"));
  EXPECT_THAT(back->attrs, ElementsAre(Pair("check_http", "/health"), Pair("region", "eu")));
  EXPECT_EQ(back->id, "host1:web:80");
  // Re-encoding what we read gives the same bytes: the fingerprint is stable.
  EXPECT_EQ(EncodeBody(*back), EncodeBody(body));
}

TEST(ZnodeTest, DecodesUpstreamBodiesWithNullsAndNoId) {
  absl::StatusOr<ZnodeBody> body =
      DecodeBody(R"({"Name":"db","IP":"1.2.3.4","PublicPort":5432,"PrivatePort":5432,)"
                 R"("ContainerID":"abc","Tags":null,"Attrs":null})");
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(body->name, "db");
  EXPECT_TRUE(body->tags.empty());
  EXPECT_TRUE(body->attrs.empty());
  EXPECT_EQ(body->id, "");
}

TEST(ZnodeTest, RejectsGarbageAndWrongTypes) {
  EXPECT_FALSE(DecodeBody("").ok());
  EXPECT_FALSE(DecodeBody("not json").ok());
  EXPECT_FALSE(DecodeBody("[1,2]").ok());
  EXPECT_FALSE(DecodeBody(R"({"ID":5})").ok());
  EXPECT_FALSE(DecodeBody(R"({"PublicPort":"80"})").ok());
  EXPECT_FALSE(DecodeBody(R"({"PublicPort":99999999999})").ok());
  EXPECT_FALSE(DecodeBody(R"({"Tags":"a"})").ok());
  EXPECT_FALSE(DecodeBody(R"({"Tags":[1]})").ok());
  EXPECT_FALSE(DecodeBody(R"({"Attrs":{"a":1}})").ok());
  EXPECT_FALSE(DecodeBody("{\"ID\":\"a\xff\"}").ok());
}

TEST(ZnodeTest, NodeNames) {
  EXPECT_EQ(NodeName("10.0.0.1", 80), "10.0.0.1:80");
  EXPECT_EQ(NodeName("fd00::1", 443), "[fd00::1]:443");
  auto v4 = ParseNodeName("10.0.0.1:80");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(*v4, std::make_pair(std::string("10.0.0.1"), 80));
  auto v6 = ParseNodeName("[fd00::1]:443");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(*v6, std::make_pair(std::string("fd00::1"), 443));
  for (const char* bad : {"", "x", "1.2.3.4:", "1.2.3.4:x", "1.2.3.4:70000", "1.2.3.4:-1",
                          "fd00::1:80", "[fd00::1]80", "[fd00::1]:"}) {
    EXPECT_FALSE(ParseNodeName(bad).ok()) << bad;
  }
}

TEST(ZnodeTest, HoldsIdComparesWithTheIdAsStored) {
  Service s = Sample();
  absl::StatusOr<ZnodeBody> stored = DecodeBody(EncodeBody(BodyFor(s)));
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_TRUE(HoldsId(*stored, "host1:web:80"));
  EXPECT_FALSE(HoldsId(*stored, "host1:web2:80"));
  EXPECT_FALSE(HoldsId(*stored, ""));
  // Invalid UTF-8 reads back as U+FFFD: still this service's node.
  s.id =
      "host1:we\xff"
      "b:80";
  stored = DecodeBody(EncodeBody(BodyFor(s)));
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_NE(stored->id, s.id);
  EXPECT_TRUE(HoldsId(*stored, s.id));
  EXPECT_FALSE(HoldsId(*stored, "host1:web:80"));
  // Upstream's bodies carry no ID: never ours.
  EXPECT_FALSE(HoldsId(ZnodeBody(), "host1:web:80"));
}

TEST(ZnodePathTest, NamesAndNodePaths) {
  const Service s = Sample();
  EXPECT_EQ(NamePath("/", "web"), "/web");
  EXPECT_EQ(NamePath("/a/b", "web"), "/a/b/web");
  EXPECT_EQ(NodePath("/a/b", s), "/a/b/web/10.0.0.5:32768");
  Service v6 = s;
  v6.ip = "fd00::5";
  EXPECT_EQ(NodePath("/", v6), "/web/[fd00::5]:32768");
  EXPECT_TRUE(CheckName(s).ok());
  for (const char* bad : {"", ".", "..", "a/b", "/"}) {
    Service named = s;
    named.name = bad;
    EXPECT_EQ(CheckName(named).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  Service nul = s;
  nul.name = std::string("a\0b", 3);
  EXPECT_EQ(CheckName(nul).code(), absl::StatusCode::kInvalidArgument);
}

absl::StatusOr<Target> Parse(const char* text) {
  absl::StatusOr<BackendUri> uri = ParseBackendUri(text);
  if (!uri.ok()) return uri.status();
  return ParseUri(*uri);
}

TEST(ZookeeperUriTest, HostsBaseAndAuth) {
  absl::StatusOr<Target> t = Parse("zookeeper://127.0.0.1:2181/services");
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
    absl::StatusOr<Target> t = Parse(text);
    ASSERT_TRUE(t.ok()) << text << ": " << t.status();
    EXPECT_EQ(t->connect_string, "zk:2181");
    EXPECT_EQ(t->base, "/");
  }
  absl::StatusOr<Target> t = Parse("zookeeper://[::1],zk:2182/b");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->connect_string, "[::1]:2181,zk:2182");
}

TEST(ZookeeperUriTest, Rejects) {
  for (const char* text :
       {"zookeeper:///base", "zookeeper://h:0/b", "zookeeper://h:70000/b", "zookeeper://h:x/b",
        "zookeeper://h:/b", "zookeeper://:1/b", "zookeeper://::1:2181/b", "zookeeper://[::1/b",
        "zookeeper://[::1]x/b", "zookeeper://h:1//b", "zookeeper://h:1/a/../b",
        "zookeeper://h:1/a/./b", "zookeeper://user@h:1/b", "zookeeper://:p@h:1/b", "etcd://h:1/b",
        "zookeeper://[]:1/b", "zookeeper://[]/b", "zookeeper://h:-1/b"}) {
    absl::StatusOr<Target> t = Parse(text);
    EXPECT_FALSE(t.ok()) << text << " -> " << (t.ok() ? t->connect_string + t->base : "");
    if (!t.ok()) {
      EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << text;
    }
  }
}

TEST(ZookeeperUriTest, ErrorsNeverShowTheUserinfo) {
  absl::StatusOr<Target> t = Parse("zookeeper://alice:s3cret@h:0/b");
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(std::string(t.status().message()), ::testing::Not(::testing::HasSubstr("s3cret")));
  EXPECT_THAT(std::string(t.status().message()), ::testing::HasSubstr("<userinfo>@"));
}

}  // namespace
}  // namespace registrator::zookeeper
