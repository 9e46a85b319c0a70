// A settable clock for tests of code that takes a clock function (the bridge's backoff, retries
// and grace periods): time moves only when the test calls Advance.
#ifndef TESTING_FAKE_CLOCK_H_
#define TESTING_FAKE_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace registrator::fakes {

class FakeClock {
 public:
  absl::Time Now() {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_) = absl::FromUnixSeconds(1800000000);
};

}  // namespace registrator::fakes

#endif  // TESTING_FAKE_CLOCK_H_
