// The holder behind RegistryAdapter::SetStateLostCallback: adapters keep the bridge's callback
// here and call Notify() from whichever thread noticed the loss (a session or lease watcher, a
// refresh).
#ifndef REGISTRATOR_MODEL_STATE_LOST_NOTIFIER_H_
#define REGISTRATOR_MODEL_STATE_LOST_NOTIFIER_H_

#include <functional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace registrator {

class StateLostNotifier {
 public:
  // Replaces the callback; nullptr clears it. Once Set returns, the previous callback is not
  // running and will not be called again (it waits for calls under way on other threads), so
  // its owner may be destroyed. A callback may call Set itself (it does not wait for itself).
  void Set(std::function<void()> callback) {
    absl::MutexLock lock(&mu_);
    callback_ = std::move(callback);
    const int own = notifying_ == this ? 1 : 0;
    while (in_flight_ > own) idle_.Wait(&mu_);
  }

  // Calls the callback, if one is set, without holding the lock (a slow callback never blocks
  // Notify on other threads).
  void Notify() {
    std::function<void()> callback;
    {
      absl::MutexLock lock(&mu_);
      if (!callback_) return;
      callback = callback_;
      ++in_flight_;
    }
    const StateLostNotifier* outer = notifying_;
    notifying_ = this;
    callback();
    notifying_ = outer;
    absl::MutexLock lock(&mu_);
    --in_flight_;
    idle_.SignalAll();
  }

 private:
  absl::Mutex mu_;
  absl::CondVar idle_;  // Signalled whenever a callback call ends.
  std::function<void()> callback_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;  // Notify calls running a callback.
  // The notifier whose callback this thread is running, if any.
  static inline thread_local const StateLostNotifier* notifying_ = nullptr;
};

}  // namespace registrator

#endif  // REGISTRATOR_MODEL_STATE_LOST_NOTIFIER_H_
