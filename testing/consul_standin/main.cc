// The Consul stand-in as a process, for end-to-end tests and third-party clients (python3-consul):
//   consul_standin --addr=127.0.0.1:0 [--socket=/tmp/x/consul.sock] [--acl-token=T]
//                  [--tls-cert=F --tls-key=F [--tls-ca=F]] [--leader=host:port]
// (absl flags: --acl_token works too)
// Prints "listening on <addr>" (with the chosen port) once it serves; exits 0 on SIGTERM/SIGINT.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "testing/consul_standin/consul_standin.h"

ABSL_FLAG(std::string, addr, "", "host:port to serve on (port 0 picks a free one)");
ABSL_FLAG(std::string, socket, "", "unix socket path to serve on (instead of --addr)");
ABSL_FLAG(std::string, acl_token, "", "enable ACLs: writes need this X-Consul-Token");
ABSL_FLAG(std::string, tls_cert, "", "server certificate (PEM): serve HTTPS");
ABSL_FLAG(std::string, tls_key, "", "server key (PEM)");
ABSL_FLAG(std::string, tls_ca, "", "require client certificates signed by this CA (PEM)");
ABSL_FLAG(std::string, leader, "127.0.0.1:8300", "what /v1/status/leader answers");

int main(int argc, char** argv) {
  // Accept --acl-token as well as absl's --acl_token spelling.
  std::vector<std::string> args(argv, argv + argc);
  std::vector<char*> fixed;
  for (std::string& arg : args) {
    if (arg.size() > 2 && arg[0] == '-') {
      const size_t start = arg.find_first_not_of('-');
      const size_t end = std::min(arg.find('='), arg.size());
      for (size_t i = start; i < end; ++i) {
        if (arg[i] == '-') arg[i] = '_';
      }
    }
    fixed.push_back(arg.data());
  }
  absl::ParseCommandLine(static_cast<int>(fixed.size()), fixed.data());
  // Block the stop signals before any thread starts, then wait for them synchronously.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  registrator::fakes::ConsulStandinOptions options;
  options.acl_token = absl::GetFlag(FLAGS_acl_token);
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca_file = absl::GetFlag(FLAGS_tls_ca);
  options.leader = absl::GetFlag(FLAGS_leader);
  registrator::fakes::ConsulStandin standin(options);

  absl::Status status;
  std::string where;
  if (!absl::GetFlag(FLAGS_socket).empty()) {
    where = absl::GetFlag(FLAGS_socket);
    status = standin.ListenUnix(where);
  } else {
    const std::string addr =
        absl::GetFlag(FLAGS_addr).empty() ? "127.0.0.1:8500" : absl::GetFlag(FLAGS_addr);
    const size_t colon = addr.rfind(':');
    int port = 0;
    if (colon == std::string::npos || !absl::SimpleAtoi(addr.substr(colon + 1), &port)) {
      std::fprintf(stderr, "consul_standin: --addr must be host:port, got \"%s\"\n", addr.c_str());
      return 2;
    }
    const std::string host = addr.substr(0, colon);
    status = standin.ListenTcp(host, port);
    where = host + ":" + std::to_string(standin.port());
  }
  if (!status.ok()) {
    std::fprintf(stderr, "consul_standin: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  std::printf("listening on %s\n", where.c_str());
  std::fflush(stdout);
  int signal = 0;
  sigwait(&signals, &signal);
  standin.Stop();
  return 0;
}
