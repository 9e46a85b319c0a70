// Capped exponential backoff with jitter, used for every retry: Docker reconnects, backend
// pings, failed service writes.
#ifndef REGISTRATOR_COMMON_BACKOFF_H_
#define REGISTRATOR_COMMON_BACKOFF_H_

#include <algorithm>
#include <random>

#include "absl/time/time.h"

namespace registrator {

class Backoff {
 public:
  Backoff(absl::Duration initial, absl::Duration max) : initial_(initial), max_(max) {}

  // The next delay: initial, 2x, 4x ... capped at max, each with up to 20% jitter subtracted so
  // that many retries started together spread out.
  absl::Duration Next() {
    const absl::Duration base = std::min(max_, initial_ * (1LL << std::min(attempts_, 30)));
    ++attempts_;
    std::uniform_real_distribution<double> jitter(0.8, 1.0);
    return base * jitter(rng_);
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
