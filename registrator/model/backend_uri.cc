// ParseBackendUri and the helpers that keep the URI's userinfo (a password) out of any output.
#include "registrator/model/backend_uri.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace registrator {
namespace {

// Where the userinfo of `uri` lies, exactly as ParseBackendUri splits it: [begin, end) before the
// "@" that ends it. False when there is none.
bool FindUserinfo(absl::string_view uri, size_t* begin, size_t* end) {
  const size_t sep = uri.find("://");
  const size_t start = sep == absl::string_view::npos ? 0 : sep + 3;
  const size_t slash = uri.find('/', start);
  const absl::string_view authority =
      uri.substr(start, slash == absl::string_view::npos ? absl::string_view::npos : slash - start);
  const size_t at = authority.rfind('@');
  if (at == absl::string_view::npos) return false;
  *begin = start;
  *end = start + at;
  return true;
}

}  // namespace

std::string RedactUri(absl::string_view uri) {
  size_t begin = 0;
  size_t end = 0;
  if (!FindUserinfo(uri, &begin, &end)) return std::string(uri);
  const absl::string_view userinfo = uri.substr(begin, end - begin);
  const size_t colon = userinfo.find(':');
  const absl::string_view kept =
      colon == absl::string_view::npos ? absl::string_view() : userinfo.substr(0, colon + 1);
  return absl::StrCat(uri.substr(0, begin), kept, "***", uri.substr(end));
}

std::string UriSecret(absl::string_view uri) {
  size_t begin = 0;
  size_t end = 0;
  if (!FindUserinfo(uri, &begin, &end)) return "";
  const absl::string_view userinfo = uri.substr(begin, end - begin);
  const size_t colon = userinfo.find(':');
  return std::string(colon == absl::string_view::npos ? userinfo : userinfo.substr(colon + 1));
}

absl::StatusOr<BackendUri> ParseBackendUri(absl::string_view uri) {
  const size_t sep = uri.find("://");
  if (sep == absl::string_view::npos || sep == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "registry URI \"", RedactUri(uri), "\" must look like <scheme>://<address>[/<path>]"));
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
