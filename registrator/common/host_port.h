// "ip:port" as every backend stores an address: IPv6 addresses in brackets ("[fd00::1]:80"),
// like Go's net.JoinHostPort that upstream used.
#ifndef REGISTRATOR_COMMON_HOST_PORT_H_
#define REGISTRATOR_COMMON_HOST_PORT_H_

#include <string>

#include "absl/strings/string_view.h"

namespace registrator {

// "10.0.0.5:80", or "[fd00::5]:80" when `ip` contains a colon.
std::string JoinHostPort(absl::string_view ip, int port);

// The inverse of JoinHostPort. False (outputs untouched or partly set) for anything else: no
// port, a port that is not 0-65535 in plain digits, unbracketed IPv6 (ambiguous), "[v6]" without
// ":port". Values read back from a backend are untrusted: never throws, never overflows.
bool SplitHostPort(absl::string_view text, std::string* ip, int* port);

}  // namespace registrator

#endif  // REGISTRATOR_COMMON_HOST_PORT_H_
