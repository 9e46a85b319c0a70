// Tests of the POSIX-shell-like splitter behind check_script -> ScriptArgs.
#include "registrator/shell_split.h"

#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace registrator {
namespace {

using ::registrator::fakes::IsOk;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Not;

const std::map<std::string, std::string, std::less<>> kVars = {{"SERVICE_IP", "10.0.0.5"},
                                                               {"SERVICE_PORT", "8080"}};

std::vector<std::string> Split(const std::string& command) {
  absl::StatusOr<std::vector<std::string>> words = ShellSplit(command, kVars);
  EXPECT_THAT(words, IsOk()) << command << ": " << words.status();
  return words.ok() ? *words : std::vector<std::string>{"<error>"};
}

TEST(ShellSplitTest, BlanksSeparateWords) {
  EXPECT_THAT(Split("  curl\t-f \n http://x/  "), ElementsAre("curl", "-f", "http://x/"));
}

TEST(ShellSplitTest, EmptyAndBlankGiveNoWords) {
  EXPECT_THAT(Split(""), IsEmpty());
  EXPECT_THAT(Split("   \t"), IsEmpty());
}

TEST(ShellSplitTest, SingleQuotesKeepEverythingLiterallyButPlaceholders) {
  EXPECT_THAT(Split("sh -c 'echo \"a  b\" \\n $HOME $SERVICE_IP:${SERVICE_PORT}'"),
              ElementsAre("sh", "-c", "echo \"a  b\" \\n $HOME 10.0.0.5:8080"));
  // A "${" whose "}" lies beyond the closing quote is not a reference.
  EXPECT_THAT(Split("'${SERVICE_IP' x}"), ElementsAre("${SERVICE_IP", "x}"));
}

TEST(ShellSplitTest, DoubleQuotesExpandAndEscapeOnlySpecials) {
  EXPECT_THAT(Split(R"(echo "a \"b\" \$x \\ \n $SERVICE_IP:${SERVICE_PORT}")"),
              ElementsAre("echo", R"(a "b" $x \ \n 10.0.0.5:8080)"));
}

TEST(ShellSplitTest, UnquotedBackslashEscapesAnyCharacter) {
  EXPECT_THAT(Split(R"(a\ b c\'d \$SERVICE_IP)"), ElementsAre("a b", "c'd", "$SERVICE_IP"));
}

TEST(ShellSplitTest, BackslashNewlineIsRemoved) {
  EXPECT_THAT(Split("ab\\\ncd"), ElementsAre("abcd"));
}

TEST(ShellSplitTest, AdjacentQuotedPartsJoinOneWord) {
  EXPECT_THAT(Split(R"(--url="http://"'$SERVICE_IP'":$SERVICE_PORT"/x)"),
              ElementsAre("--url=http://10.0.0.5:8080/x"));
}

TEST(ShellSplitTest, EmptyQuotesMakeAnEmptyWord) {
  EXPECT_THAT(Split("a '' \"\" b"), ElementsAre("a", "", "", "b"));
}

TEST(ShellSplitTest, VariablesExpandUnquotedWithAndWithoutBraces) {
  EXPECT_THAT(Split("check $SERVICE_IP ${SERVICE_PORT} $SERVICE_IP:$SERVICE_PORT"),
              ElementsAre("check", "10.0.0.5", "8080", "10.0.0.5:8080"));
}

TEST(ShellSplitTest, UnknownVariablesStayLiteral) {
  EXPECT_THAT(Split("echo $HOME ${PATH} $ $1 ${SERVICE_IP"),
              ElementsAre("echo", "$HOME", "${PATH}", "$", "$1", "${SERVICE_IP"));
}

TEST(ShellSplitTest, LongerNameIsNotAPrefixMatch) {
  EXPECT_THAT(Split("$SERVICE_IPX"), ElementsAre("$SERVICE_IPX"));
}

TEST(ShellSplitTest, CommentRunsToEndOfLine) {
  EXPECT_THAT(Split("a #b c\nd e#f"), ElementsAre("a", "d", "e#f"));
}

TEST(ShellSplitTest, UnterminatedQuotesAndTrailingBackslashAreErrors) {
  EXPECT_THAT(ShellSplit("echo 'abc", kVars), Not(IsOk()));
  EXPECT_THAT(ShellSplit("echo \"abc", kVars), Not(IsOk()));
  EXPECT_THAT(ShellSplit("echo \"abc\\\"", kVars), Not(IsOk()));
  EXPECT_THAT(ShellSplit("echo abc\\", kVars), Not(IsOk()));
}

TEST(ShellSplitTest, NonAsciiBytesPassThrough) {
  EXPECT_THAT(Split("échø \"ü ß\""), ElementsAre("échø", "ü ß"));
}

}  // namespace
}  // namespace registrator
