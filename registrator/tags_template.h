// The -tags flag: a comma list of tags appended to every service. Upstream runs it as a Go
// text/template over the container inspect object; we support literal text mixed with the field
// lookups people actually use: {{.Config.Hostname}}, {{.Name}}, {{index .Config.Labels "team"}}
// (and the {{- / -}} whitespace trimmers). Anything else is rejected at startup.
#ifndef REGISTRATOR_TAGS_TEMPLATE_H_
#define REGISTRATOR_TAGS_TEMPLATE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace registrator {

// One piece of a parsed template: literal text, or a lookup of `path` (JSON object keys from the
// inspect document's root) followed by `index` keys.
struct TagsTemplatePiece {
  std::string literal;             // Used when `path` is empty.
  std::vector<std::string> path;   // {"Config", "Hostname"} for {{.Config.Hostname}}.
  std::vector<std::string> index;  // {"team"} for {{index .Config.Labels "team"}}.
};

struct TagsTemplate {
  std::vector<TagsTemplatePiece> pieces;
  // True when some piece looks a field up (so the inspect JSON must be parsed).
  bool has_lookups() const;
};

// Parses the -tags value. INVALID_ARGUMENT names the offending action and what is supported.
absl::StatusOr<TagsTemplate> ParseTagsTemplate(absl::string_view text);

// Startup validation of -tags: OK when ParseTagsTemplate accepts it.
absl::Status ValidateTagsTemplate(absl::string_view tmpl);

// Evaluates `tmpl` against the raw inspect JSON of one container. A missing field or one that is
// not a scalar renders as "" and appends a warning (a missing `index` key renders as "" silently,
// as Go's index does on a map). Invalid JSON renders every lookup as "" with one warning.
std::string EvaluateTagsTemplate(const TagsTemplate& tmpl, absl::string_view raw_json,
                                 std::vector<std::string>* warnings);

// Splits a tag list on commas: "\," is a literal comma, empty pieces are dropped, order kept.
std::vector<std::string> SplitTags(absl::string_view text);

}  // namespace registrator

#endif  // REGISTRATOR_TAGS_TEMPLATE_H_
