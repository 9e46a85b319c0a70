// Table-driven derivation tests: each testdata/derive/cases/*.case names a real (or varied)
// inspect payload, a config, and the exact services expected (format: testdata/derive/README.md).
// The payload goes through the real decoder, so this also checks decoder + derivation together.
#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "docker_client/decode.h"
#include "gtest/gtest.h"
#include "registrator/derive.h"
#include "testing/process.h"
#include "testing/status_matchers.h"

namespace registrator {
namespace {

constexpr char kDir[] = "testdata/derive";

using fakes::ReadFileOrEmpty;
using ::registrator::fakes::IsOk;

std::string Quoted(const std::string& v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string QuotedList(const std::vector<std::string>& items) {
  std::vector<std::string> quoted;
  for (const std::string& i : items) quoted.push_back(Quoted(i));
  return absl::StrJoin(quoted, ", ");
}

// Every field of a Service, one per line, skipping empty optional ones.
std::string Render(const Service& s) {
  std::string out = absl::StrCat("service ", s.id, "\n");
  absl::StrAppend(&out, "  name ", s.name, "\n");
  absl::StrAppend(&out, "  address ", s.ip, " port ", s.port, "\n");
  if (!s.tags.empty()) absl::StrAppend(&out, "  tags ", QuotedList(s.tags), "\n");
  for (const auto& [k, v] : s.attrs) absl::StrAppend(&out, "  attr ", k, " = ", Quoted(v), "\n");
  for (const auto& [k, v] : s.meta) absl::StrAppend(&out, "  meta ", k, " = ", Quoted(v), "\n");
  if (s.has_check) {
    const ServiceCheck& c = s.check;
    auto field = [&](const char* name, const std::string& v) {
      if (!v.empty()) absl::StrAppend(&out, "  check ", name, " = ", Quoted(v), "\n");
    };
    field("http", c.http);
    field("method", c.method);
    field("tcp", c.tcp);
    field("grpc", c.grpc);
    if (c.grpc_use_tls) absl::StrAppend(&out, "  check grpc_use_tls = true\n");
    if (c.tls_skip_verify) absl::StrAppend(&out, "  check tls_skip_verify = true\n");
    if (!c.script_args.empty())
      absl::StrAppend(&out, "  check script = ", QuotedList(c.script_args), "\n");
    field("ttl", c.ttl);
    field("interval", c.interval);
    field("timeout", c.timeout);
    field("status", c.initial_status);
    field("deregister_after", c.deregister_after);
  } else if (!(s.check == ServiceCheck{})) {
    absl::StrAppend(&out, "  check fields set but has_check false\n");
  }
  if (!s.docker_health.status.empty() || !s.docker_health.output.empty()) {
    absl::StrAppend(&out, "  health ", s.docker_health.status, " output ",
                    Quoted(s.docker_health.output), "\n");
  }
  if (s.ttl != 0) absl::StrAppend(&out, "  ttl ", s.ttl, "\n");
  absl::StrAppend(&out, "  origin ", s.container_id, " name ", Quoted(s.container_name),
                  " hostname ", s.container_hostname, " exposed ", s.exposed_port, "/", s.protocol,
                  " host_port ", s.host_port, "\n");
  return out;
}

struct Case {
  std::string name;
  std::string input;
  DeriveConfig config;
  bool use_lookup = true;
  std::map<std::string, std::string> lookup;
  std::string expected;  // Rendered services + "skipped: ..." line.
  std::vector<std::string> warnings;
  std::string parse_error;
};

Case ParseCase(const std::string& name, const std::string& text) {
  Case c;
  c.name = name;
  c.config.hostname = "dockerhost";
  c.config.resolved_host_ip = "192.168.1.10";
  bool in_expect = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, "#")) continue;
    if (in_expect) {
      if (absl::ConsumePrefix(&line, "warning~ ")) {
        c.warnings.emplace_back(line);
      } else if (!absl::StripAsciiWhitespace(line).empty()) {
        absl::StrAppend(&c.expected, line, "\n");
      }
      continue;
    }
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    if (line == "expect:") {
      in_expect = true;
    } else if (line == "nolookup") {
      c.use_lookup = false;
    } else if (absl::ConsumePrefix(&line, "input: ")) {
      c.input = std::string(line);
    } else if (absl::ConsumePrefix(&line, "lookup: ")) {
      std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
      c.lookup[kv.first] = kv.second;
    } else if (absl::ConsumePrefix(&line, "config: ")) {
      std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
      const std::string& v = kv.second;
      DeriveConfig& cfg = c.config;
      if (kv.first == "host_ip") {
        cfg.host_ip = v;
      } else if (kv.first == "resolved_host_ip") {
        cfg.resolved_host_ip = v;
      } else if (kv.first == "hostname") {
        cfg.hostname = v;
      } else if (kv.first == "internal") {
        cfg.internal = v == "true";
      } else if (kv.first == "explicit_only") {
        cfg.explicit_only = v == "true";
      } else if (kv.first == "use_ip_from_label") {
        cfg.use_ip_from_label = v;
      } else if (kv.first == "tags_template") {
        cfg.tags_template = v;
      } else if (kv.first == "network") {
        cfg.network = v;
      } else if (kv.first == "ttl" && absl::SimpleAtoi(v, &cfg.ttl)) {
      } else {
        c.parse_error = absl::StrCat("unknown config line: ", line);
      }
    } else {
      c.parse_error = absl::StrCat("unknown line: ", line);
    }
  }
  if (!in_expect) c.parse_error = "no expect: section";
  if (c.input.empty()) c.parse_error = "no input: line";
  return c;
}

std::vector<std::string> CaseNames() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(kDir) + "/cases", ec)) {
    if (entry.path().extension() == ".case") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

class DeriveTestdataTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DeriveTestdataTest, MatchesExpectation) {
  const std::string path = absl::StrCat(kDir, "/cases/", GetParam(), ".case");
  Case c = ParseCase(GetParam(), ReadFileOrEmpty(path));
  ASSERT_EQ(c.parse_error, "") << path;
  const std::string json = ReadFileOrEmpty(absl::StrCat(kDir, "/inspect/", c.input));
  ASSERT_FALSE(json.empty()) << "missing input " << c.input;
  absl::StatusOr<docker::Container> container = docker::ParseContainerJson(json);
  ASSERT_THAT(container, IsOk()) << container.status();

  std::vector<std::string> asked;
  ContainerIpLookup lookup;
  if (c.use_lookup) {
    lookup = [&](absl::string_view ref, absl::string_view network) {
      const std::string key = network.empty() ? std::string(ref) : absl::StrCat(ref, "@", network);
      asked.push_back(key);
      auto it = c.lookup.find(key);
      return it == c.lookup.end() ? std::string() : it->second;
    };
  }
  DeriveResult r = DeriveServices(*container, c.config, lookup);

  std::string actual;
  for (const Service& s : r.services) actual += Render(s);
  if (!r.skipped_reason.empty()) absl::StrAppend(&actual, "skipped: ", r.skipped_reason, "\n");
  EXPECT_EQ(actual, c.expected) << path << "\n--- actual:\n" << actual;
  EXPECT_EQ(r.skipped_reason.empty(), !r.services.empty()) << path;

  EXPECT_EQ(r.warnings.size(), c.warnings.size()) << path << "\n--- actual warnings:\n"
                                                  << absl::StrJoin(r.warnings, "\n");
  for (const std::string& want : c.warnings) {
    EXPECT_TRUE(std::any_of(r.warnings.begin(), r.warnings.end(),
                            [&](const std::string& w) { return absl::StrContains(w, want); }))
        << path << ": no warning contains \"" << want << "\"\n--- actual warnings:\n"
        << absl::StrJoin(r.warnings, "\n");
  }
  for (const std::string& ref : asked) {
    EXPECT_TRUE(c.lookup.count(ref) > 0) << path << ": unexpected lookup of " << ref;
  }
}

TEST(DeriveTestdataTest, EveryInputHasACase) {
  std::set<std::string> used;
  for (const std::string& name : CaseNames()) {
    used.insert(
        ParseCase(name, ReadFileOrEmpty(absl::StrCat(kDir, "/cases/", name, ".case"))).input);
  }
  std::error_code ec;
  int inputs = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(kDir) + "/inspect", ec)) {
    ++inputs;
    EXPECT_TRUE(used.count(entry.path().filename().string()) > 0)
        << entry.path() << " is not used by any case";
  }
  EXPECT_GT(inputs, 20);
}

INSTANTIATE_TEST_SUITE_P(Cases, DeriveTestdataTest, ::testing::ValuesIn(CaseNames()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& ch : name) {
                             if (!absl::ascii_isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace registrator
