// ValidateNetworkName: what Docker accepts as a network name passes, what no network can be
// called (or what would garble a log line) does not.
#include "registrator/network_name.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace registrator {
namespace {

using ::testing::HasSubstr;

TEST(ValidateNetworkName, NamesDockerAccepts) {
  // Each of these was created by dockerd 20.10.24 (testdata/docker/README.md).
  for (const std::string& name :
       {std::string("backnet"), std::string("we ird"), std::string("a/b"), std::string(".dot"),
        std::string("x:y"), std::string("\xC3\xBCn\xC3\xAF"), std::string("ok_name.v1-2"),
        std::string(300, 'a'), std::string(kMaxNetworkNameBytes, 'n')}) {
    EXPECT_TRUE(ValidateNetworkName(name).ok()) << name;
  }
}

TEST(ValidateNetworkName, RefusesWhatNoNetworkIsCalled) {
  struct Case {
    std::string name;
    std::string why;
  };
  for (const Case& c : std::vector<Case>{
           {"", "empty"},
           {" \t ", "only whitespace"},
           {std::string(kMaxNetworkNameBytes + 1, 'n'), "more than the limit of 1024"},
           {"net\nwork", "control character U+000A"},
           {std::string("net\0work", 8), "control character U+0000"},
           {"net\x7Fwork", "control character U+007F"},
           {"net\xC2\x85work", "control character U+0085"},
           {"net\xFFwork", "not valid UTF-8"},
           {"net\xC3", "not valid UTF-8"},
           {"\xC0\xAF", "not valid UTF-8"},          // Overlong "/".
           {"\xED\xA0\x80", "not valid UTF-8"},      // A surrogate.
           {"\xF4\x90\x80\x80", "not valid UTF-8"},  // Beyond U+10FFFF.
       }) {
    absl::Status status = ValidateNetworkName(c.name);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.why;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.why));
  }
}

}  // namespace
}  // namespace registrator
