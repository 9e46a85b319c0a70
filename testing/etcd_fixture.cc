// Starts and stops a real etcd on free loopback ports for integration tests.
#include "testing/etcd_fixture.h"

#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "registrator/common/http_client.h"

namespace registrator::fakes {

absl::StatusOr<std::unique_ptr<EtcdFixture>> EtcdFixture::Start(EtcdFixtureOptions options) {
  absl::Status last;
  // A "free" port can be taken by someone else before etcd binds it: try fresh ports again.
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::unique_ptr<EtcdFixture> fixture(new EtcdFixture());
    fixture->options_ = options;
    fixture->dir_ = std::make_unique<TempDir>("etcd");
    if (fixture->dir_->path().empty()) return absl::InternalError("cannot create a temp dir");
    fixture->client_port_ = FreeLoopbackPort();
    fixture->peer_port_ = FreeLoopbackPort();
    if (fixture->client_port_ <= 0 || fixture->peer_port_ <= 0 ||
        fixture->client_port_ == fixture->peer_port_) {
      last = absl::UnavailableError("no free loopback ports");
      continue;
    }
    if (options.tls) {
      if (absl::Status made = fixture->MakeCertificates(); !made.ok()) return made;
    }
    last = fixture->Launch();
    if (last.ok()) return fixture;
  }
  return last;
}

EtcdFixture::~EtcdFixture() { Stop(); }

std::string EtcdFixture::endpoint() const { return absl::StrCat("127.0.0.1:", client_port_); }

std::string EtcdFixture::base_url() const {
  return absl::StrCat(options_.tls ? "https://" : "http://", endpoint());
}

std::string EtcdFixture::ca_file() const { return absl::StrCat(dir_->path(), "/ca.pem"); }
std::string EtcdFixture::client_cert_file() const {
  return absl::StrCat(dir_->path(), "/client.pem");
}
std::string EtcdFixture::client_key_file() const {
  return absl::StrCat(dir_->path(), "/client.key");
}

absl::Status EtcdFixture::MakeCertificates() {
  const std::string& d = dir_->path();
  // EC keys: fast to generate. The server certificate names 127.0.0.1 (what clients dial).
  const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const std::string script = absl::StrCat(
      "set -e; cd '", d, "'; ", "openssl req -x509 ", key,
      " -keyout ca.key -out ca.pem -days 2 -subj /CN=etcd-test-ca; ",
      "printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' > "
      "server.ext; ",
      "printf 'extendedKeyUsage=clientAuth\\n' > client.ext; ", "for n in server client; do ",
      "openssl req ", key, " -keyout $n.key -out $n.csr -subj /CN=$n; ",
      "openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 ",
      "-extfile $n.ext -out $n.pem; done");
  std::string output;
  if (RunCommand(absl::StrCat("(", script, ") 2>&1"), &output) != 0) {
    return absl::InternalError(absl::StrCat("openssl failed: ", output));
  }
  return absl::OkStatus();
}

std::string EtcdFixture::Log() const {
  return ReadFileOrEmpty(absl::StrCat(dir_->path(), "/etcd.log"));
}

void EtcdFixture::Stop() { process_.Stop(absl::Seconds(5)); }

absl::Status EtcdFixture::Resume() {
  if (process_.running()) return absl::OkStatus();
  return Launch();
}

absl::Status EtcdFixture::Launch() {
  const std::string client = base_url();
  const std::string peer = absl::StrCat("http://127.0.0.1:", peer_port_);
  std::vector<std::string> argv = {
      "etcd",
      "--name=t1",
      absl::StrCat("--data-dir=", dir_->path(), "/data"),
      absl::StrCat("--listen-client-urls=", client),
      absl::StrCat("--advertise-client-urls=", client),
      absl::StrCat("--listen-peer-urls=", peer),
      absl::StrCat("--initial-advertise-peer-urls=", peer),
      absl::StrCat("--initial-cluster=t1=", peer),
      "--initial-cluster-state=new",
      // No metrics/pprof listeners beyond the client URL; keep the log short.
      "--log-level=warn",
      "--logger=zap",
  };
  if (options_.enable_v2) argv.push_back("--enable-v2=true");
  if (options_.tls) {
    argv.push_back(absl::StrCat("--cert-file=", dir_->path(), "/server.pem"));
    argv.push_back(absl::StrCat("--key-file=", dir_->path(), "/server.key"));
    argv.push_back(absl::StrCat("--trusted-ca-file=", ca_file()));
    argv.push_back("--client-cert-auth=true");
  }
  absl::StatusOr<ChildProcess> child =
      ChildProcess::Start(argv, absl::StrCat(dir_->path(), "/etcd.log"));
  if (!child.ok()) return child.status();
  process_ = std::move(*child);

  HttpEndpoint endpoint;
  endpoint.base_url = client;
  endpoint.connect_timeout = absl::Milliseconds(500);
  if (options_.tls) {
    endpoint.ca_file = ca_file();
    endpoint.cert_file = client_cert_file();
    endpoint.key_file = client_key_file();
  }
  HttpClient http(endpoint);
  bool exited = false;
  const bool healthy = WaitFor(
      [&] {
        if (!process_.running()) {
          exited = true;
          return true;
        }
        HttpRequest request;
        request.path = "/health";
        request.timeout = absl::Seconds(1);
        absl::StatusOr<HttpResponse> reply = http.Send(request);
        return reply.ok() && reply->status == 200 &&
               absl::StrContains(reply->body, "\"health\":\"true\"");
      },
      absl::Seconds(15), absl::Milliseconds(50));
  if (healthy && !exited) return absl::OkStatus();
  process_.Stop();
  return absl::UnavailableError(
      absl::StrCat("etcd on ", client, exited ? " exited" : " not healthy", "; log:\n", Log()));
}

int EtcdFixture::Etcdctl(const std::string& args, std::string* output) const {
  std::string tls;
  if (options_.tls) {
    tls = absl::StrCat(" --cacert=", ca_file(), " --cert=", client_cert_file(),
                       " --key=", client_key_file());
  }
  return RunCommand(
      absl::StrCat("ETCDCTL_API=3 etcdctl --endpoints=", base_url(), tls, " ", args, " 2>&1"),
      output);
}

}  // namespace registrator::fakes
