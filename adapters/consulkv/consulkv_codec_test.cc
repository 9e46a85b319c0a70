// Unit tests (no server) of the Consul KV codec: key layout, values, paths and listing replies.
#include "adapters/consulkv/consulkv_codec.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace registrator::consulkv {
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

TEST(ConsulKvCodecTest, KeysValuesAndPaths) {
  EXPECT_EQ(NormalizePrefix("/reg/services/"), "reg/services");
  EXPECT_EQ(NormalizePrefix("//"), "");
  const Service web = MakeService("web", "host1:web:80", "fd00::5", 8080);
  EXPECT_EQ(ServiceKey("services", web), "services/web/host1:web:80");
  EXPECT_EQ(ServiceKey("", web), "web/host1:web:80");
  EXPECT_EQ(ServiceValue(web), "[fd00::5]:8080");
  EXPECT_EQ(ServiceFingerprint("p", web), "p/web/host1:web:80=[fd00::5]:8080");
  EXPECT_EQ(KeyPath("p/a b/c?"), "/v1/kv/p/a%20b/c%3F");
  EXPECT_EQ(ListingPath("p"), "/v1/kv/p/?recurse");
  EXPECT_EQ(ListingPath(""), "/v1/kv/?recurse");
}

TEST(ConsulKvCodecTest, ListingKeepsOnlyNameSlashIdKeysWithFingerprints) {
  auto entry = [](const std::string& key, const std::string& value) {
    return absl::StrCat(R"({"Key":")", key, R"(","Flags":0,"Value":")", absl::Base64Escape(value),
                        R"(","CreateIndex":1,"ModifyIndex":1})");
  };
  const Service web = MakeService("web", "host1:web:80", "10.0.0.5", 32768);
  const std::string body =
      absl::StrCat("[", entry("p/web/host1:web:80", "10.0.0.5:32768"), ",",
                   entry("p/db/other:db:5432", "garbage"), ",", entry("p/folder/", ""), ",",
                   entry("p/nameonly", "x"), ",", entry("px/web/a", "1.1.1.1:1"), ",",
                   R"({"Key":"p/bad/value","Value":"!!!"})", ",", R"({"Key":"p/n/no-value"})", "]");
  absl::StatusOr<std::vector<RegisteredService>> listed = ParseListing("p", body);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 3u);
  EXPECT_EQ((*listed)[0].service.id, "host1:web:80");
  EXPECT_EQ((*listed)[0].service.ip, "10.0.0.5");
  EXPECT_EQ((*listed)[0].service.port, 32768);
  EXPECT_EQ((*listed)[0].fingerprint, ServiceFingerprint("p", web));
  EXPECT_EQ((*listed)[1].service.name, "db");  // Listed although its value is not ip:port.
  EXPECT_EQ((*listed)[1].service.port, 0);
  EXPECT_EQ((*listed)[2].service.id, "no-value");
  EXPECT_TRUE(ParseListing("", "[]")->empty());
  for (const char* bad : {"", "{}", "[", "null"}) {
    EXPECT_TRUE(absl::IsUnavailable(ParseListing("p", bad).status())) << bad;
  }
}

}  // namespace
}  // namespace registrator::consulkv
