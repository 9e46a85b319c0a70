// Tests of the -tags template subset: parsing/validation, evaluation against inspect JSON, and
// the comma splitting shared with SERVICE_TAGS.
#include "registrator/tags_template.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace registrator {
namespace {

using ::registrator::fakes::IsOk;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kJson[] = R"({"Name":"/web-1","Id":"abc","RestartCount":3,"State":{"Running":true},
  "Config":{"Hostname":"h1","Labels":{"team":"core","odd key":"v,w"},"Env":["A=1"],"Tty":null},
  "HostConfig":{"NetworkMode":"appnet"}})";

std::string Eval(const std::string& tmpl, std::vector<std::string>* warnings = nullptr,
                 const std::string& json = kJson) {
  absl::StatusOr<TagsTemplate> parsed = ParseTagsTemplate(tmpl);
  EXPECT_THAT(parsed, IsOk()) << tmpl << ": " << parsed.status();
  if (!parsed.ok()) return "<invalid>";
  return EvaluateTagsTemplate(*parsed, json, warnings);
}

TEST(TagsTemplateTest, PlainListIsLiteral) {
  std::vector<std::string> warnings;
  EXPECT_EQ(Eval("a,b,c", &warnings), "a,b,c");
  EXPECT_THAT(warnings, IsEmpty());
  // Plain lists never need the JSON: no warning even without it.
  EXPECT_EQ(Eval("a,b", &warnings, ""), "a,b");
  EXPECT_THAT(warnings, IsEmpty());
}

TEST(TagsTemplateTest, FieldPathsMixedWithText) {
  EXPECT_EQ(Eval("host-{{.Config.Hostname}},name={{ .Name }},x"), "host-h1,name=/web-1,x");
  EXPECT_EQ(Eval("{{.HostConfig.NetworkMode}}"), "appnet");
}

TEST(TagsTemplateTest, IndexOnLabels) {
  EXPECT_EQ(Eval(R"(team-{{index .Config.Labels "team"}})"), "team-core");
  EXPECT_EQ(Eval(R"({{index .Config.Labels "odd key"}})"), "v,w");
  EXPECT_EQ(Eval("{{index .Config.Labels `team`}}"), "core");
}

TEST(TagsTemplateTest, MissingIndexKeyIsEmptyWithoutWarning) {
  std::vector<std::string> warnings;
  EXPECT_EQ(Eval(R"(a{{index .Config.Labels "nope"}}b)", &warnings), "ab");
  EXPECT_THAT(warnings, IsEmpty());
}

TEST(TagsTemplateTest, MissingFieldIsEmptyWithWarning) {
  std::vector<std::string> warnings;
  EXPECT_EQ(Eval("a{{.Config.Nope}}b", &warnings), "ab");
  ASSERT_THAT(warnings, SizeIs(1));
  EXPECT_THAT(warnings[0], HasSubstr(".Config.Nope"));
}

TEST(TagsTemplateTest, ScalarsRenderLikeGo) {
  EXPECT_EQ(Eval("{{.RestartCount}}/{{.State.Running}}/{{.Config.Tty}}"), "3/true/");
}

TEST(TagsTemplateTest, ObjectsAndArraysWarn) {
  std::vector<std::string> warnings;
  EXPECT_EQ(Eval("{{.Config.Env}}{{.Config}}", &warnings), "");
  EXPECT_THAT(warnings, SizeIs(2));
}

TEST(TagsTemplateTest, InvalidJsonWarnsOnceAndKeepsLiterals) {
  std::vector<std::string> warnings;
  EXPECT_EQ(Eval("x,{{.Name}},{{.Id}}", &warnings, "{not json"), "x,,");
  EXPECT_THAT(warnings, SizeIs(1));
}

TEST(TagsTemplateTest, TrimMarkers) {
  EXPECT_EQ(Eval("a ,  {{- .Config.Hostname -}}  , b"), "a ,h1, b");
}

TEST(TagsTemplateTest, ValidateAcceptsSupportedForms) {
  EXPECT_THAT(ValidateTagsTemplate(""), IsOk());
  EXPECT_THAT(ValidateTagsTemplate("a,b"), IsOk());
  EXPECT_THAT(ValidateTagsTemplate("{{.Config.Hostname}},{{.Name}}"), IsOk());
  EXPECT_THAT(ValidateTagsTemplate(R"({{index .Config.Labels "team"}})"), IsOk());
  EXPECT_THAT(ValidateTagsTemplate(R"({{index .Config.Labels "a\"b"}})"), IsOk());
}

TEST(TagsTemplateTest, ValidateRejectsEverythingElseClearly) {
  for (const char* bad :
       {"{{.}}", "{{.Config.}}", "{{Name}}", "{{.Name | upper}}", "{{if .Name}}x{{end}}",
        "{{printf \"%s\" .Name}}", "{{index .Config.Labels}}", "{{index .Config.Labels team}}",
        "{{index .Config.Labels \"team}}", "a{{.Name", "a}}b", "{{/* c */}}", "{{.Name .Id}}",
        "{{$x := 1}}", "{{.Config.9}}", "{{index .Config.Labels \"\\q\"}}", "{{}}"}) {
    absl::Status status = ValidateTagsTemplate(bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(status.message()), HasSubstr("-tags")) << bad;
  }
  EXPECT_THAT(std::string(ValidateTagsTemplate("{{.Name | upper}}").message()),
              HasSubstr("supported:"));
}

TEST(SplitTagsTest, CommasEscapesAndEmptyPieces) {
  EXPECT_THAT(SplitTags("a,b,,c,"), ElementsAre("a", "b", "c"));
  EXPECT_THAT(SplitTags(R"(env\,one,env-two)"), ElementsAre("env,one", "env-two"));
  EXPECT_THAT(SplitTags(R"(a\b,\)"), ElementsAre(R"(a\b)", R"(\)"));
  EXPECT_THAT(SplitTags(""), IsEmpty());
  EXPECT_THAT(SplitTags(",,"), IsEmpty());
}

TEST(SplitTagsTest, OrderIsKept) { EXPECT_THAT(SplitTags("z,a,m"), ElementsAre("z", "a", "m")); }

}  // namespace
}  // namespace registrator
