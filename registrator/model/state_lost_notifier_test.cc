// StateLostNotifier: calls what was set, nothing once cleared, and never under its lock.
#include "registrator/model/state_lost_notifier.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace registrator {
namespace {

TEST(StateLostNotifierTest, NotifiesTheCurrentCallbackUntilCleared) {
  StateLostNotifier notifier;
  notifier.Notify();  // Nothing set: nothing happens.
  int first = 0;
  int second = 0;
  notifier.Set([&] { ++first; });
  notifier.Notify();
  EXPECT_EQ(first, 1);
  notifier.Set([&] { ++second; });
  notifier.Notify();
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 1);
  notifier.Set(nullptr);
  notifier.Notify();
  EXPECT_EQ(second, 1);
}

TEST(StateLostNotifierTest, CallbackMayClearItselfWithoutDeadlock) {
  StateLostNotifier notifier;
  int calls = 0;
  notifier.Set([&] {
    ++calls;
    notifier.Set(nullptr);  // Would deadlock if Notify held the lock during the call.
  });
  notifier.Notify();
  notifier.Notify();
  EXPECT_EQ(calls, 1);
}

TEST(StateLostNotifierTest, ClearingWaitsForACallbackUnderWay) {
  StateLostNotifier notifier;
  absl::Notification entered;
  absl::Notification release;
  absl::Notification clearing;
  absl::Mutex mu;
  std::vector<std::string> order;
  auto note = [&](const char* what) {
    absl::MutexLock lock(&mu);
    order.push_back(what);
  };
  notifier.Set([&] {
    entered.Notify();
    release.WaitForNotification();
    note("callback done");
  });
  std::thread notifying([&] { notifier.Notify(); });
  entered.WaitForNotification();
  std::thread clearer([&] {
    clearing.Notify();
    notifier.Set(nullptr);
    note("cleared");
  });
  clearing.WaitForNotification();
  release.Notify();
  clearer.join();
  notifying.join();
  EXPECT_EQ(order, (std::vector<std::string>{"callback done", "cleared"}));
}

TEST(StateLostNotifierTest, ConcurrentNotifyAndSet) {
  StateLostNotifier notifier;
  std::atomic<int> calls{0};
  notifier.Set([&] { ++calls; });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) notifier.Notify();
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; i < 1000; ++i) notifier.Set([&] { ++calls; });
  });
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(calls.load(), 4000);
}

}  // namespace
}  // namespace registrator
