// AbortHttpTransfers() against a server that accepts and never answers: the Send blocked on it
// returns CANCELLED long before its own timeout, and later Sends are not affected.
#include "registrator/common/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
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

}  // namespace
}  // namespace registrator
