// "ip:port" as every backend stores an address: IPv6 addresses in brackets ("[fd00::1]:80"),
// like Go's net.JoinHostPort that upstream used; and "host[:port]" as a user writes an endpoint.
#ifndef REGISTRATOR_COMMON_HOST_PORT_H_
#define REGISTRATOR_COMMON_HOST_PORT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace registrator {

// "10.0.0.5:80", or "[fd00::5]:80" when `ip` contains a colon.
std::string JoinHostPort(absl::string_view ip, int port);

// The inverse of JoinHostPort. False (outputs untouched or partly set) for anything else: no
// port, a port that is not 0-65535 in plain digits, unbracketed IPv6 (ambiguous), "[v6]" without
// ":port". Values read back from a backend are untrusted: never throws, never overflows.
bool SplitHostPort(absl::string_view text, std::string* ip, int* port);

// An endpoint to connect to.
struct HostPort {
  std::string host;  // A name, an IPv4 address or an IPv6 address without brackets.
  int port = 0;      // 1-65535.
  // JoinHostPort(host, port).
  std::string ToString() const;
  bool operator==(const HostPort&) const = default;
};

// An endpoint as a user writes it (a URI's host list, a flag): "host:port", "[v6]:port", or,
// when `default_port` is 1-65535, "host" / "[v6]" meaning that port (default_port 0: the port is
// required). INVALID_ARGUMENT, naming `text`, for an empty host, whitespace, "/" or "@", an
// unbracketed IPv6 address (ambiguous), an unclosed "[", or a port that is not 1-65535 in plain
// digits.
absl::StatusOr<HostPort> SplitHostPort(absl::string_view text, int default_port);

}  // namespace registrator

#endif  // REGISTRATOR_COMMON_HOST_PORT_H_
