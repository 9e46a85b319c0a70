// The command line: upstream's Go-style flags, their validation, and the usage text.
#include "registrator/config.h"

#include <algorithm>
#include <mutex>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "adapters/adapter_factory.h"
#include "registrator/common/log.h"
#include "registrator/model/backend_uri.h"
#include "registrator/network_name.h"

ABSL_FLAG(std::string, ip, "", "IP for ports mapped to the host");
ABSL_FLAG(bool, internal, false, "Use internal ports instead of published ones");
ABSL_FLAG(bool, explicit, false, "Only register containers which have SERVICE_NAME label set");
ABSL_FLAG(std::string, useIpFromLabel, "",
          "Use IP which is stored in a label assigned to the container");
ABSL_FLAG(int, ttl, 0, "TTL for services (default is no expiry)");
ABSL_FLAG(int, ttl_refresh, 0, "Frequency with which service TTLs are refreshed");
ABSL_FLAG(std::string, tags, "",
          "Append tags for all registered services (comma list; {{.Config.Hostname}}-style "
          "fields of the container are expanded)");
ABSL_FLAG(int, resync, 0, "Frequency (s) with which services are resynchronized");
ABSL_FLAG(std::string, deregister, "always",
          "Deregister exited services \"always\" or \"on-success\"");
ABSL_FLAG(int, retry_attempts, 0,
          "Max retry attempts to establish a connection with the backend. "
          "Use -1 for infinite retries");
ABSL_FLAG(int, retry_interval, 2000, "Interval (in millisecond) between retry-attempts.");
ABSL_FLAG(bool, cleanup, false, "Remove dangling services");
ABSL_FLAG(bool, deregister_on_exit, false,
          "Deregister every service of this host when registrator stops (SIGTERM/SIGINT)");
ABSL_FLAG(bool, require_healthy, false,
          "Register a container that has a Docker HEALTHCHECK only while Docker reports it "
          "healthy");
ABSL_FLAG(std::string, log_level, "info", "Log level: debug, info, warn, error");
ABSL_FLAG(bool, log_json, false, "Log JSON lines instead of plain text");
ABSL_FLAG(std::string, http, "",
          "Serve /health, /metrics and /services on this address (e.g. 127.0.0.1:9090); off "
          "when empty");
ABSL_FLAG(int, workers, 8, "Parallel workers for Docker inspects and backend writes");
// Repeatable: ParseCommandLine collects every occurrence itself (abseil keeps only the last).
ABSL_FLAG(std::string, extra_registry, "",
          "Also register in this registry URI, beside the positional one (repeatable; every "
          "flag applies to each)");
ABSL_FLAG(std::string, network, "",
          "Register containers' addresses on this Docker network (SERVICE_NETWORK overrides); "
          "services of containers not attached to it are skipped");

namespace registrator {
namespace {

constexpr char kVersion[] = "registrator-cpp 0.1.0";

bool IsBuiltinFlag(absl::string_view name) {
  return name == "help" || name == "helpfull" || name == "helpshort" || name == "helppackage" ||
         name == "version" || name == "only_check_args" || name == "flagfile" ||
         name == "fromenv" || name == "tryfromenv" || name == "undefok";
}

// Finds a flag by its (normalized) name, also as the negated "nofoo" form of a boolean.
bool IsKnownFlag(absl::string_view name) {
  if (IsBuiltinFlag(name) || absl::FindCommandLineFlag(name) != nullptr) return true;
  if (absl::StartsWith(name, "no")) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name.substr(2));
    return flag != nullptr && flag->IsOfType<bool>();
  }
  return false;
}

}  // namespace

std::vector<std::string> NormalizeGoStyleArgs(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  out.reserve(args.size());
  bool only_positional = false;
  bool next_is_value = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (i == 0 || only_positional || next_is_value || arg.size() < 2 || arg[0] != '-' ||
        absl::ascii_isdigit(static_cast<unsigned char>(arg[1]))) {
      next_is_value = false;
      out.push_back(arg);
      continue;
    }
    if (arg == "--") {
      only_positional = true;
      out.push_back(arg);
      continue;
    }
    const size_t dashes = arg[1] == '-' ? 2 : 1;
    const size_t eq = arg.find('=');
    std::string name =
        arg.substr(dashes, eq == std::string::npos ? std::string::npos : eq - dashes);
    absl::StrReplaceAll({{"-", "_"}}, &name);
    std::string normalized = absl::StrCat("--", name);
    if (eq != std::string::npos) {
      normalized.append(arg.substr(eq));
    } else {
      // "-flag value": the next argument belongs to this flag unless it is a boolean.
      const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
      next_is_value = flag != nullptr && !flag->IsOfType<bool>();
    }
    out.push_back(std::move(normalized));
  }
  return out;
}

absl::Status ValidateConfig(const Config& config) {
  if (config.ttl_refresh > 0 && config.ttl <= config.ttl_refresh) {
    return absl::InvalidArgumentError("-ttl must be greater than -ttl-refresh");
  }
  if (config.ttl > 0 && config.ttl_refresh <= 0) {
    return absl::InvalidArgumentError("-ttl needs -ttl-refresh (the refresh interval) too");
  }
  if (config.ttl < 0 || config.ttl_refresh < 0 || config.resync < 0) {
    return absl::InvalidArgumentError("-ttl, -ttl-refresh and -resync must not be negative");
  }
  if (config.retry_interval_ms <= 0) {
    return absl::InvalidArgumentError("-retry-interval must be greater than 0");
  }
  if (config.retry_attempts < -1) {
    return absl::InvalidArgumentError("-retry-attempts must be -1 (forever) or more");
  }
  if (config.workers < 1 || config.workers > 256) {
    return absl::InvalidArgumentError("-workers must be between 1 and 256");
  }
  if (!config.network.empty()) {
    if (absl::Status valid = ValidateNetworkName(config.network); !valid.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("-network is not a network name: ", valid.message()));
    }
  }
  LogLevel level;
  if (!ParseLogLevel(config.log_level, &level)) {
    return absl::InvalidArgumentError(absl::StrCat("-log-level \"", config.log_level,
                                                   "\" is not one of debug, info, warn, error"));
  }
  return absl::OkStatus();
}

std::string UsageText() {
  std::string text =
      "Usage of registrator:\n"
      "  registrator [options] <registry URI>\n\n"
      "Registry URIs: consul://host:8500, consul-tls://host:8501, consul-unix:///path.sock,\n"
      "  consulkv://host:8500/prefix, consulkv-unix:///path.sock:/prefix, "
      "etcd://host:2379/prefix,\n"
      "  etcd2://..., etcd3://..., skydns2://host:2379/domain, zookeeper://host:2181/base, "
      "log://\n\n"
      "Options (-flag and --flag alike; -flag=value or -flag value):\n";
  // Generated from the flags' own definitions (this file's ABSL_FLAGs), so the help cannot drift
  // from them; printed the way Go's flag package names them (-ttl-refresh for ttl_refresh).
  std::vector<const absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (absl::StrContains(flag->Filename(), "registrator/config.cc")) flags.push_back(flag);
  }
  std::sort(flags.begin(), flags.end(),
            [](const absl::CommandLineFlag* a, const absl::CommandLineFlag* b) {
              return absl::AsciiStrToLower(a->Name()) < absl::AsciiStrToLower(b->Name());
            });
  for (const absl::CommandLineFlag* flag : flags) {
    std::string left = absl::StrCat("-", absl::StrReplaceAll(flag->Name(), {{"_", "-"}}));
    std::string fallback;
    if (flag->IsOfType<std::string>()) {
      absl::StrAppend(&left, " string");
      if (!flag->DefaultValue().empty()) fallback = absl::StrCat("\"", flag->DefaultValue(), "\"");
    } else if (flag->IsOfType<int>()) {
      absl::StrAppend(&left, " int");
      if (flag->DefaultValue() != "0") fallback = flag->DefaultValue();
    } else if (flag->DefaultValue() != "false") {
      fallback = flag->DefaultValue();
    }
    absl::StrAppend(&text, "  ", left, std::string(left.size() < 24 ? 25 - left.size() : 1, ' '),
                    flag->Help(), fallback.empty() ? "" : absl::StrCat(" (default ", fallback, ")"),
                    "\n");
  }
  absl::StrAppend(&text, "  -version", std::string(17, ' '), "Print the version and exit\n");
  return text;
}

ParseOutcome ParseCommandLine(int argc, char** argv) {
  ParseOutcome outcome;
  std::vector<std::string> args(argv, argv + argc);
  if (args.empty()) args.push_back("registrator");
  args = NormalizeGoStyleArgs(args);
  // Go's flag package answers an unknown flag with usage and exit 2; abseil would exit 1.
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") break;
    if (!absl::StartsWith(arg, "--") || arg.size() == 2) continue;
    const std::string name =
        arg.substr(2, arg.find('=') == std::string::npos ? std::string::npos : arg.find('=') - 2);
    if (!IsKnownFlag(name)) {
      outcome.exit_code = 2;
      outcome.message = absl::StrCat("flag provided but not defined: -", name, "\n", UsageText());
      return outcome;
    }
    if (name == "help" || name == "helpfull" || name == "helpshort" || name == "h") {
      outcome.exit_code = 0;
      outcome.message = UsageText();
      return outcome;
    }
    if (name == "version") {
      outcome.exit_code = 0;
      outcome.message = absl::StrCat(kVersion, "\n");
      return outcome;
    }
  }

  static std::once_flag usage_once;  // abseil aborts if the usage message is set twice.
  std::call_once(usage_once, [] {
    absl::FlagsUsageConfig usage_config;
    usage_config.version_string = [] { return absl::StrCat(kVersion, "\n"); };
    absl::SetFlagsUsageConfig(usage_config);
    absl::SetProgramUsageMessage("registrator [options] <registry URI>");
  });
  // -extra-registry may be given several times; abseil would keep only the last value, so every
  // occurrence is taken out here (after normalization: "--extra_registry=URI" or
  // "--extra_registry URI").
  std::vector<std::string> extra_registries;
  {
    std::vector<std::string> rest;
    rest.reserve(args.size());
    for (size_t i = 0; i < args.size(); ++i) {
      const std::string& arg = args[i];
      if (arg == "--") {
        rest.insert(rest.end(), args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
        break;
      }
      if (i > 0 && absl::StartsWith(arg, "--extra_registry=")) {
        extra_registries.push_back(arg.substr(std::string("--extra_registry=").size()));
        continue;
      }
      if (i > 0 && arg == "--extra_registry") {
        if (i + 1 >= args.size()) {
          outcome.exit_code = 2;
          outcome.message = absl::StrCat("flag needs an argument: -extra-registry\n", UsageText());
          return outcome;
        }
        extra_registries.push_back(args[++i]);
        continue;
      }
      rest.push_back(arg);
    }
    args = std::move(rest);
  }
  for (const std::string& uri : extra_registries) {
    absl::Status valid = absl::OkStatus();
    absl::StatusOr<BackendUri> parsed = ParseBackendUri(uri);
    if (!parsed.ok()) {
      valid = parsed.status();
    } else {
      const std::vector<std::string> known = SupportedSchemes();
      if (std::find(known.begin(), known.end(), parsed->scheme) == known.end()) {
        valid = absl::InvalidArgumentError(absl::StrCat("unrecognized adapter \"", parsed->scheme,
                                                        "\"; known: ", absl::StrJoin(known, ", ")));
      }
    }
    if (!valid.ok()) {
      outcome.exit_code = 2;
      // The URI may carry a password: only ever shown redacted.
      outcome.message =
          absl::StrCat("-extra-registry \"", RedactUri(uri), "\": ", valid.message(), "\n");
      return outcome;
    }
  }

  std::vector<char*> raw;
  raw.reserve(args.size());
  for (std::string& arg : args) raw.push_back(arg.data());
  std::vector<char*> positional = absl::ParseCommandLine(static_cast<int>(raw.size()), raw.data());

  if (positional.size() < 2) {
    outcome.exit_code = 2;
    outcome.message = absl::StrCat("Missing required argument for registry URI.\n\n", UsageText());
    return outcome;
  }
  if (positional.size() > 2) {
    std::vector<std::string> extra;
    // A misplaced registry URI may carry a password: never echo it.
    for (auto it = positional.begin() + 2; it != positional.end(); ++it) {
      extra.push_back(RedactUri(*it));
    }
    outcome.exit_code = 2;
    outcome.message =
        absl::StrCat("Extra unparsed arguments: ", absl::StrJoin(extra, " "),
                     "\nOptions should come before the registry URI argument.\n\n", UsageText());
    return outcome;
  }

  Config& c = outcome.config;
  c.registry_uri = positional[1];
  c.extra_registries = std::move(extra_registries);
  c.ip = absl::GetFlag(FLAGS_ip);
  c.internal = absl::GetFlag(FLAGS_internal);
  c.explicit_only = absl::GetFlag(FLAGS_explicit);
  c.use_ip_from_label = absl::GetFlag(FLAGS_useIpFromLabel);
  c.ttl = absl::GetFlag(FLAGS_ttl);
  c.ttl_refresh = absl::GetFlag(FLAGS_ttl_refresh);
  c.tags = absl::GetFlag(FLAGS_tags);
  c.resync = absl::GetFlag(FLAGS_resync);
  c.retry_attempts = absl::GetFlag(FLAGS_retry_attempts);
  c.retry_interval_ms = absl::GetFlag(FLAGS_retry_interval);
  c.cleanup = absl::GetFlag(FLAGS_cleanup);
  c.deregister_on_exit = absl::GetFlag(FLAGS_deregister_on_exit);
  c.require_healthy = absl::GetFlag(FLAGS_require_healthy);
  c.log_level = absl::GetFlag(FLAGS_log_level);
  c.log_json = absl::GetFlag(FLAGS_log_json);
  c.http_addr = absl::GetFlag(FLAGS_http);
  c.workers = absl::GetFlag(FLAGS_workers);
  c.network = absl::GetFlag(FLAGS_network);
  const std::string deregister = absl::GetFlag(FLAGS_deregister);
  if (deregister != "always" && deregister != "on-success") {
    outcome.exit_code = 2;
    outcome.message = absl::StrCat("-deregister must be \"always\" or \"on-success\", got \"",
                                   deregister, "\"\n");
    return outcome;
  }
  c.deregister_on_success = deregister == "on-success";
  if (absl::Status status = ValidateConfig(c); !status.ok()) {
    outcome.exit_code = 2;
    outcome.message = absl::StrCat(status.message(), "\n");
    return outcome;
  }
  outcome.run = true;
  return outcome;
}

}  // namespace registrator
