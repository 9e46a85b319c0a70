// A loopback HTTP server answering from a test's table (see scripted_http_server.h).
#include "testing/scripted_http_server.h"

#include <httplib.h>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "testing/process.h"

namespace registrator::fakes {

ScriptedHttpServer::ScriptedHttpServer() : server_(std::make_unique<httplib::Server>()) {
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    std::pair<int, std::string> reply = {200, "{}"};
    {
      absl::MutexLock lock(&mu_);
      requests_.push_back({req.method, req.path, req.body, req.get_header_value("Authorization")});
      auto it = replies_.find(absl::StrCat(req.method, " ", req.path));
      if (it == replies_.end()) it = replies_.find("*");
      if (it != replies_.end()) reply = it->second;
    }
    res.status = reply.first;
    res.set_content(reply.second, "application/json");
  };
  server_->Get(".*", handler);
  server_->Put(".*", handler);
  server_->Post(".*", handler);
  server_->Delete(".*", handler);
  port_ = server_->bind_to_any_port("127.0.0.1");
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  WaitFor([this] { return server_->is_running(); }, absl::Seconds(5));
}

ScriptedHttpServer::~ScriptedHttpServer() {
  server_->stop();
  thread_.join();
}

std::string ScriptedHttpServer::address() const { return absl::StrCat("127.0.0.1:", port_); }

void ScriptedHttpServer::Reply(const std::string& request, int status, const std::string& body) {
  absl::MutexLock lock(&mu_);
  replies_[request] = {status, body};
}

std::vector<ScriptedRequest> ScriptedHttpServer::requests() const {
  absl::MutexLock lock(&mu_);
  return requests_;
}

}  // namespace registrator::fakes
