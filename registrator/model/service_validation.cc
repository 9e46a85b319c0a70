// ValidateServiceKeys: the single gate between what a container says and the keys and paths a
// backend is asked to write (see service_validation.h).
#include "registrator/model/service_validation.h"

#include <cstdint>

#include "absl/strings/str_cat.h"

namespace registrator {
namespace {

// Decodes one UTF-8 sequence at `text[*i]`; false for an invalid, overlong or surrogate one.
bool NextCodePoint(absl::string_view text, size_t* i, uint32_t* code_point) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(*i);
  size_t length = 0;
  uint32_t cp = 0;
  uint32_t min = 0;
  if (lead < 0x80) {
    *code_point = lead;
    ++*i;
    return true;
  } else if ((lead & 0xE0) == 0xC0) {
    length = 2;
    cp = lead & 0x1F;
    min = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3;
    cp = lead & 0x0F;
    min = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4;
    cp = lead & 0x07;
    min = 0x10000;
  } else {
    return false;
  }
  if (*i + length > text.size()) return false;
  for (size_t k = 1; k < length; ++k) {
    if ((byte(*i + k) & 0xC0) != 0x80) return false;
    cp = (cp << 6) | (byte(*i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
  *code_point = cp;
  *i += length;
  return true;
}

}  // namespace

absl::Status ValidateKeySegment(absl::string_view value) {
  if (value.empty()) return absl::InvalidArgumentError("empty");
  if (value.size() > kMaxKeyFieldBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(value.size(), " bytes, more than the limit of ", kMaxKeyFieldBytes));
  }
  // "." and ".." are the segments every path normaliser (libcurl, Go's ServeMux, ZooKeeper's
  // path check) gives a meaning: they would move the request out of this service's entry.
  if (value == "." || value == "..") {
    return absl::InvalidArgumentError("a \".\" or \"..\" path segment");
  }
  for (size_t i = 0; i < value.size();) {
    uint32_t cp = 0;
    if (!NextCodePoint(value, &i, &cp)) return absl::InvalidArgumentError("not valid UTF-8");
    if (cp == '/') return absl::InvalidArgumentError("contains \"/\"");
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
      return absl::InvalidArgumentError(
          absl::StrCat("contains the control character U+", absl::Hex(cp, absl::kZeroPad4)));
    }
    // ZooKeeper refuses these in any path (PathUtils.validatePath).
    if ((cp >= 0xE000 && cp <= 0xF8FF) || (cp >= 0xFFF0 && cp <= 0xFFFF)) {
      return absl::InvalidArgumentError(absl::StrCat("contains U+", absl::Hex(cp, absl::kZeroPad4),
                                                     ", which ZooKeeper refuses in a path"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateServiceKeys(const Service& service) {
  struct Field {
    const char* label;
    const std::string& value;
  };
  for (const Field& field :
       {Field{"name", service.name}, Field{"ID", service.id}, Field{"IP", service.ip}}) {
    if (absl::Status s = ValidateKeySegment(field.value); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(field.label, ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace registrator
