// Unit tests (no server) of the Consul codec: register bodies, check hashes, fingerprints of
// what is written and of what the agent lists, leader replies and path encoding.
#include "adapters/consul/consul_codec.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace registrator::consul {
namespace {

using ::testing::HasSubstr;

Service WebService() {
  Service s;
  s.id = "host1:web:80";
  s.name = "web";
  s.ip = "10.0.0.5";
  s.port = 32768;
  s.tags = {"b", "a"};
  s.meta = {{"version", "1.2"}, {"env", "prod"}};
  return s;
}

TEST(ConsulCheckHashTest, IsFnv1a64InHex) {
  // The published FNV-1a 64 test vectors: a value written by one registrator version must
  // compare equal in the next.
  EXPECT_EQ(CheckHash(""), "cbf29ce484222325");
  EXPECT_EQ(CheckHash("a"), "af63dc4c8601ec8c");
  EXPECT_EQ(CheckHash("foobar"), "85944171f73967e8");
}

TEST(ConsulCodecTest, RegisterBodyWithoutChecksHasSortedMetaAndTagsInOrder) {
  EXPECT_EQ(RegisterBody(WebService(), 0),
            R"({"ID":"host1:web:80","Name":"web","Tags":["b","a"],"Address":"10.0.0.5",)"
            R"("Port":32768,"Meta":{"env":"prod","version":"1.2"}})");
}

TEST(ConsulCodecTest, TtlAddsAPassingTtlCheckAndItsHash) {
  const std::string checks =
      R"(,"Check":{"CheckID":"service:host1:web:80:ttl","Name":"registrator TTL","TTL":"30s",)"
      R"("Status":"passing","DeregisterCriticalServiceAfter":"60s"})";
  EXPECT_EQ(RegisterBody(WebService(), 30),
            absl::StrCat(R"({"ID":"host1:web:80","Name":"web","Tags":["b","a"],)",
                         R"("Address":"10.0.0.5","Port":32768,"Meta":{"env":"prod",)",
                         R"("registrator-check":")", CheckHash(checks), R"(","version":"1.2"})",
                         checks, "}"));
  EXPECT_EQ(TtlCheckId("h:c:80"), "service:h:c:80:ttl");
  Service with_check = WebService();
  with_check.has_check = true;
  with_check.check.tcp = "10.0.0.5:32768";
  EXPECT_THAT(RegisterBody(with_check, 30),
              HasSubstr(R"(,"Checks":[{"TCP":"10.0.0.5:32768","Interval":"10s"},{"CheckID")"));
}

TEST(ConsulCodecTest, ListedServicesHaveTheFingerprintOfWhatWasWritten) {
  Service s = WebService();
  s.has_check = true;
  s.check.http = "http://10.0.0.5:32768/health";
  std::vector<std::pair<std::string, std::string>> meta = MetaWithCheckHash(s, 10);
  ASSERT_EQ(meta.size(), 3u);
  EXPECT_EQ(meta[1].first, kCheckHashMetaKey);
  // What an agent answers after accepting RegisterBody(s, 10): no checks, Meta with the hash.
  const std::string body = absl::StrCat(
      R"({"host1:web:80":{"ID":"host1:web:80","Service":"web","Tags":["b","a"],"Meta":{"env":"prod",)",
      R"("registrator-check":")", meta[1].second,
      R"(","version":"1.2"},"Port":32768,"Address":"10.0.0.5","Weights":{"Passing":1}},)",
      R"("other":"not an object"})");
  absl::StatusOr<std::vector<RegisteredService>> listed = ParseAgentServices(body);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].service.name, "web");
  EXPECT_EQ((*listed)[0].service.port, 32768);
  EXPECT_EQ((*listed)[0].fingerprint, ServiceFingerprint(s, 10));
  EXPECT_NE((*listed)[0].fingerprint, ServiceFingerprint(s, 0));
  Service moved = s;
  moved.port = 1;
  EXPECT_NE((*listed)[0].fingerprint, ServiceFingerprint(moved, 10));
  EXPECT_TRUE(ParseAgentServices("{}")->empty());
  for (const char* bad : {"", "[]", "{", "null"}) {
    EXPECT_TRUE(absl::IsUnavailable(ParseAgentServices(bad).status())) << bad;
  }
}

TEST(ConsulCodecTest, LeaderAndPaths) {
  EXPECT_EQ(*ParseLeader(R"("127.0.0.1:8300")"), "127.0.0.1:8300");
  EXPECT_EQ(*ParseLeader(R"("")"), "");
  EXPECT_TRUE(absl::IsUnavailable(ParseLeader("<html>").status()));
  EXPECT_EQ(EncodePath("a b/c?d/"), "a%20b/c%3Fd/");
  EXPECT_EQ(EncodePath(""), "");
}

}  // namespace
}  // namespace registrator::consul
