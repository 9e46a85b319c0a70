// Consul KV keys, values and listing replies for the consulkv backend (no I/O).
#include "adapters/consulkv/consulkv_codec.h"

#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "adapters/consul/consul_codec.h"
#include "registrator/common/host_port.h"
#include "simdjson.h"

namespace registrator::consulkv {
namespace {

// "<prefix>/", or "" for the root: what every key of ours starts with.
std::string KeyStart(absl::string_view prefix) {
  return prefix.empty() ? std::string() : absl::StrCat(prefix, "/");
}

}  // namespace

std::string NormalizePrefix(absl::string_view path) {
  while (absl::ConsumePrefix(&path, "/")) {
  }
  while (absl::ConsumeSuffix(&path, "/")) {
  }
  return std::string(path);
}

std::string ServiceKey(absl::string_view prefix, const Service& service) {
  return absl::StrCat(KeyStart(prefix), service.name, "/", service.id);
}

std::string ServiceValue(const Service& service) { return JoinHostPort(service.ip, service.port); }

std::string ServiceFingerprint(absl::string_view prefix, const Service& service) {
  return absl::StrCat(ServiceKey(prefix, service), "=", ServiceValue(service));
}

std::string KeyPath(absl::string_view key) {
  return absl::StrCat("/v1/kv/", consul::EncodePath(key));
}

std::string ListingPath(absl::string_view prefix) {
  return absl::StrCat(KeyPath(KeyStart(prefix)), "?recurse");
}

absl::StatusOr<std::vector<RegisteredService>> ParseListing(absl::string_view prefix,
                                                            absl::string_view body) {
  simdjson::dom::parser parser;
  simdjson::dom::array entries;
  // A default-constructed string_view has a null data(), which simdjson must not be given.
  if (parser.parse(body.empty() ? "" : body.data(), body.size()).get_array().get(entries) !=
      simdjson::SUCCESS) {
    return absl::UnavailableError("consulkv list: the answer is not a JSON array");
  }
  const std::string start = KeyStart(prefix);
  std::vector<RegisteredService> result;
  for (auto entry : entries) {
    std::string_view key_view;
    std::string_view value_base64;
    if (entry["Key"].get_string().get(key_view) != simdjson::SUCCESS) continue;
    std::string value;
    if (entry["Value"].get_string().get(value_base64) == simdjson::SUCCESS &&
        !absl::Base64Unescape(absl::string_view(value_base64.data(), value_base64.size()),
                              &value)) {
      continue;
    }
    const std::string key(key_view);
    absl::string_view rest = key;
    if (!absl::ConsumePrefix(&rest, start)) continue;
    const size_t slash = rest.find('/');
    // Only "<Name>/<ID>" entries are ours; folders and stray keys are skipped.
    if (slash == absl::string_view::npos || slash == 0 || slash + 1 == rest.size()) continue;
    RegisteredService registered;
    registered.service.name = std::string(rest.substr(0, slash));
    registered.service.id = std::string(rest.substr(slash + 1));
    SplitHostPort(value, &registered.service.ip, &registered.service.port);
    registered.fingerprint = absl::StrCat(key, "=", value);
    result.push_back(std::move(registered));
  }
  return result;
}

}  // namespace registrator::consulkv
