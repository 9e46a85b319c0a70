// FakeDockerServer; see fake_docker_server.h.
#include "docker_client/fake_docker_server.h"

#include <sys/socket.h>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace registrator::docker {

FakeDockerServer::FakeDockerServer() : socket_path_(dir_.path() + "/docker.sock") {
  server_.set_address_family(AF_UNIX);
  // Stop() waits for kept-alive connections to idle out; keep that short.
  server_.set_keep_alive_timeout(1);
  server_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    absl::MutexLock lock(&mu_);
    targets_.push_back(req.target);
    // Registrator only ever reads from Docker (README "Security model"): any other method is a
    // defect, so it fails the running test rather than getting a canned answer.
    if (req.method != "GET") {
      ADD_FAILURE() << "registrator sent " << req.method << " " << req.target
                    << " to the Docker API; only GET is allowed";
      non_get_requests_.push_back(req.method + " " + req.target);
      res.status = 405;
      res.set_content(R"({"message":"only GET is allowed"})", "application/json");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server_.Get(R"(/(v[0-9.]+/)?events)",
              [this](const httplib::Request& req, httplib::Response& res) {
                int generation = 0;
                int end_generation = 0;
                {
                  absl::MutexLock lock(&mu_);
                  event_targets_.push_back(req.target);
                  if (events_fail_) {
                    res.status = events_failure_.status;
                    res.set_content(events_failure_.body, "application/json");
                    return;
                  }
                  generation = drop_generation_;
                  end_generation = end_generation_;
                  ++open_streams_;
                }
                res.set_chunked_content_provider(
                    "application/json",
                    [this, generation, end_generation](size_t, httplib::DataSink& sink) {
                      absl::MutexLock lock(&mu_);
                      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                        return stopping_ || drop_generation_ != generation ||
                               end_generation_ != end_generation || !event_chunks_.empty();
                      };
                      // Short waits: httplib calls again when we return true without writing.
                      mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(100));
                      if (stopping_ || drop_generation_ != generation) return false;
                      if (end_generation_ != end_generation) {
                        sink.done();
                        return true;
                      }
                      while (!event_chunks_.empty()) {
                        const std::string chunk = std::move(event_chunks_.front());
                        event_chunks_.pop_front();
                        if (!sink.write(chunk.data(), chunk.size())) return false;
                      }
                      return true;
                    },
                    [this](bool) {
                      absl::MutexLock lock(&mu_);
                      --open_streams_;
                    });
              });
  server_.Get(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) {
    absl::MutexLock lock(&mu_);
    auto it = responses_.find(StripVersion(req.path));
    if (it == responses_.end()) {
      res.status = 404;
      res.set_content(R"({"message":"page not found"})", "application/json");
      return;
    }
    res.status = it->second.status;
    res.set_content(it->second.body, "application/json");
  });
}

FakeDockerServer::~FakeDockerServer() { Stop(); }

std::string FakeDockerServer::StripVersion(const std::string& path) {
  if (path.size() > 2 && path[0] == '/' && path[1] == 'v') {
    const size_t slash = path.find('/', 1);
    if (slash != std::string::npos && path.find_first_not_of("0123456789.", 2) == slash) {
      return path.substr(slash);
    }
  }
  return path;
}

void FakeDockerServer::SetResponse(const std::string& path, int status, const std::string& body) {
  absl::MutexLock lock(&mu_);
  responses_[path] = Canned{status, body};
}

void FakeDockerServer::FailEvents(int status, const std::string& body) {
  absl::MutexLock lock(&mu_);
  events_fail_ = true;
  events_failure_ = Canned{status, body};
}

absl::Status FakeDockerServer::Start() {
  if (!server_.bind_to_port(socket_path_, 80)) {
    return absl::InternalError(absl::StrCat("fake dockerd: cannot bind ", socket_path_));
  }
  thread_ = std::thread([this] { server_.listen_after_bind(); });
  if (!fakes::WaitFor([this] { return server_.is_running(); }, absl::Seconds(10))) {
    return absl::DeadlineExceededError("fake dockerd did not start");
  }
  return absl::OkStatus();
}

void FakeDockerServer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  server_.stop();
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> FakeDockerServer::targets() {
  absl::MutexLock lock(&mu_);
  return targets_;
}

std::vector<std::string> FakeDockerServer::non_get_requests() {
  absl::MutexLock lock(&mu_);
  return non_get_requests_;
}

std::vector<std::string> FakeDockerServer::event_targets() {
  absl::MutexLock lock(&mu_);
  return event_targets_;
}

void FakeDockerServer::PushEvents(const std::string& chunk) {
  absl::MutexLock lock(&mu_);
  event_chunks_.push_back(chunk);
}

void FakeDockerServer::DropEventStreams() {
  absl::MutexLock lock(&mu_);
  ++drop_generation_;
}

void FakeDockerServer::EndEventStreams() {
  absl::MutexLock lock(&mu_);
  ++end_generation_;
}

int FakeDockerServer::open_event_streams() {
  absl::MutexLock lock(&mu_);
  return open_streams_;
}

}  // namespace registrator::docker
