// The stand-in must be as strict as Consul, or adapter tests against it prove nothing: it
// rejects off-spec requests with Consul's status codes, and keeps agent state the way Consul
// does (check IDs, TTL expiry, deregistration removing checks, KV semantics, ACLs).
#include "testing/consul_standin/consul_standin.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registrator/common/http_client.h"
#include "testing/process.h"

namespace registrator::fakes {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class StandinTest : public ::testing::Test {
 protected:
  StandinReply Put(const std::string& path, const std::string& body,
                   const std::multimap<std::string, std::string>& params = {}) {
    return standin_.Handle("PUT", path, params, body, headers_);
  }
  StandinReply Get(const std::string& path,
                   const std::multimap<std::string, std::string>& params = {}) {
    return standin_.Handle("GET", path, params, "", headers_);
  }
  StandinReply Register(const std::string& body) { return Put("/v1/agent/service/register", body); }
  // Registers {"Name":"web","Port":80,<extra>} and returns the reply.
  StandinReply RegisterWith(const std::string& extra) {
    return Register(absl::StrCat(R"({"Name":"web","Port":80)", extra, "}"));
  }

  ConsulStandin standin_;
  std::multimap<std::string, std::string> headers_;
};

TEST_F(StandinTest, AcceptsAValidRegistration) {
  auto reply = Register(
      R"({"ID":"h:web:80","Name":"web","Tags":["a"],"Address":"10.0.0.1","Port":80,)"
      R"("Meta":{"env":"prod","some-key_2":"v"},"Check":{"HTTP":"http://10.0.0.1/","Interval":"10s"}})");
  EXPECT_EQ(reply.status, 200) << reply.body;
  EXPECT_THAT(standin_.ServiceIds(), ElementsAre("h:web:80"));
  EXPECT_THAT(standin_.CheckIds(), ElementsAre("service:h:web:80"));
  EXPECT_EQ(standin_.CheckStatus("service:h:web:80"), "critical");  // Consul's initial status.
  EXPECT_EQ(standin_.write_count(), 1);
}

TEST_F(StandinTest, RejectsWrongMethods) {
  EXPECT_EQ(standin_.Handle("POST", "/v1/agent/service/register", {}, R"({"Name":"a"})", {}).status,
            405);
  EXPECT_EQ(standin_.Handle("GET", "/v1/agent/service/register", {}, "", {}).status, 405);
  EXPECT_EQ(standin_.Handle("GET", "/v1/agent/service/deregister/x", {}, "", {}).status, 405);
  EXPECT_EQ(standin_.Handle("GET", "/v1/agent/check/pass/x", {}, "", {}).status, 405);
  EXPECT_EQ(standin_.Handle("PUT", "/v1/agent/services", {}, "", {}).status, 405);
  EXPECT_EQ(standin_.Handle("PUT", "/v1/status/leader", {}, "", {}).status, 405);
  EXPECT_EQ(standin_.Handle("POST", "/v1/kv/a", {}, "x", {}).status, 405);
  EXPECT_THAT(standin_.ServiceIds(), IsEmpty());
}

TEST_F(StandinTest, RejectsUnknownFieldsAndWrongTypes) {
  auto reply = RegisterWith(R"(,"Bogus":1)");
  EXPECT_EQ(reply.status, 400);
  EXPECT_THAT(reply.body, HasSubstr(R"(unknown field "Bogus")"));
  EXPECT_EQ(Register(R"({"Name":"web","Port":"80"})").status, 400);
  EXPECT_EQ(Register(R"({"Name":"web","Port":80.5})").status, 400);
  EXPECT_EQ(Register(R"({"Name":"web","Port":70000})").status, 400);
  EXPECT_EQ(Register(R"({"Name":"web","Tags":"a,b"})").status, 400);
  EXPECT_EQ(Register(R"({"Name":"web","Tags":[1]})").status, 400);
  EXPECT_EQ(Register(R"({"Name":"web","Meta":{"a":1}})").status, 400);
  EXPECT_EQ(Register(R"({"Name":7})").status, 400);
  EXPECT_EQ(
      Register(R"({"Name":"web","Check":{"HTTP":"http://x/","Interval":"10s","Bad":1}})").status,
      400);
  EXPECT_EQ(Register(R"({"Name":"web","Check":{"GRPC":"x:1","Interval":"10s","GRPCUseTLS":"yes"}})")
                .status,
            400);
  EXPECT_EQ(Register(R"({"Name":"web","Check":{"Args":"/bin/true","Interval":"10s"}})").status,
            400);
  EXPECT_EQ(Register("not json").status, 400);
  EXPECT_EQ(Register("").status, 400);
  EXPECT_EQ(Register("[]").status, 400);
  EXPECT_THAT(standin_.ServiceIds(), IsEmpty());
  // Every attempt counts as a write, accepted or not.
  EXPECT_EQ(standin_.write_count(), 14);
}

TEST_F(StandinTest, MatchesFieldNamesLikeConsulsDecoder) {
  // python-consul sends lower-case names; Consul's decoder also takes snake_case.
  auto reply =
      Register(R"({"name":"web","id":"w1","port":80,"check":{"tcp":"1.2.3.4:80","interval":"5s",)"
               R"("deregister_critical_service_after":"1m"}})");
  EXPECT_EQ(reply.status, 200) << reply.body;
  EXPECT_THAT(standin_.CheckIds(), ElementsAre("service:w1"));
}

TEST_F(StandinTest, RejectsInvalidNamesAndIds) {
  EXPECT_THAT(Register(R"({"Port":80})").body, HasSubstr("Missing service name"));
  EXPECT_EQ(Register(R"({"Name":""})").status, 400);
  EXPECT_EQ(Register(R"({"Name":"we\nb"})").status, 400);
  EXPECT_EQ(Register(R"({"Name":"web","ID":"a\u0001b"})").status, 400);
  // Without an ID the name is the ID.
  EXPECT_EQ(Register(R"({"Name":"web"})").status, 200);
  EXPECT_THAT(standin_.ServiceIds(), ElementsAre("web"));
}

TEST_F(StandinTest, EnforcesConsulMetaRules) {
  EXPECT_THAT(RegisterWith(R"(,"Meta":{"a.b":"x"})").body, HasSubstr("invalid characters"));
  EXPECT_EQ(RegisterWith(R"(,"Meta":{"":"x"})").status, 400);
  EXPECT_EQ(RegisterWith(R"(,"Meta":{"consul-x":"x"})").status, 400);
  EXPECT_EQ(RegisterWith(absl::StrCat(R"(,"Meta":{")", std::string(129, 'k'), R"(":"x"})")).status,
            400);
  EXPECT_EQ(RegisterWith(absl::StrCat(R"(,"Meta":{"k":")", std::string(513, 'v'), R"("})")).status,
            400);
  std::string many = R"(,"Meta":{)";
  for (int i = 0; i < 65; ++i) absl::StrAppend(&many, i ? "," : "", "\"k", i, "\":\"v\"");
  EXPECT_THAT(RegisterWith(many + "}").body, HasSubstr("64 key/value pairs"));
  EXPECT_THAT(standin_.ServiceIds(), IsEmpty());
  // At the limits it is fine.
  std::string limits = R"(,"Meta":{)";
  for (int i = 0; i < 63; ++i) absl::StrAppend(&limits, "\"k", i, "\":\"v\",");
  absl::StrAppend(&limits, "\"", std::string(128, 'k'), "\":\"", std::string(512, 'v'), "\"}");
  auto reply = RegisterWith(limits);
  EXPECT_EQ(reply.status, 200) << reply.body;
}

TEST_F(StandinTest, AcceptsOnlyGoDurations) {
  for (const char* ok : {"10s", "1m30s", "500ms", "1.5h", "2h45m"}) {
    auto reply = RegisterWith(absl::StrCat(R"(,"Check":{"TCP":"a:1","Interval":")", ok, "\"}"));
    EXPECT_EQ(reply.status, 200) << ok << ": " << reply.body;
  }
  for (const char* bad : {"10", "10 s", "s", "-5s", "1d", "inf", "10sec"}) {
    auto reply = RegisterWith(absl::StrCat(R"(,"Check":{"TCP":"a:1","Interval":")", bad, "\"}"));
    EXPECT_EQ(reply.status, 400) << bad;
    EXPECT_THAT(reply.body, HasSubstr("invalid duration")) << bad;
  }
  EXPECT_EQ(RegisterWith(R"(,"Check":{"TCP":"a:1","Interval":"1s","Timeout":"0"})").status, 200);
  // A zero interval is no interval.
  EXPECT_EQ(RegisterWith(R"(,"Check":{"TCP":"a:1","Interval":"0"})").status, 400);
  // A number is not a duration string.
  EXPECT_EQ(RegisterWith(R"(,"Check":{"TTL":30})").status, 400);
  EXPECT_EQ(RegisterWith(R"(,"Check":{"TTL":"30s","Timeout":"x"})").status, 400);
  EXPECT_EQ(RegisterWith(R"(,"Check":{"TTL":"30s","DeregisterCriticalServiceAfter":"1y"})").status,
            400);
}

TEST_F(StandinTest, ChecksMustBeExactlyOneKindWithTheRightTiming) {
  EXPECT_THAT(RegisterWith(R"(,"Check":{"HTTP":"http://x/","TCP":"x:1","Interval":"10s"})").body,
              HasSubstr("exactly one of"));
  EXPECT_THAT(RegisterWith(R"(,"Check":{"HTTP":"http://x/"})").body,
              HasSubstr("Interval must be > 0"));
  EXPECT_EQ(RegisterWith(R"(,"Check":{"GRPC":"x:1"})").status, 400);
  EXPECT_EQ(RegisterWith(R"(,"Check":{"ScriptArgs":["/bin/true"]})").status, 400);
  EXPECT_THAT(RegisterWith(R"(,"Check":{"TTL":"10s","Interval":"10s"})").body,
              HasSubstr("Interval and TTL cannot both be specified"));
  EXPECT_EQ(RegisterWith(R"(,"Check":{"Interval":"10s"})").status, 400);
  EXPECT_EQ(RegisterWith(R"(,"Check":{"TTL":"10s","Status":"ok"})").status, 400);
  EXPECT_EQ(RegisterWith(R"(,"Checks":[{}])").status, 400);
  EXPECT_THAT(standin_.ServiceIds(), IsEmpty());
  // An empty Check object is ignored, as Consul does.
  EXPECT_EQ(RegisterWith(R"(,"Check":{})").status, 200);
  EXPECT_THAT(standin_.CheckIds(), IsEmpty());
}

TEST_F(StandinTest, NumbersChecksOfAChecksArray) {
  auto reply =
      Register(R"({"ID":"s1","Name":"web","Checks":[{"TTL":"10s"},{"TCP":"a:1","Interval":"10s"},)"
               R"({"CheckID":"mine","TTL":"5s","Status":"passing"}]})");
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_THAT(standin_.CheckIds(), ElementsAre("mine", "service:s1:1", "service:s1:2"));
  EXPECT_EQ(standin_.CheckStatus("mine"), "passing");

  // Re-registering without the array drops its checks.
  ASSERT_EQ(Register(R"({"ID":"s1","Name":"web","Check":{"TTL":"10s"}})").status, 200);
  EXPECT_THAT(standin_.CheckIds(), ElementsAre("service:s1"));
}

TEST_F(StandinTest, DeregisterRemovesTheServiceAndItsChecks) {
  ASSERT_EQ(Register(R"({"ID":"a","Name":"web","Check":{"TTL":"10s"}})").status, 200);
  ASSERT_EQ(Register(R"({"ID":"b","Name":"web","Check":{"TTL":"10s"}})").status, 200);
  EXPECT_EQ(Put("/v1/agent/service/deregister/a", "").status, 200);
  EXPECT_THAT(standin_.ServiceIds(), ElementsAre("b"));
  EXPECT_THAT(standin_.CheckIds(), ElementsAre("service:b"));
  auto again = Put("/v1/agent/service/deregister/a", "");
  EXPECT_EQ(again.status, 404);
  EXPECT_THAT(again.body, HasSubstr("Unknown service ID"));
}

TEST_F(StandinTest, TtlChecksStartCriticalPassAndExpire) {
  ASSERT_EQ(Register(R"({"ID":"a","Name":"web","Check":{"TTL":"300ms"}})").status, 200);
  EXPECT_EQ(standin_.CheckStatus("service:a"), "critical");
  EXPECT_EQ(Put("/v1/agent/check/pass/service:a", "", {{"note", "ok"}}).status, 200);
  EXPECT_EQ(standin_.CheckStatus("service:a"), "passing");
  EXPECT_TRUE(
      WaitFor([&] { return standin_.CheckStatus("service:a") == "critical"; }, absl::Seconds(10)));
  EXPECT_EQ(Put("/v1/agent/check/warn/service:a", "").status, 200);
  EXPECT_EQ(standin_.CheckStatus("service:a"), "warning");
  EXPECT_EQ(Put("/v1/agent/check/fail/service:a", "").status, 200);
  EXPECT_EQ(standin_.CheckStatus("service:a"), "critical");
  EXPECT_EQ(Put("/v1/agent/check/pass/nope", "").status, 404);
}

TEST_F(StandinTest, CheckUpdateTakesStatusAndOutput) {
  ASSERT_EQ(Register(R"({"ID":"a","Name":"web","Check":{"TTL":"60s"}})").status, 200);
  EXPECT_EQ(
      Put("/v1/agent/check/update/service:a", R"({"Status":"passing","Output":"fine"})").status,
      200);
  EXPECT_EQ(standin_.CheckStatus("service:a"), "passing");
  EXPECT_THAT(Get("/v1/agent/checks").body, HasSubstr(R"("Output":"fine")"));
  EXPECT_EQ(Put("/v1/agent/check/update/service:a", R"({"Status":"great"})").status, 400);
  EXPECT_EQ(Put("/v1/agent/check/update/service:a", R"({"Status":"passing","X":1})").status, 400);
  EXPECT_EQ(Put("/v1/agent/check/update/service:a", "").status, 400);
  // Only TTL checks take updates.
  ASSERT_EQ(Register(R"({"ID":"b","Name":"web","Check":{"TCP":"a:1","Interval":"1s"}})").status,
            200);
  EXPECT_EQ(Put("/v1/agent/check/pass/service:b", "").status, 500);
}

TEST_F(StandinTest, HealthPassingFiltersAndCatalogLists) {
  ASSERT_EQ(Register(R"({"ID":"a","Name":"web","Tags":["x"],"Check":{"TTL":"60s"}})").status, 200);
  ASSERT_EQ(Register(R"({"ID":"b","Name":"web","Tags":["y"],"Check":{"TTL":"60s"}})").status, 200);
  ASSERT_EQ(Put("/v1/agent/check/pass/service:a", "").status, 200);
  auto all = Get("/v1/health/service/web");
  auto passing = Get("/v1/health/service/web", {{"passing", "1"}});
  EXPECT_THAT(all.body, HasSubstr(R"("ID":"a")"));
  EXPECT_THAT(all.body, HasSubstr(R"("ID":"b")"));
  EXPECT_THAT(passing.body, HasSubstr(R"("ID":"a")"));
  EXPECT_THAT(passing.body, ::testing::Not(HasSubstr(R"("ID":"b")")));
  EXPECT_EQ(Get("/v1/catalog/services").body, R"({"consul":[],"web":["x","y"]})");
  EXPECT_THAT(Get("/v1/catalog/service/web").body, HasSubstr(R"("ServiceID":"b")"));
  EXPECT_EQ(Get("/v1/catalog/service/none").body, "[]");
}

TEST_F(StandinTest, KeyValueSemantics) {
  EXPECT_EQ(Put("/v1/kv/a/b/c", "v1").body, "true");
  EXPECT_EQ(Put("/v1/kv/a/b/d", "v2").body, "true");
  EXPECT_EQ(Put("/v1/kv/a/x", "").body, "true");
  EXPECT_EQ(Put("/v1/kv/", "x").status, 400);
  EXPECT_EQ(Get("/v1/kv/a/b/c").body.find(R"("Value":"djE=")") != std::string::npos, true);
  EXPECT_EQ(Get("/v1/kv/a/b/c", {{"raw", ""}}).body, "v1");
  EXPECT_EQ(Get("/v1/kv/missing").status, 404);
  EXPECT_EQ(Get("/v1/kv/zzz/", {{"recurse", ""}}).status, 404);
  auto recurse = Get("/v1/kv/a/b/", {{"recurse", ""}});
  EXPECT_THAT(recurse.body, HasSubstr(R"("Key":"a/b/c")"));
  EXPECT_THAT(recurse.body, HasSubstr(R"("Key":"a/b/d")"));
  EXPECT_THAT(recurse.body, ::testing::Not(HasSubstr(R"("Key":"a/x")")));
  EXPECT_EQ(Get("/v1/kv/a/", {{"keys", ""}, {"separator", "/"}}).body, R"(["a/b/","a/x"])");
  EXPECT_EQ(Get("/v1/kv/a", {{"keys", ""}}).body, R"(["a/b/c","a/b/d","a/x"])");
  // cas=0 creates only; a stale index loses.
  EXPECT_EQ(Put("/v1/kv/a/b/c", "v3", {{"cas", "0"}}).body, "false");
  EXPECT_EQ(Put("/v1/kv/new", "n", {{"cas", "0"}}).body, "true");
  EXPECT_EQ(Put("/v1/kv/new", "n", {{"cas", "1"}}).body, "false");
  EXPECT_EQ(standin_.Handle("DELETE", "/v1/kv/a/b/c", {}, "", {}).body, "true");
  EXPECT_EQ(standin_.KvValue("a/b/c"), std::nullopt);
  EXPECT_EQ(standin_.Handle("DELETE", "/v1/kv/a/", {{"recurse", ""}}, "", {}).body, "true");
  EXPECT_EQ(standin_.KvValue("a/b/d"), std::nullopt);
  EXPECT_EQ(standin_.KvValue("new"), "n");
}

TEST(StandinAclTest, WritesNeedTheTokenAndListsAreFiltered) {
  ConsulStandin standin({.acl_token = "t0ken"});
  const std::multimap<std::string, std::string> good = {{"X-Consul-Token", "t0ken"}};
  const std::multimap<std::string, std::string> bearer = {{"authorization", "Bearer t0ken"}};
  const std::multimap<std::string, std::string> bad = {{"X-Consul-Token", "nope"}};
  const std::string body = R"({"Name":"web"})";
  auto anonymous = standin.Handle("PUT", "/v1/agent/service/register", {}, body, {});
  EXPECT_EQ(anonymous.status, 403);
  EXPECT_THAT(anonymous.body, HasSubstr("Permission denied"));
  EXPECT_EQ(standin.Handle("PUT", "/v1/agent/service/register", {}, body, bad).status, 403);
  EXPECT_EQ(standin.Handle("PUT", "/v1/kv/a", {}, "x", {}).status, 403);
  EXPECT_THAT(standin.ServiceIds(), IsEmpty());
  EXPECT_EQ(standin.Handle("PUT", "/v1/agent/service/register", {}, body, good).status, 200);
  EXPECT_EQ(standin.Handle("PUT", "/v1/agent/service/deregister/web", {}, "", bearer).status, 200);
  EXPECT_EQ(
      standin.Handle("PUT", "/v1/agent/service/register", {{"token", "t0ken"}}, body, {}).status,
      200);
  // Anonymous list reads succeed but show nothing; a wrong token is refused.
  EXPECT_EQ(standin.Handle("GET", "/v1/agent/services", {}, "", {}).body, "{}");
  EXPECT_THAT(standin.Handle("GET", "/v1/agent/services", {}, "", good).body,
              HasSubstr(R"("web")"));
  EXPECT_EQ(standin.Handle("GET", "/v1/agent/services", {}, "", bad).status, 403);
  // The leader is public.
  EXPECT_EQ(standin.Handle("GET", "/v1/status/leader", {}, "", {}).body, R"("127.0.0.1:8300")");
  // The log knows a token was sent, never which.
  for (const auto& request : standin.requests()) {
    EXPECT_THAT(request.body, ::testing::Not(HasSubstr("t0ken")));
  }
}

TEST(StandinHttpTest, ServesOverTcpAndCountsWrites) {
  ConsulStandin standin;
  ASSERT_TRUE(standin.ListenTcp().ok());
  ASSERT_GT(standin.port(), 0);
  HttpEndpoint endpoint;
  endpoint.base_url = absl::StrCat("http://127.0.0.1:", standin.port());
  HttpClient client(endpoint);
  HttpRequest put;
  put.method = "PUT";
  put.path = "/v1/agent/service/register";
  put.body = R"({"Name":"web","Port":1})";
  auto reply = client.Send(put);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->status, 200);
  HttpRequest get;
  get.path = "/v1/agent/services";
  reply = client.Send(get);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_THAT(reply->body, HasSubstr(R"("Service":"web")"));
  EXPECT_EQ(standin.write_count(), 1);
  EXPECT_EQ(standin.BodiesOf("PUT", "/v1/agent/service/register"),
            std::vector<std::string>{R"({"Name":"web","Port":1})"});
  standin.Stop();
  EXPECT_FALSE(HttpClient(endpoint).Send(get).ok());
}

}  // namespace
}  // namespace registrator::fakes
