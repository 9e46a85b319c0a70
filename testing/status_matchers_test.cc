// The status matchers match what they say and explain a mismatch with the status itself.
#include "testing/status_matchers.h"

#include "gtest/gtest.h"

namespace registrator::fakes {
namespace {

using ::testing::Not;

template <typename M, typename T>
std::string Explain(const M& matcher, const T& value) {
  ::testing::StringMatchResultListener listener;
  ::testing::ExplainMatchResult(matcher, value, &listener);
  return listener.str();
}

TEST(StatusMatchersTest, IsOkMatchesOkStatusAndValue) {
  EXPECT_THAT(absl::OkStatus(), IsOk());
  EXPECT_THAT(absl::StatusOr<int>(7), IsOk());
  EXPECT_THAT(absl::UnavailableError("down"), Not(IsOk()));
  EXPECT_THAT(absl::StatusOr<int>(absl::NotFoundError("gone")), Not(IsOk()));
}

TEST(StatusMatchersTest, IsOkExplainsWithTheStatus) {
  EXPECT_EQ(Explain(IsOk(), absl::UnavailableError("connection refused")),
            "whose status is UNAVAILABLE: connection refused");
}

TEST(StatusMatchersTest, StatusIsChecksCodeAndMessage) {
  const absl::Status status = absl::InvalidArgumentError("-ttl must be greater than -ttl-refresh");
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument, "-ttl-refresh"));
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument, ""));
  EXPECT_THAT(status, Not(StatusIs(absl::StatusCode::kUnavailable, "-ttl-refresh")));
  EXPECT_THAT(status, Not(StatusIs(absl::StatusCode::kInvalidArgument, "-resync")));
  EXPECT_THAT(absl::StatusOr<int>(status), StatusIs(absl::StatusCode::kInvalidArgument, "ttl"));
  EXPECT_THAT(absl::StatusOr<int>(3), Not(StatusIs(absl::StatusCode::kInvalidArgument, "")));
}

}  // namespace
}  // namespace registrator::fakes
