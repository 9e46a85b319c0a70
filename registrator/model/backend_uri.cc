// Splits a registry URI into scheme, userinfo, hosts and path.
#include "registrator/model/backend_uri.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace registrator {

absl::StatusOr<BackendUri> ParseBackendUri(absl::string_view uri) {
  const size_t sep = uri.find("://");
  if (sep == absl::string_view::npos || sep == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("registry URI \"", uri, "\" must look like <scheme>://<address>[/<path>]"));
  }
  BackendUri result;
  result.scheme = absl::AsciiStrToLower(uri.substr(0, sep));
  absl::string_view rest = uri.substr(sep + 3);
  const size_t slash = rest.find('/');
  absl::string_view authority = rest.substr(0, slash);
  if (slash != absl::string_view::npos) {
    result.path = std::string(rest.substr(slash));
    while (result.path.size() > 1 && result.path.back() == '/') result.path.pop_back();
    if (result.path == "/") result.path.clear();
  }
  const size_t at = authority.rfind('@');
  if (at != absl::string_view::npos) {
    result.userinfo = std::string(authority.substr(0, at));
    authority = authority.substr(at + 1);
  }
  result.host = std::string(authority);
  for (absl::string_view piece : absl::StrSplit(authority, ',', absl::SkipEmpty())) {
    result.hosts.emplace_back(piece);
  }
  return result;
}

}  // namespace registrator
