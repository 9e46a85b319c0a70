// HttpClient against loopback servers: AbortHttpTransfers() ends a Send blocked on a server that
// never answers (later Sends are unaffected); a recording cpp-httplib server sees the request
// target exactly as built (no dot-segment removal by libcurl), and a response body is bounded.
#include "registrator/common/http_client.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace registrator {
namespace {

// Listens on 127.0.0.1:<free port>, accepts connections and never writes a byte.
class SilentServer {
 public:
  SilentServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      while (true) {
        const int client = ::accept(fd_, nullptr, nullptr);
        if (client < 0) return;
        clients_.push_back(client);
        accepted_.fetch_add(1);
      }
    });
  }
  ~SilentServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
    for (int client : clients_) ::close(client);
  }
  int port() const { return port_; }
  int accepted() const { return accepted_.load(); }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::vector<int> clients_;  // Only the accept thread touches it until the destructor joins.
  std::thread thread_;
};

TEST(HttpClientAbortTest, AbortEndsAHungSendAndLeavesLaterSendsAlone) {
  SilentServer server;
  HttpEndpoint endpoint;
  endpoint.base_url = absl::StrCat("http://127.0.0.1:", server.port());
  HttpClient client(endpoint);
  HttpRequest request;
  request.path = "/v1/agent/service/register";
  request.method = "PUT";
  request.timeout = absl::Minutes(5);

  absl::Notification done;
  absl::Status result;
  std::thread sender([&] {
    result = client.Send(request).status();
    done.Notify();
  });
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (server.accepted() == 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_GT(server.accepted(), 0);
  EXPECT_FALSE(done.HasBeenNotified());
  AbortHttpTransfers();
  // Bounded by far less than the request's own five minutes.
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  sender.join();
  EXPECT_TRUE(absl::IsCancelled(result)) << result;

  // A Send started after the abort runs to its own (short) timeout.
  request.timeout = absl::Milliseconds(300);
  const absl::Status later = client.Send(request).status();
  EXPECT_TRUE(absl::IsDeadlineExceeded(later)) << later;
}

class RecordingServer {
 public:
  RecordingServer() {
    auto record = [this](const httplib::Request& req, httplib::Response& res) {
      {
        absl::MutexLock lock(&mu_);
        targets_.push_back(req.method + " " + req.target);
        bodies_.push_back(req.body);
      }
      res.set_header("X-Consul-Index", "42");
      res.set_content(reply_, "text/plain");
    };
    server_.Get(".*", record);
    server_.Put(".*", record);
    server_.Delete(".*", record);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (!server_.is_running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  }
  ~RecordingServer() {
    server_.stop();
    thread_.join();
  }
  void set_reply(std::string reply) { reply_ = std::move(reply); }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> targets() {
    absl::MutexLock lock(&mu_);
    return targets_;
  }
  std::vector<std::string> bodies() {
    absl::MutexLock lock(&mu_);
    return bodies_;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::string reply_ = "ok";
  absl::Mutex mu_;
  std::vector<std::string> targets_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> bodies_ ABSL_GUARDED_BY(mu_);
};

HttpEndpoint Endpoint(const RecordingServer& server) {
  HttpEndpoint endpoint;
  endpoint.base_url = server.base_url();
  return endpoint;
}

// The issue-13 reproduction: libcurl used to send this as PUT /v1/agent/service/deregister/victim.
TEST(HttpClientTest, DotSegmentsAreSentAsIsNeverResolved) {
  RecordingServer server;
  HttpClient client(Endpoint(server));
  for (const char* method : {"PUT", "DELETE", "GET"}) {
    HttpRequest request;
    request.method = method;
    request.path = "/v1/kv/prefix/../../agent/service/deregister/victim";
    absl::StatusOr<HttpResponse> response = client.Send(request);
    ASSERT_TRUE(response.ok()) << response.status();
  }
  HttpRequest request;
  request.method = "DELETE";
  request.path = "/v2/keys/services/./../../members/abc";
  ASSERT_TRUE(client.Send(request).ok());
  EXPECT_EQ(server.targets(),
            (std::vector<std::string>{"PUT /v1/kv/prefix/../../agent/service/deregister/victim",
                                      "DELETE /v1/kv/prefix/../../agent/service/deregister/victim",
                                      "GET /v1/kv/prefix/../../agent/service/deregister/victim",
                                      "DELETE /v2/keys/services/./../../members/abc"}));
}

TEST(HttpClientTest, ResponseBodyOverTheLimitIsRefused) {
  RecordingServer server;
  server.set_reply(std::string(100000, 'x'));
  HttpClient client(Endpoint(server));
  HttpRequest request;
  request.path = "/big";
  absl::StatusOr<HttpResponse> fits = client.Send(request);
  ASSERT_TRUE(fits.ok()) << fits.status();
  EXPECT_EQ(fits->body.size(), 100000u);
  request.max_body_bytes = 99999;
  absl::StatusOr<HttpResponse> over = client.Send(request);
  EXPECT_TRUE(absl::IsResourceExhausted(over.status())) << over.status();
  // The pooled handles still work after a refused body.
  request.max_body_bytes = 100000;
  EXPECT_TRUE(client.Send(request).ok());
}

// Pooled handles keep their endpoint options between requests (no curl_easy_reset): nothing of
// one request may leak into the next on the same handle -- a PUT's body into a GET or DELETE,
// a GET's method into a PUT without body.
TEST(HttpClientTest, APooledHandleCarriesNothingOverFromTheLastRequest) {
  RecordingServer server;
  HttpClient client(Endpoint(server));
  auto send = [&](const char* method, const std::string& body) {
    HttpRequest request;
    request.method = method;
    request.path = "/x";
    request.body = body;
    absl::StatusOr<HttpResponse> response = client.Send(request);
    ASSERT_TRUE(response.ok()) << response.status();
  };
  send("PUT", "{\"a\":1}");
  send("GET", "");
  send("PUT", "");
  send("DELETE", "");
  send("PUT", "second");
  send("GET", "");
  EXPECT_EQ(server.targets(), (std::vector<std::string>{"PUT /x", "GET /x", "PUT /x", "DELETE /x",
                                                        "PUT /x", "GET /x"}));
  EXPECT_EQ(server.bodies(), (std::vector<std::string>{"{\"a\":1}", "", "", "", "second", ""}));
}

// A body of announced length arrives into one allocation with room for simdjson's padding (so
// a listing is parsed in place); keep_body_bytes keeps its start and drops the rest, while
// max_body_bytes still bounds all of it.
TEST(HttpClientTest, BodyIsReservedWithPaddingAndKeepBodyBytesDropsTheRest) {
  RecordingServer server;
  server.set_reply(std::string(100000, 'x'));
  HttpClient client(Endpoint(server));
  HttpRequest request;
  request.path = "/big";
  absl::StatusOr<HttpResponse> whole = client.Send(request);
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(whole->body.size(), 100000u);
  EXPECT_GE(whole->body.capacity(), 100000u + kBodyPadding);
  request.keep_body_bytes = 10;
  absl::StatusOr<HttpResponse> kept = client.Send(request);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->body, std::string(10, 'x'));
  EXPECT_LT(kept->body.capacity(), 1000u);
  StreamCancel cancel;
  absl::StatusOr<HttpResponse> polled = client.LongPoll(request, &cancel);
  ASSERT_TRUE(polled.ok()) << polled.status();
  EXPECT_EQ(polled->body, std::string(10, 'x'));
  request.max_body_bytes = 99999;
  EXPECT_TRUE(absl::IsResourceExhausted(client.Send(request).status()));
}

TEST(HttpClientLongPollTest, CancelEndsAParkedLongPollPromptly) {
  SilentServer server;
  HttpEndpoint endpoint;
  endpoint.base_url = absl::StrCat("http://127.0.0.1:", server.port());
  HttpClient client(endpoint);
  HttpRequest request;
  request.path = "/v1/kv/a?recurse&index=5&wait=5m";
  request.timeout = absl::Minutes(6);
  StreamCancel cancel;
  absl::Notification done;
  absl::Status result;
  std::thread poller([&] {
    result = client.LongPoll(request, &cancel).status();
    done.Notify();
  });
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (server.accepted() == 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_GT(server.accepted(), 0);
  EXPECT_FALSE(done.HasBeenNotified());
  cancel.Cancel();
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  poller.join();
  EXPECT_TRUE(absl::IsCancelled(result)) << result;
  // A cancelled StreamCancel stays cancelled: the next LongPoll does not even connect.
  EXPECT_TRUE(absl::IsCancelled(client.LongPoll(request, &cancel).status()));
}

TEST(HttpClientLongPollTest, ReturnsStatusBodyAndTheRequestedHeaders) {
  RecordingServer server;
  server.set_reply("[]");
  HttpClient client(Endpoint(server));
  HttpRequest request;
  request.path = "/v1/kv/a?recurse";
  request.response_headers = {"x-consul-index", "X-Missing"};
  StreamCancel cancel;
  absl::StatusOr<HttpResponse> response = client.LongPoll(request, &cancel);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "[]");
  EXPECT_EQ(response->Header("X-Consul-Index"), "42");
  EXPECT_EQ(response->Header("X-Missing"), "");
  // Send reads them too; without response_headers it reads none.
  absl::StatusOr<HttpResponse> sent = client.Send(request);
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent->Header("X-Consul-Index"), "42");
  request.response_headers.clear();
  sent = client.Send(request);
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_TRUE(sent->headers.empty());
}

}  // namespace
}  // namespace registrator
