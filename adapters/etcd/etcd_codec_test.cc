// Unit tests (no server) for the etcd-family key/value layout, request bodies and reply parsing.
#include "adapters/etcd/etcd_codec.h"

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "registrator/model/test_service.h"
#include "testing/status_matchers.h"

namespace registrator::etcd {
namespace {

using ::registrator::fakes::IsOk;
using ::registrator::fakes::MakeService;
using ::testing::Not;

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

TEST(EtcdReplies, Version) {
  EXPECT_EQ(*ParseVersion(R"({"etcdserver":"3.4.23","etcdcluster":"3.4.0"})"), "3.4.23");
  EXPECT_THAT(ParseVersion("etcd 2.3.7"), Not(IsOk()));
  EXPECT_THAT(ParseVersion("{}"), Not(IsOk()));
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
  ASSERT_THAT(kvs, IsOk()) << kvs.status();
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
    EXPECT_THAT(ParseV3Range(bad), Not(IsOk())) << bad;
  }
}

TEST(EtcdReplies, Leases) {
  EXPECT_EQ(*ParseV3LeaseGrant(R"({"header":{},"ID":"4111120278227860230","TTL":"5"})"),
            4111120278227860230);
  EXPECT_EQ(*ParseV3LeaseGrant(R"({"ID":42,"TTL":5})"), 42);
  EXPECT_THAT(ParseV3LeaseGrant(R"({"TTL":"5"})"), Not(IsOk()));
  EXPECT_THAT(ParseV3LeaseGrant("not json"), Not(IsOk()));
  EXPECT_EQ(*ParseV3KeepAlive(R"({"result":{"header":{},"ID":"1","TTL":"3"}})"), 3);
  // etcd answers 200 without a TTL for a lease that no longer exists.
  EXPECT_EQ(*ParseV3KeepAlive(R"({"result":{"header":{},"ID":"12345"}})"), 0);
  EXPECT_THAT(ParseV3KeepAlive(R"({"error":{}})"), Not(IsOk()));
  EXPECT_THAT(ParseV3KeepAlive(R"({"result":{"TTL":true}})"), Not(IsOk()));
  EXPECT_THAT(ParseV3KeepAlive(""), Not(IsOk()));
}

TEST(EtcdReplies, TxnAndAuth) {
  EXPECT_TRUE(*ParseV3TxnSucceeded(R"({"header":{},"succeeded":true,"responses":[]})"));
  EXPECT_FALSE(*ParseV3TxnSucceeded(R"({"header":{}})"));
  EXPECT_THAT(ParseV3TxnSucceeded(R"({"succeeded":"yes"})"), Not(IsOk()));
  EXPECT_EQ(*ParseV3AuthToken(R"({"header":{},"token":"abc.123"})"), "abc.123");
  EXPECT_THAT(ParseV3AuthToken(R"({"token":""})"), Not(IsOk()));
}

TEST(EtcdReplies, V2Listing) {
  const char* body = R"({"action":"get","node":{"key":"/s","dir":true,"nodes":[
      {"key":"/s/web","dir":true,"nodes":[
        {"key":"/s/web/h:c:80","value":"1.2.3.4:80","expiration":"2026-01-01T00:00:00Z","ttl":5},
        {"key":"/s/web/h:c:81","value":"1.2.3.4:81"}]},
      {"key":"/s/empty","dir":true}]}})";
  absl::StatusOr<std::vector<KeyValue>> kvs = ParseV2Listing(body);
  ASSERT_THAT(kvs, IsOk()) << kvs.status();
  ASSERT_EQ(kvs->size(), 2u);
  EXPECT_EQ((*kvs)[0].key, "/s/web/h:c:80");
  EXPECT_TRUE((*kvs)[0].has_ttl);
  EXPECT_EQ((*kvs)[1].value, "1.2.3.4:81");
  EXPECT_FALSE((*kvs)[1].has_ttl);
  EXPECT_THAT(ParseV2Listing(R"({"errorCode":100})"), Not(IsOk()));
  EXPECT_THAT(ParseV2Listing("<html>"), Not(IsOk()));
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

TEST(EtcdReplies, OnlyA400IsARejection) {
  // The bridge never retries INVALID_ARGUMENT until the service changes: a proxy's or a rate
  // limiter's answer must not look like one.
  for (long status : {404L, 408L, 409L, 412L, 413L, 429L, 500L, 502L, 503L}) {
    EXPECT_FALSE(absl::IsInvalidArgument(ErrorFromReply(status, "busy", "put /a"))) << status;
  }
  EXPECT_TRUE(absl::IsUnavailable(ErrorFromReply(429, "", "x")));
  EXPECT_TRUE(absl::IsUnavailable(ErrorFromReply(408, "", "x")));
}

TEST(EtcdRequests, V3Bodies) {
  // "/a" = L2E=, "/b" = L2I=, "1:2" = MToy.
  EXPECT_EQ(V3RangeBody("/a", "", RangeWants::kKeysAndValues), R"({"key":"L2E="})");
  EXPECT_EQ(V3RangeBody("/a", "/b", RangeWants::kKeysOnly),
            R"({"key":"L2E=","range_end":"L2I=","keys_only":true})");
  EXPECT_EQ(V3RangeBody("/a", "/b", RangeWants::kCountOnly),
            R"({"key":"L2E=","range_end":"L2I=","count_only":true})");
  EXPECT_EQ(V3PutBody("/a", "1:2", 0), R"({"key":"L2E=","value":"MToy"})");
  EXPECT_EQ(V3PutBody("/a", "1:2", 7), R"({"key":"L2E=","value":"MToy","lease":"7"})");
  EXPECT_EQ(V3DeleteBody("/a"), R"({"key":"L2E="})");
  EXPECT_EQ(V3MoveToLeaseBody("/a", "1:2", 9),
            R"({"compare":[{"key":"L2E=","target":"VALUE","result":"EQUAL","value":"MToy"}],)"
            R"("success":[{"request_put":{"key":"L2E=","value":"MToy","lease":"9"}}]})");
  EXPECT_EQ(V3LeaseGrantBody(5), R"({"TTL":5})");
  EXPECT_EQ(V3LeaseIdBody(4111120278227860230), R"({"ID":"4111120278227860230"})");
  EXPECT_EQ(V3AuthenticateBody("u\"", "p"), R"({"name":"u\"","password":"p"})");
}

TEST(EtcdRequests, V2PathsAndForms) {
  EXPECT_EQ(V2KeyPath("/a/b c/h:c:80"), "/v2/keys/a/b%20c/h%3Ac%3A80");
  EXPECT_EQ(V2KeyPath(""), "/v2/keys");
  EXPECT_EQ(V2PutForm("10.0.0.5:80", 0), "value=10.0.0.5%3A80");
  EXPECT_EQ(V2PutForm("[::1]:80", 30), "value=%5B%3A%3A1%5D%3A80&ttl=30");
  EXPECT_EQ(V2RefreshForm(30), "refresh=true&prevExist=true&ttl=30");
}

TEST(EtcdWatch, CreateBodyAndMessages) {
  EXPECT_EQ(V3WatchCreateBody("/a/", "/a0", 0),
            R"({"create_request":{"key":"L2Ev","range_end":"L2Ew","progress_notify":true}})");
  EXPECT_EQ(V3WatchCreateBody("/a/", "/a0", 42),
            R"({"create_request":{"key":"L2Ev","range_end":"L2Ew","start_revision":"42",)"
            R"("progress_notify":true}})");

  absl::StatusOr<WatchMessage> created = ParseV3WatchMessage(
      R"({"result":{"header":{"cluster_id":"1","revision":"7","raft_term":"2"},"created":true}})");
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->created);
  EXPECT_EQ(created->revision, 7);
  EXPECT_EQ(created->events, 0);

  absl::StatusOr<WatchMessage> events = ParseV3WatchMessage(
      R"({"result":{"header":{"revision":"9"},"events":[{"type":"DELETE","kv":{"key":"L2Ev"}},)"
      R"({"kv":{"key":"L2Ev","value":"MQ=="}}]}})");
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(events->events, 2);
  EXPECT_EQ(events->revision, 9);

  absl::StatusOr<WatchMessage> compacted = ParseV3WatchMessage(
      R"({"result":{"header":{"revision":"30"},"canceled":true,"compact_revision":"20"}})");
  ASSERT_TRUE(compacted.ok()) << compacted.status();
  EXPECT_TRUE(compacted->canceled);
  EXPECT_EQ(compacted->compact_revision, 20);

  EXPECT_FALSE(ParseV3WatchMessage(R"({"error":{"grpc_code":14,"message":"unavailable"}})").ok());
  EXPECT_FALSE(ParseV3WatchMessage("[1]").ok());

  absl::StatusOr<int64_t> index = ParseV2WatchEvent(
      R"({"action":"delete","node":{"key":"/a/b","modifiedIndex":15,"createdIndex":3}})");
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(*index, 15);
  EXPECT_FALSE(ParseV2WatchEvent(R"({"action":"get"})").ok());
}

}  // namespace
}  // namespace registrator::etcd
