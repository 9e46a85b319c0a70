#include "registrator/common/host_port.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace registrator {
namespace {

bool ParsePort(absl::string_view text, int* port) {
  int value = 0;
  if (text.empty() || !absl::ascii_isdigit(static_cast<unsigned char>(text[0])) ||
      !absl::SimpleAtoi(text, &value) || value < 0 || value > 65535) {
    return false;
  }
  *port = value;
  return true;
}

}  // namespace

std::string JoinHostPort(absl::string_view ip, int port) {
  if (absl::StrContains(ip, ':')) return absl::StrCat("[", ip, "]:", port);
  return absl::StrCat(ip, ":", port);
}

bool SplitHostPort(absl::string_view text, std::string* ip, int* port) {
  if (absl::StartsWith(text, "[")) {
    const size_t close = text.find("]:");
    if (close == absl::string_view::npos) return false;
    *ip = std::string(text.substr(1, close - 1));
    return ParsePort(text.substr(close + 2), port);
  }
  const size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos) return false;
  absl::string_view host = text.substr(0, colon);
  if (absl::StrContains(host, ':')) return false;  // Unbracketed IPv6 is ambiguous.
  *ip = std::string(host);
  return ParsePort(text.substr(colon + 1), port);
}

}  // namespace registrator
