// Parsing and evaluation of the -tags template subset (see tags_template.h). The inspect JSON is
// read with simdjson's DOM parser through error codes only; nothing here throws.
#include "registrator/tags_template.h"

#include <simdjson.h>

#include <string_view>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace registrator {
namespace {

constexpr absl::string_view kSupported =
    "supported: literal text, {{.Field.Path}} and {{index .Field.Path \"key\"}}";

bool IsIdentStart(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool IsIdentChar(char c) { return IsIdentStart(c) || (c >= '0' && c <= '9'); }

absl::Status BadAction(absl::string_view action, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("-tags: unsupported template action \"{{",
                                                 absl::CHexEscape(action), "}}\": ", why, " (",
                                                 kSupported, ")"));
}

// Parses ".A.B.C" at the front of `text`, consuming it.
absl::Status ParsePath(absl::string_view& text, absl::string_view action,
                       std::vector<std::string>& path) {
  if (text.empty() || text[0] != '.') return BadAction(action, "expected a field path like .Name");
  while (!text.empty() && text[0] == '.') {
    text.remove_prefix(1);
    size_t len = 0;
    if (text.empty() || !IsIdentStart(text[0])) {
      return BadAction(action, "expected a field name after \".\"");
    }
    while (len < text.size() && IsIdentChar(text[len])) ++len;
    path.emplace_back(text.substr(0, len));
    text.remove_prefix(len);
  }
  return absl::OkStatus();
}

// Parses one Go string literal ("..." with escapes, or `raw`) at the front of `text`.
absl::Status ParseStringLiteral(absl::string_view& text, absl::string_view action,
                                std::string& out) {
  if (text.empty() || (text[0] != '"' && text[0] != '`')) {
    return BadAction(action, "index keys must be quoted strings");
  }
  const char quote = text[0];
  size_t i = 1;
  std::string raw;
  for (; i < text.size(); ++i) {
    if (text[i] == quote) break;
    if (quote == '"' && text[i] == '\\' && i + 1 < text.size()) {
      raw += text[i];
      ++i;
    }
    raw += text[i];
  }
  if (i >= text.size()) return BadAction(action, "unterminated string");
  text.remove_prefix(i + 1);
  if (quote == '`') {
    out = std::move(raw);
    return absl::OkStatus();
  }
  std::string error;
  if (!absl::CUnescape(raw, &out, &error)) {
    return BadAction(action, absl::StrCat("bad string escape: ", error));
  }
  return absl::OkStatus();
}

absl::StatusOr<TagsTemplatePiece> ParseAction(absl::string_view action) {
  absl::string_view text = absl::StripAsciiWhitespace(action);
  TagsTemplatePiece piece;
  if (absl::ConsumePrefix(&text, "index")) {
    if (text.empty() || !absl::ascii_isspace(text[0])) {
      return BadAction(action, "unknown function");
    }
    text = absl::StripLeadingAsciiWhitespace(text);
    if (absl::Status s = ParsePath(text, action, piece.path); !s.ok()) return s;
    text = absl::StripLeadingAsciiWhitespace(text);
    while (!text.empty()) {
      std::string key;
      if (absl::Status s = ParseStringLiteral(text, action, key); !s.ok()) return s;
      piece.index.push_back(std::move(key));
      text = absl::StripLeadingAsciiWhitespace(text);
    }
    if (piece.index.empty()) return BadAction(action, "index needs at least one key");
    return piece;
  }
  if (absl::Status s = ParsePath(text, action, piece.path); !s.ok()) return s;
  if (!absl::StripAsciiWhitespace(text).empty()) {
    return BadAction(action, "only a single field path is allowed");
  }
  return piece;
}

// Appends a JSON number read as T (the type simdjson reports for it).
template <typename T>
bool AppendNumber(const simdjson::dom::element& value, std::string& out) {
  T number{};
  if (value.get(number) != simdjson::SUCCESS) return false;
  absl::StrAppend(&out, number);
  return true;
}

// Renders a scalar JSON value like Go's template does for the corresponding Go value.
bool RenderScalar(const simdjson::dom::element& value, std::string& out) {
  switch (value.type()) {
    case simdjson::dom::element_type::STRING: {
      std::string_view s;
      if (value.get(s) != simdjson::SUCCESS) return false;
      out.append(s.data(), s.size());
      return true;
    }
    case simdjson::dom::element_type::INT64:
      return AppendNumber<int64_t>(value, out);
    case simdjson::dom::element_type::UINT64:
      return AppendNumber<uint64_t>(value, out);
    case simdjson::dom::element_type::DOUBLE:
      return AppendNumber<double>(value, out);
    case simdjson::dom::element_type::BOOL: {
      bool v = false;
      if (value.get(v) != simdjson::SUCCESS) return false;
      out += v ? "true" : "false";
      return true;
    }
    case simdjson::dom::element_type::NULL_VALUE:
      return true;  // Renders as "".
    default:
      return false;  // Objects and arrays have no tag form.
  }
}

std::string Describe(const TagsTemplatePiece& piece) {
  std::string text = absl::StrCat(".", absl::StrJoin(piece.path, "."));
  for (const std::string& key : piece.index) absl::StrAppend(&text, " \"", key, "\"");
  return text;
}

}  // namespace

bool TagsTemplate::has_lookups() const {
  for (const TagsTemplatePiece& p : pieces) {
    if (!p.path.empty()) return true;
  }
  return false;
}

absl::StatusOr<TagsTemplate> ParseTagsTemplate(absl::string_view text) {
  TagsTemplate tmpl;
  std::string literal;
  bool trim_next = false;  // The previous action ended with " -}}".
  while (!text.empty()) {
    size_t open = text.find("{{");
    absl::string_view before = text.substr(0, open);
    if (trim_next) before = absl::StripLeadingAsciiWhitespace(before);
    trim_next = false;
    if (open == absl::string_view::npos) {
      if (before.find("}}") != absl::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrCat(
            "-tags: \"}}\" without a matching \"{{\" in \"", absl::CHexEscape(text), "\""));
      }
      literal.append(before.data(), before.size());
      break;
    }
    size_t close = text.find("}}", open + 2);
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "-tags: \"{{\" without a matching \"}}\" in \"", absl::CHexEscape(text), "\""));
    }
    absl::string_view action = text.substr(open + 2, close - open - 2);
    // Go's trim markers: "{{- " trims blanks before, " -}}" trims blanks after.
    if (absl::StartsWith(action, "- ") || action == "-") {
      before = absl::StripTrailingAsciiWhitespace(before);
      action.remove_prefix(1);
    }
    if (absl::EndsWith(action, " -")) {
      trim_next = true;
      action.remove_suffix(1);
    }
    if (before.find("}}") != absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "-tags: \"}}\" without a matching \"{{\" in \"", absl::CHexEscape(text), "\""));
    }
    literal.append(before.data(), before.size());
    absl::StatusOr<TagsTemplatePiece> piece = ParseAction(action);
    if (!piece.ok()) return piece.status();
    if (!literal.empty()) {
      TagsTemplatePiece lit;
      lit.literal = std::move(literal);
      tmpl.pieces.push_back(std::move(lit));
      literal.clear();
    }
    tmpl.pieces.push_back(*std::move(piece));
    text.remove_prefix(close + 2);
  }
  if (!literal.empty()) {
    TagsTemplatePiece lit;
    lit.literal = std::move(literal);
    tmpl.pieces.push_back(std::move(lit));
  }
  return tmpl;
}

absl::Status ValidateTagsTemplate(absl::string_view tmpl) {
  return ParseTagsTemplate(tmpl).status();
}

std::string EvaluateTagsTemplate(const TagsTemplate& tmpl, absl::string_view raw_json,
                                 std::vector<std::string>* warnings) {
  std::string out;
  simdjson::dom::element root;
  bool have_root = false;
  if (tmpl.has_lookups()) {
    // One parser per thread: dom::parser is not thread-safe, and reusing it keeps its buffers.
    thread_local simdjson::dom::parser parser;
    simdjson::error_code err = raw_json.empty()
                                   ? simdjson::EMPTY
                                   : parser.parse(raw_json.data(), raw_json.size()).get(root);
    have_root = err == simdjson::SUCCESS;
    if (!have_root && warnings != nullptr) {
      warnings->push_back(absl::StrCat("-tags: cannot evaluate template fields: inspect JSON is ",
                                       raw_json.empty() ? "missing" : "not valid JSON", " (",
                                       simdjson::error_message(err), ")"));
    }
  }
  for (const TagsTemplatePiece& piece : tmpl.pieces) {
    if (piece.path.empty()) {
      out += piece.literal;
      continue;
    }
    if (!have_root) continue;
    simdjson::dom::element cur = root;
    bool found = true;
    for (const std::string& key : piece.path) {
      simdjson::dom::object obj;
      if (cur.get(obj) != simdjson::SUCCESS || obj.at_key(key).get(cur) != simdjson::SUCCESS) {
        found = false;
        break;
      }
    }
    if (!found) {
      if (warnings != nullptr) {
        warnings->push_back(absl::StrCat("-tags: field ", Describe(piece),
                                         " not found in the container's inspect data"));
      }
      continue;
    }
    bool index_missing = false;
    for (const std::string& key : piece.index) {
      simdjson::dom::object obj;
      if (cur.get(obj) != simdjson::SUCCESS) {
        index_missing = true;  // null map (e.g. "Labels": null) behaves like an empty map.
        if (!cur.is_null() && warnings != nullptr) {
          warnings->push_back(
              absl::StrCat("-tags: field ", Describe(piece), " cannot be indexed: not an object"));
        }
        break;
      }
      if (obj.at_key(key).get(cur) != simdjson::SUCCESS) {
        index_missing = true;
        break;
      }
    }
    if (index_missing) continue;
    if (!RenderScalar(cur, out) && warnings != nullptr) {
      warnings->push_back(absl::StrCat("-tags: field ", Describe(piece),
                                       " is an object or array, not a tag value"));
    }
  }
  return out;
}

std::vector<std::string> SplitTags(absl::string_view text) {
  std::vector<std::string> tags;
  std::string cur;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == ',') {
      cur += ',';
      ++i;
    } else if (text[i] == ',') {
      if (!cur.empty()) tags.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += text[i];
    }
  }
  if (!cur.empty()) tags.push_back(std::move(cur));
  return tags;
}

}  // namespace registrator
