// gMock matchers for absl::Status and absl::StatusOr<T>, so a failed expectation prints the
// status instead of "Value of: x.ok(), Actual: false":
//   EXPECT_THAT(adapter->Register(service), IsOk());
//   EXPECT_THAT(ParseThing(text), StatusIs(absl::StatusCode::kInvalidArgument, "port"));
#ifndef TESTING_STATUS_MATCHERS_H_
#define TESTING_STATUS_MATCHERS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"

namespace registrator::fakes {
namespace status_matchers_internal {

inline const absl::Status& StatusOf(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

}  // namespace status_matchers_internal

MATCHER(IsOk, negation ? "is not OK" : "is OK") {
  const absl::Status& status = status_matchers_internal::StatusOf(arg);
  if (!status.ok()) *result_listener << "whose status is " << status;
  return status.ok();
}

// The status has `code` and its message contains `message_substring` ("" matches any message).
MATCHER_P2(StatusIs, code, message_substring,
           absl::StrCat(negation ? "has not " : "has ", "status ", absl::StatusCodeToString(code),
                        " with a message containing \"", std::string(message_substring), "\"")) {
  const absl::Status& status = status_matchers_internal::StatusOf(arg);
  *result_listener << "whose status is " << status;
  return status.code() == code && absl::StrContains(status.message(), message_substring);
}

}  // namespace registrator::fakes

#endif  // TESTING_STATUS_MATCHERS_H_
