// ReleaseStartupPages drops the executable's resident read-only pages, and the code in them
// still runs afterwards (it is mapped again on first touch).
#include "registrator/startup_pages.h"

#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "testing/process.h"

namespace registrator {
namespace {

// Resident kB of this executable's read-only mappings, from /proc/self/smaps.
long ExecutableReadOnlyRssKb() {
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return -1;
  const absl::string_view exe_path(exe, static_cast<size_t>(n));
  const std::string smaps = fakes::ReadFileOrEmpty("/proc/self/smaps");
  long total = 0;
  bool counting = false;
  for (absl::string_view line : absl::StrSplit(smaps, '\n')) {
    const absl::string_view first = line.substr(0, line.find(' '));
    if (!absl::StrContains(first, ':') && absl::StrContains(first, '-')) {
      // "start-end perms offset dev inode path"
      std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
      counting = fields.size() >= 6 && fields[1][1] != 'w' && fields[5] == exe_path;
      continue;
    }
    if (!counting || !absl::ConsumePrefix(&line, "Rss:")) continue;
    line = absl::StripAsciiWhitespace(line);
    absl::ConsumeSuffix(&line, " kB");
    long kb = 0;
    if (absl::SimpleAtoi(line, &kb)) total += kb;
  }
  return total;
}

TEST(StartupPagesTest, DropsResidentReadOnlyPagesAndCodeStillRuns) {
  const long before = ExecutableReadOnlyRssKb();
  ASSERT_GT(before, 0) << fakes::ReadFileOrEmpty("/proc/self/smaps");
  ReleaseStartupPages();
  const long after = ExecutableReadOnlyRssKb();
  std::printf("read-only resident: %ld kB before, %ld kB after\n", before, after);
  // Reading smaps itself runs code that is mapped again, but far less than gtest's start-up
  // and the first smaps pass touched.
  EXPECT_LT(after, before);
  // Code and constants of the executable work after the release.
  EXPECT_EQ(absl::StrCat("a", 1), "a1");
  ReleaseStartupPages();
  EXPECT_GT(ExecutableReadOnlyRssKb(), 0);
}

}  // namespace
}  // namespace registrator
