// Command-line parsing: Go-style flags, upstream's validation, exit codes.
#include "registrator/config.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace registrator {
namespace {

using ::registrator::fakes::IsOk;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

ParseOutcome Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "registrator");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return ParseCommandLine(static_cast<int>(argv.size()), argv.data());
}

TEST(NormalizeTest, DashedGoNamesBecomeAbseilNames) {
  EXPECT_THAT(NormalizeGoStyleArgs({"registrator", "-ttl-refresh=5", "--retry-attempts", "-1",
                                    "-useIpFromLabel", "x-y", "consul://a-b:1"}),
              ElementsAre("registrator", "--ttl_refresh=5", "--retry_attempts", "-1",
                          "--useIpFromLabel", "x-y", "consul://a-b:1"));
  EXPECT_THAT(NormalizeGoStyleArgs({"r", "-tags=a-b,c-d", "--", "-not-a-flag"}),
              ElementsAre("r", "--tags=a-b,c-d", "--", "-not-a-flag"));
}

TEST(ValidateConfigTest, UpstreamRules) {
  Config c;
  EXPECT_THAT(ValidateConfig(c), IsOk());
  c.ttl = 30;
  c.ttl_refresh = 10;
  EXPECT_THAT(ValidateConfig(c), IsOk());
  c.ttl = 10;
  EXPECT_THAT(std::string(ValidateConfig(c).message()), HasSubstr("-ttl must be greater"));
  c.ttl = 30;
  c.ttl_refresh = 0;
  EXPECT_THAT(ValidateConfig(c), Not(IsOk()));
  c = Config();
  c.retry_interval_ms = 0;
  EXPECT_THAT(std::string(ValidateConfig(c).message()), HasSubstr("-retry-interval"));
  c = Config();
  c.retry_attempts = -2;
  EXPECT_THAT(ValidateConfig(c), Not(IsOk()));
  c = Config();
  c.log_level = "loud";
  EXPECT_THAT(std::string(ValidateConfig(c).message()), HasSubstr("loud"));
}

// ParseCommandLine goes through abseil's global flags, so one test walks through the cases in
// order, each setting every flag it relies on.
TEST(ParseCommandLineTest, GoStyleFlagsAndPositionalUri) {
  ParseOutcome o = Parse(
      {"-ip", "10.1.2.3", "--internal", "-explicit=true", "-ttl=30", "-ttl-refresh", "10",
       "-resync=60", "-deregister", "on-success", "-retry-attempts=-1", "-retry-interval", "500",
       "-cleanup", "-useIpFromLabel", "ip.label", "-tags", "a,b", "consul://127.0.0.1:8500"});
  ASSERT_TRUE(o.run) << o.message;
  EXPECT_EQ(o.config.registry_uri, "consul://127.0.0.1:8500");
  EXPECT_EQ(o.config.ip, "10.1.2.3");
  EXPECT_TRUE(o.config.internal);
  EXPECT_TRUE(o.config.explicit_only);
  EXPECT_EQ(o.config.ttl, 30);
  EXPECT_EQ(o.config.ttl_refresh, 10);
  EXPECT_EQ(o.config.resync, 60);
  EXPECT_TRUE(o.config.deregister_on_success);
  EXPECT_EQ(o.config.retry_attempts, -1);
  EXPECT_EQ(o.config.retry_interval_ms, 500);
  EXPECT_TRUE(o.config.cleanup);
  EXPECT_EQ(o.config.use_ip_from_label, "ip.label");
  EXPECT_EQ(o.config.tags, "a,b");

  o = Parse({"-ttl=0", "-ttl-refresh=0", "-deregister=always"});
  EXPECT_FALSE(o.run);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_THAT(o.message, HasSubstr("Missing required argument for registry URI"));
  EXPECT_THAT(o.message, HasSubstr("Usage of registrator"));

  o = Parse({"consul://a", "etcd://b"});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_THAT(o.message, HasSubstr("Extra unparsed arguments: etcd://b"));

  o = Parse({"-no-such-flag", "consul://a"});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_THAT(o.message, HasSubstr("flag provided but not defined: -no_such_flag"));

  o = Parse({"-deregister=sometimes", "consul://a"});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_THAT(o.message, HasSubstr("sometimes"));

  o = Parse({"-deregister=always", "-ttl=5", "-ttl-refresh=10", "consul://a"});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_THAT(o.message, HasSubstr("-ttl must be greater than -ttl-refresh"));

  // -network: any name Docker could have given a network; whitespace or control characters are
  // an error naming the flag.
  o = Parse({"-ttl=0", "-ttl-refresh=0", "-network", "back net/1", "consul://a"});
  ASSERT_TRUE(o.run) << o.message;
  EXPECT_EQ(o.config.network, "back net/1");
  o = Parse({"-network=  ", "consul://a"});
  EXPECT_FALSE(o.run);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_THAT(o.message, HasSubstr("-network is not a network name: empty or only whitespace"));
  o =
      Parse({"-network=a\x01"
             "b",
             "consul://a"});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_THAT(o.message, HasSubstr("control character U+0001"));
  o = Parse({"-network=", "consul://a"});
  ASSERT_TRUE(o.run) << o.message;
  EXPECT_EQ(o.config.network, "");

  o = Parse({"--version"});
  EXPECT_FALSE(o.run);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_THAT(o.message, HasSubstr("registrator"));
}

TEST(ParseCommandLineTest, RequireHealthy) {
  // Flags keep their values from one parse to the next: reset what earlier tests set.
  ParseOutcome o = Parse({"-ttl=0", "-ttl-refresh=0", "-require-healthy", "log://"});
  ASSERT_TRUE(o.run) << o.message;
  EXPECT_TRUE(o.config.require_healthy);
  o = Parse({"-ttl=0", "-ttl-refresh=0", "--require-healthy=false", "log://"});
  ASSERT_TRUE(o.run) << o.message;
  EXPECT_FALSE(o.config.require_healthy);
}

// -extra-registry (issue 16): repeatable, in every spelling; the positional URI stays required
// and a second positional still exits 2; a bad URI exits 2 naming the flag, never its password.
TEST(ParseCommandLineTest, ExtraRegistryIsRepeatable) {
  ParseOutcome o = Parse({"-ttl=0", "-ttl-refresh=0", "-extra-registry", "etcd://127.0.0.1:2379/a",
                          "--extra-registry=zookeeper://127.0.0.1:2181/b", "-resync=5",
                          "-extra_registry", "consulkv://127.0.0.1:8500/c", "consul://h:8500"});
  ASSERT_TRUE(o.run) << o.message;
  EXPECT_EQ(o.config.registry_uri, "consul://h:8500");
  EXPECT_THAT(o.config.extra_registries,
              ElementsAre("etcd://127.0.0.1:2379/a", "zookeeper://127.0.0.1:2181/b",
                          "consulkv://127.0.0.1:8500/c"));
  EXPECT_EQ(o.config.resync, 5);

  // Without the flag: none (flags keep values between parses; this one must not).
  o = Parse({"-ttl=0", "-ttl-refresh=0", "-resync=0", "consul://h:8500"});
  ASSERT_TRUE(o.run) << o.message;
  EXPECT_THAT(o.config.extra_registries, ElementsAre());

  // The positional URI is still required, and only one.
  o = Parse({"-extra-registry", "etcd://127.0.0.1:2379"});
  EXPECT_FALSE(o.run);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_THAT(o.message, HasSubstr("Missing required argument for registry URI"));
  o = Parse({"-extra-registry", "etcd://127.0.0.1:2379", "consul://a", "etcd://b"});
  EXPECT_FALSE(o.run);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_THAT(o.message, HasSubstr("Extra unparsed arguments: etcd://b"));

  // A bad URI: exit 2, the flag and the reason named, the password never shown.
  o = Parse({"-extra-registry", "nosuch://user:s3cret@h:1/x", "consul://a"});
  EXPECT_FALSE(o.run);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_THAT(o.message, HasSubstr("-extra-registry \"nosuch://user:***@h:1/x\""));
  EXPECT_THAT(o.message, HasSubstr("unrecognized adapter \"nosuch\""));
  EXPECT_THAT(o.message, Not(HasSubstr("s3cret")));
  o = Parse({"--extra-registry=127.0.0.1:2379", "consul://a"});
  EXPECT_FALSE(o.run);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_THAT(o.message, HasSubstr("must look like <scheme>://"));
  o = Parse({"consul://a", "-extra-registry"});
  EXPECT_FALSE(o.run);
  EXPECT_EQ(o.exit_code, 2);
}

// The usage text comes from the flags themselves: every flag, Go-style names, types, defaults.
TEST(UsageTest, ListsEveryFlagFromItsDefinition) {
  const std::string usage = UsageText();
  for (const char* line : {
           "  -cleanup                 Remove dangling services\n",
           "  -deregister string       Deregister exited services \"always\" or \"on-success\" "
           "(default \"always\")\n",
           "  -require-healthy         Register a container that has a Docker HEALTHCHECK only "
           "while Docker reports it healthy\n",
           "  -retry-interval int      Interval (in millisecond) between retry-attempts. (default "
           "2000)\n",
           "  -ttl-refresh int         Frequency with which service TTLs are refreshed\n",
           "  -useIpFromLabel string   Use IP which is stored in a label assigned to the "
           "container\n",
           "  -version                 Print the version and exit\n",
       }) {
    EXPECT_THAT(usage, HasSubstr(line));
  }
  EXPECT_THAT(usage, HasSubstr("  -network string          Register containers' addresses on this "
                               "Docker network (SERVICE_NETWORK overrides); services of "
                               "containers not attached to it are skipped\n"));
  for (const char* flag : {"-deregister-on-exit ", "-explicit ", "-http string", "-internal ",
                           "-ip string", "-log-json ", "-log-level string", "-resync int",
                           "-retry-attempts int", "-tags string", "-ttl int", "-workers int"}) {
    EXPECT_THAT(usage, HasSubstr(absl::StrCat("  ", flag))) << flag;
  }
}

}  // namespace
}  // namespace registrator
