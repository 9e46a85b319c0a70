// The log:// backend prints exact JSON lines and lists what it printed.
#include "adapters/log/log_adapter.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace registrator {
namespace {

using ::testing::ElementsAre;

Service MakeService() {
  Service s;
  s.id = "host1:web:80";
  s.name = "web";
  s.ip = "10.0.0.5";
  s.port = 8080;
  s.tags = {"b", "a\"q"};
  s.attrs = {{"check_http", "/health"}, {"region", "eu"}};
  s.container_id = "d7fc15186570a5c8affd413e7e5e09cc9dea217d68a3292470e0cfdca36fde24";
  return s;
}

TEST(LogAdapterTest, PrintsOneJsonLinePerWrite) {
  std::vector<std::string> lines;
  auto adapter = NewLogAdapterForTesting([&](const std::string& line) { lines.push_back(line); });
  const Service s = MakeService();
  ASSERT_TRUE(adapter->Register(s).ok());
  ASSERT_TRUE(adapter->Deregister(s).ok());
  EXPECT_THAT(
      lines,
      ElementsAre(
          "{\"action\":\"register\",\"id\":\"host1:web:80\",\"name\":\"web\",\"ip\":\"10.0.0.5\","
          "\"port\":8080,\"tags\":[\"b\",\"a\\\"q\"],\"attrs\":{\"check_http\":\"/health\","
          "\"region\":\"eu\"},\"container\":\"d7fc15186570\"}",
          "{\"action\":\"deregister\",\"id\":\"host1:web:80\",\"name\":\"web\",\"ip\":\"10.0.0.5\","
          "\"port\":8080,\"tags\":[\"b\",\"a\\\"q\"],\"attrs\":{\"check_http\":\"/health\","
          "\"region\":\"eu\"},\"container\":\"d7fc15186570\"}"));
}

TEST(LogAdapterTest, FactoryIgnoresTheRestOfTheUri) {
  absl::StatusOr<BackendUri> uri = ParseBackendUri("log://anything/here");
  ASSERT_TRUE(uri.ok());
  absl::StatusOr<std::unique_ptr<RegistryAdapter>> adapter = NewLogAdapter(*uri, {});
  ASSERT_TRUE(adapter.ok());
  EXPECT_TRUE((*adapter)->Ping().ok());
  EXPECT_TRUE((*adapter)->Services()->empty());
}

TEST(LogAdapterTest, ListsWhatIsRegisteredWithMatchingFingerprints) {
  auto adapter = NewLogAdapterForTesting([](const std::string&) {});
  Service s = MakeService();
  ASSERT_TRUE(adapter->Register(s).ok());
  absl::StatusOr<std::vector<RegisteredService>> held = adapter->Services();
  ASSERT_TRUE(held.ok());
  ASSERT_EQ(held->size(), 1u);
  EXPECT_EQ((*held)[0].service.id, "host1:web:80");
  EXPECT_EQ((*held)[0].fingerprint, adapter->Fingerprint(s));
  Service changed = s;
  changed.port = 9090;
  EXPECT_NE(adapter->Fingerprint(changed), (*held)[0].fingerprint);
  ASSERT_TRUE(adapter->Deregister(s).ok());
  EXPECT_TRUE(adapter->Services()->empty());
}

}  // namespace
}  // namespace registrator
