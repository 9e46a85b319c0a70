// RedactUri / UriSecret: the registry URI's password never reaches an output.
#include "registrator/model/backend_uri.h"

#include "gtest/gtest.h"

namespace registrator {
namespace {

TEST(RedactUriTest, MasksThePasswordKeepsTheRest) {
  EXPECT_EQ(RedactUri("etcd://user:s3cret@127.0.0.1:2379/services"),
            "etcd://user:***@127.0.0.1:2379/services");
  EXPECT_EQ(RedactUri("zookeeper://u:p@a:2181,b:2181/base"),
            "zookeeper://u:***@a:2181,b:2181/base");
  // A "@" inside the password: the userinfo ends at the last "@" before the path, as parsed.
  EXPECT_EQ(RedactUri("etcd://u:p@ss:w@rd@h:1/x"), "etcd://u:***@h:1/x");
  // A bare token as userinfo is all secret.
  EXPECT_EQ(RedactUri("consul://t0ken@127.0.0.1:8500"), "consul://***@127.0.0.1:8500");
  // Without "://" (a typo) the password is still masked.
  EXPECT_EQ(RedactUri("user:pw12@host"), "user:***@host");
  EXPECT_EQ(RedactUri("ETCD://A:B@h"), "ETCD://A:***@h");
}

TEST(RedactUriTest, LeavesUrisWithoutUserinfoAlone) {
  for (const char* uri : {"consul://127.0.0.1:8500", "etcd://h/prefix@v2", "log://", "",
                          "consul-unix:///run/consul.sock", "zookeeper://h/a@b/c"}) {
    EXPECT_EQ(RedactUri(uri), uri);
    EXPECT_EQ(UriSecret(uri), "");
  }
}

TEST(RedactUriTest, UriSecretIsWhatParseBackendUriTakesAsPassword) {
  EXPECT_EQ(UriSecret("etcd://user:s3cret@127.0.0.1:2379/services"), "s3cret");
  EXPECT_EQ(UriSecret("etcd://u:p@ss:w@rd@h:1/x"), "p@ss:w@rd");
  EXPECT_EQ(UriSecret("consul://t0ken@h"), "t0ken");
  absl::StatusOr<BackendUri> parsed = ParseBackendUri("etcd://u:p@ss:w@rd@h:1/x");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->userinfo, "u:p@ss:w@rd");
}

TEST(RedactUriTest, ParseErrorsDoNotEchoThePassword) {
  absl::StatusOr<BackendUri> parsed = ParseBackendUri("user:hunter22@host");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(std::string(parsed.status().message()).find("hunter22"), std::string::npos)
      << parsed.status();
}

}  // namespace
}  // namespace registrator
