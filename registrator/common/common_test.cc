// Unit tests for the small shared pieces: JSON string escaping, log levels, backoff, host:port.
#include <string>
#include <thread>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "registrator/common/backoff.h"
#include "registrator/common/host_port.h"
#include "registrator/common/json.h"
#include "registrator/common/log.h"

namespace registrator {
namespace {

TEST(JsonStringTest, EscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(JsonString("plain"), "\"plain\"");
  EXPECT_EQ(JsonString("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(JsonString("l1\nl2\t\r"), "\"l1\\nl2\\t\\r\"");
  EXPECT_EQ(JsonString(absl::string_view("\x01\x1f", 2)), "\"\\u0001\\u001f\"");
  EXPECT_EQ(JsonString("h\xc3\xa9"), "\"h\xc3\xa9\"");
  EXPECT_EQ(JsonString(""), "\"\"");
}

TEST(JsonStringTest, EncodesLikeGo) {
  // Go's encoding/json escapes HTML characters and line/paragraph separators...
  EXPECT_EQ(JsonString("<a&b>"), "\"\\u003ca\\u0026b\\u003e\"");
  EXPECT_EQ(JsonString("\xe2\x80\xa8\xe2\x80\xa9"), "\"\\u2028\\u2029\"");
  // ...and turns every invalid UTF-8 byte into U+FFFD, so the output is always valid JSON.
  EXPECT_EQ(JsonString("a\xffz"), "\"a\\ufffdz\"");
  EXPECT_EQ(JsonString("\xc0\xaf"), "\"\\ufffd\\ufffd\"");             // Overlong.
  EXPECT_EQ(JsonString("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");  // Surrogate.
  EXPECT_EQ(JsonString("\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\"");   // Valid 4-byte.
}

TEST(LogLevelTest, ParsesNamesCaseInsensitively) {
  LogLevel level = LogLevel::kInfo;
  EXPECT_TRUE(ParseLogLevel("DEBUG", &level));
  EXPECT_EQ(level, LogLevel::kDebug);
  EXPECT_TRUE(ParseLogLevel("warn", &level));
  EXPECT_EQ(level, LogLevel::kWarning);
  EXPECT_TRUE(ParseLogLevel("Warning", &level));
  EXPECT_EQ(level, LogLevel::kWarning);
  EXPECT_TRUE(ParseLogLevel("error", &level));
  EXPECT_EQ(level, LogLevel::kError);
  EXPECT_FALSE(ParseLogLevel("verbose", &level));
  EXPECT_EQ(level, LogLevel::kError);
}

TEST(BackoffTest, DoublesUpToTheCapWithBoundedJitter) {
  Backoff backoff(absl::Milliseconds(100), absl::Seconds(1));
  const absl::Duration expected[] = {absl::Milliseconds(100), absl::Milliseconds(200),
                                     absl::Milliseconds(400), absl::Milliseconds(800),
                                     absl::Seconds(1),        absl::Seconds(1)};
  for (absl::Duration base : expected) {
    const absl::Duration d = backoff.Next();
    EXPECT_LE(d, base);
    EXPECT_GE(d, base * 0.8);
  }
  EXPECT_EQ(backoff.attempts(), 6);
  backoff.Reset();
  EXPECT_LE(backoff.Next(), absl::Milliseconds(100));
}

TEST(BackoffTest, NeverOverflowsAfterManyAttempts) {
  Backoff backoff(absl::Milliseconds(100), absl::Seconds(5));
  for (int i = 0; i < 1000; ++i) backoff.Next();
  const absl::Duration d = backoff.Next();
  EXPECT_LE(d, absl::Seconds(5));
  EXPECT_GE(d, absl::Seconds(4));
}

TEST(HostPortTest, JoinsWithBracketsForIpv6AndSplitsBack) {
  EXPECT_EQ(JoinHostPort("10.0.0.5", 80), "10.0.0.5:80");
  EXPECT_EQ(JoinHostPort("fd00::5", 8080), "[fd00::5]:8080");
  std::string ip;
  int port = 0;
  ASSERT_TRUE(SplitHostPort("10.0.0.5:80", &ip, &port));
  EXPECT_EQ(ip, "10.0.0.5");
  EXPECT_EQ(port, 80);
  ASSERT_TRUE(SplitHostPort("[fd00::5]:8080", &ip, &port));
  EXPECT_EQ(ip, "fd00::5");
  EXPECT_EQ(port, 8080);
  ASSERT_TRUE(SplitHostPort("host:0", &ip, &port));
  EXPECT_EQ(port, 0);
  for (const char* bad :
       {"", "x", "10.0.0.5", "10.0.0.5:", "10.0.0.5:x", "10.0.0.5:70000", "fd00::5:80",
        "[fd00::5]80", "[fd00::5]:", "a:-1", "a:+80", "a:99999999999999999999"}) {
    EXPECT_FALSE(SplitHostPort(bad, &ip, &port)) << bad;
  }
}

TEST(HostPortTest, EndpointWithDefaultPort) {
  using Parsed = absl::StatusOr<HostPort>;
  EXPECT_EQ(*SplitHostPort("etcd1:2380", 2379), (HostPort{"etcd1", 2380}));
  EXPECT_EQ(*SplitHostPort("etcd1", 2379), (HostPort{"etcd1", 2379}));
  EXPECT_EQ(*SplitHostPort("10.0.0.5:1", 2379), (HostPort{"10.0.0.5", 1}));
  EXPECT_EQ(*SplitHostPort("[::1]:2380", 2379), (HostPort{"::1", 2380}));
  EXPECT_EQ(*SplitHostPort("[fd00::5]", 2181), (HostPort{"fd00::5", 2181}));
  EXPECT_EQ(SplitHostPort("[fd00::5]", 2181)->ToString(), "[fd00::5]:2181");
  EXPECT_EQ(SplitHostPort("a", 80)->ToString(), "a:80");
  // default_port 0: the port is required.
  EXPECT_EQ(*SplitHostPort("a:9090", 0), (HostPort{"a", 9090}));
  Parsed no_port = SplitHostPort("a", 0);
  EXPECT_TRUE(absl::IsInvalidArgument(no_port.status())) << no_port.status();
  for (const char* bad : {"",      ":2379",      "[]:1",       "a:",     "a:x",
                          "a:0",   "a:65536",    "a:+80",      "a:-1",   "a:99999999999999999999",
                          "::1",   "fd00::5:80", "[::1",       "[::1]x", "[::1]:",
                          "a b:1", "a:1 ",       "http://a:1", "a/b",    "u:p@a:1"}) {
    Parsed parsed = SplitHostPort(bad, 2379);
    EXPECT_FALSE(parsed.ok()) << bad;
    EXPECT_TRUE(absl::IsInvalidArgument(parsed.status())) << bad;
    if (!parsed.ok()) {
      EXPECT_NE(parsed.status().message().find(bad), std::string::npos) << bad;
    }
  }
}

TEST(LogSecretsTest, EverySecretIsScrubbedShortOnesAreIgnored) {
  SetLogSecrets({"hunter22", "tok-123456", "pw", ""});
  EXPECT_EQ(RedactSecrets("auth hunter22 failed; token tok-123456; pw stays"),
            "auth *** failed; token ***; pw stays");
  // The longest secret first: one that contains another is replaced whole.
  SetLogSecrets({"abcd", "abcdefgh"});
  EXPECT_EQ(RedactSecrets("x abcdefgh y abcd"), "x *** y ***");
  SetLogSecrets({});
  EXPECT_EQ(RedactSecrets("hunter22"), "hunter22");
}

// The cached timestamp reads exactly as absl::FormatTime's, within a second, across seconds,
// days and years, and before 1970.
TEST(LogTimestampTest, MatchesFormatTime) {
  const absl::Time base =
      absl::FromCivil(absl::CivilSecond(2026, 12, 31, 23, 59, 58), absl::UTCTimeZone());
  std::vector<absl::Time> times;
  for (int ms = 0; ms < 3000; ms += 7) times.push_back(base + absl::Milliseconds(ms));
  times.push_back(base + absl::Microseconds(999999));
  times.push_back(absl::UnixEpoch());
  times.push_back(absl::UnixEpoch() - absl::Milliseconds(1));
  times.push_back(absl::UnixEpoch() - absl::Milliseconds(1500));
  times.push_back(absl::Now());
  for (const absl::Time t : times) {
    std::string out = "x";
    AppendLogTimestamp(&out, t);
    EXPECT_EQ(out, "x" + absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone()))
        << absl::FormatTime(t);
  }
}

// Several registries: a thread's log context names the registry on each of its lines (plain
// text prefix, JSON member), scrubbed of secrets like the message; other threads are unaffected.
TEST(LogContextTest, NamesTheRegistryOnThisThreadOnly) {
  SetLogSecrets({"s3cret-pw"});
  SetThreadLogContext("etcd://u:s3cret-pw@h:1/p");
  ::testing::internal::CaptureStderr();
  LogLine(LogLevel::kInfo, "registered x");
  std::thread other([] { LogLine(LogLevel::kInfo, "from another thread"); });
  other.join();
  SetLogJson(true);
  LogLine(LogLevel::kInfo, "json line");
  SetLogJson(false);
  SetThreadLogContext("");
  LogLine(LogLevel::kInfo, "no context");
  const std::string out = ::testing::internal::GetCapturedStderr();
  SetLogSecrets({});
  EXPECT_NE(out.find(" info [etcd://u:***@h:1/p] registered x\n"), std::string::npos) << out;
  EXPECT_NE(out.find(" info from another thread\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\"registry\":\"etcd://u:***@h:1/p\",\"msg\":\"json line\"}"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find(" info no context\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("s3cret-pw"), std::string::npos) << out;
}

}  // namespace
}  // namespace registrator
