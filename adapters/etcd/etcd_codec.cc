// Keys, values, request bodies and reply parsing for the etcd-family adapters (no I/O).
#include "adapters/etcd/etcd_codec.h"

#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "registrator/common/host_port.h"
#include "registrator/common/http_client.h"
#include "simdjson.h"

namespace registrator::etcd {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

absl::string_view View(std::string_view text) {
  return absl::string_view(text.data(), text.size());
}

// Parses `body` into `doc` with a parser owned by the caller (dom elements point into it).
absl::Status Parse(simdjson::dom::parser& parser, absl::string_view body, absl::string_view what,
                   element* doc) {
  // A default-constructed string_view has a null data(), which simdjson must not be given.
  if (parser.parse(body.empty() ? "" : body.data(), body.size()).get(*doc) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(absl::StrCat("etcd ", what, " reply is not JSON: \"",
                                                   absl::CEscape(body.substr(0, 200)), "\""));
  }
  return absl::OkStatus();
}

// etcd's gateway writes 64-bit numbers as strings ("123"); accept plain numbers too.
// Returns false when the field exists but holds something else; absent -> *out = 0.
bool GetInt64Field(const element& obj, const char* field, int64_t* out) {
  *out = 0;
  element value;
  auto err = obj[field].get(value);
  if (err == simdjson::NO_SUCH_FIELD) return true;
  if (err != simdjson::SUCCESS) return false;
  std::string_view text;
  if (value.get(text) == simdjson::SUCCESS) return absl::SimpleAtoi(View(text), out);
  int64_t number = 0;
  if (value.get(number) == simdjson::SUCCESS) {
    *out = number;
    return true;
  }
  uint64_t unsigned_number = 0;
  if (value.get(unsigned_number) == simdjson::SUCCESS) {
    *out = static_cast<int64_t>(unsigned_number);
    return true;
  }
  return false;
}

bool GetBase64Field(const element& obj, const char* field, std::string* out) {
  out->clear();
  std::string_view text;
  auto err = obj[field].get(text);
  if (err == simdjson::NO_SUCH_FIELD) return true;  // proto3 JSON leaves empty bytes out.
  if (err != simdjson::SUCCESS) return false;
  return absl::Base64Unescape(View(text), out);
}

void CollectV2Leaves(const element& node, std::vector<KeyValue>* out) {
  bool dir = false;
  if (node["dir"].get(dir) != simdjson::SUCCESS) dir = false;
  if (dir) {
    array children;
    if (node["nodes"].get(children) != simdjson::SUCCESS) return;
    for (element child : children) CollectV2Leaves(child, out);
    return;
  }
  std::string_view key;
  std::string_view value;
  if (node["key"].get(key) != simdjson::SUCCESS) return;
  if (node["value"].get(value) != simdjson::SUCCESS) return;
  KeyValue kv;
  kv.key = std::string(View(key));
  kv.value = std::string(View(value));
  element ttl;
  kv.has_ttl = node["ttl"].get(ttl) == simdjson::SUCCESS;
  out->push_back(std::move(kv));
}

}  // namespace

std::string ServiceKey(absl::string_view prefix, const Service& service) {
  return absl::StrCat(prefix, "/", service.name, "/", service.id);
}

std::string ListingPrefix(absl::string_view prefix) { return absl::StrCat(prefix, "/"); }

std::string PrefixRangeEnd(absl::string_view key_prefix) {
  std::string end(key_prefix);
  // Drop trailing 0xff bytes (they cannot be incremented); all-0xff means "to the end" ("\0").
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (end.empty()) return std::string(1, '\0');
  end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return end;
}

bool SplitServiceKey(absl::string_view prefix, absl::string_view key, std::string* name,
                     std::string* id) {
  const std::string start = ListingPrefix(prefix);
  if (!absl::StartsWith(key, start)) return false;
  absl::string_view rest = key.substr(start.size());
  const size_t slash = rest.find('/');
  if (slash == absl::string_view::npos || slash == 0 || slash + 1 >= rest.size()) return false;
  *name = std::string(rest.substr(0, slash));
  *id = std::string(rest.substr(slash + 1));
  return true;
}

std::string HostPortValue(const Service& service) { return JoinHostPort(service.ip, service.port); }

bool ParseHostPortValue(absl::string_view value, std::string* ip, int* port) {
  return SplitHostPort(value, ip, port);
}

namespace {

// etcd's JSON gateway carries keys and values as base64.
std::string Base64(absl::string_view bytes) { return absl::Base64Escape(bytes); }

}  // namespace

std::string V3RangeBody(absl::string_view key, absl::string_view range_end, RangeWants wants) {
  std::string body = absl::StrCat("{\"key\":\"", Base64(key), "\"");
  if (!range_end.empty()) absl::StrAppend(&body, ",\"range_end\":\"", Base64(range_end), "\"");
  if (wants == RangeWants::kKeysOnly) absl::StrAppend(&body, ",\"keys_only\":true");
  if (wants == RangeWants::kCountOnly) absl::StrAppend(&body, ",\"count_only\":true");
  return body + "}";
}

std::string V3PutBody(absl::string_view key, absl::string_view value, int64_t lease) {
  std::string body =
      absl::StrCat("{\"key\":\"", Base64(key), "\",\"value\":\"", Base64(value), "\"");
  if (lease != 0) absl::StrAppend(&body, ",\"lease\":\"", lease, "\"");
  return body + "}";
}

std::string V3DeleteBody(absl::string_view key) {
  return absl::StrCat("{\"key\":\"", Base64(key), "\"}");
}

std::string V3MoveToLeaseBody(absl::string_view key, absl::string_view value, int64_t lease) {
  return absl::StrCat("{\"compare\":[{\"key\":\"", Base64(key),
                      "\",\"target\":\"VALUE\",\"result\":\"EQUAL\",\"value\":\"", Base64(value),
                      "\"}],\"success\":[{\"request_put\":", V3PutBody(key, value, lease), "}]}");
}

std::string V3LeaseGrantBody(int ttl_seconds) {
  return absl::StrCat("{\"TTL\":", ttl_seconds, "}");
}

std::string V3LeaseIdBody(int64_t lease) { return absl::StrCat("{\"ID\":\"", lease, "\"}"); }

std::string V3AuthenticateBody(absl::string_view user, absl::string_view password) {
  return absl::StrCat("{\"name\":", JsonString(user), ",\"password\":", JsonString(password), "}");
}

std::string V2KeyPath(absl::string_view key) {
  std::vector<std::string> segments;
  for (absl::string_view segment : absl::StrSplit(key, '/')) segments.push_back(UrlEncode(segment));
  return absl::StrCat("/v2/keys", absl::StrJoin(segments, "/"));
}

std::string V2PutForm(absl::string_view value, int ttl_seconds) {
  std::string form = absl::StrCat("value=", UrlEncode(value));
  if (ttl_seconds > 0) absl::StrAppend(&form, "&ttl=", ttl_seconds);
  return form;
}

std::string V2RefreshForm(int ttl_seconds) {
  return absl::StrCat("refresh=true&prevExist=true&ttl=", ttl_seconds);
}

std::string V3BasePathForVersion(absl::string_view version) {
  int major = 0;
  int minor = 0;
  std::vector<absl::string_view> parts = absl::StrSplit(version, '.');
  if (parts.size() < 2 || !absl::SimpleAtoi(parts[0], &major) ||
      !absl::SimpleAtoi(parts[1], &minor) || major < 3) {
    return "";
  }
  if (major == 3 && minor <= 2) return "/v3alpha";
  if (major == 3 && minor == 3) return "/v3beta";
  return "/v3";
}

absl::StatusOr<std::string> ParseVersion(absl::string_view body) {
  simdjson::dom::parser parser;
  element doc;
  if (absl::Status s = Parse(parser, body, "/version", &doc); !s.ok()) return s;
  std::string_view version;
  if (doc["etcdserver"].get(version) != simdjson::SUCCESS || version.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd /version reply has no \"etcdserver\": ", body.substr(0, 200)));
  }
  return std::string(View(version));
}

absl::StatusOr<std::vector<KeyValue>> ParseV3Range(absl::string_view body) {
  simdjson::dom::parser parser;
  element doc;
  if (absl::Status s = Parse(parser, body, "kv/range", &doc); !s.ok()) return s;
  std::vector<KeyValue> out;
  if (!doc.is_object()) return absl::InvalidArgumentError("etcd kv/range reply is not an object");
  array kvs;
  auto err = doc["kvs"].get(kvs);
  if (err == simdjson::NO_SUCH_FIELD) return out;  // No keys: proto3 JSON omits the array.
  if (err != simdjson::SUCCESS) return absl::InvalidArgumentError("etcd kv/range: bad \"kvs\"");
  for (element item : kvs) {
    KeyValue kv;
    if (!item.is_object() || !GetBase64Field(item, "key", &kv.key) ||
        !GetBase64Field(item, "value", &kv.value) || !GetInt64Field(item, "lease", &kv.lease)) {
      return absl::InvalidArgumentError("etcd kv/range: malformed entry in \"kvs\"");
    }
    out.push_back(std::move(kv));
  }
  return out;
}

absl::StatusOr<int64_t> ParseV3LeaseGrant(absl::string_view body) {
  simdjson::dom::parser parser;
  element doc;
  if (absl::Status s = Parse(parser, body, "lease/grant", &doc); !s.ok()) return s;
  int64_t id = 0;
  if (!doc.is_object() || !GetInt64Field(doc, "ID", &id) || id == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd lease/grant reply has no lease ID: ", body.substr(0, 200)));
  }
  return id;
}

absl::StatusOr<int64_t> ParseV3KeepAlive(absl::string_view body) {
  simdjson::dom::parser parser;
  element doc;
  if (absl::Status s = Parse(parser, body, "lease/keepalive", &doc); !s.ok()) return s;
  element result;
  if (!doc.is_object() || doc["result"].get(result) != simdjson::SUCCESS || !result.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd lease/keepalive reply has no \"result\": ", body.substr(0, 200)));
  }
  int64_t ttl = 0;
  if (!GetInt64Field(result, "TTL", &ttl)) {
    return absl::InvalidArgumentError("etcd lease/keepalive reply has a bad \"TTL\"");
  }
  return ttl < 0 ? 0 : ttl;
}

absl::StatusOr<bool> ParseV3TxnSucceeded(absl::string_view body) {
  simdjson::dom::parser parser;
  element doc;
  if (absl::Status s = Parse(parser, body, "kv/txn", &doc); !s.ok()) return s;
  if (!doc.is_object()) return absl::InvalidArgumentError("etcd kv/txn reply is not an object");
  bool succeeded = false;
  auto err = doc["succeeded"].get(succeeded);
  if (err == simdjson::NO_SUCH_FIELD) return false;  // proto3 JSON omits false.
  if (err != simdjson::SUCCESS) return absl::InvalidArgumentError("etcd kv/txn: bad \"succeeded\"");
  return succeeded;
}

absl::StatusOr<std::string> ParseV3AuthToken(absl::string_view body) {
  simdjson::dom::parser parser;
  element doc;
  if (absl::Status s = Parse(parser, body, "auth/authenticate", &doc); !s.ok()) return s;
  std::string_view token;
  if (!doc.is_object() || doc["token"].get(token) != simdjson::SUCCESS || token.empty()) {
    return absl::InvalidArgumentError("etcd auth/authenticate reply has no token");
  }
  return std::string(View(token));
}

std::string V3WatchCreateBody(absl::string_view key, absl::string_view range_end,
                              int64_t start_revision) {
  std::string body = absl::StrCat("{\"create_request\":{\"key\":\"", Base64(key), "\"");
  if (!range_end.empty()) absl::StrAppend(&body, ",\"range_end\":\"", Base64(range_end), "\"");
  if (start_revision > 0) absl::StrAppend(&body, ",\"start_revision\":\"", start_revision, "\"");
  return body + ",\"progress_notify\":true}}";
}

absl::StatusOr<WatchMessage> ParseV3WatchMessage(absl::string_view line) {
  simdjson::dom::parser parser;
  element doc;
  if (absl::Status s = Parse(parser, line, "watch", &doc); !s.ok()) return s;
  if (!doc.is_object()) return absl::InvalidArgumentError("etcd watch message is not an object");
  element error;
  if (doc["error"].get(error) == simdjson::SUCCESS) {
    std::string_view message;
    if (error.is_object() && error["message"].get(message) == simdjson::SUCCESS) {
      return absl::UnavailableError(absl::StrCat("etcd watch: ", View(message)));
    }
    return absl::UnavailableError(absl::StrCat("etcd watch: ", line.substr(0, 200)));
  }
  element result;
  if (doc["result"].get(result) != simdjson::SUCCESS || !result.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd watch message has no \"result\": ", line.substr(0, 200)));
  }
  WatchMessage out;
  element header;
  if (result["header"].get(header) == simdjson::SUCCESS && header.is_object() &&
      !GetInt64Field(header, "revision", &out.revision)) {
    return absl::InvalidArgumentError("etcd watch: bad header.revision");
  }
  bool flag = false;
  if (result["created"].get(flag) == simdjson::SUCCESS) out.created = flag;
  flag = false;
  if (result["canceled"].get(flag) == simdjson::SUCCESS) out.canceled = flag;
  if (!GetInt64Field(result, "compact_revision", &out.compact_revision)) {
    return absl::InvalidArgumentError("etcd watch: bad compact_revision");
  }
  std::string_view reason;
  if (result["cancel_reason"].get(reason) == simdjson::SUCCESS)
    out.cancel_reason = std::string(reason);
  array events;
  if (result["events"].get(events) == simdjson::SUCCESS) {
    out.events = static_cast<int>(events.size());
  }
  return out;
}

absl::StatusOr<int64_t> ParseV2WatchEvent(absl::string_view body) {
  simdjson::dom::parser parser;
  element doc;
  if (absl::Status s = Parse(parser, body, "v2 watch", &doc); !s.ok()) return s;
  element node;
  int64_t index = 0;
  if (!doc.is_object() || doc["node"].get(node) != simdjson::SUCCESS || !node.is_object() ||
      !GetInt64Field(node, "modifiedIndex", &index) || index <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd v2 watch event has no node.modifiedIndex: ", body.substr(0, 200)));
  }
  return index;
}

absl::StatusOr<std::vector<KeyValue>> ParseV2Listing(absl::string_view body) {
  simdjson::dom::parser parser;
  element doc;
  if (absl::Status s = Parse(parser, body, "v2 keys", &doc); !s.ok()) return s;
  element node;
  if (!doc.is_object() || doc["node"].get(node) != simdjson::SUCCESS || !node.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd v2 keys reply has no \"node\": ", body.substr(0, 200)));
  }
  std::vector<KeyValue> out;
  CollectV2Leaves(node, &out);
  return out;
}

absl::Status ErrorFromReply(long http_status, absl::string_view body, absl::string_view what) {
  std::string message;
  {
    simdjson::dom::parser parser;
    element doc;
    std::string_view text;
    if (parser.parse(body.empty() ? "" : body.data(), body.size()).get(doc) == simdjson::SUCCESS &&
        doc.is_object() && doc["message"].get(text) == simdjson::SUCCESS) {
      message = std::string(View(text));
      std::string_view cause;
      if (doc["cause"].get(cause) == simdjson::SUCCESS && !cause.empty()) {
        absl::StrAppend(&message, " (", View(cause), ")");
      }
    } else {
      message = std::string(absl::StripAsciiWhitespace(body.substr(0, 300)));
    }
  }
  const std::string text = absl::StrCat("etcd ", what, ": HTTP ", http_status, ": ", message);
  switch (http_status) {
    case 400:
      return absl::InvalidArgumentError(text);
    case 401:
      return absl::UnauthenticatedError(text);
    case 403:
      return absl::PermissionDeniedError(text);
    case 404:
      return absl::NotFoundError(text);
    case 409:
    case 412:
      return absl::FailedPreconditionError(text);
    case 408:  // A proxy's timeout,
    case 413:  // a proxy's body limit (etcd's own "request is too large" is a 400),
    case 429:  // a rate limit: all pass, so retry with backoff.
      return absl::UnavailableError(text);
    default:
      if (http_status >= 500) return absl::UnavailableError(text);
      return absl::UnknownError(text);
  }
}

bool IsLeaseNotFound(const absl::Status& status) {
  return absl::IsNotFound(status) && absl::StrContains(status.message(), "lease not found");
}

}  // namespace registrator::etcd
