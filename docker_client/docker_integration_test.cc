// DockerClient and EventStream against a real private dockerd 20.10 (testing/dockerd_fixture):
// inspect of real containers (published, udp, -P, host network, env), list with a status filter,
// event order for one container, and reconnect across a daemon restart.
#include <algorithm>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "docker_client/docker_client.h"
#include "docker_client/event_stream.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/dockerd_fixture.h"
#include "testing/process.h"

namespace registrator::docker {
namespace {

using ::registrator::fakes::DockerdFixture;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Pair;

class Recorder : public EventSink {
 public:
  void OnEvent(const Event& e) override {
    absl::MutexLock lock(&mu_);
    events_.push_back(e);
    log_.push_back(absl::StrCat("event ", e.action, " ", e.name));
  }
  void OnConnected(bool first) override {
    absl::MutexLock lock(&mu_);
    ++(first ? connected_first_ : connected_again_);
    log_.push_back(first ? "connected first" : "connected again");
    if (!first) reconnected_at_ = absl::Now();
  }
  void OnDisconnected(const absl::Status& why) override {
    absl::MutexLock lock(&mu_);
    ++disconnected_;
    log_.push_back(absl::StrCat("disconnected ", why.ToString()));
  }
  // Actions of `id`'s events, in delivery order.
  std::vector<std::string> Actions(const std::string& id) {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> out;
    for (const Event& e : events_) {
      if (e.id == id) out.push_back(e.action);
    }
    return out;
  }
  bool WaitForAction(const std::string& id, const std::string& action, int count = 1) {
    return registrator::fakes::WaitFor(
        [&] {
          std::vector<std::string> a = Actions(id);
          return std::count(a.begin(), a.end(), action) >= count;
        },
        absl::Seconds(30));
  }
  std::vector<Event> events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  int connected_first() {
    absl::MutexLock lock(&mu_);
    return connected_first_;
  }
  int connected_again() {
    absl::MutexLock lock(&mu_);
    return connected_again_;
  }
  int disconnected() {
    absl::MutexLock lock(&mu_);
    return disconnected_;
  }
  absl::Time reconnected_at() {
    absl::MutexLock lock(&mu_);
    return reconnected_at_;
  }
  std::string Log() {
    absl::MutexLock lock(&mu_);
    return absl::StrJoin(log_, "\n");
  }

 private:
  absl::Mutex mu_;
  std::vector<Event> events_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> log_ ABSL_GUARDED_BY(mu_);
  int connected_first_ ABSL_GUARDED_BY(mu_) = 0;
  int connected_again_ ABSL_GUARDED_BY(mu_) = 0;
  int disconnected_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time reconnected_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// Drops "kill": how many a stop sends depends on whether PID 1 honours SIGTERM in time.
std::vector<std::string> WithoutKills(std::vector<std::string> actions) {
  actions.erase(std::remove(actions.begin(), actions.end(), "kill"), actions.end());
  return actions;
}

class DockerIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<DockerdFixture>> f = DockerdFixture::Start();
    ASSERT_TRUE(f.ok()) << f.status();
    fixture_ = f->release();
  }
  static void TearDownTestSuite() {
    delete fixture_;
    fixture_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(fixture_, nullptr);
    absl::StatusOr<std::unique_ptr<DockerClient>> c = DockerClient::ForHost(fixture_->host());
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = *std::move(c);
  }
  // `docker run -d ...`; returns the container id.
  std::string Run(std::vector<std::string> args) {
    args.insert(args.begin(), {"run", "-d"});
    DockerdFixture::Result r = fixture_->Docker(args);
    EXPECT_EQ(r.exit_code, 0) << r.output << "\n" << fixture_->DaemonLog();
    EXPECT_EQ(r.output.size(), 64u) << r.output;
    return r.output;
  }
  void DockerOk(const std::vector<std::string>& args) {
    DockerdFixture::Result r = fixture_->Docker(args);
    EXPECT_EQ(r.exit_code, 0) << absl::StrJoin(args, " ") << ": " << r.output;
  }

  static DockerdFixture* fixture_;
  std::unique_ptr<DockerClient> client_;
};

DockerdFixture* DockerIntegrationTest::fixture_ = nullptr;

TEST_F(DockerIntegrationTest, PingAndVersion) {
  EXPECT_TRUE(client_->Ping().ok());
  absl::StatusOr<Version> v = client_->GetVersion();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->api_version, "1.41");
  EXPECT_THAT(v->version, ::testing::StartsWith("20.10."));
  EXPECT_EQ(client_->ApiPath("/x"), "/v1.41/x");
}

TEST_F(DockerIntegrationTest, InspectRealContainers) {
  const int port = registrator::fakes::FreeLoopbackPort();
  const int udp_port = registrator::fakes::FreeLoopbackPort();
  const std::string web =
      Run({"--name", "it-web", "-p", absl::StrCat(port, ":80"), "-e", "SERVICE_NAME=files", "-l",
           "b=2", "-l", "a=1", DockerdFixture::kImage});
  const std::string udp =
      Run({"--name", "it-udp", "-p", absl::StrCat(udp_port, ":5353/udp"), DockerdFixture::kImage});
  const std::string random = Run({"--name", "it-random", "-P", DockerdFixture::kImage});
  const std::string host = Run({"--name", "it-host", "--net=host", "-e", "SERVICE_NAME=hostsvc",
                                DockerdFixture::kImage, "/bin/busybox", "sleep", "300"});

  absl::StatusOr<Container> c = client_->InspectContainer(web);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->id, web);
  EXPECT_EQ(c->name, "it-web");
  EXPECT_EQ(c->image, DockerdFixture::kImage);
  EXPECT_THAT(c->env, ElementsAre("SERVICE_NAME=files"));
  EXPECT_THAT(c->labels, ElementsAre(Pair("a", "1"), Pair("b", "2")));
  EXPECT_THAT(c->exposed_ports, ElementsAre("80/tcp"));
  EXPECT_EQ(c->network_mode, "default");
  EXPECT_THAT(c->ports, ElementsAre(Pair(
                            "80/tcp", ElementsAre(PortBinding{"127.0.0.1", absl::StrCat(port)}))));
  EXPECT_FALSE(c->ip_address.empty());
  ASSERT_EQ(c->networks.size(), 1u);
  EXPECT_EQ(c->networks[0].name, "bridge");
  EXPECT_EQ(c->networks[0].ip_address, c->ip_address);
  EXPECT_EQ(c->state.status, "running");
  EXPECT_TRUE(c->state.running);
  EXPECT_FALSE(c->raw_json.empty());
  // The published port really serves the image's httpd.
  std::string page;
  EXPECT_TRUE(registrator::fakes::WaitFor(
      [&] {
        page.clear();
        return registrator::fakes::RunCommand(
                   absl::StrCat("curl -sf --max-time 2 http://127.0.0.1:", port, "/"), &page) == 0;
      },
      absl::Seconds(10)));
  EXPECT_EQ(page, "registrator test page\n");

  c = client_->InspectContainer("it-udp");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->id, udp);
  EXPECT_THAT(c->exposed_ports, ElementsAre("5353/udp", "80/tcp"));
  EXPECT_THAT(
      c->ports,
      ElementsAre(Pair("5353/udp", ElementsAre(PortBinding{"127.0.0.1", absl::StrCat(udp_port)})),
                  Pair("80/tcp", IsEmpty())));
  EXPECT_THAT(c->env, IsEmpty());

  c = client_->InspectContainer(random);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->ports.size(), 1u);
  ASSERT_EQ(c->ports["80/tcp"].size(), 1u);
  EXPECT_EQ(c->ports["80/tcp"][0].host_ip, "127.0.0.1");
  int random_port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(c->ports["80/tcp"][0].host_port, &random_port));
  EXPECT_GT(random_port, 0);

  c = client_->InspectContainer(host);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->network_mode, "host");
  EXPECT_THAT(c->ports, IsEmpty());
  EXPECT_EQ(c->ip_address, "");
  EXPECT_THAT(c->env, ElementsAre("SERVICE_NAME=hostsvc"));
  EXPECT_THAT(c->networks, ElementsAre(NetworkEndpoint{"host", "", ""}));

  absl::StatusOr<Container> gone = client_->InspectContainer("no-such-container");
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kNotFound) << gone.status();
  EXPECT_THAT(gone.status().message(), ::testing::HasSubstr("No such container"));

  DockerOk({"rm", "-f", web, udp, random, host});
}

TEST_F(DockerIntegrationTest, ListWithStatusFilter) {
  const std::string running = Run({"--name", "ls-running", DockerdFixture::kImage});
  DockerdFixture::Result created =
      fixture_->Docker({"create", "--name", "ls-created", DockerdFixture::kImage});
  ASSERT_EQ(created.exit_code, 0) << created.output;
  const std::string exited =
      Run({"--name", "ls-exited", DockerdFixture::kImage, "/bin/busybox", "sh", "-c", "exit 3"});
  DockerOk({"wait", exited});

  auto names = [](const std::vector<ContainerSummary>& list) {
    std::map<std::string, std::string> out;
    for (const ContainerSummary& s : list) out[s.name] = s.state;
    return out;
  };
  absl::StatusOr<std::vector<ContainerSummary>> list = client_->ListContainers(true, "running");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_THAT(names(*list), ElementsAre(Pair("ls-running", "running")));
  list = client_->ListContainers(true);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_THAT(names(*list), ElementsAre(Pair("ls-created", "created"), Pair("ls-exited", "exited"),
                                        Pair("ls-running", "running")));
  list = client_->ListContainers(false);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].id, running);
  EXPECT_EQ((*list)[0].image, DockerdFixture::kImage);
  list = client_->ListContainers(true, "exited");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_THAT(names(*list), ElementsAre(Pair("ls-exited", "exited")));

  absl::StatusOr<Container> c = client_->InspectContainer(exited);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->state.status, "exited");
  EXPECT_EQ(c->state.exit_code, 3);
  DockerOk({"rm", "-f", running, "ls-created", exited});
}

TEST_F(DockerIntegrationTest, EventsArriveInOrder) {
  Recorder sink;
  EventStream stream(*client_);
  ASSERT_TRUE(stream.Start(&sink).ok());
  ASSERT_TRUE(
      registrator::fakes::WaitFor([&] { return sink.connected_first() == 1; }, absl::Seconds(10)));
  const std::string id = Run({"--name", "ev", "--stop-timeout", "1", DockerdFixture::kImage});
  DockerOk({"stop", "-t", "1", id});
  DockerOk({"start", id});
  DockerOk({"kill", id});
  DockerOk({"restart", "-t", "1", id});
  DockerOk({"rm", "-f", id});
  ASSERT_TRUE(sink.WaitForAction(id, "destroy")) << sink.Log();
  const std::vector<std::string> actions = sink.Actions(id);
  EXPECT_THAT(WithoutKills(actions), ElementsAre("create", "start",   // run
                                                 "die", "stop",       // stop
                                                 "start",             // start
                                                 "die",               // kill
                                                 "start", "restart",  // restart of a dead container
                                                 "die", "destroy"))   // rm -f
      << absl::StrJoin(actions, ",");
  EXPECT_THAT(actions, Contains("kill"));
  for (const Event& e : sink.events()) {
    if (e.id != id) continue;
    EXPECT_EQ(e.type, "container");
    EXPECT_EQ(e.name, "ev");
    EXPECT_EQ(e.image, DockerdFixture::kImage);
    if (e.action == "die") {
      EXPECT_FALSE(e.exit_code.empty());
    }
  }
  EXPECT_EQ(sink.disconnected(), 0);
}

TEST_F(DockerIntegrationTest, ReconnectsAcrossDaemonRestartWithoutDuplicates) {
  Recorder sink;
  EventStreamOptions options;
  // Long enough that the container started right after the restart happens before the stream
  // is back, so Docker must replay it via since=.
  options.initial_backoff = absl::Seconds(6);
  options.max_backoff = absl::Seconds(6);
  EventStream stream(*client_, options);
  ASSERT_TRUE(stream.Start(&sink).ok());
  ASSERT_TRUE(
      registrator::fakes::WaitFor([&] { return sink.connected_first() == 1; }, absl::Seconds(10)));
  const std::string before =
      Run({"--name", "rs-before", "--stop-timeout", "1", DockerdFixture::kImage});
  ASSERT_TRUE(sink.WaitForAction(before, "start")) << sink.Log();

  ASSERT_TRUE(fixture_->StopDaemon().ok());
  ASSERT_TRUE(
      registrator::fakes::WaitFor([&] { return sink.disconnected() == 1; }, absl::Seconds(10)))
      << sink.Log();
  ASSERT_TRUE(fixture_->StartDaemon().ok()) << fixture_->DaemonLog();
  const std::string during = Run({"--name", "rs-during", DockerdFixture::kImage});
  const absl::Time during_done = absl::Now();

  ASSERT_TRUE(
      registrator::fakes::WaitFor([&] { return sink.connected_again() == 1; }, absl::Seconds(30)))
      << sink.Log();
  const std::string after = Run({"--name", "rs-after", DockerdFixture::kImage});
  DockerOk({"rm", "-f", during, after, before});
  ASSERT_TRUE(sink.WaitForAction(after, "destroy")) << sink.Log();
  ASSERT_TRUE(sink.WaitForAction(during, "destroy")) << sink.Log();
  ASSERT_TRUE(sink.WaitForAction(before, "destroy")) << sink.Log();

  if (sink.reconnected_at() > during_done) {
    std::cerr << "rs-during was started before the stream reconnected: replayed via since=\n";
  } else {
    std::cerr << "the stream reconnected before rs-during started: delivered live\n";
  }
  EXPECT_THAT(WithoutKills(sink.Actions(during)), ElementsAre("create", "start", "die", "destroy"))
      << sink.Log();
  EXPECT_THAT(WithoutKills(sink.Actions(after)), ElementsAre("create", "start", "die", "destroy"))
      << sink.Log();
  // rs-before: its shutdown events may or may not make it out before the stream dropped.
  std::vector<std::string> before_actions = sink.Actions(before);
  ASSERT_GE(before_actions.size(), 2u);
  EXPECT_EQ(before_actions[0], "create");
  EXPECT_EQ(before_actions[1], "start");
  EXPECT_EQ(before_actions.back(), "destroy");
  EXPECT_EQ(sink.connected_first(), 1);
  EXPECT_EQ(sink.connected_again(), 1);
  EXPECT_EQ(sink.disconnected(), 1);

  std::set<std::tuple<int64_t, std::string, std::string>> seen;
  for (const Event& e : sink.events()) {
    EXPECT_TRUE(seen.emplace(e.time_nano, e.id, e.action).second)
        << "duplicate " << e.action << " " << e.name << " at " << e.time_nano;
  }
}

}  // namespace
}  // namespace registrator::docker
