// Pure rendering for the log:// backend (no I/O): the JSON line printed for each write, and the
// fingerprint of a service as the log backend holds it.
#ifndef ADAPTERS_LOG_LOG_CODEC_H_
#define ADAPTERS_LOG_LOG_CODEC_H_

#include <string>

#include "absl/strings/string_view.h"
#include "registrator/model/service.h"

namespace registrator::log_backend {

// {"action":"<action>",<the service's members>[,"container":"<12-char id>"]} without a newline.
std::string LogLine(absl::string_view action, const Service& service);
// The service's JSON members (everything LogLine prints about it but the container).
std::string ServiceFingerprint(const Service& service);

}  // namespace registrator::log_backend

#endif  // ADAPTERS_LOG_LOG_CODEC_H_
