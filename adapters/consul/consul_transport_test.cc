// How Consul's answers become statuses (which decide whether the bridge retries a write), checked
// on the mapping itself and end to end through the adapter against a scripted HTTP server that
// answers what a rate-limiting agent or a proxy in front of it answers.
#include "adapters/consul/consul_transport.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "adapters/consul/consul_adapter.h"
#include "gtest/gtest.h"
#include "registrator/model/backend_uri.h"
#include "testing/scripted_http_server.h"

namespace registrator::consul {
namespace {

absl::StatusCode CodeFor(int http_status) {
  HttpResponse response;
  response.status = http_status;
  response.body = "some answer";
  return StatusFromResponse(response, "consul register service x").code();
}

TEST(ConsulStatusTest, OnlyAValidationErrorIsPermanent) {
  EXPECT_EQ(CodeFor(200), absl::StatusCode::kOk);
  EXPECT_EQ(CodeFor(204), absl::StatusCode::kOk);
  EXPECT_EQ(CodeFor(400), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeFor(403), absl::StatusCode::kPermissionDenied);
  // Rate limits, a proxy's "not found", "timeout" or "too large", and server errors pass:
  // retried with backoff, never left unregistered until the container changes.
  for (int status : {401, 404, 405, 408, 409, 413, 429, 500, 502, 503, 504}) {
    EXPECT_EQ(CodeFor(status), absl::StatusCode::kUnavailable) << status;
  }
}

TEST(ConsulStatusTest, RegisterThroughTheAdapterMapsEachAnswer) {
  fakes::ScriptedHttpServer agent;
  absl::StatusOr<BackendUri> uri = ParseBackendUri(absl::StrCat("consul://", agent.address()));
  ASSERT_TRUE(uri.ok());
  absl::StatusOr<std::unique_ptr<RegistryAdapter>> adapter = NewConsulAdapter(*uri, {});
  ASSERT_TRUE(adapter.ok()) << adapter.status();
  Service s;
  s.id = "host1:web:80";
  s.name = "web";
  s.ip = "10.0.0.5";
  s.port = 80;
  const std::pair<int, absl::StatusCode> cases[] = {
      {200, absl::StatusCode::kOk},
      {400, absl::StatusCode::kInvalidArgument},
      {403, absl::StatusCode::kPermissionDenied},
      {404, absl::StatusCode::kUnavailable},
      {408, absl::StatusCode::kUnavailable},
      {413, absl::StatusCode::kUnavailable},
      {429, absl::StatusCode::kUnavailable},
      {503, absl::StatusCode::kUnavailable},
  };
  for (const auto& [http_status, code] : cases) {
    agent.Reply("PUT /v1/agent/service/register", http_status, "answer");
    absl::Status status = (*adapter)->Register(s);
    EXPECT_EQ(status.code(), code) << http_status << ": " << status;
  }
  EXPECT_EQ(agent.requests().size(), std::size(cases));
}

}  // namespace
}  // namespace registrator::consul
