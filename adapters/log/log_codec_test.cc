// The log:// backend's exact JSON line for a write.
#include "adapters/log/log_codec.h"

#include "gtest/gtest.h"

namespace registrator::log_backend {
namespace {

TEST(LogCodecTest, LineWithAndWithoutContainer) {
  Service s;
  s.id = "h:c:53:udp";
  s.name = "dns";
  s.ip = "fd00::1";
  s.port = 53;
  EXPECT_EQ(LogLine("register", s),
            R"({"action":"register","id":"h:c:53:udp","name":"dns","ip":"fd00::1","port":53,)"
            R"("tags":[],"attrs":{}})");
  s.container_id = "0123456789abcdef";
  EXPECT_EQ(LogLine("deregister", s),
            R"({"action":"deregister","id":"h:c:53:udp","name":"dns","ip":"fd00::1","port":53,)"
            R"("tags":[],"attrs":{},"container":"0123456789ab"})");
  EXPECT_EQ(ServiceFingerprint(s),
            R"("id":"h:c:53:udp","name":"dns","ip":"fd00::1","port":53,"tags":[],"attrs":{})");
}

}  // namespace
}  // namespace registrator::log_backend
