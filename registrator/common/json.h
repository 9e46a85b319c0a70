// Writing JSON by hand: string escaping shared by the log, the adapters and the HTTP endpoint.
// (Parsing is simdjson's job.)
#ifndef REGISTRATOR_COMMON_JSON_H_
#define REGISTRATOR_COMMON_JSON_H_

#include <string>

#include "absl/strings/string_view.h"

namespace registrator {

// Appends `text` as a JSON string literal, quotes included, encoded exactly as Go's
// encoding/json does (upstream registrator's JSON): control characters, <, > and & as \u00XX,
// invalid UTF-8 as \ufffd, U+2028/U+2029 escaped. The result is always valid JSON, whatever the
// bytes (container env and labels are untrusted).
void AppendJsonString(std::string* out, absl::string_view text);

// `text` as a JSON string literal.
std::string JsonString(absl::string_view text);

}  // namespace registrator

#endif  // REGISTRATOR_COMMON_JSON_H_
