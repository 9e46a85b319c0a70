// Capped exponential backoff with jitter, the one retry policy: Docker reconnects, backend
// pings, failed service writes and failed Docker inspects.
#ifndef REGISTRATOR_COMMON_BACKOFF_H_
#define REGISTRATOR_COMMON_BACKOFF_H_

#include <algorithm>
#include <random>

#include "absl/time/time.h"

namespace registrator {

// The delay before retry number `attempt` (0 for the first retry): initial, 2x, 4x ... capped
// at max, minus up to 20% jitter (`jitter` in [0, 1] picks how much) so that many retries
// started together spread out. For callers that keep one attempt count per item (per service,
// per container) and one random source for all of them.
inline absl::Duration BackoffDelay(absl::Duration initial, absl::Duration max, int attempt,
                                   double jitter) {
  const absl::Duration base = std::min(max, initial * (1LL << std::clamp(attempt, 0, 30)));
  return base * (1.0 - 0.2 * std::clamp(jitter, 0.0, 1.0));
}

class Backoff {
 public:
  Backoff(absl::Duration initial, absl::Duration max) : initial_(initial), max_(max) {}

  // The next delay; see BackoffDelay.
  absl::Duration Next() {
    std::uniform_real_distribution<double> jitter(0.0, 1.0);
    return BackoffDelay(initial_, max_, attempts_++, jitter(rng_));
  }

  void Reset() { attempts_ = 0; }
  int attempts() const { return attempts_; }

 private:
  absl::Duration initial_;
  absl::Duration max_;
  int attempts_ = 0;
  std::minstd_rand rng_{std::random_device{}()};
};

}  // namespace registrator

#endif  // REGISTRATOR_COMMON_BACKOFF_H_
