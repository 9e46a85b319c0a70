// ValidateNetworkName; see network_name.h.
#include "registrator/network_name.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace registrator {
namespace {

// Length of the UTF-8 sequence at text[i] and its code point; 0 when invalid (truncated,
// overlong, a surrogate, beyond U+10FFFF).
size_t DecodeUtf8(absl::string_view text, size_t i, uint32_t* code_point) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  size_t length = 1;
  uint32_t cp = lead;
  uint32_t min = 0;
  if (lead >= 0x80) {
    if ((lead & 0xE0) == 0xC0) {
      length = 2, cp = lead & 0x1F, min = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3, cp = lead & 0x0F, min = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4, cp = lead & 0x07, min = 0x10000;
    } else {
      return 0;
    }
    if (i + length > text.size()) return 0;
    for (size_t k = 1; k < length; ++k) {
      if ((byte(i + k) & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (byte(i + k) & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  }
  *code_point = cp;
  return length;
}

}  // namespace

absl::Status ValidateNetworkName(absl::string_view name) {
  if (absl::StripAsciiWhitespace(name).empty()) {
    return absl::InvalidArgumentError("empty or only whitespace");
  }
  if (name.size() > kMaxNetworkNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(name.size(), " bytes, more than the limit of ", kMaxNetworkNameBytes));
  }
  for (size_t i = 0; i < name.size();) {
    uint32_t cp = 0;
    const size_t length = DecodeUtf8(name, i, &cp);
    if (length == 0) return absl::InvalidArgumentError("not valid UTF-8");
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("contains the control character U+%04X", cp));
    }
    i += length;
  }
  return absl::OkStatus();
}

}  // namespace registrator
