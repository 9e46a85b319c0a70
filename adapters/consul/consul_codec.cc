// Builds the Consul agent's register bodies and fingerprints and parses its replies (no I/O).
#include "adapters/consul/consul_codec.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "registrator/common/http_client.h"
#include "registrator/common/json.h"
#include "simdjson.h"

namespace registrator::consul {
namespace {

std::string QuotedList(const std::vector<std::string>& items) {
  std::vector<std::string> quoted;
  quoted.reserve(items.size());
  for (const auto& item : items) quoted.push_back(JsonString(item));
  return absl::StrCat("[", absl::StrJoin(quoted, ","), "]");
}

std::string MetaObject(std::vector<std::pair<std::string, std::string>> meta) {
  std::sort(meta.begin(), meta.end());
  std::vector<std::string> members;
  members.reserve(meta.size());
  for (const auto& [key, value] : meta) {
    members.push_back(absl::StrCat(JsonString(key), ":", JsonString(value)));
  }
  return absl::StrCat("{", absl::StrJoin(members, ","), "}");
}

// The user's check (from check_* attributes) as Consul's check definition.
std::string CheckObject(const ServiceCheck& check) {
  std::vector<std::string> fields;
  auto add = [&](absl::string_view name, const std::string& value) {
    if (!value.empty()) fields.push_back(absl::StrCat("\"", name, "\":", JsonString(value)));
  };
  add("HTTP", check.http);
  if (!check.http.empty()) add("Method", check.method);
  add("TCP", check.tcp);
  add("GRPC", check.grpc);
  if (check.grpc_use_tls) fields.push_back("\"GRPCUseTLS\":true");
  if (check.tls_skip_verify) fields.push_back("\"TLSSkipVerify\":true");
  if (!check.script_args.empty()) {
    fields.push_back(absl::StrCat("\"ScriptArgs\":", QuotedList(check.script_args)));
  }
  const bool ttl_check = !check.ttl.empty() && check.http.empty() && check.tcp.empty() &&
                         check.grpc.empty() && check.script_args.empty();
  if (ttl_check) {
    add("TTL", check.ttl);
  } else {
    // Consul refuses interval checks without an Interval, and TTL checks with one.
    add("Interval", check.interval.empty() ? std::string("10s") : check.interval);
  }
  add("Timeout", check.timeout);
  add("Status", check.initial_status);
  add("DeregisterCriticalServiceAfter", check.deregister_after);
  return absl::StrCat("{", absl::StrJoin(fields, ","), "}");
}

std::string TtlCheckObject(const Service& service, int ttl_seconds) {
  // Starts passing: the service is up when registrator registers it; Refresh keeps it so. When
  // refreshes stop (registrator gone, or the container kept by -deregister=on-success) the check
  // goes critical and the agent removes the service: that is what -ttl means on every backend.
  // Consul reaps critical services no sooner than a minute.
  return absl::StrCat("{\"CheckID\":", JsonString(TtlCheckId(service.id)),
                      ",\"Name\":\"registrator TTL\",\"TTL\":\"", ttl_seconds,
                      "s\",\"Status\":\"passing\",\"DeregisterCriticalServiceAfter\":\"",
                      std::max(ttl_seconds, 60), "s\"}");
}

// The "Docker health" check; `with_status` false for the hash (see CheckHash).
std::string DockerHealthCheckObject(const Service& service, bool with_status) {
  std::string out = absl::StrCat("{\"CheckID\":", JsonString(DockerHealthCheckId(service.id)),
                                 ",\"Name\":\"", kDockerHealthCheckName,
                                 "\",\"Notes\":\"Docker HEALTHCHECK status, set by registrator\"",
                                 ",\"TTL\":\"", kDockerHealthTtl, "\"");
  // Registered with its current status, so a healthy container's service is never shown
  // critical between the register and the check update that follows it.
  if (with_status) absl::StrAppend(&out, ",\"Status\":\"", DockerHealthConsulStatus(service), "\"");
  return out + "}";
}

// `,"Check":{...}`, `,"Checks":[...]` or "" (the part of the register body that CheckHash hashes,
// there with `with_health_status` false).
std::string ChecksJson(const Service& service, int ttl_seconds, bool with_health_status = true) {
  std::vector<std::string> checks;
  if (service.has_check) checks.push_back(CheckObject(service.check));
  if (ttl_seconds > 0) checks.push_back(TtlCheckObject(service, ttl_seconds));
  if (!service.docker_health.status.empty()) {
    checks.push_back(DockerHealthCheckObject(service, with_health_status));
  }
  if (checks.empty()) return "";
  if (checks.size() == 1) return absl::StrCat(",\"Check\":", checks[0]);
  return absl::StrCat(",\"Checks\":[", absl::StrJoin(checks, ","), "]");
}

// One line per field, values JSON-quoted, so no value can fake another field.
std::string FingerprintOf(const Service& service,
                          std::vector<std::pair<std::string, std::string>> meta) {
  return absl::StrCat("id=", JsonString(service.id), "\nname=", JsonString(service.name),
                      "\naddress=", JsonString(service.ip), "\nport=", service.port,
                      "\ntags=", QuotedList(service.tags), "\nmeta=", MetaObject(std::move(meta)));
}

std::string ToString(std::string_view text) { return std::string(text.data(), text.size()); }

}  // namespace

std::string TtlCheckId(const std::string& service_id) {
  return absl::StrCat("service:", service_id, ":ttl");
}

std::vector<std::pair<std::string, std::string>> MetaWithCheckHash(const Service& service,
                                                                   int ttl_seconds) {
  std::vector<std::pair<std::string, std::string>> meta = service.meta;
  const std::string checks = ChecksJson(service, ttl_seconds, /*with_health_status=*/false);
  if (checks.empty()) return meta;
  meta.emplace_back(kCheckHashMetaKey, CheckHash(checks));
  std::sort(meta.begin(), meta.end());
  return meta;
}

std::string CheckHash(absl::string_view checks_json) {
  // 64-bit FNV-1a: stable across processes and versions (unlike absl::Hash), which is what a
  // value compared with one written by an earlier registrator needs.
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : checks_json) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return absl::StrCat(absl::Hex(hash, absl::kZeroPad16));
}

std::string RegisterBody(const Service& service, int ttl_seconds) {
  return absl::StrCat("{\"ID\":", JsonString(service.id), ",\"Name\":", JsonString(service.name),
                      ",\"Tags\":", QuotedList(service.tags),
                      ",\"Address\":", JsonString(service.ip), ",\"Port\":", service.port,
                      ",\"Meta\":", MetaObject(MetaWithCheckHash(service, ttl_seconds)),
                      ChecksJson(service, ttl_seconds), "}");
}

std::string ServiceFingerprint(const Service& service, int ttl_seconds) {
  return FingerprintOf(service, MetaWithCheckHash(service, ttl_seconds));
}

namespace {

using simdjson::ondemand::json_type;

// simdjson's DOM parser refuses documents nested deeper than this (its default max_depth): so
// does the On-Demand listing parser, which walks nested values recursively.
constexpr int kMaxJsonDepth = static_cast<int>(simdjson::DEFAULT_MAX_DEPTH);

// A field's key, unescaped. Keys without a backslash (all of them, in practice) are read in place
// from the body: no copy into the parser's string buffer.
simdjson::error_code KeyOf(simdjson::ondemand::field& field, std::string_view* key) {
  const char* const begin = field.key().raw();
  const char* end = begin;
  // Stage 1 found the closing quote, so the scan ends inside the string.
  while (*end != '"' && *end != '\\') ++end;
  if (*end == '"') {
    *key = std::string_view(begin, static_cast<size_t>(end - begin));
    return simdjson::SUCCESS;
  }
  return field.unescaped_key().get(*key);
}

// Reads `value` to its end, which validates it as the DOM parser would have (On-Demand checks
// only what is read): every string's escapes, number, literal and nesting. `depth` is the
// nesting depth of `value` (the listing's object is 1).
simdjson::error_code SkipValue(simdjson::ondemand::value value, int depth) {
  json_type type;
  if (auto error = value.type().get(type); error) return error;
  switch (type) {
    case json_type::object: {
      if (depth > kMaxJsonDepth) return simdjson::DEPTH_ERROR;
      simdjson::ondemand::object object;
      if (auto error = value.get_object().get(object); error) return error;
      for (auto member : object) {
        simdjson::ondemand::field field;
        std::string_view key;
        if (auto error = std::move(member).get(field); error) return error;
        if (auto error = KeyOf(field, &key); error) return error;
        if (auto error = SkipValue(field.value(), depth + 1); error) return error;
      }
      return simdjson::SUCCESS;
    }
    case json_type::array: {
      if (depth > kMaxJsonDepth) return simdjson::DEPTH_ERROR;
      simdjson::ondemand::array array;
      if (auto error = value.get_array().get(array); error) return error;
      for (auto element : array) {
        simdjson::ondemand::value item;
        if (auto error = element.get(item); error) return error;
        if (auto error = SkipValue(item, depth + 1); error) return error;
      }
      return simdjson::SUCCESS;
    }
    case json_type::string:
      return value.get_string().error();
    case json_type::number:
      return value.get_number().error();
    case json_type::boolean:
      return value.get_bool().error();
    case json_type::null: {
      bool is_null = false;
      if (auto error = value.is_null().get(is_null); error) return error;
      return is_null ? simdjson::SUCCESS : simdjson::INCORRECT_TYPE;
    }
  }
  return simdjson::TAPE_ERROR;
}

// Reads `value` into `out` when it is a string; any other value is skipped (and validated). The
// view points into the body or the parser's string buffer: valid while the parser lives.
simdjson::error_code StringOrSkip(simdjson::ondemand::value value, int depth, json_type type,
                                  std::string_view* out) {
  if (type != json_type::string) return SkipValue(value, depth);
  return value.get_string().get(*out);
}

// What ParseAgentServices reads of one entry, as views into the body and the parser.
struct EntryViews {
  std::string_view id;
  std::string_view name;
  std::string_view ip;
  int port = 0;
  std::vector<std::string_view> tags;
  std::vector<std::pair<std::string_view, std::string_view>> meta;
};

// One entry of /v1/agent/services (an object at depth 2), with the DOM parser's semantics: the
// first of duplicate keys counts; a field of another type than expected is ignored; every
// Meta member with a string value is kept.
simdjson::error_code ReadAgentService(simdjson::ondemand::value value, EntryViews* s) {
  constexpr int kDepth = 2;
  simdjson::ondemand::object object;
  if (auto error = value.get_object().get(object); error) return error;
  bool seen_id = false, seen_name = false, seen_address = false, seen_port = false;
  bool seen_tags = false, seen_meta = false;
  for (auto member : object) {
    simdjson::ondemand::field field;
    std::string_view key;
    if (auto error = std::move(member).get(field); error) return error;
    if (auto error = KeyOf(field, &key); error) return error;
    simdjson::ondemand::value& item = field.value();
    json_type type;
    if (auto error = item.type().get(type); error) return error;
    simdjson::error_code error = simdjson::SUCCESS;
    if (key == "ID" && !seen_id) {
      seen_id = true;
      error = StringOrSkip(item, kDepth + 1, type, &s->id);
    } else if (key == "Service" && !seen_name) {
      seen_name = true;
      error = StringOrSkip(item, kDepth + 1, type, &s->name);
    } else if (key == "Address" && !seen_address) {
      seen_address = true;
      error = StringOrSkip(item, kDepth + 1, type, &s->ip);
    } else if (key == "Port" && !seen_port && type == json_type::number) {
      seen_port = true;
      simdjson::ondemand::number port;
      error = item.get_number().get(port);
      // As the DOM's get_int64: integers up to INT64_MAX, no floating-point numbers.
      if (!error && port.is_int64() && port.get_int64() >= 0 && port.get_int64() <= 65535) {
        s->port = static_cast<int>(port.get_int64());
      }
    } else if (key == "Tags" && !seen_tags && type == json_type::array) {
      seen_tags = true;
      simdjson::ondemand::array tags;
      error = item.get_array().get(tags);
      for (auto element : tags) {
        if (error) break;
        simdjson::ondemand::value tag;
        json_type tag_type;
        error = element.get(tag);
        if (!error) error = tag.type().get(tag_type);
        if (!error && tag_type == json_type::string) {
          s->tags.emplace_back();
          error = StringOrSkip(tag, kDepth + 2, tag_type, &s->tags.back());
        } else if (!error) {
          error = SkipValue(tag, kDepth + 2);
        }
      }
    } else if (key == "Meta" && !seen_meta && type == json_type::object) {
      seen_meta = true;
      simdjson::ondemand::object meta;
      error = item.get_object().get(meta);
      for (auto entry : meta) {
        if (error) break;
        simdjson::ondemand::field pair;
        std::string_view meta_key;
        json_type meta_type;
        error = std::move(entry).get(pair);
        if (!error) error = KeyOf(pair, &meta_key);
        if (!error) error = pair.value().type().get(meta_type);
        if (!error && meta_type == json_type::string) {
          std::string_view text;
          error = pair.value().get_string().get(text);
          if (!error) s->meta.emplace_back(meta_key, text);
        } else if (!error) {
          error = SkipValue(pair.value(), kDepth + 2);
        }
      }
    } else {
      // The first "Port", "Tags" or "Meta" of the wrong type still counts as the field (the DOM
      // lookup finds it, then fails on its type).
      if (key == "Port") seen_port = true;
      if (key == "Tags") seen_tags = true;
      if (key == "Meta") seen_meta = true;
      error = SkipValue(item, kDepth + 1);
    }
    if (error) return error;
  }
  return simdjson::SUCCESS;
}

// The listing's entries packed, so that the body and the parser can be freed before the entries
// are built (10,000 RegisteredServices are ~8 MB; the body ~2 MB and the parser's indexes ~3 MB
// more). Per entry: id, name, ip, port, the tag count and tags, the Meta count and Meta pairs;
// strings as their length and bytes, numbers as 4 bytes. In 64 KiB chunks, each freed once
// unpacked: the entries' strings then reuse that heap memory.
class PackedListing {
 public:
  void Add(const EntryViews& entry) {
    scratch_.clear();
    PutString(entry.id);
    PutString(entry.name);
    PutString(entry.ip);
    PutNumber(static_cast<uint32_t>(entry.port));
    PutNumber(static_cast<uint32_t>(entry.tags.size()));
    for (std::string_view tag : entry.tags) PutString(tag);
    PutNumber(static_cast<uint32_t>(entry.meta.size()));
    for (const auto& [key, value] : entry.meta) {
      PutString(key);
      PutString(value);
    }
    if (chunks_.empty() || chunks_.back().size() + scratch_.size() > chunks_.back().capacity()) {
      chunks_.emplace_back();
      chunks_.back().reserve(std::max(kChunkBytes, scratch_.size()));
    }
    chunks_.back().append(scratch_);
    ++count_;
  }

  // The entries, with the fingerprint of each; frees the chunks as it goes.
  std::vector<RegisteredService> Unpack() && {
    std::string().swap(scratch_);
    std::vector<RegisteredService> result(count_);
    size_t chunk = 0;
    size_t at = 0;
    for (RegisteredService& registered : result) {
      // An entry never spans two chunks.
      if (at == chunks_[chunk].size()) {
        std::string().swap(chunks_[chunk++]);
        at = 0;
      }
      const std::string& data = chunks_[chunk];
      Service& s = registered.service;
      s.id = GetString(data, &at);
      s.name = GetString(data, &at);
      s.ip = GetString(data, &at);
      s.port = static_cast<int>(GetNumber(data, &at));
      s.tags.resize(GetNumber(data, &at));
      for (std::string& tag : s.tags) tag = GetString(data, &at);
      s.meta.resize(GetNumber(data, &at));
      for (auto& [key, value] : s.meta) {
        key = GetString(data, &at);
        value = GetString(data, &at);
      }
      std::sort(s.meta.begin(), s.meta.end());
      registered.fingerprint = FingerprintOf(s, s.meta);
    }
    chunks_.clear();
    return result;
  }

 private:
  static constexpr size_t kChunkBytes = 64 * 1024 - 64;

  void PutNumber(uint32_t n) { scratch_.append(reinterpret_cast<const char*>(&n), sizeof(n)); }
  void PutString(std::string_view text) {
    PutNumber(static_cast<uint32_t>(text.size()));
    scratch_.append(text.data(), text.size());
  }
  static uint32_t GetNumber(const std::string& data, size_t* at) {
    uint32_t n;
    std::memcpy(&n, data.data() + *at, sizeof(n));
    *at += sizeof(n);
    return n;
  }
  static std::string GetString(const std::string& data, size_t* at) {
    const size_t size = GetNumber(data, at);
    std::string text(data.data() + *at, size);
    *at += size;
    return text;
  }

  std::vector<std::string> chunks_;
  std::string scratch_;  // The entry being added.
  size_t count_ = 0;
};

// Reads and validates the listing (see ParseAgentServices) into `out`.
absl::Status ReadAgentServices(absl::string_view body, size_t readable_bytes, PackedListing* out) {
  // On-Demand, not the DOM: a DOM of 10,000 services (tape, string copies) is several times the
  // body (issue 14). On-Demand reads the entries straight from the body; what is not needed is
  // still walked to its end, so an invalid document is refused as before.
  auto refused = [] {
    return absl::UnavailableError("consul list services: /v1/agent/services is not an object");
  };
  // Padded: parsed in place, not copied first (MBs for 10,000 services).
  const bool padded = !body.empty() && readable_bytes >= body.size() + simdjson::SIMDJSON_PADDING;
  simdjson::padded_string copy;
  simdjson::padded_string_view text;
  if (padded) {
    text = simdjson::padded_string_view(body.data(), body.size(), readable_bytes);
  } else {
    // A default-constructed string_view has a null data(), which simdjson must not be given.
    copy = simdjson::padded_string(body.empty() ? "" : body.data(), body.size());
    text = copy;
  }
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  size_t count = 0;
  // On-Demand's depth limit (its development checks assert it) is one level short of the DOM's:
  // one more, so SkipValue's check is the one that counts.
  if (parser.allocate(body.size(), kMaxJsonDepth + 1) || parser.iterate(text).get(doc) ||
      doc.count_fields().get(count)) {
    return refused();
  }
  simdjson::ondemand::object services;
  if (doc.get_object().get(services)) return refused();
  EntryViews entry;
  for (auto member : services) {
    simdjson::ondemand::field field;
    std::string_view key;
    json_type type;
    if (std::move(member).get(field) || KeyOf(field, &key) || field.value().type().get(type)) {
      return refused();
    }
    if (type != json_type::object) {
      if (SkipValue(field.value(), 2)) return refused();
      continue;
    }
    entry.id = key;
    entry.name = entry.ip = std::string_view();
    entry.port = 0;
    entry.tags.clear();
    entry.meta.clear();
    if (ReadAgentService(field.value(), &entry)) return refused();
    out->Add(entry);
  }
  // Nothing may follow the object.
  if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS) return refused();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<RegisteredService>> ParseAgentServices(std::string body) {
  PackedListing listing;
  absl::Status read = ReadAgentServices(body, body.capacity(), &listing);
  // The parser is gone; the body goes too before the entries are built.
  std::string().swap(body);
  if (!read.ok()) return read;
  return std::move(listing).Unpack();
}

std::string DockerHealthCheckId(const std::string& service_id) {
  return absl::StrCat("service:", service_id, ":docker-health");
}

std::string DockerHealthConsulStatus(const Service& service) {
  return service.docker_health.status == "healthy" ? "passing" : "critical";
}

std::string CheckUpdateBody(const Service& service) {
  return absl::StrCat("{\"Status\":\"", DockerHealthConsulStatus(service),
                      "\",\"Output\":", JsonString(service.docker_health.output), "}");
}

namespace {
std::string HealthFingerprintOf(absl::string_view status, absl::string_view output) {
  return absl::StrCat("status=", JsonString(status), "\noutput=", JsonString(output));
}
}  // namespace

std::string DockerHealthFingerprint(const Service& service) {
  if (service.docker_health.status.empty()) return "";
  return HealthFingerprintOf(DockerHealthConsulStatus(service), service.docker_health.output);
}

absl::StatusOr<std::map<std::string, std::string>> ParseDockerHealthChecks(absl::string_view body) {
  simdjson::dom::parser parser;
  simdjson::dom::object checks;
  if (parser.parse(body.empty() ? "" : body.data(), body.size()).get_object().get(checks) !=
      simdjson::SUCCESS) {
    return absl::UnavailableError("consul list checks: /v1/agent/checks is not an object");
  }
  std::map<std::string, std::string> result;
  for (auto entry : checks) {
    simdjson::dom::object object;
    if (entry.value.get_object().get(object) != simdjson::SUCCESS) continue;
    std::string_view text;
    std::string check_id = ToString(entry.key);
    if (object["CheckID"].get_string().get(text) == simdjson::SUCCESS) check_id = ToString(text);
    if (object["ServiceID"].get_string().get(text) != simdjson::SUCCESS) continue;
    std::string service_id = ToString(text);
    if (service_id.empty() || check_id != DockerHealthCheckId(service_id)) continue;
    std::string_view status;
    std::string_view output;
    if (object["Status"].get_string().get(status) != simdjson::SUCCESS) status = "";
    if (object["Output"].get_string().get(output) != simdjson::SUCCESS) output = "";
    result[std::move(service_id)] = HealthFingerprintOf(ToString(status), ToString(output));
  }
  return result;
}

absl::StatusOr<std::string> ParseLeader(absl::string_view body) {
  simdjson::dom::parser parser;
  std::string_view leader;
  if (parser.parse(body.empty() ? "" : body.data(), body.size()).get_string().get(leader) !=
      simdjson::SUCCESS) {
    return absl::UnavailableError(
        absl::StrCat("unexpected /v1/status/leader answer: ", body.substr(0, 200)));
  }
  return ToString(leader);
}

std::string EncodePath(absl::string_view path) {
  std::vector<std::string> segments;
  for (absl::string_view segment : absl::StrSplit(path, '/')) {
    segments.push_back(UrlEncode(segment));
  }
  return absl::StrJoin(segments, "/");
}

}  // namespace registrator::consul
