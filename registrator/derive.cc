// Service derivation (see derive.h for the rules). Everything here is pure: it reads the
// container struct and the config, and reports problems as warnings instead of failing.
#include "registrator/derive.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "registrator/common/host_port.h"
#include "registrator/common/log.h"
#include "registrator/model/service_validation.h"
#include "registrator/network_name.h"
#include "registrator/shell_split.h"
#include "registrator/tags_template.h"

namespace registrator {

namespace derive_internal {

bool IsValidGoDuration(absl::string_view text) {
  // absl::ParseDuration reads Go's grammar except for the micro sign and "inf", and allows
  // durations beyond Go's int64 nanoseconds.
  if (absl::StrContains(text, "inf")) return false;
  const std::string ascii =
      absl::StrReplaceAll(text, {{"\xC2\xB5s", "us"}, {"\xCE\xBCs", "us"}});  // µ (U+00B5, U+03BC)
  absl::Duration duration;
  if (!absl::ParseDuration(ascii, &duration)) return false;
  return duration >= absl::ZeroDuration() &&
         duration <= absl::Nanoseconds(std::numeric_limits<int64_t>::max());
}

std::string ImageBaseName(absl::string_view image) {
  // A digest ("name@sha256:...") is not part of the name.
  if (size_t at = image.find('@'); at != absl::string_view::npos) image = image.substr(0, at);
  while (!image.empty() && image.back() == '/') image.remove_suffix(1);
  if (size_t slash = image.rfind('/'); slash != absl::string_view::npos) {
    image = image.substr(slash + 1);
  }
  // Registry ports live before the last "/", so any ":" left starts the tag.
  if (size_t colon = image.find(':'); colon != absl::string_view::npos) {
    image = image.substr(0, colon);
  }
  return std::string(image);
}

}  // namespace derive_internal

namespace {

using docker::Container;
using docker::PortBinding;

constexpr absl::string_view kDefaultInterval = "10s";
// Consul allows 64 Meta keys; one is kept for the Consul adapter's own "registrator-check".
constexpr size_t kMaxMetaKeys = 63;
constexpr size_t kMaxMetaKeyLength = 64;
constexpr size_t kMaxMetaValueLength = 512;

// What one container can make registrator hold (README "Security model"): anyone who can start
// a container sets these, so each is bounded and the excess is skipped with one warning.
constexpr size_t kMaxServicesPerContainer = 256;
constexpr size_t kMaxMetadataKeys = 128;         // SERVICE_* keys kept per container.
constexpr size_t kMaxMetadataKeyBytes = 256;     // One SERVICE_* key.
constexpr size_t kMaxMetadataValueBytes = 8192;  // One value (a check script, a tag list...).
constexpr size_t kMaxMetadataBytes = 65536;      // All kept keys and values together.
constexpr size_t kMaxWarningsPerContainer = 32;
// A value in a log line: enough to recognise it, never a megabyte.
constexpr size_t kMaxQuotedBytes = 200;

// Double-quotes a value for a log line: escapes quotes, backslashes and control characters so
// one warning stays one line; other bytes (UTF-8 names) stay readable.
std::string Quote(absl::string_view value) {
  std::string out = "\"";
  const size_t total = value.size();
  if (total > kMaxQuotedBytes) value = value.substr(0, kMaxQuotedBytes);
  for (char ch : value) {
    const unsigned char u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (u < 0x20 || u == 0x7f) {
      absl::StrAppend(&out, "\\x", absl::Hex(u, absl::kZeroPad2));
    } else {
      out += ch;
    }
  }
  out += '"';
  if (total > kMaxQuotedBytes) absl::StrAppend(&out, "... (", total, " bytes)");
  return out;
}

bool IsFalseWord(absl::string_view value) {
  std::string lower = absl::AsciiStrToLower(value);
  return lower == "false" || lower == "0" || lower == "no";
}

// "set" for a flag-like key: non-empty and not false/0/no.
bool IsOn(absl::string_view value) { return !value.empty() && !IsFalseWord(value); }

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// A port number 1..65535 written in decimal digits only.
std::optional<int> ParsePortNumber(absl::string_view s) {
  if (!AllDigits(s) || s.size() > 5) return std::nullopt;
  int value = 0;
  if (!absl::SimpleAtoi(s, &value) || value < 1 || value > 65535) return std::nullopt;
  return value;
}

int ProtocolRank(absl::string_view proto) {
  if (proto == "tcp") return 0;
  if (proto == "udp") return 1;
  return 2;  // sctp
}

bool IsIpv6(absl::string_view ip) { return ip.find(':') != absl::string_view::npos; }

// The container's Docker health as every one of its services carries it: the probe output cut
// to kMaxDockerHealthOutput bytes (on a UTF-8 character boundary) and, since it is sent to the
// backend, with the operator's secrets redacted like every log line.
DockerHealth DockerHealthOf(const docker::Container& c) {
  DockerHealth health;
  health.status = c.state.health;
  if (health.status.empty()) return health;
  std::string output = RedactSecrets(c.state.health_output);
  if (output.size() > kMaxDockerHealthOutput) {
    size_t cut = kMaxDockerHealthOutput;
    while (cut > 0 && (static_cast<unsigned char>(output[cut]) & 0xC0) == 0x80) --cut;
    output.resize(cut);
  }
  health.output = std::move(output);
  return health;
}

struct PortEntry {
  int port = 0;
  std::string protocol;
  std::string key;  // As it appeared ("80/tcp"), for messages.
  std::vector<PortBinding> bindings;
};

// One SERVICE_* key after parsing: `port` 0 = applies to every port.
struct MetaEntry {
  int port = 0;
  std::string key;
  std::string value;
};

// A port that survived the publish filter, with its chosen binding.
struct KeptPort {
  const PortEntry* entry = nullptr;
  std::string host_ip;  // As bound ("" for unpublished ports).
  int host_port = 0;    // 0 = not published.
};

class Deriver {
 public:
  Deriver(const Container& container, const DeriveConfig& config, const ContainerIpLookup& lookup)
      : container_(container), config_(config), lookup_(lookup) {
    short_id_ = container_.id.substr(0, 12);
    name_ = container_.name;
    if (!name_.empty() && name_[0] == '/') name_.erase(0, 1);
    warning_prefix_ = absl::StrCat("container ", short_id_.empty() ? "<no id>" : short_id_, " (",
                                   name_.empty() ? "<no name>" : name_, ")");
  }

  DeriveResult Run();

 private:
  void Warn(absl::string_view field, absl::string_view value, absl::string_view problem) {
    AddWarning(absl::StrCat(warning_prefix_, ": ", field, " ", Quote(value), ": ", problem));
  }
  // Each distinct line once, and at most kMaxWarningsPerContainer of them: a container with
  // thousands of bad labels costs a few log lines, not thousands.
  void AddWarning(std::string line) {
    if (warned_.count(line) > 0) return;
    if (result_.warnings.size() >= kMaxWarningsPerContainer) {
      ++suppressed_warnings_;
      return;
    }
    warned_.insert(line);
    result_.warnings.push_back(std::move(line));
  }

  std::optional<std::pair<int, std::string>> ParsePortKey(absl::string_view field,
                                                          absl::string_view key);
  void CollectPorts();
  void CollectMetadata();
  void EvaluateTags();
  std::optional<KeptPort> ChoosePort(const PortEntry& entry);
  std::string NetworkModeIp() const;
  std::string ContainerIp() const;
  // The container's address on `network` (IPv4, else global IPv6); "" when not attached.
  std::string IpOnNetwork(absl::string_view network) const;
  std::string HostIpFor(absl::string_view binding_ip);
  std::optional<Service> BuildService(const KeptPort& kept, bool is_group);
  void BuildCheck(const std::map<std::string, std::string>& meta, Service& service);
  void BuildMeta(Service& service);

  bool UserDefinedNetwork() const {
    const std::string& m = container_.network_mode;
    return !m.empty() && m != "default" && m != "bridge" && m != "host" && m != "none" &&
           !absl::StartsWith(m, "container:");
  }

  const Container& container_;
  const DeriveConfig& config_;
  const ContainerIpLookup& lookup_;
  std::string short_id_;
  std::string name_;
  std::string warning_prefix_;  // "container <short id> (<name>)", opens every warning.
  std::map<std::pair<int, int>, PortEntry> ports_;  // (port, protocol rank) -> entry.
  std::vector<MetaEntry> meta_entries_;
  std::vector<std::string> template_tags_;
  DeriveResult result_;
  std::set<std::string> warned_;
  size_t suppressed_warnings_ = 0;
  // SERVICE_* entries beyond the limits (kMaxMetadata*), reported once per container.
  size_t metadata_over_count_ = 0;
  size_t metadata_over_bytes_ = 0;
  size_t metadata_bytes_ = 0;
  // Why ports were dropped, for skipped_reason.
  int unpublished_ = 0;
  int ignored_ = 0;
  int unnamed_ = 0;
  int failed_ = 0;
  int off_network_ = 0;  // No address on the chosen network.
};

std::optional<std::pair<int, std::string>> Deriver::ParsePortKey(absl::string_view field,
                                                                 absl::string_view key) {
  absl::string_view number = key;
  std::string protocol = "tcp";
  if (size_t slash = key.find('/'); slash != absl::string_view::npos) {
    number = key.substr(0, slash);
    protocol = absl::AsciiStrToLower(key.substr(slash + 1));
  }
  std::optional<int> port = ParsePortNumber(number);
  if (!port) {
    Warn(field, key, "not a port number 1-65535; port skipped");
    return std::nullopt;
  }
  if (protocol != "tcp" && protocol != "udp" && protocol != "sctp") {
    Warn(field, key, "protocol is not tcp, udp or sctp; port skipped");
    return std::nullopt;
  }
  return std::make_pair(*port, protocol);
}

void Deriver::CollectPorts() {
  // The entry of a "<port>/<protocol>" key (created or found), or nullptr after a warning when
  // the key is malformed.
  auto entry_for = [this](absl::string_view field, const std::string& key) -> PortEntry* {
    auto parsed = ParsePortKey(field, key);
    if (!parsed) return nullptr;
    PortEntry& e = ports_[{parsed->first, ProtocolRank(parsed->second)}];
    e.port = parsed->first;
    e.protocol = parsed->second;
    e.key = key;
    return &e;
  };
  // Same-port bindings for every exposed port: this is what makes --net=host work.
  for (const std::string& key : container_.exposed_ports) {
    if (PortEntry* e = entry_for("Config.ExposedPorts key", key)) {
      e->bindings = {PortBinding{"0.0.0.0", std::to_string(e->port)}};
    }
  }
  // The runtime bindings replace them (an empty list = exposed but not published).
  for (const auto& [key, bindings] : container_.ports) {
    if (PortEntry* e = entry_for("NetworkSettings.Ports key", key)) e->bindings = bindings;
  }
}

void Deriver::CollectMetadata() {
  auto add = [&](absl::string_view field, absl::string_view key, absl::string_view value) {
    if (!absl::StartsWith(key, "SERVICE_")) return;
    if (key.size() > kMaxMetadataKeyBytes) {
      Warn(field, key, absl::StrCat("key longer than ", kMaxMetadataKeyBytes, " bytes; ignored"));
      return;
    }
    if (value.size() > kMaxMetadataValueBytes) {
      Warn(field, key,
           absl::StrCat("value of ", value.size(), " bytes is over the limit of ",
                        kMaxMetadataValueBytes, "; ignored"));
      return;
    }
    std::string rest = absl::AsciiStrToLower(key.substr(8));
    if (rest.empty()) {
      Warn(field, key, "no key after SERVICE_; ignored");
      return;
    }
    MetaEntry entry;
    entry.value = std::string(value);
    size_t underscore = rest.find('_');
    absl::string_view first = absl::string_view(rest).substr(0, underscore);
    bool signed_number =
        first.size() > 1 && (first[0] == '-' || first[0] == '+') && AllDigits(first.substr(1));
    if (underscore != std::string::npos && (AllDigits(first) || signed_number)) {
      std::optional<int> port = signed_number ? std::nullopt : ParsePortNumber(first);
      if (!port) {
        Warn(field, key, "port in key is not a number 1-65535; ignored");
        return;
      }
      entry.key = rest.substr(underscore + 1);
      if (entry.key.empty()) {
        Warn(field, key, "no key after the port; ignored");
        return;
      }
      entry.port = *port;
    } else {
      entry.key = std::move(rest);
    }
    if (meta_entries_.size() >= kMaxMetadataKeys) {
      ++metadata_over_count_;
      return;
    }
    if (metadata_bytes_ + key.size() + value.size() > kMaxMetadataBytes) {
      ++metadata_over_bytes_;
      return;
    }
    metadata_bytes_ += key.size() + value.size();
    meta_entries_.push_back(std::move(entry));
  };
  for (const std::string& kv : container_.env) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos) continue;  // "NAME" without a value: not a setting.
    add("Config.Env", absl::string_view(kv).substr(0, eq), absl::string_view(kv).substr(eq + 1));
  }
  // Labels after Env: a label wins over an env var with the same key.
  for (const auto& [key, value] : container_.labels) add("Config.Labels", key, value);
  if (metadata_over_count_ > 0) {
    AddWarning(absl::StrCat(warning_prefix_, ": ", metadata_over_count_,
                            " SERVICE_* keys beyond the limit of ", kMaxMetadataKeys,
                            " per container ignored"));
  }
  if (metadata_over_bytes_ > 0) {
    AddWarning(absl::StrCat(warning_prefix_, ": ", metadata_over_bytes_,
                            " SERVICE_* keys ignored: together over the limit of ",
                            kMaxMetadataBytes, " bytes per container"));
  }
}

void Deriver::EvaluateTags() {
  if (config_.tags_template.empty()) return;
  absl::StatusOr<TagsTemplate> tmpl = ParseTagsTemplate(config_.tags_template);
  if (!tmpl.ok()) {
    Warn("-tags", config_.tags_template,
         absl::StrCat(tmpl.status().message(), "; -tags not applied"));
    return;
  }
  std::vector<std::string> warnings;
  std::string text = EvaluateTagsTemplate(*tmpl, container_.raw_json, &warnings);
  for (const std::string& w : warnings) AddWarning(absl::StrCat(warning_prefix_, ": ", w));
  // The template can copy a label (index .Config.Labels), which the container controls.
  if (text.size() > kMaxMetadataValueBytes) {
    Warn("-tags", config_.tags_template,
         absl::StrCat("evaluates to ", text.size(), " bytes, over the limit of ",
                      kMaxMetadataValueBytes, "; -tags not applied"));
    return;
  }
  template_tags_ = SplitTags(text);
}

std::optional<KeptPort> Deriver::ChoosePort(const PortEntry& entry) {
  KeptPort kept;
  kept.entry = &entry;
  const PortBinding* chosen = nullptr;
  int chosen_port = 0;
  for (const PortBinding& b : entry.bindings) {
    if (b.host_port.empty()) continue;
    std::optional<int> port = ParsePortNumber(b.host_port);
    if (!port) {
      Warn(absl::StrCat("NetworkSettings.Ports[", Quote(entry.key), "] HostPort"), b.host_port,
           "not a port number 1-65535; binding ignored");
      continue;
    }
    // The IPv4 binding wins; "::" and other IPv6 duplicates of it are ignored.
    if (chosen == nullptr || (IsIpv6(chosen->host_ip) && !IsIpv6(b.host_ip))) {
      chosen = &b;
      chosen_port = *port;
    }
  }
  if (chosen != nullptr) {
    kept.host_ip = chosen->host_ip;
    kept.host_port = chosen_port;
    return kept;
  }
  if (config_.internal) return kept;  // Exposed-only ports count with -internal.
  ++unpublished_;
  return std::nullopt;
}

// The container's IP on its user-defined network (or the first network with an IP).
std::string Deriver::NetworkModeIp() const {
  for (const docker::NetworkEndpoint& n : container_.networks) {
    if (n.name == container_.network_mode && !n.ip_address.empty()) return n.ip_address;
  }
  for (const docker::NetworkEndpoint& n : container_.networks) {
    if (!n.ip_address.empty()) return n.ip_address;
  }
  return "";
}

std::string Deriver::ContainerIp() const {
  if (UserDefinedNetwork()) {
    if (std::string ip = NetworkModeIp(); !ip.empty()) return ip;
  }
  if (!container_.ip_address.empty()) return container_.ip_address;
  for (const docker::NetworkEndpoint& n : container_.networks) {
    if (!n.ip_address.empty()) return n.ip_address;
  }
  for (const docker::NetworkEndpoint& n : container_.networks) {
    if (!n.global_ipv6_address.empty()) return n.global_ipv6_address;
  }
  return "";
}

std::string Deriver::IpOnNetwork(absl::string_view network) const {
  for (const docker::NetworkEndpoint& n : container_.networks) {
    if (n.name != network) continue;
    return n.ip_address.empty() ? n.global_ipv6_address : n.ip_address;
  }
  return "";
}

std::string Deriver::HostIpFor(absl::string_view binding_ip) {
  if (binding_ip.empty() || binding_ip == "0.0.0.0" || binding_ip == "::") {
    if (!config_.resolved_host_ip.empty()) return config_.resolved_host_ip;
    return binding_ip.empty() ? "0.0.0.0" : std::string(binding_ip);
  }
  return std::string(binding_ip);
}

std::optional<Service> Deriver::BuildService(const KeptPort& kept, bool is_group) {
  const PortEntry& entry = *kept.entry;
  const std::string port_text = std::to_string(entry.port);

  // Metadata: generic keys, then the port-specific ones on top (whatever their order).
  std::map<std::string, std::string> meta;
  std::set<std::string> from_port;
  for (const MetaEntry& e : meta_entries_) {
    if (e.port == 0) meta[e.key] = e.value;
  }
  for (const MetaEntry& e : meta_entries_) {
    if (e.port == entry.port) {
      meta[e.key] = e.value;
      from_port.insert(e.key);
    }
  }
  auto get = [&](const std::string& key) -> std::string {
    auto it = meta.find(key);
    return it == meta.end() ? "" : it->second;
  };

  if (IsOn(get("ignore"))) {
    ++ignored_;
    return std::nullopt;
  }

  Service s;
  s.name = get("name");
  const bool name_from_port = !s.name.empty() && from_port.count("name") > 0;
  if (s.name.empty()) {
    if (config_.explicit_only) {
      ++unnamed_;
      return std::nullopt;
    }
    s.name = derive_internal::ImageBaseName(container_.image);
    if (s.name.empty()) {
      Warn("Config.Image", container_.image,
           absl::StrCat("no service name (no SERVICE_NAME and no image name); port ", entry.key,
                        " skipped"));
      ++failed_;
      return std::nullopt;
    }
  }
  if (is_group && !name_from_port) absl::StrAppend(&s.name, "-", port_text);

  const std::string container_name = name_.empty() ? short_id_ : name_;
  s.id = absl::StrCat(config_.hostname, ":", container_name, ":", port_text);
  if (entry.protocol == "udp") absl::StrAppend(&s.id, ":udp");
  if (std::string id = get("id"); !id.empty()) s.id = id;

  // The chosen network (derive.h): the port's key, the container's, then -network.
  std::string network = get("network");
  std::string network_field;
  if (!network.empty()) {
    network_field = from_port.count("network") > 0 ? absl::StrCat("SERVICE_", port_text, "_NETWORK")
                                                   : std::string("SERVICE_NETWORK");
  } else if (!config_.network.empty()) {
    network = config_.network;
    network_field = "-network";
  }
  if (!network.empty()) {
    if (absl::Status valid = ValidateNetworkName(network); !valid.ok()) {
      Warn(
          network_field, network,
          absl::StrCat("not a network name (", valid.message(), "); port ", entry.key, " skipped"));
      ++failed_;
      return std::nullopt;
    }
  }

  // IP and port, in upstream's order of precedence (see derive.h). `from_network`: the IP is
  // the container's own address on one of its networks, which the network choice decides.
  std::string ip;
  bool from_network = false;
  if (kept.host_port != 0) ip = HostIpFor(kept.host_ip);
  if (UserDefinedNetwork()) {
    if (!network.empty()) {
      ip = IpOnNetwork(network);
      from_network = true;
    } else if (std::string net_ip = NetworkModeIp(); !net_ip.empty()) {
      ip = net_ip;
    }
  }
  if (!config_.host_ip.empty()) {
    ip = config_.host_ip;
    from_network = false;
  }
  if (config_.internal) {
    if (container_.network_mode == "host") {
      ip = config_.host_ip.empty() ? config_.resolved_host_ip : config_.host_ip;
      from_network = false;
    } else {
      ip = network.empty() ? ContainerIp() : IpOnNetwork(network);
      from_network = !network.empty();
    }
    s.port = entry.port;
  } else {
    s.port = kept.host_port;
  }
  if (!config_.use_ip_from_label.empty()) {
    auto it = std::find_if(container_.labels.begin(), container_.labels.end(),
                           [&](const auto& kv) { return kv.first == config_.use_ip_from_label; });
    const std::string field = absl::StrCat("Config.Labels[", Quote(config_.use_ip_from_label), "]");
    if (it == container_.labels.end() || it->second.empty()) {
      Warn(field, "", "label for -useIpFromLabel not set; using the default IP");
    } else {
      absl::string_view value = it->second;
      if (size_t slash = value.rfind('/'); slash != absl::string_view::npos) {
        value = value.substr(0, slash);
      }
      bool bad = value.empty();
      for (char ch : value) bad = bad || static_cast<unsigned char>(ch) <= ' ' || ch == 0x7f;
      // What is left must still be one address: an IP is a path segment in ZooKeeper
      // ("<base>/<name>/<ip>:<port>"), so "a/b/c" -> "a/b" is not one.
      bad = bad || value.find('/') != absl::string_view::npos;
      if (bad) {
        Warn(field, it->second, "not an IP address; using the default IP");
      } else {
        ip = std::string(value);
        from_network = false;
      }
    }
  }
  if (absl::StartsWith(container_.network_mode, "container:")) {
    absl::string_view ref = absl::string_view(container_.network_mode).substr(10);
    std::string other = (lookup_ && !ref.empty()) ? lookup_(ref, network) : "";
    if (!other.empty()) {
      ip = std::move(other);
      from_network = false;
    } else if (!network.empty()) {
      // The networks are the other container's: its address on the chosen one is unknown.
      ip.clear();
      from_network = true;
    } else {
      Warn("HostConfig.NetworkMode", container_.network_mode,
           "IP of the network container is unknown; using the default IP");
    }
  }
  if (from_network && ip.empty()) {
    // One line per container and network (AddWarning drops repeats), whatever the port count.
    AddWarning(absl::StrCat(warning_prefix_, ": not attached to network ", Quote(network), " (",
                            network_field, "); its services on that network are skipped"));
    ++off_network_;
    return std::nullopt;
  }
  if (ip.empty()) {
    Warn("port", entry.key, "no IP address to register; port skipped");
    ++failed_;
    return std::nullopt;
  }
  s.ip = std::move(ip);
  // Name, ID and IP become keys and URL paths in the backend: nothing the container says may
  // reach outside its own entry (service_validation.h). Checked before anything else is built,
  // so this warning is the service's first.
  if (absl::Status valid = ValidateServiceKeys(s); !valid.ok()) {
    AddWarning(absl::StrCat(warning_prefix_, ": port ", entry.key, ": service name ", Quote(s.name),
                            ", ID ", Quote(s.id), ", IP ", Quote(s.ip), ": invalid ",
                            valid.message(), "; service skipped"));
    ++failed_;
    return std::nullopt;
  }

  // Tags: the user's, then -tags, then "udp".
  s.tags = SplitTags(get("tags"));
  s.tags.insert(s.tags.end(), template_tags_.begin(), template_tags_.end());
  if (entry.protocol == "udp") s.tags.push_back("udp");

  for (const auto& [key, value] : meta) {
    if (key == "name" || key == "id" || key == "tags" || key == "ignore" || key == "network") {
      continue;
    }
    s.attrs.emplace_back(key, value);
  }
  BuildMeta(s);
  BuildCheck(meta, s);

  s.ttl = config_.ttl;
  s.container_id = container_.id;
  s.container_name = name_;
  s.container_hostname = container_.hostname;
  s.exposed_port = entry.port;
  s.host_port = kept.host_port;
  s.protocol = entry.protocol;
  return s;
}

void Deriver::BuildMeta(Service& s) {
  for (const auto& [key, value] : s.attrs) {
    if (absl::StartsWith(key, "check_")) continue;  // Checks are not metadata.
    const std::string field = absl::StrCat("service ", Quote(s.id), " attribute");
    bool valid_chars = true;
    for (char ch : key) {
      valid_chars = valid_chars &&
                    (absl::ascii_isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-');
    }
    if (key.size() > kMaxMetaKeyLength) {
      Warn(field, key, "key longer than 64 characters; left out of Consul Meta");
    } else if (!valid_chars) {
      Warn(field, key, "key has characters other than A-Z a-z 0-9 _ -; left out of Consul Meta");
    } else if (absl::StartsWith(key, "consul-")) {
      Warn(field, key, "the consul- prefix is reserved; left out of Consul Meta");
    } else if (value.size() > kMaxMetaValueLength) {
      Warn(field, key, "value longer than 512 bytes; left out of Consul Meta");
    } else if (s.meta.size() >= kMaxMetaKeys) {
      Warn(field, key, "more than 63 keys; left out of Consul Meta");
    } else {
      s.meta.emplace_back(key, value);
    }
  }
}

void Deriver::BuildCheck(const std::map<std::string, std::string>& meta, Service& s) {
  auto get = [&](const std::string& key) -> std::string {
    auto it = meta.find(key);
    return it == meta.end() ? "" : it->second;
  };
  const std::string field_prefix = absl::StrCat("service ", Quote(s.id), " ");
  auto warn = [&](absl::string_view key, absl::string_view value, absl::string_view problem) {
    Warn(absl::StrCat(field_prefix, key), value, problem);
  };
  auto positive_duration = [](absl::string_view v) {
    return derive_internal::IsValidGoDuration(v) && v.find_first_of("123456789") != v.npos;
  };
  // An optional duration attribute: copied into `out` when it is a positive Go duration, else a
  // warning naming an example and what happens instead (`out` keeps its value).
  auto duration_attr = [&](const std::string& key, absl::string_view example,
                           absl::string_view otherwise, std::string& out) {
    std::string v = get(key);
    if (v.empty()) return;
    if (positive_duration(v)) {
      out = std::move(v);
    } else {
      warn(key, v, absl::StrCat("not a positive duration like \"", example, "\"; ", otherwise));
    }
  };

  ServiceCheck check;
  bool is_ttl = false;
  if (std::string path = get("check_http"); !path.empty()) {
    check.http = absl::StrCat("http://", JoinHostPort(s.ip, s.port), path);
    check.method = get("check_http_method");
  } else if (std::string path = get("check_https"); !path.empty()) {
    check.http = absl::StrCat("https://", JoinHostPort(s.ip, s.port), path);
    check.method = get("check_https_method");
  } else if (std::string script = get("check_script"); !script.empty()) {
    const std::map<std::string, std::string, std::less<>> vars = {
        {"SERVICE_IP", s.ip}, {"SERVICE_PORT", std::to_string(s.port)}};
    absl::StatusOr<std::vector<std::string>> args = ShellSplit(script, vars);
    if (!args.ok()) {
      warn("check_script", script, absl::StrCat(args.status().message(), "; no check"));
      return;
    }
    if (args->empty()) {
      warn("check_script", script, "no command; no check");
      return;
    }
    check.script_args = *std::move(args);
  } else if (std::string ttl = get("check_ttl"); !ttl.empty()) {
    if (!positive_duration(ttl)) {
      warn("check_ttl", ttl, "not a positive duration like \"30s\"; no check");
      return;
    }
    check.ttl = ttl;
    is_ttl = true;
  } else if (IsOn(get("check_tcp"))) {
    check.tcp = JoinHostPort(s.ip, s.port);
  } else if (IsOn(get("check_grpc"))) {
    check.grpc = JoinHostPort(s.ip, s.port);
    check.grpc_use_tls = IsOn(get("check_grpc_use_tls"));
    if (check.grpc_use_tls) check.tls_skip_verify = IsOn(get("check_tls_skip_verify"));
  } else {
    return;  // No check asked for.
  }

  if (!check.method.empty()) {
    bool token = true;
    for (char ch : check.method)
      token = token && absl::ascii_isalpha(static_cast<unsigned char>(ch));
    if (!token) {
      warn("check method", check.method, "not an HTTP method; GET used");
      check.method.clear();
    }
  }
  if (!is_ttl) {
    check.interval = std::string(kDefaultInterval);
    duration_attr("check_interval", "10s", "\"10s\" used", check.interval);
    duration_attr("check_timeout", "5s", "Consul's default used", check.timeout);
  }
  if (std::string v = get("check_initial_status"); !v.empty()) {
    std::string lower = absl::AsciiStrToLower(v);
    if (lower == "passing" || lower == "warning" || lower == "critical") {
      check.initial_status = lower;
    } else {
      warn("check_initial_status", v, "not passing, warning or critical; ignored");
    }
  }
  duration_attr("check_deregister_after", "90m", "ignored", check.deregister_after);
  s.has_check = true;
  s.check = std::move(check);
}

DeriveResult Deriver::Run() {
  if (container_.network_mode == "none") {
    result_.skipped_reason = "network mode none: nothing is reachable";
    return std::move(result_);
  }
  CollectPorts();
  if (ports_.empty()) {
    result_.skipped_reason = "no exposed or published ports";
    return std::move(result_);
  }
  std::vector<KeptPort> kept;
  for (const auto& [key, entry] : ports_) {
    if (std::optional<KeptPort> k = ChoosePort(entry)) kept.push_back(*k);
  }
  if (!kept.empty()) {
    CollectMetadata();
    EvaluateTags();
  }
  if (kept.size() > kMaxServicesPerContainer) {
    AddWarning(absl::StrCat(warning_prefix_, ": ", kept.size(), " ports; only the first ",
                            kMaxServicesPerContainer, " are registered (the limit per container)"));
    failed_ += kept.size() - kMaxServicesPerContainer;
    kept.resize(kMaxServicesPerContainer);
  }
  const bool is_group = kept.size() > 1;
  std::set<std::string> ids;
  for (const KeptPort& k : kept) {
    std::optional<Service> s = BuildService(k, is_group);
    if (!s) continue;
    if (!ids.insert(s->id).second) {
      Warn("service ID", s->id,
           absl::StrCat("already used by another port of this container; port ", k.entry->key,
                        " skipped"));
      ++failed_;
      continue;
    }
    s->docker_health = DockerHealthOf(container_);
    result_.services.push_back(*std::move(s));
  }
  if (result_.services.empty()) {
    std::vector<std::string> why;
    if (unpublished_ > 0) {
      why.push_back(absl::StrCat(unpublished_, " not published (use -internal for exposed-only)"));
    }
    if (ignored_ > 0) why.push_back(absl::StrCat(ignored_, " ignored by SERVICE_IGNORE"));
    if (unnamed_ > 0) why.push_back(absl::StrCat(unnamed_, " without SERVICE_NAME (-explicit)"));
    if (off_network_ > 0) {
      why.push_back(absl::StrCat(off_network_, " not attached to the chosen network"));
    }
    if (failed_ > 0) why.push_back(absl::StrCat(failed_, " invalid (see warnings)"));
    if (why.empty()) why.push_back("no valid port");
    result_.skipped_reason = absl::StrCat("no service: ", absl::StrJoin(why, ", "));
  }
  // The same problem can be found once per port: AddWarning reported it once.
  if (suppressed_warnings_ > 0) {
    result_.warnings.push_back(
        absl::StrCat(warning_prefix_, ": ", suppressed_warnings_, " more warnings not shown"));
  }
  return std::move(result_);
}

}  // namespace

DeriveResult DeriveServices(const docker::Container& container, const DeriveConfig& config,
                            const ContainerIpLookup& lookup_container_ip) {
  return Deriver(container, config, lookup_container_ip).Run();
}

}  // namespace registrator
