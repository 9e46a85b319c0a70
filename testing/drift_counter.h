// Counts the calls of an adapter's drift callback (RegistryAdapter::StartWatch), so watch tests
// can wait for the count to pass a mark instead of sleeping.
#ifndef TESTING_DRIFT_COUNTER_H_
#define TESTING_DRIFT_COUNTER_H_

#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace registrator::fakes {

class DriftCounter {
 public:
  std::function<void()> Callback() {
    return [this] {
      absl::MutexLock lock(&mu_);
      ++count_;
    };
  }
  int count() {
    absl::MutexLock lock(&mu_);
    return count_;
  }
  // True once count() > mark (within a generous deadline: only a broken watch takes that long).
  bool AwaitAbove(int mark) {
    absl::MutexLock lock(&mu_);
    auto above = [this, mark]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return count_ > mark; };
    return mu_.AwaitWithTimeout(absl::Condition(&above), absl::Seconds(30));
  }

 private:
  absl::Mutex mu_;
  int count_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace registrator::fakes

#endif  // TESTING_DRIFT_COUNTER_H_
