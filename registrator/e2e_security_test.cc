// End to end, issue 13: the registrator binary against a real dockerd with hostile containers
// (path-injecting SERVICE_NAME / SERVICE_ID), behind a recording server per transport that
// fails the test on any request outside the service's own entry under the prefix: the Consul
// stand-in (it records every request; agent and KV) and a recording proxy in front of a real etcd
// (v2 keys API, where the key is the URL path). The same runs carry known secrets (a password in
// the URI, CONSUL_HTTP_TOKEN) through start, backend failures and shutdown at -log-level debug, and
// the test greps all of registrator's output and /health, /metrics and /services for them.
// Runs that fail before Docker is even contacted (unreachable etcd / ZooKeeper with a password,
// malformed URIs) check the same for error messages.
#include <httplib.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registrator/common/http_client.h"
#include "testing/consul_standin/consul_standin.h"
#include "testing/dockerd_fixture.h"
#include "testing/etcd_fixture.h"
#include "testing/process.h"
#include "testing/registrator_process.h"

namespace registrator {
namespace {

using fakes::ConsulStandin;
using fakes::ConsulStandinOptions;
using fakes::DockerdFixture;
using fakes::EtcdFixture;
using fakes::FreeLoopbackPort;
using fakes::LocalHostname;
using fakes::RecordedRequest;
using fakes::RegistratorProcess;
using fakes::TempDir;
using fakes::WaitFor;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kUriPassword[] = "uri-pass-7f3a9c";
constexpr char kConsulToken[] = "consul-token-5e1d22";

// GET http://127.0.0.1:<port><path>: the body, or "" when unreachable.
std::string Fetch(int port, const std::string& path) {
  HttpEndpoint endpoint;
  endpoint.base_url = absl::StrCat("http://127.0.0.1:", port);
  HttpClient client(endpoint);
  HttpRequest request;
  request.path = path;
  absl::StatusOr<HttpResponse> response = client.Send(request);
  return response.ok() ? response->body : "";
}

// A path segment as the registrator's requests may hold it: one key segment, nothing that a
// server would resolve or split.
bool OneSafeSegment(absl::string_view segment) {
  return !segment.empty() && segment != "." && segment != ".." &&
         segment.find('/') == absl::string_view::npos;
}

// Fails the test for any request that is not one of the Consul agent endpoints registrator uses,
// on one service (or its TTL check) only. Paths are as the stand-in decoded them.
void ExpectOnlyOwnConsulEntries(const std::vector<RecordedRequest>& requests) {
  for (const RecordedRequest& r : requests) {
    absl::string_view path = r.path;
    const std::string what = absl::StrCat(r.method, " ", r.path);
    if (path == "/v1/status/leader" || path == "/v1/agent/services") {
      EXPECT_EQ(r.method, "GET") << what;
    } else if (path == "/v1/agent/service/register") {
      EXPECT_EQ(r.method, "PUT") << what;
    } else if (absl::ConsumePrefix(&path, "/v1/agent/service/deregister/") ||
               absl::ConsumePrefix(&path, "/v1/agent/check/pass/")) {
      EXPECT_EQ(r.method, "PUT") << what;
      EXPECT_TRUE(OneSafeSegment(path)) << "request outside one service: " << what;
    } else {
      ADD_FAILURE() << "request outside registrator's endpoints: " << what;
    }
  }
}

class SecurityEndToEndTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<DockerdFixture>> docker = DockerdFixture::Start();
    ASSERT_TRUE(docker.ok()) << docker.status();
    docker_ = docker->release();
  }
  static void TearDownTestSuite() {
    delete docker_;
    docker_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(docker_, nullptr);
    test_name_ =
        absl::AsciiStrToLower(::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  void TearDown() override {
    registrator_.Stop();
    for (const std::string& name : containers_) docker_->Docker({"rm", "-f", name});
    if (HasFailure()) ADD_FAILURE() << "registrator output:\n" << registrator_.Output();
  }

  void StartRegistrator(const std::vector<std::string>& flags, const std::string& uri,
                        const std::vector<std::string>& env) {
    ASSERT_TRUE(registrator_
                    .Start(flags, uri, docker_->host(),
                           absl::StrCat(docker_->dir(), "/registrator-", test_name_, ".out"), env)
                    .ok());
    ASSERT_TRUE(registrator_.WaitForOutput("listening for Docker events")) << registrator_.Output();
  }
  void RunContainer(const std::string& name, const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"run", "-d", "--name", name};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(DockerdFixture::kImage);
    containers_.push_back(name);
    DockerdFixture::Result result = docker_->Docker(args);
    ASSERT_EQ(result.exit_code, 0) << absl::StrJoin(args, " ");
  }
  static std::string Publish(int host_port) { return absl::StrCat("127.0.0.1:", host_port, ":80"); }
  // The hostile containers every test starts, and the well-behaved one beside them.
  void RunHostileContainers() {
    RunContainer("sec-name", {"-p", Publish(FreeLoopbackPort()), "-e",
                              "SERVICE_NAME=../../agent/service/deregister/victim"});
    RunContainer("sec-id", {"-p", Publish(FreeLoopbackPort()), "--label", "SERVICE_ID=.."});
    RunContainer("sec-id-path", {"-p", Publish(FreeLoopbackPort()), "--label",
                                 "SERVICE_ID=../../../v2/members/abc"});
    RunContainer("sec-good", {"-p", Publish(FreeLoopbackPort()), "-e", "SERVICE_NAME=good"});
  }
  void ExpectHostileWarnings() {
    for (const char* container : {"(sec-name)", "(sec-id)", "(sec-id-path)"}) {
      EXPECT_TRUE(registrator_.WaitForOutput(container)) << container;
    }
    EXPECT_THAT(registrator_.Output(), HasSubstr("invalid name: contains \"/\"; service skipped"));
    EXPECT_THAT(registrator_.Output(),
                HasSubstr("invalid ID: a \".\" or \"..\" path segment; service skipped"));
  }
  // Every output of registrator and of its status endpoints is free of the secrets.
  void ExpectNoSecrets(int http_port, const std::vector<std::string>& secrets) {
    std::vector<std::pair<std::string, std::string>> outputs = {{"output", registrator_.Output()}};
    if (http_port > 0) {
      for (const char* path : {"/health", "/metrics", "/services"}) {
        outputs.emplace_back(path, Fetch(http_port, path));
      }
    }
    for (const auto& [where, text] : outputs) {
      for (const std::string& secret : secrets) {
        EXPECT_THAT(text, Not(HasSubstr(secret))) << where << " shows a secret";
      }
    }
  }

  static DockerdFixture* docker_;
  std::string test_name_;
  RegistratorProcess registrator_;
  std::vector<std::string> containers_;
};

DockerdFixture* SecurityEndToEndTest::docker_ = nullptr;

TEST_F(SecurityEndToEndTest, ConsulHostileContainersStayInTheirEntriesAndSecretsNeverShow) {
  ConsulStandinOptions options;
  options.acl_token = kConsulToken;
  ConsulStandin consul(options);
  ASSERT_TRUE(consul.ListenTcp().ok());
  // Another service on the agent: what the hostile name would deregister.
  const fakes::StandinReply seeded =
      consul.Handle("PUT", "/v1/agent/service/register", {},
                    R"({"ID":"victim","Name":"victim","Address":"10.0.0.9","Port":80})",
                    {{"X-Consul-Token", kConsulToken}});
  ASSERT_EQ(seeded.status, 200) << seeded.body;

  const int http_port = FreeLoopbackPort();
  StartRegistrator({"-log-level", "debug", "-cleanup", "-resync", "1", "-http",
                    absl::StrCat("127.0.0.1:", http_port)},
                   absl::StrCat("consul://operator:", kUriPassword, "@127.0.0.1:", consul.port()),
                   {absl::StrCat("CONSUL_HTTP_TOKEN=", kConsulToken)});
  RunHostileContainers();
  const std::string good_id = absl::StrCat(LocalHostname(), ":sec-good:80");
  ASSERT_TRUE(WaitFor(
      [&] {
        std::vector<std::string> ids = consul.ServiceIds();
        return std::find(ids.begin(), ids.end(), good_id) != ids.end();
      },
      absl::Seconds(20), absl::Milliseconds(50)));
  ExpectHostileWarnings();
  // Two resyncs with -cleanup have listed and compared since.
  ASSERT_TRUE(WaitFor([&] { return fakes::RegistratorResyncCount(http_port) >= 2; },
                      absl::Seconds(20), absl::Milliseconds(100)));
  EXPECT_THAT(consul.ServiceIds(), ::testing::UnorderedElementsAre("victim", good_id));
  EXPECT_THAT(registrator_.Output(), HasSubstr("using consul://operator:***@127.0.0.1:"));
  ExpectNoSecrets(http_port, {kUriPassword, kConsulToken});

  // The hostile containers go away: nothing of theirs is deregistered anywhere (upstream would
  // send PUT /v1/agent/service/deregister/.. and have libcurl make it /v1/agent/service/).
  const int resyncs = fakes::RegistratorResyncCount(http_port);
  for (const char* name : {"sec-name", "sec-id", "sec-id-path"})
    docker_->Docker({"rm", "-f", name});
  ASSERT_TRUE(WaitFor([&] { return fakes::RegistratorResyncCount(http_port) >= resyncs + 2; },
                      absl::Seconds(20), absl::Milliseconds(100)));
  EXPECT_THAT(consul.ServiceIds(), ::testing::UnorderedElementsAre("victim", good_id));

  // Failures: the agent goes away; /health reports it, writes fail and are retried.
  consul.Stop();
  docker_->Docker({"rm", "-f", "sec-good"});
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(Fetch(http_port, "/health"), "backend: "); },
                      absl::Seconds(20), absl::Milliseconds(200)));
  ASSERT_TRUE(registrator_.WaitForOutput(absl::StrCat("deregister ", good_id, " failed")));
  ExpectNoSecrets(http_port, {kUriPassword, kConsulToken});
  EXPECT_EQ(registrator_.Stop(), 0);
  ExpectNoSecrets(0, {kUriPassword, kConsulToken});
  ExpectOnlyOwnConsulEntries(consul.requests());
}

// Consul KV puts the name in the URL path: the issue's own example, "prefix/../../agent/...".
TEST_F(SecurityEndToEndTest, ConsulKvHostileContainersStayUnderThePrefix) {
  ConsulStandin consul;
  ASSERT_TRUE(consul.ListenTcp().ok());
  const int http_port = FreeLoopbackPort();
  StartRegistrator({"-cleanup", "-resync", "1", "-http", absl::StrCat("127.0.0.1:", http_port)},
                   absl::StrCat("consulkv://127.0.0.1:", consul.port(), "/prefix"), {});
  RunHostileContainers();
  const std::string good_key = absl::StrCat("prefix/good/", LocalHostname(), ":sec-good:80");
  ASSERT_TRUE(WaitFor([&] { return consul.KvValue(good_key).has_value(); }, absl::Seconds(20),
                      absl::Milliseconds(50)));
  ExpectHostileWarnings();
  for (const char* name : {"sec-name", "sec-id", "sec-id-path", "sec-good"}) {
    docker_->Docker({"rm", "-f", name});
  }
  ASSERT_TRUE(WaitFor([&] { return !consul.KvValue(good_key).has_value(); }, absl::Seconds(20),
                      absl::Milliseconds(50)));
  const int resyncs = fakes::RegistratorResyncCount(http_port);
  ASSERT_TRUE(WaitFor([&] { return fakes::RegistratorResyncCount(http_port) >= resyncs + 2; },
                      absl::Seconds(20), absl::Milliseconds(100)));
  EXPECT_EQ(registrator_.Stop(), 0);

  for (const RecordedRequest& r : consul.requests()) {
    absl::string_view path = r.path;
    const std::string what = absl::StrCat(r.method, " ", r.path, "?", r.query);
    if (path == "/v1/status/leader" || path == "/v1/kv/prefix/") continue;
    ASSERT_TRUE(absl::ConsumePrefix(&path, "/v1/kv/prefix/")) << "outside the prefix: " << what;
    std::vector<absl::string_view> segments = absl::StrSplit(path, '/');
    ASSERT_EQ(segments.size(), 2u) << "outside one entry: " << what;
    for (absl::string_view segment : segments) EXPECT_TRUE(OneSafeSegment(segment)) << what;
  }
}

// A recording reverse proxy in front of etcd: every request target is kept, then forwarded.
class RecordingProxy {
 public:
  explicit RecordingProxy(const std::string& upstream_host, int upstream_port)
      : upstream_(upstream_host, upstream_port) {
    auto forward = [this](const httplib::Request& req, httplib::Response& res) {
      {
        absl::MutexLock lock(&mu_);
        targets_.push_back(absl::StrCat(req.method, " ", req.target));
      }
      httplib::Headers headers;
      for (const auto& [name, value] : req.headers) {
        if (absl::EqualsIgnoreCase(name, "Authorization") ||
            absl::EqualsIgnoreCase(name, "Content-Type")) {
          headers.emplace(name, value);
        }
      }
      httplib::Request out;
      out.method = req.method;
      out.path = req.target;  // Raw: forwarded exactly as registrator sent it.
      out.headers = headers;
      out.body = req.body;
      httplib::Result result = upstream_.send(out);
      if (!result) {
        res.status = 502;
        return;
      }
      res.status = result->status;
      res.body = result->body;
      for (const auto& [name, value] : result->headers) {
        if (absl::EqualsIgnoreCase(name, "Content-Type") ||
            absl::StartsWithIgnoreCase(name, "X-")) {
          res.set_header(name, value);
        }
      }
    };
    server_.Get(".*", forward);
    server_.Put(".*", forward);
    server_.Post(".*", forward);
    server_.Delete(".*", forward);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    WaitFor([this] { return server_.is_running(); }, absl::Seconds(10));
  }
  ~RecordingProxy() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  std::vector<std::string> targets() {
    absl::MutexLock lock(&mu_);
    return targets_;
  }

 private:
  httplib::Client upstream_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  absl::Mutex mu_;
  std::vector<std::string> targets_ ABSL_GUARDED_BY(mu_);
};

TEST_F(SecurityEndToEndTest, EtcdV2HostileContainersStayUnderThePrefixAndSecretsNeverShow) {
  fakes::EtcdFixtureOptions options;
  options.enable_v2 = true;
  absl::StatusOr<std::unique_ptr<EtcdFixture>> etcd = EtcdFixture::Start(options);
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  // The v2 "members" API is what "../../members/abc" in a key would reach.
  RecordingProxy proxy("127.0.0.1", (*etcd)->client_port());

  const int http_port = FreeLoopbackPort();
  StartRegistrator(
      {"-log-level", "debug", "-cleanup", "-resync", "1", "-http",
       absl::StrCat("127.0.0.1:", http_port)},
      absl::StrCat("etcd2://operator:", kUriPassword, "@127.0.0.1:", proxy.port(), "/services"),
      {});
  RunHostileContainers();
  // The v2 store is separate from v3's: read it through the v2 API, straight from etcd.
  HttpEndpoint etcd_endpoint;
  etcd_endpoint.base_url = (*etcd)->base_url();
  HttpClient etcd_client(etcd_endpoint);
  auto good_key_exists = [&] {
    HttpRequest request;
    request.path =
        absl::StrCat("/v2/keys/services/good/", UrlEncode(LocalHostname() + ":sec-good:80"));
    absl::StatusOr<HttpResponse> response = etcd_client.Send(request);
    return response.ok() && response->status == 200;
  };
  ASSERT_TRUE(WaitFor(good_key_exists, absl::Seconds(20), absl::Milliseconds(100)));
  ExpectHostileWarnings();
  ASSERT_TRUE(WaitFor([&] { return fakes::RegistratorResyncCount(http_port) >= 2; },
                      absl::Seconds(20), absl::Milliseconds(100)));
  EXPECT_THAT(registrator_.Output(), HasSubstr("using etcd2://operator:***@127.0.0.1:"));
  ExpectNoSecrets(http_port, {kUriPassword});

  docker_->Docker({"rm", "-f", "sec-good"});
  ASSERT_TRUE(
      WaitFor([&] { return !good_key_exists(); }, absl::Seconds(20), absl::Milliseconds(100)));
  // Nothing was written anywhere else in the v2 store.
  HttpRequest all;
  all.path = "/v2/keys/?recursive=true";
  absl::StatusOr<HttpResponse> tree = etcd_client.Send(all);
  ASSERT_TRUE(tree.ok()) << tree.status();
  EXPECT_THAT(tree->body, Not(HasSubstr("members"))) << tree->body;
  EXPECT_THAT(tree->body, Not(HasSubstr("victim"))) << tree->body;
  (*etcd)->Stop();  // Failures from here on.
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(Fetch(http_port, "/health"), "backend: "); },
                      absl::Seconds(20), absl::Milliseconds(200)));
  ExpectNoSecrets(http_port, {kUriPassword});
  EXPECT_EQ(registrator_.Stop(), 0);
  ExpectNoSecrets(0, {kUriPassword});

  // Every request stayed on registrator's endpoints and, for keys, inside one entry under the
  // prefix: "/v2/keys/services/<name>/<id>" with each a single safe segment.
  const std::vector<std::string> targets = proxy.targets();
  EXPECT_FALSE(targets.empty());
  for (const std::string& target : targets) {
    std::vector<std::string> parts = absl::StrSplit(target, absl::MaxSplits(' ', 1));
    ASSERT_EQ(parts.size(), 2u) << target;
    absl::string_view path = parts[1];
    path = path.substr(0, path.find('?'));
    if (path == "/version" || path == "/v2/keys/" || path == "/v2/keys/services/") continue;
    ASSERT_TRUE(absl::ConsumePrefix(&path, "/v2/keys/services/"))
        << "request outside the prefix: " << target;
    std::vector<absl::string_view> segments = absl::StrSplit(path, '/');
    ASSERT_EQ(segments.size(), 2u) << "request outside one entry: " << target;
    for (absl::string_view segment : segments) {
      EXPECT_TRUE(OneSafeSegment(segment)) << target;
      EXPECT_THAT(std::string(segment), Not(HasSubstr("%2F"))) << target;
    }
  }
}

// Failures before Docker is contacted: every message about the registry URI masks its
// password, at every retry; the ZooKeeper digest too.
TEST_F(SecurityEndToEndTest, UnreachableBackendsAndBadUrisNeverPrintThePassword) {
  const int closed = FreeLoopbackPort();
  struct Run {
    std::string uri;
    std::string shown;  // What the output must say instead.
  };
  for (const Run& run : std::vector<Run>{
           {absl::StrCat("etcd://operator:", kUriPassword, "@127.0.0.1:", closed, "/services"),
            absl::StrCat("etcd://operator:***@127.0.0.1:", closed, "/services")},
           {absl::StrCat("zookeeper://zkuser:", kUriPassword, "@127.0.0.1:", closed, "/base"),
            absl::StrCat("zookeeper://zkuser:***@127.0.0.1:", closed, "/base")},
           {absl::StrCat("nosuchscheme://operator:", kUriPassword, "@127.0.0.1:", closed),
            "nosuchscheme://operator:***@"},
           {absl::StrCat("operator:", kUriPassword, "@127.0.0.1"), "operator:***@127.0.0.1"},
       }) {
    ASSERT_TRUE(registrator_
                    .Start({"-log-level", "debug", "-retry-attempts", "2", "-retry-interval", "50"},
                           run.uri, docker_->host(),
                           absl::StrCat(docker_->dir(), "/registrator-", test_name_, ".out"))
                    .ok());
    ASSERT_TRUE(WaitFor([&] { return !registrator_.running(); }, absl::Seconds(30)));
    const std::string output = registrator_.Output();
    EXPECT_THAT(output, Not(HasSubstr(kUriPassword))) << run.uri;
    EXPECT_THAT(output, HasSubstr(run.shown)) << run.uri;
  }
}

}  // namespace
}  // namespace registrator
