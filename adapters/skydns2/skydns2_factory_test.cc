// The skydns2 factory without a server: URI validation and the exact key/value layout.
#include <gtest/gtest.h>

#include "adapters/skydns2/skydns2_adapter.h"
#include "registrator/model/adapter_options.h"
#include "registrator/model/backend_uri.h"

namespace registrator {
namespace {

absl::StatusOr<std::unique_ptr<RegistryAdapter>> Make(const std::string& text) {
  absl::StatusOr<BackendUri> uri = ParseBackendUri(text);
  if (!uri.ok()) return uri.status();
  return NewSkydns2Adapter(*uri, AdapterOptions());
}

TEST(Skydns2Factory, DomainIsRequired) {
  for (const char* bad :
       {"skydns2://127.0.0.1:2379", "skydns2://127.0.0.1:2379/", "skydns2://127.0.0.1:2379/a..b",
        "etcd://127.0.0.1:2379/skydns.local", "skydns2://127.0.0.1:x/skydns.local"}) {
    absl::StatusOr<std::unique_ptr<RegistryAdapter>> adapter = Make(bad);
    EXPECT_FALSE(adapter.ok()) << bad;
    if (!adapter.ok()) {
      EXPECT_TRUE(absl::IsInvalidArgument(adapter.status())) << bad;
    }
  }
  absl::StatusOr<std::unique_ptr<RegistryAdapter>> missing = Make("skydns2://127.0.0.1:2379");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("domain"), absl::string_view::npos);
}

TEST(Skydns2Factory, FingerprintIsTheExactKeyAndJson) {
  absl::StatusOr<std::unique_ptr<RegistryAdapter>> adapter =
      Make("skydns2://127.0.0.1:2379/skydns.local");
  ASSERT_TRUE(adapter.ok()) << adapter.status();
  Service s;
  s.name = "web";
  s.id = "host1:web_1:80";
  s.ip = "10.0.0.5";
  s.port = 32768;
  EXPECT_EQ((*adapter)->Fingerprint(s),
            R"(/skydns/local/skydns/web/host1:web_1:80={"host":"10.0.0.5","port":32768})");
}

}  // namespace
}  // namespace registrator
