// The release binary needs nothing from the host: it is copied alone into an empty directory
// (plus /etc/hosts, and /etc/resolv.conf for the DNS case) and run there with chroot(8).
//   - the binary is a static ELF (no PT_INTERP, no PT_DYNAMIC),
//   - `--version` works,
//   - a name from /etc/hosts and a name only a DNS server knows (a tiny responder on
//     127.0.0.153:53, started by this test) both resolve: registrator connects to them,
//   - `log://` against a private dockerd whose socket is bind-mounted into the chroot registers
//     a container and deregisters it when it stops.
// Run with `--config=release` (tools/test does), so that //registrator:registrator is the static
// binary; under the dev config the ELF check fails on purpose. Root only (chroot, mount).
#include <arpa/inet.h>
#include <elf.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "testing/dockerd_fixture.h"
#include "testing/process.h"
#include "testing/registrator_process.h"

namespace registrator {
namespace {

using fakes::ChildProcess;
using fakes::DockerdFixture;
using fakes::LocalHostname;
using fakes::ReadFileOrEmpty;
using fakes::RegistratorBinaryPath;
using fakes::RunCommand;
using fakes::TempDir;

constexpr char kChroot[] = "/usr/sbin/chroot";
constexpr char kDnsAddress[] = "127.0.0.153";

void WriteFile(const std::string& path, const std::string& content) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path);
  out << content;
  ASSERT_TRUE(out.good()) << path;
}

// An empty root holding only the binary and /etc/hosts (localhost and this machine's name, which
// registrator resolves at start-up).
void MakeRoot(const std::string& root) {
  std::filesystem::copy_file(RegistratorBinaryPath(), root + "/registrator");
  ::chmod((root + "/registrator").c_str(), 0755);
  WriteFile(root + "/etc/hosts",
            absl::StrCat("127.0.0.1 localhost ", LocalHostname(), " docker-host.hosts-only\n"));
}

// A bind mount removed on destruction (before the TempDir holding its mount point).
class BindMount {
 public:
  BindMount(const std::string& source, const std::string& target) : target_(target) {
    if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) == 0) {
      mounted_ = true;
    } else {
      error_ = std::strerror(errno);
    }
  }
  ~BindMount() {
    if (mounted_) ::umount2(target_.c_str(), MNT_DETACH);
  }
  BindMount(const BindMount&) = delete;
  BindMount& operator=(const BindMount&) = delete;
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  std::string target_;
  bool mounted_ = false;
  std::string error_;
};

// A TCP listener on 127.0.0.1: seeing registrator connect proves the name resolved to it.
class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(fd_, 8) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return;
    }
    port_ = ntohs(addr.sin_port);
  }
  ~Listener() {
    if (fd_ >= 0) ::close(fd_);
  }
  int port() const { return port_; }
  bool WaitForConnection(int timeout_ms) {
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, timeout_ms) != 1) return false;
    const int conn = ::accept(fd_, nullptr, nullptr);
    if (conn < 0) return false;
    ::close(conn);
    return true;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// The smallest DNS server that does: A queries for names under `zone` get 127.0.0.1, AAAA
// queries for them an empty answer, everything else NXDOMAIN. Records the names asked.
class DnsResponder {
 public:
  DnsResponder(const std::string& address, const std::string& zone) : zone_(zone) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(53);
    ::inet_pton(AF_INET, address.c_str(), &addr.sin_addr);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      error_ = std::strerror(errno);
      return;
    }
    thread_ = std::thread([this] { Serve(); });
  }
  ~DnsResponder() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return thread_.joinable(); }
  const std::string& error() const { return error_; }
  std::vector<std::string> queries() {
    std::lock_guard<std::mutex> lock(mu_);
    return queries_;
  }

 private:
  void Serve() {
    unsigned char buf[512];
    while (!stop_) {
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, 50) != 1) continue;
      sockaddr_in from{};
      socklen_t from_len = sizeof(from);
      const ssize_t n =
          ::recvfrom(fd_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
      if (n < 17) continue;
      // Question: labels from byte 12, then QTYPE and QCLASS.
      std::string name;
      size_t at = 12;
      while (at < static_cast<size_t>(n) && buf[at] != 0) {
        const size_t len = buf[at];
        if (at + 1 + len > static_cast<size_t>(n)) break;
        if (!name.empty()) name += '.';
        name.append(reinterpret_cast<const char*>(buf + at + 1), len);
        at += 1 + len;
      }
      if (at + 5 > static_cast<size_t>(n)) continue;
      const int qtype = (buf[at + 1] << 8) | buf[at + 2];
      const size_t question_end = at + 5;
      {
        std::lock_guard<std::mutex> lock(mu_);
        queries_.push_back(absl::StrCat(name, qtype == 1 ? " A" : qtype == 28 ? " AAAA" : " ?"));
      }
      std::vector<unsigned char> reply(buf, buf + question_end);
      const bool ours = absl::EndsWith(name, zone_);
      reply[2] = 0x81;                // response, recursion desired
      reply[3] = ours ? 0x80 : 0x83;  // recursion available; NOERROR or NXDOMAIN
      reply[6] = 0;
      reply[7] = 0;  // answers
      reply[8] = reply[9] = reply[10] = reply[11] = 0;
      if (ours && qtype == 1) {
        reply[7] = 1;
        const unsigned char answer[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1};
        reply.insert(reply.end(), answer, answer + sizeof(answer));
      }
      ::sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), from_len);
    }
  }

  std::string zone_;
  int fd_ = -1;
  std::string error_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> queries_;
};

TEST(StaticChrootTest, BinaryIsAStaticElf) {
  std::ifstream in(RegistratorBinaryPath(), std::ios::binary);
  Elf64_Ehdr header{};
  ASSERT_TRUE(in.read(reinterpret_cast<char*>(&header), sizeof(header)));
  ASSERT_EQ(std::memcmp(header.e_ident, ELFMAG, SELFMAG), 0);
  EXPECT_EQ(header.e_ident[EI_CLASS], ELFCLASS64);
  EXPECT_EQ(header.e_machine, EM_X86_64);
  for (int i = 0; i < header.e_phnum; ++i) {
    Elf64_Phdr phdr{};
    in.seekg(header.e_phoff + i * header.e_phentsize);
    ASSERT_TRUE(in.read(reinterpret_cast<char*>(&phdr), sizeof(phdr)));
    EXPECT_NE(phdr.p_type, PT_INTERP) << "the binary names a dynamic loader: not static "
                                         "(run this test with --config=release)";
    EXPECT_NE(phdr.p_type, PT_DYNAMIC) << "the binary has a dynamic section";
  }
}

TEST(StaticChrootTest, VersionInEmptyRoot) {
  TempDir root("regchr");
  MakeRoot(root.path());
  std::string output;
  const int status =
      RunCommand(absl::StrCat(kChroot, " ", root.path(), " /registrator --version 2>&1"), &output);
  EXPECT_EQ(status, 0) << output;
  EXPECT_TRUE(absl::StartsWith(output, "registrator-cpp ")) << output;
}

// Runs registrator in `root` against DOCKER_HOST=tcp://<name>:<port> and expects it to connect
// to a listener on 127.0.0.1:<port>: only possible if <name> resolved.
void ExpectResolvesAndConnects(const std::string& root, const std::string& name) {
  Listener listener;
  ASSERT_GT(listener.port(), 0);
  const std::string log = root + "/../" + name + ".out";
  absl::StatusOr<ChildProcess> child =
      ChildProcess::Start({kChroot, root, "/registrator", "log://"}, log,
                          {absl::StrCat("DOCKER_HOST=tcp://", name, ":", listener.port())});
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_TRUE(listener.WaitForConnection(20000)) << ReadFileOrEmpty(log);
  child->Stop();
  EXPECT_FALSE(absl::StrContains(ReadFileOrEmpty(log), "Could not resolve"))
      << ReadFileOrEmpty(log);
}

TEST(StaticChrootTest, ResolvesNamesFromEtcHosts) {
  TempDir dir("regchr");
  const std::string root = dir.path() + "/root";
  std::filesystem::create_directories(root);
  MakeRoot(root);
  ExpectResolvesAndConnects(root, "docker-host.hosts-only");
}

TEST(StaticChrootTest, ResolvesNamesThroughDns) {
  DnsResponder dns(kDnsAddress, ".static-dns.test");
  ASSERT_TRUE(dns.ok()) << "cannot serve DNS on " << kDnsAddress << ":53: " << dns.error();
  TempDir dir("regchr");
  const std::string root = dir.path() + "/root";
  std::filesystem::create_directories(root);
  MakeRoot(root);
  WriteFile(root + "/etc/resolv.conf", absl::StrCat("nameserver ", kDnsAddress, "\n"));
  ExpectResolvesAndConnects(root, "docker.static-dns.test");
  const std::vector<std::string> queries = dns.queries();
  bool asked = false;
  for (const std::string& q : queries) asked |= q == "docker.static-dns.test A";
  EXPECT_TRUE(asked) << absl::StrJoin(queries, ", ");
}

TEST(StaticChrootTest, LogBackendAgainstBindMountedDockerSocket) {
  absl::StatusOr<std::unique_ptr<DockerdFixture>> docker = DockerdFixture::Start();
  ASSERT_TRUE(docker.ok()) << docker.status();
  TempDir dir("regchr");
  const std::string root = dir.path() + "/root";
  std::filesystem::create_directories(root + "/tmp");
  MakeRoot(root);
  // The mount point: an empty file where the image's DOCKER_HOST default expects the socket.
  WriteFile(root + "/tmp/docker.sock", "");
  BindMount socket_mount((*docker)->socket_path(), root + "/tmp/docker.sock");
  ASSERT_TRUE(socket_mount.mounted()) << socket_mount.error();

  const std::string log = dir.path() + "/registrator.out";
  absl::StatusOr<ChildProcess> child = ChildProcess::Start(
      {kChroot, root, "/registrator", "log://"}, log, {"DOCKER_HOST=unix:///tmp/docker.sock"});
  ASSERT_TRUE(child.ok()) << child.status();
  const auto wait_for = [&](const std::string& needle) {
    return fakes::WaitFor([&] { return absl::StrContains(ReadFileOrEmpty(log), needle); },
                          absl::Seconds(20), absl::Milliseconds(50));
  };
  ASSERT_TRUE(wait_for("listening for Docker events")) << ReadFileOrEmpty(log);

  const int port = fakes::FreeLoopbackPort();
  DockerdFixture::Result run = (*docker)->Docker(
      {"run", "-d", "--name", "chroot-web", "-p", absl::StrCat("127.0.0.1:", port, ":80"), "-e",
       "SERVICE_NAME=chroot-web", DockerdFixture::kImage});
  ASSERT_EQ(run.exit_code, 0);
  const std::string id = absl::StrCat(LocalHostname(), ":chroot-web:80");
  EXPECT_TRUE(
      wait_for(absl::StrCat("{\"action\":\"register\",\"id\":\"", id,
                            "\",\"name\":\"chroot-web\",\"ip\":\"127.0.0.1\",\"port\":", port)))
      << ReadFileOrEmpty(log);
  EXPECT_EQ((*docker)->Docker({"stop", "-t", "1", "chroot-web"}).exit_code, 0);
  EXPECT_TRUE(wait_for(absl::StrCat("{\"action\":\"deregister\",\"id\":\"", id)))
      << ReadFileOrEmpty(log);
  (*docker)->Docker({"rm", "-f", "chroot-web"});

  const int status = child->Stop();  // SIGTERM
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << ReadFileOrEmpty(log);
}

}  // namespace
}  // namespace registrator
