// SkyDNS record values and domain key prefixes for the skydns2 backend (no I/O).
#include "adapters/skydns2/skydns2_codec.h"

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "registrator/common/json.h"
#include "simdjson.h"

namespace registrator::skydns2 {

absl::StatusOr<std::string> DomainPrefix(absl::string_view domain) {
  absl::string_view trimmed = domain;
  while (absl::ConsumePrefix(&trimmed, "/")) {
  }
  while (absl::ConsumeSuffix(&trimmed, "/") || absl::ConsumeSuffix(&trimmed, ".")) {
  }
  if (trimmed.empty()) {
    return absl::InvalidArgumentError(
        "skydns2 registry URI needs the DNS domain as its path, e.g. skydns2://127.0.0.1:2379/"
        "skydns.local");
  }
  std::vector<absl::string_view> labels = absl::StrSplit(trimmed, '.');
  for (absl::string_view label : labels) {
    if (label.empty() || absl::StrContains(label, '/')) {
      return absl::InvalidArgumentError(
          absl::StrCat("skydns2 domain \"", trimmed, "\" has an empty or invalid label"));
    }
  }
  std::string out = "/skydns";
  for (auto it = labels.rbegin(); it != labels.rend(); ++it) absl::StrAppend(&out, "/", *it);
  return out;
}

std::string RecordValue(const Service& service) {
  return absl::StrCat("{\"host\":", JsonString(service.ip), ",\"port\":", service.port, "}");
}

bool ParseRecordValue(absl::string_view value, std::string* ip, int* port) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  // A default-constructed string_view has a null data(), which simdjson must not be given.
  if (parser.parse(value.empty() ? "" : value.data(), value.size()).get(doc) != simdjson::SUCCESS)
    return false;
  std::string_view host;
  if (doc["host"].get(host) != simdjson::SUCCESS) return false;
  int64_t number = 0;
  if (doc["port"].get(number) != simdjson::SUCCESS || number < 0 || number > 65535) return false;
  *ip = std::string(host.data(), host.size());
  *port = static_cast<int>(number);
  return true;
}

}  // namespace registrator::skydns2
