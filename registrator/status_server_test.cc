// Scrapes /health, /metrics and /services over real HTTP on loopback.
#include "registrator/status_server.h"

#include <memory>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "docker_client/fake_docker.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registrator/common/http_client.h"
#include "registrator/common/log.h"
#include "registrator/model/fake_adapter.h"
#include "testing/status_matchers.h"

namespace registrator {
namespace {

using ::registrator::fakes::IsOk;
using ::testing::HasSubstr;

std::vector<Service> OnePerPort(const docker::Container& c) {
  std::vector<Service> services;
  for (const std::string& port : c.exposed_ports) {
    Service s;
    s.id = absl::StrCat("h:", c.name, ":", std::stoi(port));
    s.name = c.name;
    s.ip = "10.0.0.1";
    s.port = std::stoi(port);
    s.container_id = c.id;
    services.push_back(s);
  }
  return services;
}

class StatusServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    docker::Container c;
    c.id = "abc";
    c.name = "web";
    c.exposed_ports = {"80/tcp", "443/tcp"};
    c.state.running = true;
    docker_.Put(c);
    BridgeConfig config;
    config.hostname = "h";
    bridge_ = std::make_unique<Bridge>(&docker_, &adapter_, OnePerPort, config);
    bridge_->Start();
    ASSERT_THAT(bridge_->SyncNow(), IsOk());
    server_ = std::make_unique<StatusServer>(
        bridge_.get(), [this] { return adapter_.Ping(); }, absl::ZeroDuration());
    ASSERT_THAT(server_->Start("127.0.0.1:0"), IsOk());
    HttpEndpoint endpoint;
    endpoint.base_url = absl::StrCat("http://127.0.0.1:", server_->port());
    client_ = std::make_unique<HttpClient>(endpoint);
  }
  void TearDown() override {
    client_.reset();  // Closes the kept-alive connection first.
    server_->Stop();
    bridge_->Stop();
  }
  HttpResponse Get(const std::string& path) {
    HttpRequest request;
    request.path = path;
    absl::StatusOr<HttpResponse> response = client_->Send(request);
    EXPECT_THAT(response, IsOk()) << response.status();
    return response.ok() ? *response : HttpResponse{};
  }

  fakes::FakeDocker docker_;
  fakes::FakeAdapter adapter_;
  std::unique_ptr<Bridge> bridge_;
  std::unique_ptr<StatusServer> server_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(StatusServerTest, MetricsCountWhatTheBridgeDid) {
  const HttpResponse response = Get("/metrics");
  EXPECT_EQ(response.status, 200);
  EXPECT_THAT(response.body, HasSubstr("registrator_services_registered 2\n"));
  EXPECT_THAT(response.body,
              HasSubstr("registrator_backend_writes_total{kind=\"register\",result=\"ok\"} 2\n"));
  EXPECT_THAT(
      response.body,
      HasSubstr("registrator_backend_writes_total{kind=\"deregister\",result=\"error\"} 0\n"));
  EXPECT_THAT(response.body,
              HasSubstr("registrator_backend_writes_total{kind=\"health\",result=\"ok\"} 0\n"));
  EXPECT_THAT(response.body, HasSubstr("registrator_resyncs_total 1\n"));
  EXPECT_THAT(response.body, HasSubstr("registrator_drift_checks_total 0\n"));
  EXPECT_THAT(response.body, HasSubstr("registrator_backend_watched 0\n"));
  EXPECT_THAT(response.body, HasSubstr("# TYPE registrator_events_total counter\n"));
  EXPECT_THAT(response.body, HasSubstr("registrator_docker_connected 0\n"));
}

TEST_F(StatusServerTest, ServicesListsRegisteredServices) {
  const HttpResponse response = Get("/services");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body,
            "[{\"id\":\"h:web:443\",\"name\":\"web\",\"ip\":\"10.0.0.1\",\"port\":443,\"tags\":[],"
            "\"attrs\":{}},{\"id\":\"h:web:80\",\"name\":\"web\",\"ip\":\"10.0.0.1\",\"port\":80,"
            "\"tags\":[],\"attrs\":{}}]\n");
}

TEST_F(StatusServerTest, HealthNeedsDockerAndBackend) {
  HttpResponse response = Get("/health");
  EXPECT_EQ(response.status, 503);
  EXPECT_THAT(response.body, HasSubstr("docker: event stream not connected"));
  bridge_->OnConnected(true);
  ASSERT_TRUE(bridge_->WaitIdle(absl::Seconds(10)));
  response = Get("/health");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "ok\n");
  adapter_.FailOp("ping", absl::UnavailableError("connection refused"));
  response = Get("/health");
  EXPECT_EQ(response.status, 503);
  EXPECT_THAT(response.body, HasSubstr("backend: connection refused"));
}

TEST_F(StatusServerTest, LastSyncTimestampHasFullPrecision) {
  const HttpResponse response = Get("/metrics");
  const std::string name = "registrator_last_sync_timestamp_seconds ";
  const size_t at = response.body.find("\n" + name);
  ASSERT_NE(at, std::string::npos) << response.body;
  const size_t begin = at + 1 + name.size();
  const std::string value = response.body.substr(begin, response.body.find('\n', begin) - begin);
  double seconds = 0;
  ASSERT_TRUE(absl::SimpleAtod(value, &seconds)) << value;
  // Six significant digits (the old rendering, "1.79622e+09") are off by up to ~5,000 s.
  EXPECT_NEAR(seconds, absl::ToDoubleSeconds(bridge_->stats().last_sync - absl::UnixEpoch()), 1e-3)
      << value;
}

// A slow backend ping must not queue other /health probes behind it: one probe pings, the others
// answer from the last result.
TEST(StatusServerHealthTest, ProbesDoNotWaitForASlowPing) {
  fakes::FakeDocker docker;
  fakes::FakeAdapter adapter;
  Bridge bridge(&docker, &adapter, OnePerPort, BridgeConfig{});
  absl::Notification ping_entered;
  absl::Notification release_ping;
  StatusServer server(
      &bridge,
      [&] {
        ping_entered.Notify();
        release_ping.WaitForNotification();
        return absl::OkStatus();
      },
      absl::ZeroDuration());
  std::thread slow([&] { server.Health(); });
  ping_entered.WaitForNotification();
  absl::Notification second_done;
  std::thread second([&] {
    server.Health();
    second_done.Notify();
  });
  const bool answered = second_done.WaitForNotificationWithTimeout(absl::Seconds(10));
  release_ping.Notify();
  slow.join();
  second.join();
  EXPECT_TRUE(answered) << "a second /health probe waited for the first one's backend ping";
}

TEST_F(StatusServerTest, HealthNeverShowsASecretAndBigRequestsAreRefused) {
  SetLogSecrets({"s3cret-pass"});
  adapter_.FailOp("ping", absl::UnavailableError("etcd://u:s3cret-pass@h unreachable"));
  HttpResponse response = Get("/health");
  SetLogSecrets({});
  EXPECT_EQ(response.status, 503);
  EXPECT_THAT(response.body, HasSubstr("backend: etcd://u:***@h unreachable"));
  EXPECT_THAT(response.body, ::testing::Not(HasSubstr("s3cret-pass")));

  HttpRequest big;
  big.method = "PUT";
  big.path = "/health";
  big.body = std::string(4096, 'x');
  absl::StatusOr<HttpResponse> refused = client_->Send(big);
  ASSERT_THAT(refused, IsOk()) << refused.status();
  EXPECT_EQ(refused->status, 413);
}

TEST(StatusServerAddressTest, RejectsBadAddresses) {
  fakes::FakeDocker docker;
  fakes::FakeAdapter adapter;
  Bridge bridge(&docker, &adapter, OnePerPort, BridgeConfig{});
  for (const char* bad : {"", "9090", "127.0.0.1:x", "127.0.0.1:70000"}) {
    StatusServer server(&bridge, nullptr);
    EXPECT_TRUE(absl::IsInvalidArgument(server.Start(bad))) << bad;
  }
}

}  // namespace
}  // namespace registrator

namespace registrator {
namespace {

// Several registries: per-registry metrics carry a registry label (escaped), the Docker side's
// stay unlabelled; /health has a line per registry and is 503 when any fails; /services tags
// each entry with its registry.
TEST(StatusServerMultiTest, LabelsEveryRegistry) {
  fakes::FakeDocker docker;
  docker::Container c;
  c.id = "abc";
  c.name = "web";
  c.exposed_ports = {"80/tcp"};
  c.state.running = true;
  docker.Put(c);
  fakes::FakeAdapter a;
  fakes::FakeAdapter b;
  BridgeConfig config;
  config.hostname = "h";
  // B's failed write is not retried while the test reads its counters.
  config.retry_initial = absl::Hours(1);
  config.retry_max = absl::Hours(1);
  Bridge follower_a(nullptr, &a, nullptr, config);
  Bridge follower_b(nullptr, &b, nullptr, config);
  Bridge tracker(&docker, nullptr, OnePerPort, config);
  tracker.AddFollower(&follower_a);
  tracker.AddFollower(&follower_b);
  follower_a.Start();
  follower_b.Start();
  tracker.Start();
  b.FailOp("register", absl::UnavailableError("refused"));
  ASSERT_THAT(tracker.SyncNow(), IsOk());
  ASSERT_TRUE(follower_a.WaitIdle(absl::Seconds(20)));
  ASSERT_TRUE(follower_b.WaitIdle(absl::Seconds(20)));
  const uint64_t b_failures = follower_b.stats().register_failures;
  ASSERT_GE(b_failures, 1u);
  StatusServer server(&tracker,
                      {{"etcd://127.0.0.1:2379/p", &follower_a, [&] { return a.Ping(); }},
                       {"consul://x\"y", &follower_b, [&] { return b.Ping(); }}},
                      absl::ZeroDuration());
  const std::string metrics = server.MetricsText();
  EXPECT_THAT(metrics, HasSubstr("registrator_backend_writes_total{registry=\"etcd://"
                                 "127.0.0.1:2379/p\",kind=\"register\",result=\"ok\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr(absl::StrCat("registrator_backend_writes_total{registry=\"consul:"
                                              "//x\\\"y\",kind=\"register\",result=\"error\"} ",
                                              b_failures, "\n")));
  EXPECT_THAT(
      metrics,
      HasSubstr("registrator_services_registered{registry=\"etcd://127.0.0.1:2379/p\"} 1\n"));
  EXPECT_THAT(metrics,
              HasSubstr("registrator_services_registered{registry=\"consul://x\\\"y\"} 0\n"));
  EXPECT_THAT(metrics, HasSubstr("\nregistrator_reconciles_total 1\n"));
  EXPECT_THAT(metrics, HasSubstr("\nregistrator_inspect_retries_total 0\n"));
  // One HELP/TYPE per family, however many registries.
  EXPECT_EQ(metrics.find("# TYPE registrator_resyncs_total"),
            metrics.rfind("# TYPE registrator_resyncs_total"));

  EXPECT_THAT(server.ServicesJson(), HasSubstr(",\"registry\":\"etcd://127.0.0.1:2379/p\"}"));

  tracker.OnConnected(true);
  auto [status, body] = server.Health();
  EXPECT_EQ(status, 200) << body;
  EXPECT_EQ(body, "docker: ok\nregistry etcd://127.0.0.1:2379/p: ok\nregistry consul://x\"y: ok\n");
  b.FailOp("ping", absl::UnavailableError("connection refused"));
  std::tie(status, body) = server.Health();
  EXPECT_EQ(status, 503);
  EXPECT_EQ(body,
            "docker: ok\nregistry etcd://127.0.0.1:2379/p: ok\n"
            "registry consul://x\"y: connection refused\n");
  tracker.Stop();
  follower_a.Stop();
  follower_b.Stop();
}

}  // namespace
}  // namespace registrator
