// ValidateKeySegment / ValidateServiceKeys: what may be one segment of a backend key or path.
#include "registrator/model/service_validation.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace registrator {
namespace {

using ::testing::HasSubstr;

TEST(ValidateKeySegmentTest, AcceptsUpstreamIdsNamesAndAddresses) {
  for (const std::string& ok : std::vector<std::string>{
           "web", "dockerhost:my.app_1-x:80", "dockerhost:dns:53:udp", "a..b", "...", ".x", "x.",
           "名前 svc", "10.0.0.5", "fd00::7", "%2e%2e", "a b", std::string(512, 'a')}) {
    EXPECT_TRUE(ValidateKeySegment(ok).ok()) << ok << ": " << ValidateKeySegment(ok);
  }
}

TEST(ValidateKeySegmentTest, RefusesWhatCouldLeaveTheEntry) {
  struct Case {
    std::string value;
    const char* why;
  };
  for (const Case& c : {
           Case{"", "empty"},
           Case{".", "\"..\" path segment"},
           Case{"..", "\"..\" path segment"},
           Case{"a/b", "contains \"/\""},
           Case{"../../agent/service/deregister/x", "contains \"/\""},
           Case{"/", "contains \"/\""},
           Case{std::string("a\0b", 3), "U+0000"},
           Case{"a\nb", "U+000a"},
           Case{"a\tb", "U+0009"},
           Case{"\x7f", "U+007f"},
           Case{"a\xc2\x85", "U+0085"},        // NEL, a C1 control.
           Case{"\xc0\xae\xc0\xae", "UTF-8"},  // Overlong "..".
           Case{"\xff", "UTF-8"},
           Case{"\xed\xa0\x80", "UTF-8"},      // A surrogate.
           Case{"\xe2\x82", "UTF-8"},          // Truncated.
           Case{"\xee\x80\x80", "ZooKeeper"},  // U+E000.
           Case{"\xef\xbf\xbf", "ZooKeeper"},  // U+FFFF.
           Case{std::string(513, 'a'), "more than the limit of 512"},
       }) {
    absl::Status status = ValidateKeySegment(c.value);
    EXPECT_TRUE(absl::IsInvalidArgument(status)) << c.value;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.why)) << c.value;
  }
}

TEST(ValidateServiceKeysTest, NamesTheFailingField) {
  Service s;
  s.name = "web";
  s.id = "h:c:80";
  s.ip = "10.0.0.1";
  EXPECT_TRUE(ValidateServiceKeys(s).ok());
  Service bad_name = s;
  bad_name.name = "..";
  EXPECT_THAT(std::string(ValidateServiceKeys(bad_name).message()), HasSubstr("name: "));
  Service bad_id = s;
  bad_id.id = "a/b";
  EXPECT_THAT(std::string(ValidateServiceKeys(bad_id).message()), HasSubstr("ID: "));
  Service bad_ip = s;
  bad_ip.ip = "10.0.0.1/../x";
  EXPECT_THAT(std::string(ValidateServiceKeys(bad_ip).message()), HasSubstr("IP: "));
}

}  // namespace
}  // namespace registrator
