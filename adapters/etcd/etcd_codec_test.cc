// Unit tests (no server) for the etcd-family key/value layout, reply parsing and URI checks.
#include "adapters/etcd/etcd_codec.h"

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "adapters/etcd/etcd_adapter.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"

namespace registrator::etcd {
namespace {

Service MakeService(const std::string& name, const std::string& id, const std::string& ip,
                    int port) {
  Service s;
  s.name = name;
  s.id = id;
  s.ip = ip;
  s.port = port;
  return s;
}

TEST(EtcdKeys, LayoutUnderPrefixAndRoot) {
  const Service s = MakeService("web", "host1:web_1:80", "10.0.0.5", 32768);
  EXPECT_EQ(ServiceKey("/services", s), "/services/web/host1:web_1:80");
  EXPECT_EQ(ServiceKey("", s), "/web/host1:web_1:80");
  EXPECT_EQ(ListingPrefix(""), "/");
  EXPECT_EQ(ListingPrefix("/a/b"), "/a/b/");
}

TEST(EtcdKeys, PrefixRangeEnd) {
  EXPECT_EQ(PrefixRangeEnd("/"), "0");
  EXPECT_EQ(PrefixRangeEnd("/services/"), "/services0");
  EXPECT_EQ(PrefixRangeEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixRangeEnd(std::string("\xff\xff", 2)), std::string(1, '\0'));
}

TEST(EtcdKeys, SplitServiceKey) {
  std::string name, id;
  ASSERT_TRUE(SplitServiceKey("/services", "/services/web/host1:web_1:80", &name, &id));
  EXPECT_EQ(name, "web");
  EXPECT_EQ(id, "host1:web_1:80");
  ASSERT_TRUE(SplitServiceKey("", "/web/h:c:80:udp", &name, &id));
  EXPECT_EQ(name, "web");
  EXPECT_EQ(id, "h:c:80:udp");
  // An ID may contain "/" (SERVICE_ID is free text); it round-trips through ServiceKey.
  ASSERT_TRUE(SplitServiceKey("/p", "/p/web/a/b", &name, &id));
  EXPECT_EQ(id, "a/b");
  EXPECT_FALSE(SplitServiceKey("/services", "/services/web", &name, &id));
  EXPECT_FALSE(SplitServiceKey("/services", "/services/web/", &name, &id));
  EXPECT_FALSE(SplitServiceKey("/services", "/services//id", &name, &id));
  EXPECT_FALSE(SplitServiceKey("/services", "/servicesx/web/id", &name, &id));
  EXPECT_FALSE(SplitServiceKey("/services", "/other/web/id", &name, &id));
  EXPECT_FALSE(SplitServiceKey("/services", "", &name, &id));
}

TEST(EtcdValues, HostPort) {
  EXPECT_EQ(HostPortValue(MakeService("a", "b", "10.0.0.5", 80)), "10.0.0.5:80");
  EXPECT_EQ(HostPortValue(MakeService("a", "b", "fd00::5", 8080)), "[fd00::5]:8080");
  std::string ip;
  int port = 0;
  ASSERT_TRUE(ParseHostPortValue("10.0.0.5:80", &ip, &port));
  EXPECT_EQ(ip, "10.0.0.5");
  EXPECT_EQ(port, 80);
  ASSERT_TRUE(ParseHostPortValue("[fd00::5]:8080", &ip, &port));
  EXPECT_EQ(ip, "fd00::5");
  EXPECT_EQ(port, 8080);
  for (const char* bad : {"", "10.0.0.5", "10.0.0.5:", "10.0.0.5:x", "10.0.0.5:70000", "fd00::5:80",
                          "[fd00::5]80", "[fd00::5]:", "a:-1", "a:+80"}) {
    EXPECT_FALSE(ParseHostPortValue(bad, &ip, &port)) << bad;
  }
}

TEST(SkydnsValues, ExactJsonAndParse) {
  EXPECT_EQ(SkydnsValue(MakeService("a", "b", "10.0.0.5", 80)), R"({"host":"10.0.0.5","port":80})");
  EXPECT_EQ(SkydnsValue(MakeService("a", "b", "fd00::5", 53)), R"({"host":"fd00::5","port":53})");
  EXPECT_EQ(SkydnsValue(MakeService("a", "b", "a\"b\\", 1)), R"({"host":"a\"b\\","port":1})");
  std::string ip;
  int port = 0;
  ASSERT_TRUE(ParseSkydnsValue(R"({"host":"10.0.0.5","port":80,"ttl":30})", &ip, &port));
  EXPECT_EQ(ip, "10.0.0.5");
  EXPECT_EQ(port, 80);
  for (const char* bad : {"", "{", "[]", R"({"host":1,"port":2})", R"({"host":"a"})",
                          R"({"host":"a","port":"80"})", R"({"host":"a","port":99999})"}) {
    EXPECT_FALSE(ParseSkydnsValue(bad, &ip, &port)) << bad;
  }
}

TEST(SkydnsKeys, DomainReversed) {
  EXPECT_EQ(*SkydnsPrefix("/skydns.local"), "/skydns/local/skydns");
  EXPECT_EQ(*SkydnsPrefix("skydns.local."), "/skydns/local/skydns");
  EXPECT_EQ(*SkydnsPrefix("/a.b.example.com"), "/skydns/com/example/b/a");
  EXPECT_FALSE(SkydnsPrefix("").ok());
  EXPECT_FALSE(SkydnsPrefix("/").ok());
  EXPECT_FALSE(SkydnsPrefix("/a..b").ok());
  EXPECT_FALSE(SkydnsPrefix("/a/b").ok());
}

TEST(EtcdReplies, Version) {
  EXPECT_EQ(*ParseVersion(R"({"etcdserver":"3.4.23","etcdcluster":"3.4.0"})"), "3.4.23");
  EXPECT_FALSE(ParseVersion("etcd 2.3.7").ok());
  EXPECT_FALSE(ParseVersion("{}").ok());
}

TEST(EtcdReplies, ApiForVersion) {
  EXPECT_EQ(V3BasePathForVersion("3.4.23"), "/v3");
  EXPECT_EQ(V3BasePathForVersion("3.5.0"), "/v3");
  EXPECT_EQ(V3BasePathForVersion("4.0.0"), "/v3");
  EXPECT_EQ(V3BasePathForVersion("3.3.27"), "/v3beta");
  EXPECT_EQ(V3BasePathForVersion("3.2.32"), "/v3alpha");
  EXPECT_EQ(V3BasePathForVersion("2.3.8"), "");
  EXPECT_EQ(V3BasePathForVersion("2"), "");
  EXPECT_EQ(V3BasePathForVersion("x.y"), "");
}

TEST(EtcdReplies, V3Range) {
  const std::string body = absl::StrCat(
      R"({"header":{"revision":"5"},"kvs":[{"key":")", absl::Base64Escape("/s/web/h:c:80"),
      R"(","create_revision":"2","mod_revision":"2","version":"1","value":")",
      absl::Base64Escape("1.2.3.4:80"), R"(","lease":"7587869125387465219"},{"key":")",
      absl::Base64Escape("/s/x/y"), R"("}],"count":"2"})");
  absl::StatusOr<std::vector<KeyValue>> kvs = ParseV3Range(body);
  ASSERT_TRUE(kvs.ok()) << kvs.status();
  ASSERT_EQ(kvs->size(), 2u);
  EXPECT_EQ((*kvs)[0].key, "/s/web/h:c:80");
  EXPECT_EQ((*kvs)[0].value, "1.2.3.4:80");
  EXPECT_EQ((*kvs)[0].lease, 7587869125387465219);
  EXPECT_EQ((*kvs)[1].value, "");
  EXPECT_EQ((*kvs)[1].lease, 0);
  // No kvs at all: empty.
  EXPECT_TRUE(ParseV3Range(R"({"header":{"revision":"5"}})")->empty());
  for (const char* bad : {"", "garbage", "[]", R"({"kvs":{}})", R"({"kvs":[{"key":"!!!"}]})",
                          R"({"kvs":[{"key":"YQ==","lease":"x"}]})", R"({"kvs":[1]})"}) {
    EXPECT_FALSE(ParseV3Range(bad).ok()) << bad;
  }
}

TEST(EtcdReplies, Leases) {
  EXPECT_EQ(*ParseV3LeaseGrant(R"({"header":{},"ID":"4111120278227860230","TTL":"5"})"),
            4111120278227860230);
  EXPECT_EQ(*ParseV3LeaseGrant(R"({"ID":42,"TTL":5})"), 42);
  EXPECT_FALSE(ParseV3LeaseGrant(R"({"TTL":"5"})").ok());
  EXPECT_FALSE(ParseV3LeaseGrant("not json").ok());
  EXPECT_EQ(*ParseV3KeepAlive(R"({"result":{"header":{},"ID":"1","TTL":"3"}})"), 3);
  // etcd answers 200 without a TTL for a lease that no longer exists.
  EXPECT_EQ(*ParseV3KeepAlive(R"({"result":{"header":{},"ID":"12345"}})"), 0);
  EXPECT_FALSE(ParseV3KeepAlive(R"({"error":{}})").ok());
  EXPECT_FALSE(ParseV3KeepAlive(R"({"result":{"TTL":true}})").ok());
  EXPECT_FALSE(ParseV3KeepAlive("").ok());
}

TEST(EtcdReplies, TxnAndAuth) {
  EXPECT_TRUE(*ParseV3TxnSucceeded(R"({"header":{},"succeeded":true,"responses":[]})"));
  EXPECT_FALSE(*ParseV3TxnSucceeded(R"({"header":{}})"));
  EXPECT_FALSE(ParseV3TxnSucceeded(R"({"succeeded":"yes"})").ok());
  EXPECT_EQ(*ParseV3AuthToken(R"({"header":{},"token":"abc.123"})"), "abc.123");
  EXPECT_FALSE(ParseV3AuthToken(R"({"token":""})").ok());
}

TEST(EtcdReplies, V2Listing) {
  const char* body = R"({"action":"get","node":{"key":"/s","dir":true,"nodes":[
      {"key":"/s/web","dir":true,"nodes":[
        {"key":"/s/web/h:c:80","value":"1.2.3.4:80","expiration":"2026-01-01T00:00:00Z","ttl":5},
        {"key":"/s/web/h:c:81","value":"1.2.3.4:81"}]},
      {"key":"/s/empty","dir":true}]}})";
  absl::StatusOr<std::vector<KeyValue>> kvs = ParseV2Listing(body);
  ASSERT_TRUE(kvs.ok()) << kvs.status();
  ASSERT_EQ(kvs->size(), 2u);
  EXPECT_EQ((*kvs)[0].key, "/s/web/h:c:80");
  EXPECT_TRUE((*kvs)[0].has_ttl);
  EXPECT_EQ((*kvs)[1].value, "1.2.3.4:81");
  EXPECT_FALSE((*kvs)[1].has_ttl);
  EXPECT_FALSE(ParseV2Listing(R"({"errorCode":100})").ok());
  EXPECT_FALSE(ParseV2Listing("<html>").ok());
}

TEST(EtcdReplies, ErrorsCarryEtcdsMessage) {
  absl::Status s = ErrorFromReply(
      404,
      R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})",
      "put /a");
  EXPECT_TRUE(absl::IsNotFound(s));
  EXPECT_TRUE(IsLeaseNotFound(s));
  EXPECT_NE(s.message().find("put /a"), absl::string_view::npos);
  s = ErrorFromReply(400, R"({"message":"invalid character 'g'","code":3})", "range");
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_NE(s.message().find("invalid character 'g'"), absl::string_view::npos);
  s = ErrorFromReply(404, R"({"errorCode":100,"message":"Key not found","cause":"/a/c"})", "x");
  EXPECT_NE(s.message().find("Key not found (/a/c)"), absl::string_view::npos);
  EXPECT_FALSE(IsLeaseNotFound(s));
  EXPECT_TRUE(absl::IsUnavailable(ErrorFromReply(503, "no leader", "x")));
  EXPECT_TRUE(absl::IsUnauthenticated(ErrorFromReply(401, "{}", "x")));
  EXPECT_TRUE(absl::IsPermissionDenied(ErrorFromReply(403, "", "x")));
  EXPECT_TRUE(absl::IsFailedPrecondition(ErrorFromReply(412, "", "x")));
  EXPECT_NE(ErrorFromReply(418, "teapot", "x").message().find("teapot"), std::string::npos);
}

// ---- Factories: URI validation, no network -----------------------------------------------------

absl::StatusOr<std::unique_ptr<RegistryAdapter>> Make(const std::string& text,
                                                      AdapterOptions options = {}) {
  absl::StatusOr<BackendUri> uri = ParseBackendUri(text);
  if (!uri.ok()) return uri.status();
  return NewEtcdAdapter(*uri, options);
}

TEST(EtcdFactory, AcceptsSchemesAndHosts) {
  for (const char* ok : {"etcd://127.0.0.1:2379", "etcd3://127.0.0.1:2379/services",
                         "etcd2://localhost", "etcd://a:1,b:2/p", "etcd://[::1]:2379",
                         "etcd://user:pw@127.0.0.1:2379", "etcd:///prefix"}) {
    EXPECT_TRUE(Make(ok).ok()) << ok << ": " << Make(ok).status();
  }
}

TEST(EtcdFactory, RejectsBadUris) {
  for (const char* bad :
       {"consul://127.0.0.1:8500", "etcd://127.0.0.1:x", "etcd://::1:2379", "etcd://[::1",
        "etcd://a:0", "etcd://a:70000", "etcd://:pw@a:1", "etcd://a:1/p//q"}) {
    EXPECT_FALSE(Make(bad).ok()) << bad;
  }
  AdapterOptions options;
  options.env["ETCDCTL_CERT"] = "/c.pem";  // Without ETCDCTL_KEY.
  EXPECT_FALSE(Make("etcd://a:1", options).ok());
  options.ttl = -1;
  options.env.clear();
  EXPECT_FALSE(Make("etcd://a:1", options).ok());
}

TEST(EtcdFactory, FingerprintIsKeyAndValue) {
  auto adapter = Make("etcd3://127.0.0.1:2379/services");
  ASSERT_TRUE(adapter.ok());
  Service s = MakeService("web", "h:c:80", "10.0.0.5", 80);
  EXPECT_EQ((*adapter)->Fingerprint(s), "/services/web/h:c:80=10.0.0.5:80");
  Service changed = s;
  changed.port = 81;
  EXPECT_NE((*adapter)->Fingerprint(s), (*adapter)->Fingerprint(changed));
}

TEST(EtcdFactory, UnreachableEndpointIsUnavailable) {
  // Port 1 on loopback: connection refused at once, no server needed.
  auto adapter = Make("etcd3://127.0.0.1:1");
  ASSERT_TRUE(adapter.ok());
  absl::Status status = (*adapter)->Ping();
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  status = (*adapter)->Register(MakeService("web", "h:c:80", "10.0.0.5", 80));
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
}

}  // namespace
}  // namespace registrator::etcd
