// Unit tests of the etcd adapter's wire behaviour against a scripted in-process HTTP server
// (no etcd): the /version probe's choice of API, failover, auth headers, and how error and
// garbage replies surface. What real etcd does is covered by etcd_adapter_test.
#include <gtest/gtest.h>
#include <httplib.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "adapters/etcd/etcd_adapter.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"
#include "testing/process.h"

namespace registrator {
namespace {

// Answers every request from a table (exact "METHOD path", path decoded and without the query
// -> status + body; "*" matches all; default 200 "{}"),
// and records what it received.
class FakeEtcd {
 public:
  explicit FakeEtcd(std::string version) : version_(std::move(version)) {
    auto handler = [this](const httplib::Request& req, httplib::Response& res) {
      const std::string line = absl::StrCat(req.method, " ", req.path);
      std::pair<int, std::string> reply = {200, "{}"};
      {
        absl::MutexLock lock(&mu_);
        std::string auth = req.get_header_value("Authorization");
        requests_.push_back(absl::StrCat(line, " ", req.body, auth.empty() ? "" : " auth=", auth));
        if (req.path == "/version") {
          reply = {200, absl::StrCat("{\"etcdserver\":\"", version_, "\"}")};
        }
        auto it = replies_.find(line);
        if (it == replies_.end()) it = replies_.find("*");
        if (it != replies_.end()) reply = it->second;
      }
      res.status = reply.first;
      res.set_content(reply.second, "application/json");
    };
    server_.Get(".*", handler);
    server_.Put(".*", handler);
    server_.Post(".*", handler);
    server_.Delete(".*", handler);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    fakes::WaitFor([this] { return server_.is_running(); }, absl::Seconds(5));
  }
  ~FakeEtcd() {
    server_.stop();
    thread_.join();
  }

  std::string endpoint() const { return absl::StrCat("127.0.0.1:", port_); }
  void Reply(const std::string& line, int status, const std::string& body) {
    absl::MutexLock lock(&mu_);
    replies_[line] = {status, body};
  }
  std::vector<std::string> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

 private:
  const std::string version_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  absl::Mutex mu_;
  std::map<std::string, std::pair<int, std::string>> replies_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> requests_ ABSL_GUARDED_BY(mu_);
};

std::unique_ptr<RegistryAdapter> Make(const std::string& text, int ttl = 0) {
  absl::StatusOr<BackendUri> uri = ParseBackendUri(text);
  EXPECT_TRUE(uri.ok());
  AdapterOptions options;
  options.ttl = ttl;
  auto adapter = NewEtcdAdapter(*uri, options);
  EXPECT_TRUE(adapter.ok()) << adapter.status();
  return adapter.ok() ? std::move(*adapter) : nullptr;
}

Service Web() {
  Service s;
  s.name = "web";
  s.id = "h:c:80";
  s.ip = "10.0.0.5";
  s.port = 80;
  return s;
}

TEST(EtcdProbe, Etcd2ServerGetsTheV2KeysApi) {
  FakeEtcd fake("2.3.8");
  fake.Reply("PUT /v2/keys/p/web/h:c:80", 201, R"({"action":"set"})");
  auto adapter = Make(absl::StrCat("etcd://", fake.endpoint(), "/p"));
  ASSERT_TRUE(adapter->Register(Web()).ok());
  ASSERT_TRUE(adapter->Register(Web()).ok());
  EXPECT_EQ(fake.requests(), (std::vector<std::string>{
                                 "GET /version ", "PUT /v2/keys/p/web/h:c:80 value=10.0.0.5%3A80",
                                 "PUT /v2/keys/p/web/h:c:80 value=10.0.0.5%3A80"}));
}

TEST(EtcdProbe, Etcd33ServerGetsTheV3betaGateway) {
  FakeEtcd fake("3.3.27");
  auto adapter = Make(absl::StrCat("etcd://", fake.endpoint()));
  ASSERT_TRUE(adapter->Register(Web()).ok());
  const auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1],
            R"(POST /v3beta/kv/put {"key":"L3dlYi9oOmM6ODA=","value":"MTAuMC4wLjU6ODA="})");
}

TEST(EtcdProbe, ExplicitSchemesDoNotProbe) {
  FakeEtcd fake("3.4.0");
  ASSERT_TRUE(Make(absl::StrCat("etcd3://", fake.endpoint()))->Register(Web()).ok());
  fake.Reply("PUT /v2/keys/web/h:c:80", 201, "{}");
  ASSERT_TRUE(Make(absl::StrCat("etcd2://", fake.endpoint()))->Register(Web()).ok());
  for (const std::string& request : fake.requests()) {
    EXPECT_FALSE(absl::StartsWith(request, "GET /version")) << request;
  }
}

TEST(EtcdFailover, A503MemberIsSkippedAndTheWorkingOneKept) {
  FakeEtcd sick("3.4.0");
  sick.Reply("*", 503, R"({"message":"etcdserver: no leader"})");
  FakeEtcd healthy("3.4.0");
  auto adapter = Make(absl::StrCat("etcd3://", sick.endpoint(), ",", healthy.endpoint()));
  ASSERT_TRUE(adapter->Register(Web()).ok());
  ASSERT_TRUE(adapter->Deregister(Web()).ok());
  EXPECT_EQ(sick.requests().size(), 1u);  // Asked once, then the healthy member is used.
  EXPECT_EQ(healthy.requests().size(), 2u);

  // Only sick members: UNAVAILABLE with etcd's message.
  auto doomed = Make(absl::StrCat("etcd3://", sick.endpoint()));
  absl::Status status = doomed->Register(Web());
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  EXPECT_NE(status.message().find("no leader"), std::string::npos) << status;
}

TEST(EtcdErrors, RejectedRequestIsInvalidArgumentWithEtcdsMessage) {
  FakeEtcd fake("3.4.0");
  fake.Reply(
      "POST /v3/kv/put", 400,
      R"({"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3})");
  absl::Status status = Make(absl::StrCat("etcd3://", fake.endpoint()))->Register(Web());
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("key is not provided"), std::string::npos) << status;
  EXPECT_NE(status.message().find("/web/h:c:80"), std::string::npos) << status;
}

TEST(EtcdErrors, GarbageRepliesAreErrorsNotCrashes) {
  FakeEtcd fake("3.4.0");
  fake.Reply("POST /v3/kv/range", 200, "{\"kvs\":[{\"key\":12}");
  fake.Reply("POST /v3/lease/grant", 200, "<html>");
  auto adapter = Make(absl::StrCat("etcd3://", fake.endpoint()), /*ttl=*/5);
  EXPECT_FALSE(adapter->Services().ok());
  EXPECT_FALSE(adapter->Register(Web()).ok());
  FakeEtcd v2("2.3.8");
  v2.Reply("GET /v2/keys/", 200, "[1,2");
  EXPECT_FALSE(Make(absl::StrCat("etcd://", v2.endpoint()))->Services().ok());
  // /version that is not JSON: assume an old etcd 2 rather than fail.
  FakeEtcd old("x");
  old.Reply("GET /version", 200, "etcd 2.0.13");
  old.Reply("PUT /v2/keys/web/h:c:80", 201, "{}");
  EXPECT_TRUE(Make(absl::StrCat("etcd://", old.endpoint()))->Register(Web()).ok());
}

TEST(EtcdAuthHeaders, V2BasicAndV3Token) {
  FakeEtcd v2("2.3.8");
  v2.Reply("PUT /v2/keys/web/h:c:80", 201, "{}");
  ASSERT_TRUE(Make(absl::StrCat("etcd://user:pw@", v2.endpoint()))->Register(Web()).ok());
  EXPECT_TRUE(absl::EndsWith(v2.requests().back(), " auth=Basic dXNlcjpwdw=="))
      << v2.requests().back();

  FakeEtcd v3("3.4.0");
  v3.Reply("POST /v3/auth/authenticate", 200, R"({"header":{},"token":"tok.1"})");
  ASSERT_TRUE(Make(absl::StrCat("etcd://user:pw@", v3.endpoint()))->Register(Web()).ok());
  const auto requests = v3.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1], R"(POST /v3/auth/authenticate {"name":"user","password":"pw"})");
  EXPECT_TRUE(absl::EndsWith(requests[2], " auth=tok.1")) << requests[2];
}

TEST(EtcdLease, KeepaliveOfAVanishedLeaseRestoresTheLiveKeys) {
  FakeEtcd fake("3.4.0");
  fake.Reply("POST /v3/lease/grant", 200, R"({"ID":"7","TTL":"5"})");
  auto adapter = Make(absl::StrCat("etcd3://", fake.endpoint()), /*ttl=*/5);
  ASSERT_TRUE(adapter->Register(Web()).ok());
  fake.Reply("POST /v3/lease/keepalive", 200, R"({"result":{"ID":"7","TTL":"5"}})");
  ASSERT_TRUE(adapter->Refresh({Web()}).ok());
  EXPECT_EQ(fake.requests().size(), 3u);  // grant, put, keepalive: nothing else.
  // The lease is gone: a new one is granted and the key re-put on it.
  fake.Reply("POST /v3/lease/keepalive", 200, R"({"result":{"ID":"7"}})");
  fake.Reply("POST /v3/lease/grant", 200, R"({"ID":"8","TTL":"5"})");
  ASSERT_TRUE(adapter->Refresh({Web()}).ok());
  const auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 6u);
  EXPECT_EQ(requests[4], R"(POST /v3/lease/grant {"TTL":5})");
  EXPECT_EQ(requests[5],
            R"(POST /v3/kv/put {"key":"L3dlYi9oOmM6ODA=","value":"MTAuMC4wLjU6ODA=","lease":"8"})");
}

}  // namespace
}  // namespace registrator
