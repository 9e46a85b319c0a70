// The JSON members of a Service, for the log:// backend and the /services endpoint.
#include "registrator/model/service_json.h"

#include "absl/strings/str_cat.h"
#include "registrator/common/json.h"

namespace registrator {

std::string ServiceJsonMembers(const Service& service) {
  std::string json = "\"id\":";
  AppendJsonString(&json, service.id);
  json.append(",\"name\":");
  AppendJsonString(&json, service.name);
  json.append(",\"ip\":");
  AppendJsonString(&json, service.ip);
  absl::StrAppend(&json, ",\"port\":", service.port, ",\"tags\":[");
  for (size_t i = 0; i < service.tags.size(); ++i) {
    if (i > 0) json.push_back(',');
    AppendJsonString(&json, service.tags[i]);
  }
  json.append("],\"attrs\":{");
  for (size_t i = 0; i < service.attrs.size(); ++i) {
    if (i > 0) json.push_back(',');
    AppendJsonString(&json, service.attrs[i].first);
    json.push_back(':');
    AppendJsonString(&json, service.attrs[i].second);
  }
  json.append("}");
  if (service.ttl > 0) absl::StrAppend(&json, ",\"ttl\":", service.ttl);
  return json;
}

}  // namespace registrator
