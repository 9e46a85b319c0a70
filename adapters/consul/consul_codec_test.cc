// Unit tests (no server) of the Consul codec: register bodies, check hashes, fingerprints of
// what is written and of what the agent lists, leader replies and path encoding.
#include "adapters/consul/consul_codec.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "simdjson.h"
#include "testing/status_matchers.h"

namespace registrator::consul {
namespace {

using ::registrator::fakes::IsOk;
using ::testing::HasSubstr;

Service WebService() {
  Service s;
  s.id = "host1:web:80";
  s.name = "web";
  s.ip = "10.0.0.5";
  s.port = 32768;
  s.tags = {"b", "a"};
  s.meta = {{"version", "1.2"}, {"env", "prod"}};
  return s;
}

TEST(ConsulCheckHashTest, IsFnv1a64InHex) {
  // The published FNV-1a 64 test vectors: a value written by one registrator version must
  // compare equal in the next.
  EXPECT_EQ(CheckHash(""), "cbf29ce484222325");
  EXPECT_EQ(CheckHash("a"), "af63dc4c8601ec8c");
  EXPECT_EQ(CheckHash("foobar"), "85944171f73967e8");
}

TEST(ConsulCodecTest, RegisterBodyWithoutChecksHasSortedMetaAndTagsInOrder) {
  EXPECT_EQ(RegisterBody(WebService(), 0),
            R"({"ID":"host1:web:80","Name":"web","Tags":["b","a"],"Address":"10.0.0.5",)"
            R"("Port":32768,"Meta":{"env":"prod","version":"1.2"}})");
}

TEST(ConsulCodecTest, TtlAddsAPassingTtlCheckAndItsHash) {
  const std::string checks =
      R"(,"Check":{"CheckID":"service:host1:web:80:ttl","Name":"registrator TTL","TTL":"30s",)"
      R"("Status":"passing","DeregisterCriticalServiceAfter":"60s"})";
  EXPECT_EQ(RegisterBody(WebService(), 30),
            absl::StrCat(R"({"ID":"host1:web:80","Name":"web","Tags":["b","a"],)",
                         R"("Address":"10.0.0.5","Port":32768,"Meta":{"env":"prod",)",
                         R"("registrator-check":")", CheckHash(checks), R"(","version":"1.2"})",
                         checks, "}"));
  EXPECT_EQ(TtlCheckId("h:c:80"), "service:h:c:80:ttl");
  Service with_check = WebService();
  with_check.has_check = true;
  with_check.check.tcp = "10.0.0.5:32768";
  EXPECT_THAT(RegisterBody(with_check, 30),
              HasSubstr(R"(,"Checks":[{"TCP":"10.0.0.5:32768","Interval":"10s"},{"CheckID")"));
}

TEST(ConsulCodecTest, ListedServicesHaveTheFingerprintOfWhatWasWritten) {
  Service s = WebService();
  s.has_check = true;
  s.check.http = "http://10.0.0.5:32768/health";
  std::vector<std::pair<std::string, std::string>> meta = MetaWithCheckHash(s, 10);
  ASSERT_EQ(meta.size(), 3u);
  EXPECT_EQ(meta[1].first, kCheckHashMetaKey);
  // What an agent answers after accepting RegisterBody(s, 10): no checks, Meta with the hash.
  const std::string body = absl::StrCat(
      R"({"host1:web:80":{"ID":"host1:web:80","Service":"web","Tags":["b","a"],"Meta":{"env":"prod",)",
      R"("registrator-check":")", meta[1].second,
      R"(","version":"1.2"},"Port":32768,"Address":"10.0.0.5","Weights":{"Passing":1}},)",
      R"("other":"not an object"})");
  absl::StatusOr<std::vector<RegisteredService>> listed = ParseAgentServices(body);
  ASSERT_THAT(listed, IsOk()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].service.name, "web");
  EXPECT_EQ((*listed)[0].service.port, 32768);
  EXPECT_EQ((*listed)[0].fingerprint, ServiceFingerprint(s, 10));
  EXPECT_NE((*listed)[0].fingerprint, ServiceFingerprint(s, 0));
  Service moved = s;
  moved.port = 1;
  EXPECT_NE((*listed)[0].fingerprint, ServiceFingerprint(moved, 10));
  EXPECT_TRUE(ParseAgentServices("{}")->empty());
  for (const char* bad : {"", "[]", "{", "null"}) {
    EXPECT_TRUE(absl::IsUnavailable(ParseAgentServices(bad).status())) << bad;
  }
}

// ParseAgentServices as it was with simdjson's DOM parser (before issue 14 made it On-Demand):
// the reference the On-Demand parser must agree with, on what it accepts and what it reads.
absl::StatusOr<std::vector<RegisteredService>> DomParseAgentServices(std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::dom::object services;
  if (parser.parse(body.empty() ? "" : body.data(), body.size()).get_object().get(services) !=
      simdjson::SUCCESS) {
    return absl::UnavailableError("not an object");
  }
  auto to_string = [](std::string_view text) { return std::string(text.data(), text.size()); };
  std::vector<RegisteredService> result;
  for (auto entry : services) {
    simdjson::dom::object object;
    if (entry.value.get_object().get(object) != simdjson::SUCCESS) continue;
    Service s;
    std::string_view text;
    s.id = to_string(entry.key);
    if (object["ID"].get_string().get(text) == simdjson::SUCCESS) s.id = to_string(text);
    if (object["Service"].get_string().get(text) == simdjson::SUCCESS) s.name = to_string(text);
    if (object["Address"].get_string().get(text) == simdjson::SUCCESS) s.ip = to_string(text);
    int64_t port = 0;
    if (object["Port"].get_int64().get(port) == simdjson::SUCCESS && port >= 0 && port <= 65535) {
      s.port = static_cast<int>(port);
    }
    simdjson::dom::array tags;
    if (object["Tags"].get_array().get(tags) == simdjson::SUCCESS) {
      for (auto tag : tags) {
        if (tag.get_string().get(text) == simdjson::SUCCESS) s.tags.push_back(to_string(text));
      }
    }
    simdjson::dom::object meta;
    if (object["Meta"].get_object().get(meta) == simdjson::SUCCESS) {
      for (auto item : meta) {
        if (item.value.get_string().get(text) == simdjson::SUCCESS) {
          s.meta.emplace_back(to_string(item.key), to_string(text));
        }
      }
      std::sort(s.meta.begin(), s.meta.end());
    }
    RegisteredService registered;
    registered.fingerprint = ServiceFingerprint(s, 0);
    registered.service = std::move(s);
    result.push_back(std::move(registered));
  }
  return result;
}

// The On-Demand parser and the DOM reference agree on `body`: both refuse it, or both read the
// same entries. Parsed both unpadded (copied) and padded in place (when it is long enough that
// the capacity is its own, not the string's inline buffer).
void ExpectSameAsDom(const std::string& body) {
  absl::StatusOr<std::vector<RegisteredService>> dom = DomParseAgentServices(body);
  std::string unpadded = body;
  unpadded.shrink_to_fit();
  std::string padded = body;
  padded.reserve(body.size() + simdjson::SIMDJSON_PADDING);
  for (const absl::StatusOr<std::vector<RegisteredService>>& parsed :
       {ParseAgentServices(std::move(unpadded)), ParseAgentServices(std::move(padded))}) {
    ASSERT_EQ(parsed.ok(), dom.ok()) << "body: " << body << "\nstatus: " << parsed.status();
    if (!parsed.ok()) {
      EXPECT_TRUE(absl::IsUnavailable(parsed.status())) << body;
      continue;
    }
    ASSERT_EQ(parsed->size(), dom->size()) << body;
    for (size_t i = 0; i < dom->size(); ++i) {
      EXPECT_EQ((*parsed)[i].service, (*dom)[i].service) << body;
      EXPECT_EQ((*parsed)[i].fingerprint, (*dom)[i].fingerprint) << body;
    }
  }
}

TEST(ConsulCodecTest, ListingParserAgreesWithTheDomParserOnEdgeCases) {
  // The DOM refuses documents nested deeper than 1024: arrays `n` deep, at depths around that.
  auto nested = [](int n) { return std::string(n, '[') + std::string(n, ']'); };
  const std::vector<std::string> bodies = {
      "",
      " ",
      "{}",
      " { } ",
      "[]",
      "null",
      "1",
      R"("s")",
      "{",
      "}",
      "{}}",
      "{} {}",
      "{}x",
      "{},",
      R"({"a":1,})",
      R"({"a" 1})",
      R"({"a":1 "b":2})",
      R"({,"a":1})",
      R"({"a"})",
      R"({"a":})",
      R"({"a":[1,]})",
      R"({"a":[1 2]})",
      R"({"a":tru})",
      R"({"a":nul})",
      R"({"a":nulll})",
      R"({"a":falsey})",
      R"({"a":01})",
      R"({"a":1.})",
      R"({"a":-})",
      R"({"a":1e})",
      R"({"a":99999999999999999999999})",
      R"({"a":18446744073709551615})",
      R"({"a":"\x"})",
      R"({"a":"\u12"})",
      R"({"a":"\ud800"})",
      "{\"a\":\"\x01\"}",
      "{\"a\x01\":1}",
      "{\"a\":\"\xff\"}",
      R"({"a\"b":{"ID":"x"}})",
      R"({"a\u0041":{"I\u0044":"i\n"}})",
      R"({"k":{"ID":5,"ID":"late","Service":["x"],"Address":null,"Port":"80"}})",
      R"({"k":{"ID":"first","ID":"second","Service":"s","Service":"t","Port":80,"Port":81}})",
      R"({"k":{"Port":1.5,"Port":80}})",
      R"({"k":{"Port":1e2}})",
      R"({"k":{"Port":-1}})",
      R"({"k":{"Port":65535}})",
      R"({"k":{"Port":65536}})",
      R"({"k":{"Port":-0}})",
      R"({"k":{"Port":9223372036854775807}})",
      R"({"k":{"Port":9223372036854775808}})",
      R"({"k":{"Port":-9223372036854775808}})",
      R"({"k":{"Port":80.0}})",
      R"({"k":{"Tags":["a",1,null,["b"],{"c":"d"},"e"],"Tags":["late"]}})",
      R"({"k":{"Tags":"a","Tags":["late"]}})",
      R"({"k":{"Tags":[]}})",
      R"({"k":{"Meta":{"b":"2","a":"1","n":1,"o":{},"a":"0"},"Meta":{"late":"x"}}})",
      R"({"k":{"Meta":[],"Meta":{"late":"x"}}})",
      R"({"k":{"Meta":{"\u0041":"\u00e9"}}})",
      R"({"k":{"Weights":{"Passing":1,"Warning":1},"EnableTagOverride":false,"X":[[{}]]}})",
      R"({"k":{"Weights":{"Passing":1,"Warning":}}})",
      R"({"k":{"X":[1,2,}}})",
      R"({"k":{"Tags":["a",]}})",
      R"({"k":{"Meta":{"a":"1",}}})",
      R"({"k":{"Meta":{"a":tru}}})",
      R"({"k":{"Tags":["a",tru]}})",
      R"({"k":{"Port":80x}})",
      R"({"k":{"ID":"x"}} ])",
      R"({"k":1,"l":"s","m":[1],"n":null,"o":true,"p":{"ID":"p"}})",
      R"({"k":{"ID":"a"},"k":{"ID":"b"}})",
      R"({"k":{}})",
      absl::StrCat(R"({"k":)", nested(1022), "}"),
      absl::StrCat(R"({"k":)", nested(1023), "}"),
      absl::StrCat(R"({"k":)", nested(1024), "}"),
      absl::StrCat(R"({"k":{"ID":"x","X":)", nested(1021), "}}"),
      absl::StrCat(R"({"k":{"ID":"x","X":)", nested(1022), "}}"),
      absl::StrCat(R"({"k":{"ID":"x","X":)", nested(1023), "}}"),
      absl::StrCat(R"({"k":{"Tags":[)", nested(1020), "]}}"),
      absl::StrCat(R"({"k":{"Tags":[)", nested(1021), "]}}"),
      absl::StrCat(R"({"k":{"Tags":[)", nested(1022), "]}}"),
      absl::StrCat(R"({"k":{"Meta":{"a":)", nested(1021), "}}}"),
      absl::StrCat(R"({"k":{"Meta":{"a":)", nested(1022), "}}}"),
      absl::StrCat(R"({"k":)", std::string(100000, '['), "}"),
  };
  for (const std::string& body : bodies) ExpectSameAsDom(body);
}

TEST(ConsulCodecTest, LargeListingsAreReadWhole) {
  // Thousands of entries and one larger than the parser's packing chunks (64 KiB), between
  // others: every entry comes out, in order.
  std::string body = "{";
  for (int i = 0; i < 3000; ++i) {
    absl::StrAppend(&body, i == 0 ? "" : ",", R"("h:c)", i, R"(:80":{"ID":"h:c)", i,
                    R"(:80","Service":"files","Tags":["a","b"],"Meta":{"k":"v)", i, R"("},"Port":)",
                    1000 + i, R"(,"Address":"10.0.0.1"})");
    if (i == 1500) {
      absl::StrAppend(&body, R"(,"big":{"Service":"big","Tags":[")", std::string(100000, 'x'),
                      R"("]})");
    }
  }
  body += "}";
  ExpectSameAsDom(body);
  absl::StatusOr<std::vector<RegisteredService>> listed = ParseAgentServices(body);
  ASSERT_THAT(listed, IsOk());
  ASSERT_EQ(listed->size(), 3001u);
  EXPECT_EQ((*listed)[1501].service.id, "big");
  EXPECT_EQ((*listed)[1501].service.tags[0].size(), 100000u);
  EXPECT_EQ((*listed)[3000].service.id, "h:c2999:80");
  EXPECT_EQ((*listed)[3000].service.port, 3999);
}

TEST(ConsulCodecTest, ListingParserAgreesWithTheDomParserOnMutatedListings) {
  // A listing as a real agent sends it, then many random corruptions of it (deterministic).
  const std::string listing =
      R"({"host1:web:80":{"Kind":"","ID":"host1:web:80","Service":"web","Tags":["b","a"],)"
      R"("Meta":{"env":"prod","registrator-check":"0123456789abcdef"},"Port":32768,)"
      R"("Address":"10.0.0.5","TaggedAddresses":{"lan_ipv4":{"Address":"10.0.0.5","Port":1}},)"
      R"("Weights":{"Passing":1,"Warning":1},"EnableTagOverride":false,"Datacenter":"dc1"},)"
      R"("host1:db:5432:udp":{"ID":"host1:db:5432:udp","Service":"d\u00e9\"b","Tags":[],)"
      R"("Meta":{},"Port":5432,"Address":"fe80::1","Proxy":null,"ContentHash":"x"}})";
  ExpectSameAsDom(listing);
  const std::string alphabet =
      "{}[]:,\\\"0123456789.-+eEtrufalsn \x01\x80\xc3\xa9"
      "abcu";
  std::mt19937 rng(14);
  int accepted = 0;
  int refused = 0;
  for (int i = 0; i < 20000 && !HasFailure(); ++i) {
    std::string body = listing;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !body.empty(); ++e) {
      const size_t at = rng() % body.size();
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0:
          body[at] = c;
          break;
        case 1:
          body.insert(body.begin() + static_cast<std::ptrdiff_t>(at), c);
          break;
        default:
          body.erase(at, 1 + rng() % 4);
          break;
      }
    }
    ExpectSameAsDom(body);
    ++(DomParseAgentServices(body).ok() ? accepted : refused);
  }
  // Both sides of the line are exercised.
  EXPECT_GT(accepted, 1000);
  EXPECT_GT(refused, 1000);
}

TEST(ConsulCodecTest, LeaderAndPaths) {
  EXPECT_EQ(*ParseLeader(R"("127.0.0.1:8300")"), "127.0.0.1:8300");
  EXPECT_EQ(*ParseLeader(R"("")"), "");
  EXPECT_TRUE(absl::IsUnavailable(ParseLeader("<html>").status()));
  EXPECT_EQ(EncodePath("a b/c?d/"), "a%20b/c%3Fd/");
  EXPECT_EQ(EncodePath(""), "");
}

}  // namespace
}  // namespace registrator::consul
