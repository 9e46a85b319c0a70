// Unit tests (no server) of the skydns2 record values and domain prefixes.
#include "adapters/skydns2/skydns2_codec.h"

#include "gtest/gtest.h"

namespace registrator::skydns2 {
namespace {

Service MakeService(const std::string& ip, int port) {
  Service s;
  s.name = "a";
  s.id = "b";
  s.ip = ip;
  s.port = port;
  return s;
}

TEST(SkydnsValues, ExactJsonAndParse) {
  EXPECT_EQ(RecordValue(MakeService("10.0.0.5", 80)), R"({"host":"10.0.0.5","port":80})");
  EXPECT_EQ(RecordValue(MakeService("fd00::5", 53)), R"({"host":"fd00::5","port":53})");
  EXPECT_EQ(RecordValue(MakeService("a\"b\\", 1)), R"({"host":"a\"b\\","port":1})");
  std::string ip;
  int port = 0;
  ASSERT_TRUE(ParseRecordValue(R"({"host":"10.0.0.5","port":80,"ttl":30})", &ip, &port));
  EXPECT_EQ(ip, "10.0.0.5");
  EXPECT_EQ(port, 80);
  for (const char* bad : {"", "{", "[]", R"({"host":1,"port":2})", R"({"host":"a"})",
                          R"({"host":"a","port":"80"})", R"({"host":"a","port":99999})"}) {
    EXPECT_FALSE(ParseRecordValue(bad, &ip, &port)) << bad;
  }
}

TEST(SkydnsKeys, DomainReversed) {
  EXPECT_EQ(*DomainPrefix("/skydns.local"), "/skydns/local/skydns");
  EXPECT_EQ(*DomainPrefix("skydns.local."), "/skydns/local/skydns");
  EXPECT_EQ(*DomainPrefix("/a.b.example.com"), "/skydns/com/example/b/a");
  EXPECT_FALSE(DomainPrefix("").ok());
  EXPECT_FALSE(DomainPrefix("/").ok());
  EXPECT_FALSE(DomainPrefix("/a..b").ok());
  EXPECT_FALSE(DomainPrefix("/a/b").ok());
}

}  // namespace
}  // namespace registrator::skydns2
