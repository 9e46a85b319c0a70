// Joins and splits "host:port" text: stored backend values and user-written endpoints.
#include "registrator/common/host_port.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

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

std::string HostPort::ToString() const { return JoinHostPort(host, port); }

absl::StatusOr<HostPort> SplitHostPort(absl::string_view text, int default_port) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("address \"", text, "\" ", why));
  };
  if (std::any_of(text.begin(), text.end(), [](char c) {
        return absl::ascii_isspace(static_cast<unsigned char>(c)) || c == '/' || c == '@';
      })) {
    return bad("must look like host:port");
  }
  HostPort out;
  absl::string_view port;  // Empty: none given.
  if (absl::StartsWith(text, "[")) {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos) return bad("has an unclosed \"[\"");
    out.host = std::string(text.substr(1, close - 1));
    absl::string_view rest = text.substr(close + 1);
    if (!rest.empty() && !absl::ConsumePrefix(&rest, ":")) return bad("must look like [v6]:port");
    if (rest.empty() && text.size() > close + 1) return bad("has an empty port");
    port = rest;
  } else {
    const size_t colon = text.find(':');
    out.host = std::string(text.substr(0, colon));
    if (colon != absl::string_view::npos) {
      port = text.substr(colon + 1);
      if (absl::StrContains(port, ':')) return bad("is IPv6: put the address in brackets");
      if (port.empty()) return bad("has an empty port");
    }
  }
  if (out.host.empty()) return bad("has no host");
  if (port.empty()) {
    if (default_port <= 0 || default_port > 65535) return bad("needs a port");
    out.port = default_port;
    return out;
  }
  if (!ParsePort(port, &out.port) || out.port == 0) {
    return bad(absl::StrCat("has an invalid port \"", port, "\""));
  }
  return out;
}

}  // namespace registrator
