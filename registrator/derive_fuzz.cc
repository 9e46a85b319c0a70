// libFuzzer target for the derivation path: untrusted bytes -> inspect decoder -> DeriveServices
// (several configs), plus the -tags template parser/evaluator, the check_script splitter and the
// small parsers. Built outside Bazel by tools/fuzz (clang, -fsanitize=fuzzer,address,undefined).
// Besides crashes and sanitizer reports it traps on broken invariants of the result.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "docker_client/decode.h"
#include "registrator/derive.h"
#include "registrator/network_name.h"
#include "registrator/shell_split.h"
#include "registrator/tags_template.h"

namespace registrator {
namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

std::vector<DeriveConfig> Configs() {
  std::vector<DeriveConfig> configs(5);
  configs[0].hostname = "host";
  configs[0].resolved_host_ip = "10.0.0.5";
  configs[1] = configs[0];
  configs[1].internal = true;
  configs[1].host_ip = "192.0.2.1";
  configs[1].ttl = 30;
  configs[2] = configs[0];
  configs[2].explicit_only = true;
  configs[2].use_ip_from_label = "com.example.ip";
  configs[2].tags_template =
      R"(a,{{.Config.Hostname}},{{index .Config.Labels "team"}},{{.Name}},{{.State.Running}})";
  configs[2].tags_template = "x";
  configs[3].internal = true;  // Nothing resolved: empty host IP and hostname.
  configs[3].use_ip_from_label = "SERVICE_NAME";
  configs[4] = configs[1];
  configs[4].host_ip.clear();
  configs[4].network = "backnet";  // -network; SERVICE_[<port>_]NETWORK may override it.
  return configs;
}

void CheckResult(const DeriveResult& r) {
  Check(r.services.empty() != r.skipped_reason.empty());
  for (const Service& s : r.services) {
    Check(!s.id.empty() && !s.name.empty() && !s.ip.empty());
    Check(s.port >= 1 && s.port <= 65535);
    Check(s.exposed_port >= 1 && s.exposed_port <= 65535);
    Check(s.host_port >= 0 && s.host_port <= 65535);
    Check(s.protocol == "tcp" || s.protocol == "udp" || s.protocol == "sctp");
    Check(s.meta.size() <= 64 && s.meta.size() <= s.attrs.size());
    for (const auto& [key, value] : s.meta) {
      Check(!key.empty() && key.size() <= 64 && !absl::StartsWith(key, "check_"));
      for (char c : key) {
        Check((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-');
      }
    }
    for (const std::string& tag : s.tags) Check(!tag.empty());
    Check(s.has_check || s.check == ServiceCheck{});
  }
}

void Derive(const docker::Container& c) {
  static const std::vector<DeriveConfig> configs = Configs();
  int calls = 0;
  auto lookup = [&](absl::string_view ref, absl::string_view network) {
    if (!network.empty()) Check(ValidateNetworkName(network).ok());
    return (++calls % 2 == 0 || ref.empty()) ? std::string() : std::string("172.19.0.9");
  };
  for (const DeriveConfig& config : configs) {
    CheckResult(DeriveServices(c, config, lookup));
  }
  CheckResult(DeriveServices(c, configs[0]));  // No lookup at all.
}

// Builds a container straight from lines, to reach the derivation rules with arbitrary field
// values far more often than mutated JSON does.
docker::Container FromLines(absl::string_view text) {
  docker::Container c;
  c.id = "0123456789abcdef";
  int i = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::string v(line);
    switch (i++ % 8) {
      case 0:
        c.exposed_ports.push_back(v);
        break;
      case 1:
        c.ports[v] = {{"0.0.0.0", "8080"}, {"::", v}};
        break;
      case 2:
        c.env.push_back(v);
        break;
      case 3:
        c.labels.emplace_back(v, v);
        break;
      case 4:
        c.network_mode = v;
        break;
      case 5:
        c.image = v;
        break;
      case 6:
        c.networks.push_back({v, i % 3 ? v : "", ""});
        break;
      case 7:
        c.name = v;
        c.ip_address = i % 5 ? "" : v;
        break;
    }
  }
  c.raw_json = std::string(text);
  return c;
}

}  // namespace
}  // namespace registrator

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace registrator;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);

  absl::StatusOr<docker::Container> container = docker::ParseContainerJson(text);
  if (container.ok()) Derive(*container);
  if (size < 4096) Derive(FromLines(text));

  static const absl::StatusOr<TagsTemplate> fixed =
      ParseTagsTemplate(R"({{.Name}},{{index .Config.Labels "team"}},{{.A.B.C}})");
  std::vector<std::string> warnings;
  (void)EvaluateTagsTemplate(*fixed, text, &warnings);
  if (absl::StatusOr<TagsTemplate> tmpl = ParseTagsTemplate(text); tmpl.ok()) {
    Check(ValidateTagsTemplate(text).ok());
    (void)EvaluateTagsTemplate(*tmpl, R"({"Name":"/x","Config":{"Labels":{"team":"t"}}})",
                               &warnings);
  }
  for (const std::string& tag : SplitTags(text)) Check(!tag.empty());

  static const std::map<std::string, std::string, std::less<>> vars = {{"SERVICE_IP", "10.0.0.5"},
                                                                       {"SERVICE_PORT", "80"}};
  (void)ShellSplit(text, vars);
  (void)derive_internal::IsValidGoDuration(text);
  (void)derive_internal::ImageBaseName(text);
  return 0;
}
