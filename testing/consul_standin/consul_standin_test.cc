// The stand-in must be as strict as Consul, or adapter tests against it prove nothing: it
// rejects off-spec requests with Consul's status codes, and keeps agent state the way Consul
// does (check IDs, TTL expiry, deregistration removing checks, KV semantics, ACLs).
#include "testing/consul_standin/consul_standin.h"

#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registrator/common/http_client.h"
#include "testing/process.h"
#include "testing/status_matchers.h"

namespace registrator::fakes {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

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
  ASSERT_THAT(standin.ListenTcp(), IsOk());
  ASSERT_GT(standin.port(), 0);
  HttpEndpoint endpoint;
  endpoint.base_url = absl::StrCat("http://127.0.0.1:", standin.port());
  HttpClient client(endpoint);
  HttpRequest put;
  put.method = "PUT";
  put.path = "/v1/agent/service/register";
  put.body = R"({"Name":"web","Port":1})";
  auto reply = client.Send(put);
  ASSERT_THAT(reply, IsOk()) << reply.status();
  EXPECT_EQ(reply->status, 200);
  HttpRequest get;
  get.path = "/v1/agent/services";
  reply = client.Send(get);
  ASSERT_THAT(reply, IsOk()) << reply.status();
  EXPECT_THAT(reply->body, HasSubstr(R"("Service":"web")"));
  EXPECT_EQ(standin.write_count(), 1);
  EXPECT_EQ(standin.BodiesOf("PUT", "/v1/agent/service/register"),
            std::vector<std::string>{R"({"Name":"web","Port":1})"});
  standin.Stop();
  EXPECT_THAT(HttpClient(endpoint).Send(get), Not(IsOk()));
}

}  // namespace
}  // namespace registrator::fakes

namespace registrator::fakes {
namespace {

// Hang mode: a request is held until released (the client gives up first when its timeout is
// shorter), and released requests are applied in arrival order, even one whose client left.
TEST(StandinHangTest, HoldsRequestsUntilReleasedAndAppliesThemInArrivalOrder) {
  ConsulStandin standin;
  ASSERT_THAT(standin.ListenTcp(), IsOk());
  HttpEndpoint endpoint;
  endpoint.base_url = absl::StrCat("http://127.0.0.1:", standin.port());
  HttpClient client(endpoint);
  standin.SetHung(true);

  HttpRequest impatient;
  impatient.method = "PUT";
  impatient.path = "/v1/agent/service/register";
  impatient.body = R"({"ID":"a","Name":"a","Port":1})";
  impatient.timeout = absl::Milliseconds(300);
  absl::StatusOr<HttpResponse> gave_up = client.Send(impatient);
  EXPECT_FALSE(gave_up.ok()) << "answered while hung: " << gave_up->status;
  EXPECT_TRUE(standin.ServiceIds().empty());

  HttpRequest deregister;
  deregister.method = "PUT";
  deregister.path = "/v1/agent/service/deregister/a";
  absl::StatusOr<HttpResponse> answer;
  std::thread patient([&] { answer = client.Send(deregister); });
  ASSERT_TRUE(WaitFor([&] { return standin.held_requests() == 2; }, absl::Seconds(10)));
  standin.SetHung(false);
  patient.join();
  ASSERT_THAT(answer, IsOk());
  // The register (first in) was applied, then the deregister removed it: 200, nothing left.
  EXPECT_EQ(answer->status, 200) << answer->body;
  EXPECT_TRUE(standin.ServiceIds().empty());
  EXPECT_EQ(standin.BodiesOf("PUT", "/v1/agent/service/register").size(), 1u);
  EXPECT_EQ(standin.held_requests(), 0);
}

TEST(StandinHangTest, StopAnswersHeldRequests) {
  ConsulStandin standin;
  ASSERT_THAT(standin.ListenTcp(), IsOk());
  HttpEndpoint endpoint;
  endpoint.base_url = absl::StrCat("http://127.0.0.1:", standin.port());
  HttpClient client(endpoint);
  standin.SetHung(true);
  HttpRequest leader;
  leader.path = "/v1/status/leader";
  std::thread waiting([&] { (void)client.Send(leader); });
  ASSERT_TRUE(WaitFor([&] { return standin.held_requests() == 1; }, absl::Seconds(10)));
  const absl::Time before = absl::Now();
  standin.Stop();
  waiting.join();
  EXPECT_LT(absl::Now() - before, absl::Seconds(5)) << "Stop() waited for the hang";
}

// --- Blocking queries (api-docs/features/blocking) ---

std::string HeaderOf(const StandinReply& reply, const std::string& name) {
  for (const auto& [key, value] : reply.headers) {
    if (key == name) return value;
  }
  return "";
}

uint64_t IndexOf(const StandinReply& reply) {
  uint64_t index = 0;
  EXPECT_TRUE(absl::SimpleAtoi(HeaderOf(reply, "X-Consul-Index"), &index)) << "no index";
  return index;
}

class BlockingTest : public StandinTest {
 protected:
  // Runs a GET on another thread; done() tells whether it was answered.
  class Pending {
   public:
    Pending(ConsulStandin* standin, std::string path, std::multimap<std::string, std::string> p)
        : thread_([this, standin, path, p] {
            StandinReply reply = standin->Handle("GET", path, p, "", {});
            absl::MutexLock lock(&mu_);
            reply_ = std::move(reply);
            done_ = true;
          }) {}
    ~Pending() { thread_.join(); }
    bool done() {
      absl::MutexLock lock(&mu_);
      return done_;
    }
    StandinReply Wait() {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(&done_));
      return reply_;
    }

   private:
    absl::Mutex mu_;
    bool done_ ABSL_GUARDED_BY(mu_) = false;
    StandinReply reply_ ABSL_GUARDED_BY(mu_);
    std::thread thread_;
  };

  // Waits until the stand-in has received `count` requests for `path` (the blocked one is
  // logged on arrival).
  void AwaitRequests(const std::string& path, size_t count) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      size_t seen = 0;
      for (const RecordedRequest& r : standin_.requests()) seen += r.path == path;
      if (seen >= count) return;
      absl::SleepFor(absl::Milliseconds(2));
    }
    ADD_FAILURE() << "no request for " << path;
  }
};

TEST_F(BlockingTest, KvPrefixReadBlocksUntilTheIndexUnderThePrefixGrows) {
  ASSERT_EQ(Put("/v1/kv/svc/web/1", "10.0.0.1:80").status, 200);
  StandinReply first = Get("/v1/kv/svc/", {{"recurse", ""}});
  ASSERT_EQ(first.status, 200);
  const uint64_t index = IndexOf(first);
  ASSERT_GE(index, 1u);

  Pending pending(&standin_, "/v1/kv/svc/",
                  {{"recurse", ""}, {"index", absl::StrCat(index)}, {"wait", "5m"}});
  AwaitRequests("/v1/kv/svc/", 2);
  // A write elsewhere moves the store's index but not this prefix's: the query stays blocked.
  ASSERT_EQ(Put("/v1/kv/other/x", "y").status, 200);
  EXPECT_EQ(IndexOf(Get("/v1/kv/svc/", {{"recurse", ""}})), index);
  EXPECT_FALSE(pending.done());
  // A deletion under the prefix wakes it (the tombstone's index), with the key gone.
  ASSERT_EQ(standin_.Handle("DELETE", "/v1/kv/svc/web/1", {}, "", {}).status, 200);
  StandinReply woken = pending.Wait();
  EXPECT_EQ(woken.status, 404);  // Nothing left under the prefix; Consul still sends the index.
  EXPECT_GT(IndexOf(woken), index);
}

TEST_F(BlockingTest, WaitRunningOutAnswersWithTheSameIndex) {
  ASSERT_EQ(Put("/v1/kv/svc/web/1", "10.0.0.1:80").status, 200);
  const uint64_t index = IndexOf(Get("/v1/kv/svc/", {{"recurse", ""}}));
  StandinReply reply =
      Get("/v1/kv/svc/", {{"recurse", ""}, {"index", absl::StrCat(index)}, {"wait", "20ms"}});
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(IndexOf(reply), index);
  EXPECT_THAT(reply.body, HasSubstr("svc/web/1"));
  // index=0 (or an older index) answers at once.
  EXPECT_EQ(IndexOf(Get("/v1/kv/svc/", {{"recurse", ""}, {"index", "0"}})), index);
  EXPECT_EQ(IndexOf(Get("/v1/kv/svc/", {{"recurse", ""}, {"index", absl::StrCat(index - 1)}})),
            index);
}

TEST_F(BlockingTest, MalformedWaitOrIndexIsRefused) {
  EXPECT_EQ(Get("/v1/kv/a", {{"index", "1"}, {"wait", "soon"}}).status, 400);
  EXPECT_EQ(Get("/v1/kv/a", {{"index", "x"}}).status, 400);
  EXPECT_EQ(Get("/v1/catalog/services", {{"index", "-1"}}).status, 400);
}

TEST_F(BlockingTest, IndexIsNeverBelowOneAndOnlyOnBlockingEndpoints) {
  StandinReply empty = Get("/v1/kv/nothing/", {{"recurse", ""}});
  EXPECT_EQ(empty.status, 404);
  EXPECT_GE(IndexOf(empty), 1u);
  EXPECT_GE(IndexOf(Get("/v1/catalog/services")), 1u);
  EXPECT_GE(IndexOf(Get("/v1/health/service/web")), 1u);
  // The agent's own endpoints block by hash, the rest not at all.
  EXPECT_EQ(HeaderOf(Get("/v1/agent/services"), "X-Consul-Index"), "");
  EXPECT_NE(HeaderOf(Get("/v1/agent/services"), "X-Consul-ContentHash"), "");
  EXPECT_EQ(HeaderOf(Get("/v1/status/leader"), "X-Consul-Index"), "");
  EXPECT_EQ(HeaderOf(Get("/v1/agent/checks"), "X-Consul-ContentHash"), "");
}

TEST_F(BlockingTest, AfterAWipeTheIndexGoesBackwardsAndAStaleIndexOnlyTimesOut) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Put(absl::StrCat("/v1/kv/svc/web/", i), "10.0.0.1:80").status, 200);
  }
  const uint64_t index = IndexOf(Get("/v1/kv/svc/", {{"recurse", ""}}));
  ASSERT_GT(index, 1u);
  Pending pending(&standin_, "/v1/kv/svc/",
                  {{"recurse", ""}, {"index", absl::StrCat(index)}, {"wait", "200ms"}});
  AwaitRequests("/v1/kv/svc/", 2);
  standin_.Wipe();
  ASSERT_EQ(Put("/v1/kv/svc/web/9", "10.0.0.9:80").status, 200);
  // The new state's index is below the client's: the query cannot see "greater" and answers
  // only when its wait runs out, with the lower index. That is the client's cue to reset to 0.
  StandinReply stale = pending.Wait();
  EXPECT_LT(IndexOf(stale), index);
  EXPECT_THAT(stale.body, HasSubstr("svc/web/9"));
  // After the reset, index 0 reads at once.
  EXPECT_THAT(Get("/v1/kv/svc/", {{"recurse", ""}, {"index", "0"}}).body, HasSubstr("svc/web/9"));
}

TEST_F(BlockingTest, AgentServicesBlocksUntilTheContentHashChanges) {
  ASSERT_EQ(RegisterWith(R"(,"ID":"a")").status, 200);
  StandinReply first = Get("/v1/agent/services");
  const std::string hash = HeaderOf(first, "X-Consul-ContentHash");
  ASSERT_NE(hash, "");
  // Same content, same hash; a timed-out wait answers with it.
  StandinReply timed_out = Get("/v1/agent/services", {{"hash", hash}, {"wait", "20ms"}});
  EXPECT_EQ(HeaderOf(timed_out, "X-Consul-ContentHash"), hash);
  EXPECT_EQ(timed_out.body, first.body);

  Pending pending(&standin_, "/v1/agent/services", {{"hash", hash}, {"wait", "5m"}});
  AwaitRequests("/v1/agent/services", 3);
  // A KV write moves the index but not the agent's services: still blocked.
  ASSERT_EQ(Put("/v1/kv/x", "y").status, 200);
  EXPECT_EQ(HeaderOf(Get("/v1/agent/services"), "X-Consul-ContentHash"), hash);
  EXPECT_FALSE(pending.done());
  ASSERT_EQ(Put("/v1/agent/service/deregister/a", "").status, 200);
  StandinReply woken = pending.Wait();
  EXPECT_NE(HeaderOf(woken, "X-Consul-ContentHash"), hash);
  EXPECT_EQ(woken.body, "{}");
}

TEST_F(BlockingTest, OverHttpHeadersArriveAndStopAnswersBlockedQueries) {
  ASSERT_THAT(standin_.ListenTcp(), IsOk());
  HttpEndpoint endpoint;
  endpoint.base_url = absl::StrCat("http://127.0.0.1:", standin_.port());
  HttpClient client(endpoint);
  HttpRequest request;
  request.path = "/v1/kv/svc/?recurse";
  request.response_headers = {"X-Consul-Index"};
  absl::StatusOr<HttpResponse> first = client.Send(request);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->status, 404);
  const std::string index = first->Header("X-Consul-Index");
  ASSERT_NE(index, "");

  request.path = absl::StrCat("/v1/kv/svc/?recurse&index=", index, "&wait=10m");
  request.timeout = absl::Minutes(11);
  StreamCancel cancel;
  absl::Notification done;
  absl::StatusOr<HttpResponse> blocked;
  std::thread poller([&] {
    blocked = client.LongPoll(request, &cancel);
    done.Notify();
  });
  AwaitRequests("/v1/kv/svc/", 2);
  EXPECT_FALSE(done.HasBeenNotified());
  // Stop() must not wait out the ten minutes.
  standin_.Stop();
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  poller.join();
  ASSERT_TRUE(blocked.ok()) << blocked.status();
  EXPECT_EQ(blocked->Header("X-Consul-Index"), index);
}

}  // namespace
}  // namespace registrator::fakes
