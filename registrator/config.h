// The command line: gliderlabs/registrator's flags (Go style: -flag, --flag, -flag=value,
// -flag value), validated into one Config. main() owns the process; this file only parses.
#ifndef REGISTRATOR_CONFIG_H_
#define REGISTRATOR_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace registrator {

struct Config {
  std::string registry_uri;
  // -extra-registry (repeatable): more registries beside registry_uri, each with its own state.
  std::vector<std::string> extra_registries;
  std::string ip;                      // -ip
  bool internal = false;               // -internal
  bool explicit_only = false;          // -explicit
  std::string use_ip_from_label;       // -useIpFromLabel
  int ttl = 0;                         // -ttl
  int ttl_refresh = 0;                 // -ttl-refresh
  std::string tags;                    // -tags
  int resync = 0;                      // -resync
  bool deregister_on_success = false;  // -deregister=on-success (default always)
  int retry_attempts = 0;              // -retry-attempts (-1 = forever)
  int retry_interval_ms = 2000;        // -retry-interval
  bool cleanup = false;                // -cleanup
  // Ours.
  bool deregister_on_exit = false;  // -deregister-on-exit
  bool require_healthy = false;     // -require-healthy
  std::string log_level = "info";   // -log-level
  bool log_json = false;            // -log-json
  std::string http_addr;            // -http: address of the health/metrics endpoint ("" = off)
  int workers = 8;                  // -workers
  std::string network;              // -network: whose address to register ("" = upstream's)
};

// The outcome of parsing: either a Config to run with, or an exit code with what to print.
struct ParseOutcome {
  bool run = false;
  Config config;
  int exit_code = 0;
  std::string message;  // For stderr, usage included where Go's flag package would print it.
};

// Parses argv. Unknown flags, a missing or extra registry URI and invalid values give exit
// code 2 with a message naming the problem, like Go's flag package and upstream's checks.
ParseOutcome ParseCommandLine(int argc, char** argv);

// Go flag names may contain "-" (-ttl-refresh); abseil's may not. Rewrites "-ttl-refresh=5" to
// "--ttl_refresh=5" and leaves values and positional arguments alone. Pure, for tests.
std::vector<std::string> NormalizeGoStyleArgs(const std::vector<std::string>& args);

// The checks upstream makes after parsing (ttl vs ttl-refresh, -deregister, -retry-interval).
absl::Status ValidateConfig(const Config& config);

// Usage text listing every flag.
std::string UsageText();

}  // namespace registrator

#endif  // REGISTRATOR_CONFIG_H_
