// Renders the log:// backend's JSON lines (no I/O).
#include "adapters/log/log_codec.h"

#include "registrator/common/json.h"
#include "registrator/model/service_json.h"

namespace registrator::log_backend {

std::string LogLine(absl::string_view action, const Service& service) {
  std::string line = "{\"action\":";
  AppendJsonString(&line, action);
  line.push_back(',');
  line.append(ServiceJsonMembers(service));
  if (!service.container_id.empty()) {
    line.append(",\"container\":");
    AppendJsonString(&line, service.container_id.substr(0, 12));
  }
  line.push_back('}');
  return line;
}

std::string ServiceFingerprint(const Service& service) { return ServiceJsonMembers(service); }

}  // namespace registrator::log_backend
