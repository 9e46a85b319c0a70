// The etcd adapter's wire behaviour against a scripted loopback HTTP server (no etcd): URI and
// endpoint validation, the /version probe's choice of API, failover, auth headers, how error and
// garbage replies surface, and the lease keeper's requests. What real etcd does is covered by
// etcd_adapter_test.
#include "adapters/etcd/etcd_transport.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "adapters/etcd/etcd_adapter.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"
#include "testing/scripted_http_server.h"

namespace registrator {
namespace {

// A scripted etcd: GET /version answers `version`, the rest what the test scripts (default 200
// "{}"). requests() lists "METHOD path body[ auth=<Authorization>]".
class FakeEtcd {
 public:
  explicit FakeEtcd(const std::string& version) {
    server_.Reply("GET /version", 200, absl::StrCat("{\"etcdserver\":\"", version, "\"}"));
  }
  std::string endpoint() const { return server_.address(); }
  void Reply(const std::string& line, int status, const std::string& body) {
    server_.Reply(line, status, body);
  }
  std::vector<std::string> requests() const {
    std::vector<std::string> out;
    for (const fakes::ScriptedRequest& r : server_.requests()) {
      out.push_back(absl::StrCat(r.method, " ", r.path, " ", r.body,
                                 r.authorization.empty() ? "" : " auth=", r.authorization));
    }
    return out;
  }

 private:
  fakes::ScriptedHttpServer server_;
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

// ---- Factories: URI validation, no network ---------------------------------------------------

absl::StatusOr<std::unique_ptr<RegistryAdapter>> MakeWith(const std::string& text,
                                                          AdapterOptions options = {}) {
  absl::StatusOr<BackendUri> uri = ParseBackendUri(text);
  if (!uri.ok()) return uri.status();
  return NewEtcdAdapter(*uri, options);
}

TEST(EtcdFactory, AcceptsSchemesAndHosts) {
  for (const char* ok : {"etcd://127.0.0.1:2379", "etcd3://127.0.0.1:2379/services",
                         "etcd2://localhost", "etcd://a:1,b:2/p", "etcd://[::1]:2379",
                         "etcd://user:pw@127.0.0.1:2379", "etcd:///prefix"}) {
    EXPECT_TRUE(MakeWith(ok).ok()) << ok << ": " << MakeWith(ok).status();
  }
}

TEST(EtcdFactory, RejectsBadUris) {
  for (const char* bad :
       {"consul://127.0.0.1:8500", "etcd://127.0.0.1:x", "etcd://::1:2379", "etcd://[::1",
        "etcd://a:0", "etcd://a:70000", "etcd://:pw@a:1", "etcd://a:1/p//q"}) {
    EXPECT_FALSE(MakeWith(bad).ok()) << bad;
  }
  AdapterOptions options;
  options.env["ETCDCTL_CERT"] = "/c.pem";  // Without ETCDCTL_KEY.
  EXPECT_FALSE(MakeWith("etcd://a:1", options).ok());
  options.ttl = -1;
  options.env.clear();
  EXPECT_FALSE(MakeWith("etcd://a:1", options).ok());
}

TEST(EtcdFactory, FingerprintIsKeyAndValue) {
  auto adapter = MakeWith("etcd3://127.0.0.1:2379/services");
  ASSERT_TRUE(adapter.ok());
  Service s = Web();
  EXPECT_EQ((*adapter)->Fingerprint(s), "/services/web/h:c:80=10.0.0.5:80");
  Service changed = s;
  changed.port = 81;
  EXPECT_NE((*adapter)->Fingerprint(s), (*adapter)->Fingerprint(changed));
}

TEST(EtcdFactory, UnreachableEndpointIsUnavailable) {
  // Port 1 on loopback: connection refused at once, no server needed.
  auto adapter = MakeWith("etcd3://127.0.0.1:1");
  ASSERT_TRUE(adapter.ok());
  absl::Status status = (*adapter)->Ping();
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  status = (*adapter)->Register(Web());
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
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

// The v3 kv/range reply listing the key of Web() on `lease`, keys only.
std::string WebHeldOn(int lease) {
  return absl::StrCat(R"({"header":{},"kvs":[{"key":"L3dlYi9oOmM6ODA=","lease":")", lease,
                      R"("}],"count":"1"})");
}

TEST(EtcdLease, KeepaliveOfAVanishedLeaseRestoresTheLiveKeys) {
  FakeEtcd fake("3.4.0");
  fake.Reply("POST /v3/lease/grant", 200, R"({"ID":"7","TTL":"5"})");
  auto adapter = Make(absl::StrCat("etcd3://", fake.endpoint()), /*ttl=*/5);
  ASSERT_TRUE(adapter->Register(Web()).ok());
  fake.Reply("POST /v3/lease/keepalive", 200, R"({"result":{"ID":"7","TTL":"5"}})");
  fake.Reply("POST /v3/kv/range", 200, WebHeldOn(7));
  ASSERT_TRUE(adapter->Refresh({Web()}).ok());
  // grant, put, then the refresh: one keepalive and one keys-only range, nothing else.
  std::vector<std::string> requests = fake.requests();
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_EQ(requests[2], R"(POST /v3/lease/keepalive {"ID":"7"})");
  EXPECT_EQ(requests[3],
            R"(POST /v3/kv/range {"key":"L3dlYi9oOmM6ODA=","range_end":"L3dlYi9oOmM6ODAA",)"
            R"("keys_only":true})");
  // The lease is gone: a new one is granted and the key re-put on it.
  fake.Reply("POST /v3/lease/keepalive", 200, R"({"result":{"ID":"7"}})");
  fake.Reply("POST /v3/lease/grant", 200, R"({"ID":"8","TTL":"5"})");
  ASSERT_TRUE(adapter->Refresh({Web()}).ok());
  requests = fake.requests();
  ASSERT_EQ(requests.size(), 7u);
  EXPECT_EQ(requests[5], R"(POST /v3/lease/grant {"TTL":5})");
  EXPECT_EQ(requests[6],
            R"(POST /v3/kv/put {"key":"L3dlYi9oOmM6ODA=","value":"MTAuMC4wLjU6ODA=","lease":"8"})");
}

TEST(EtcdLease, RefreshPutsBackAKeyTheRangeDoesNotShowOnTheLease) {
  FakeEtcd fake("3.4.0");
  fake.Reply("POST /v3/lease/grant", 200, R"({"ID":"7","TTL":"5"})");
  fake.Reply("POST /v3/lease/keepalive", 200, R"({"result":{"ID":"7","TTL":"5"}})");
  auto adapter = Make(absl::StrCat("etcd3://", fake.endpoint()), /*ttl=*/5);
  ASSERT_TRUE(adapter->Register(Web()).ok());
  const std::string put =
      R"(POST /v3/kv/put {"key":"L3dlYi9oOmM6ODA=","value":"MTAuMC4wLjU6ODA=","lease":"7"})";
  // Deleted behind our back: the range shows nothing.
  fake.Reply("POST /v3/kv/range", 200, R"({"header":{}})");
  ASSERT_TRUE(adapter->Refresh({Web()}).ok());
  EXPECT_EQ(fake.requests().back(), put);
  // Re-put by someone else without a lease: ours no longer keeps it, so it is put again.
  fake.Reply("POST /v3/kv/range", 200, WebHeldOn(0));
  ASSERT_TRUE(adapter->Refresh({Web()}).ok());
  EXPECT_EQ(fake.requests().back(), put);
  // On the lease: nothing to write.
  fake.Reply("POST /v3/kv/range", 200, WebHeldOn(7));
  const size_t before = fake.requests().size();
  ASSERT_TRUE(adapter->Refresh({Web()}).ok());
  EXPECT_EQ(fake.requests().size(), before + 2);  // keepalive, range.
}

TEST(EtcdLease, LettingAKeyExpireChecksTheTxnOutcome) {
  FakeEtcd fake("3.4.0");
  fake.Reply("POST /v3/lease/grant", 200, R"({"ID":"7","TTL":"5"})");
  fake.Reply("POST /v3/lease/keepalive", 200, R"({"result":{"ID":"7","TTL":"5"}})");
  auto adapter = Make(absl::StrCat("etcd3://", fake.endpoint()), /*ttl=*/5);
  ASSERT_TRUE(adapter->Register(Web()).ok());
  auto txns = [&] {
    int count = 0;
    for (const std::string& request : fake.requests()) {
      if (absl::StartsWith(request, "POST /v3/kv/txn ")) ++count;
    }
    return count;
  };
  // Web() left out of the refresh: moved to an expiring lease by a txn. A reply that says
  // nothing about the outcome is not a success: reported, and tried again next time.
  fake.Reply("POST /v3/kv/txn", 200, "<html>proxy error</html>");
  absl::Status status = adapter->Refresh({});
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("move /web/h:c:80 to an expiring lease"), std::string::npos)
      << status;
  EXPECT_EQ(txns(), 1);
  // The compare failed: the key changed or vanished since; left alone, not retried.
  fake.Reply("POST /v3/kv/txn", 200, R"({"header":{}})");
  EXPECT_TRUE(adapter->Refresh({}).ok());
  EXPECT_EQ(txns(), 2);
  EXPECT_TRUE(adapter->Refresh({}).ok());
  EXPECT_EQ(txns(), 2);
  // Moved: done.
  ASSERT_TRUE(adapter->Register(Web()).ok());
  fake.Reply("POST /v3/kv/txn", 200, R"({"header":{},"succeeded":true})");
  EXPECT_TRUE(adapter->Refresh({}).ok());
  EXPECT_TRUE(adapter->Refresh({}).ok());
  EXPECT_EQ(txns(), 3);
}

}  // namespace
}  // namespace registrator
