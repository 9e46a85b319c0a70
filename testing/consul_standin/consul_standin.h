// A strict, in-memory stand-in for a Consul agent's HTTP API (no real Consul can be installed
// here). It implements the endpoints registrator and common clients use, keeps state the way an
// agent does (checks belong to services, TTL checks expire to critical) and rejects what Consul
// rejects (wrong methods, unknown fields, bad types, bad Meta, bad durations, bad checks), so the
// adapters are tested against the API contract rather than against themselves. Tests read back
// every request it received and how many writes it saw ("an unchanged resync makes zero writes").
#ifndef TESTING_CONSUL_STANDIN_CONSUL_STANDIN_H_
#define TESTING_CONSUL_STANDIN_CONSUL_STANDIN_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace httplib {
class Server;
}

namespace registrator::fakes {

struct ConsulStandinOptions {
  // When set, ACLs are on: writes need this token (X-Consul-Token, "Authorization: Bearer" or
  // ?token=) and answer 403 otherwise; list reads are filtered to nothing, as Consul does.
  std::string acl_token;
  // TLS: server certificate and key (PEM files). With tls_client_ca_file, clients must present a
  // certificate signed by that CA (Consul's verify_incoming).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  // What /v1/status/leader answers; "" means "no leader" (Consul answers "" then).
  std::string leader = "127.0.0.1:8300";
  // Benchmarks (bench/binary_bench): a real agent keeps connections alive indefinitely and
  // serves any number of them; cpp-httplib's defaults (5 requests per connection, 8 threads)
  // would make every client number pessimistic. 0 keeps the httplib default.
  int keep_alive_max_count = 0;
  int server_threads = 0;
  // Called on the serving thread after each HTTP request was handled (not for Handle()).
  std::function<void(const std::string& method, const std::string& path, int status,
                     const std::string& body)>
      on_reply;
};

// One request as the stand-in received it.
struct RecordedRequest {
  std::string method;
  std::string path;   // Decoded path, without the query.
  std::string query;  // "a=1&b=2" as parsed parameters, sorted; "" if none.
  std::string body;
  bool has_token = false;  // Whether any token was presented (the token itself is not kept).
};

// The stand-in's answer to one request.
struct StandinReply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

class ConsulStandin {
 public:
  explicit ConsulStandin(ConsulStandinOptions options = {});
  ~ConsulStandin();
  ConsulStandin(const ConsulStandin&) = delete;
  ConsulStandin& operator=(const ConsulStandin&) = delete;

  // Serves on host:port (port 0 = any free port; see port()). TLS when the options name a cert.
  absl::Status ListenTcp(const std::string& host = "127.0.0.1", int port = 0);
  // Serves plain HTTP on a unix socket (the file is replaced if it exists).
  absl::Status ListenUnix(const std::string& socket_path);
  // Stops serving (idempotent; also done by the destructor). State is kept. Blocked queries
  // are answered at once.
  void Stop();
  int port() const { return port_; }

  // Handles one request without HTTP (the same code path the server uses). `params` are the
  // decoded query parameters; `headers` are "Name" -> value (names case-insensitive).
  StandinReply Handle(const std::string& method, const std::string& path,
                      const std::multimap<std::string, std::string>& params,
                      const std::string& body,
                      const std::multimap<std::string, std::string>& headers);

  // --- What tests observe (all thread-safe). ---
  // Requests that change state (register, deregister, check updates, KV put/delete), counted
  // whether or not they were accepted.
  int write_count() const;
  std::vector<RecordedRequest> requests() const;
  // The bodies of every request with this method and path, in arrival order.
  std::vector<std::string> BodiesOf(const std::string& method, const std::string& path) const;
  void ClearLog();
  std::vector<std::string> ServiceIds() const;
  // Current status of a check ("passing", "warning", "critical"), TTL expiry applied.
  std::optional<std::string> CheckStatus(const std::string& check_id) const;
  std::vector<std::string> CheckIds() const;
  std::optional<std::string> KvValue(const std::string& key) const;
  void SetLeader(const std::string& leader);
  // As an agent restarted without its data: services, checks and keys are gone and the index
  // starts over at 1 (lower than what clients hold: they must reset, see blocking queries).
  void Wipe();

  // Hang mode, a hung agent (as a SIGSTOPped one): while on, every HTTP request is read and then
  // held unanswered. Turning it off answers the held requests one by one in arrival order and
  // applies them, even those whose client gave up waiting (a resumed agent also processes what
  // the kernel buffered for it). Stop() answers them too. Handle() is never held.
  void SetHung(bool hung);
  // Requests held right now.
  int held_requests() const;

 private:
  struct Check;
  class Gate;
  struct ServiceEntry;
  struct KvEntry;
  struct Request;
  class State;

  absl::Status StartServer(std::unique_ptr<httplib::Server> server, bool unix_socket,
                           const std::string& host, int port);

  const ConsulStandinOptions options_;
  std::unique_ptr<State> state_;
  std::unique_ptr<Gate> gate_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

// Go's time.ParseDuration subset Consul accepts for check durations ("10s", "1m30s", "500ms",
// "1.5h", "0"). Rejects negatives and infinities.
bool ParseGoDuration(const std::string& text, absl::Duration* out);

}  // namespace registrator::fakes

#endif  // TESTING_CONSUL_STANDIN_CONSUL_STANDIN_H_
