// Writing JSON by hand: string escaping shared by the log, the adapters and the HTTP endpoint.
// (Parsing is simdjson's job.)
#ifndef REGISTRATOR_COMMON_JSON_H_
#define REGISTRATOR_COMMON_JSON_H_

#include <string>

#include "absl/strings/string_view.h"

namespace registrator {

// Appends `text` as a JSON string literal, quotes included. Control characters are escaped;
// bytes >= 0x80 pass through (the input is expected to be UTF-8).
void AppendJsonString(std::string* out, absl::string_view text);

// `text` as a JSON string literal.
std::string JsonString(absl::string_view text);

}  // namespace registrator

#endif  // REGISTRATOR_COMMON_JSON_H_
