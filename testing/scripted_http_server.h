// An HTTP server on loopback that answers from a table the test fills in and records what it
// received: for adapter tests that need replies a real server will not give on demand (a 429, a
// proxy's 413, a garbled body, a member without a leader).
#ifndef TESTING_SCRIPTED_HTTP_SERVER_H_
#define TESTING_SCRIPTED_HTTP_SERVER_H_

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace httplib {
class Server;
}

namespace registrator::fakes {

struct ScriptedRequest {
  std::string method;
  std::string path;  // Decoded, without the query.
  std::string body;
  std::string authorization;  // The Authorization header, "" if none.
};

class ScriptedHttpServer {
 public:
  // Listens on 127.0.0.1 on a free port at once.
  ScriptedHttpServer();
  ~ScriptedHttpServer();
  ScriptedHttpServer(const ScriptedHttpServer&) = delete;
  ScriptedHttpServer& operator=(const ScriptedHttpServer&) = delete;

  // "127.0.0.1:<port>".
  std::string address() const;
  // The reply to "<METHOD> <path>" (exact), or to every request without an exact entry when
  // `request` is "*". Unscripted requests get 200 "{}".
  void Reply(const std::string& request, int status, const std::string& body);
  std::vector<ScriptedRequest> requests() const;

 private:
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::thread thread_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::pair<int, std::string>> replies_ ABSL_GUARDED_BY(mu_);
  std::vector<ScriptedRequest> requests_ ABSL_GUARDED_BY(mu_);
};

}  // namespace registrator::fakes

#endif  // TESTING_SCRIPTED_HTTP_SERVER_H_
