// The daemon's logger (see log.h): level filter, text or JSON lines, secrets scrubbed.
#include "registrator/common/log.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "registrator/common/json.h"

namespace registrator {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<bool> g_json{false};

absl::Mutex g_secrets_mu(absl::kConstInit);
std::vector<std::string>* g_secrets ABSL_GUARDED_BY(g_secrets_mu) = nullptr;

thread_local std::string t_context;

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

}  // namespace

void AppendLogTimestamp(std::string* out, absl::Time now) {
  // The date and time to the second change once a second: each thread keeps the last one
  // formatted. absl::FormatTime's general formatter (cctz) cost ~11 K instructions a line, about
  // 4 % of a container's CPU at start-up, where every container logs a line (issue 14).
  struct Cached {
    int64_t second = INT64_MIN;
    char text[32] = {0};
    size_t size = 0;
  };
  thread_local Cached cached;
  const int64_t millis = absl::ToUnixMillis(now);  // Floors, as %E3S truncates.
  const int64_t second = millis >= 0 ? millis / 1000 : (millis - 999) / 1000;
  if (second != cached.second) {
    const std::string text =
        absl::FormatTime("%Y-%m-%dT%H:%M:%S", absl::FromUnixSeconds(second), absl::UTCTimeZone());
    cached.size = std::min(text.size(), sizeof(cached.text));
    text.copy(cached.text, cached.size);
    cached.second = second;
  }
  const int milli = static_cast<int>(millis - second * 1000);
  const char fraction[] = {'.', static_cast<char>('0' + milli / 100),
                           static_cast<char>('0' + milli / 10 % 10),
                           static_cast<char>('0' + milli % 10), 'Z'};
  out->append(cached.text, cached.size);
  out->append(fraction, sizeof(fraction));
}

bool ParseLogLevel(absl::string_view text, LogLevel* level) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "debug") {
    *level = LogLevel::kDebug;
  } else if (lower == "info") {
    *level = LogLevel::kInfo;
  } else if (lower == "warn" || lower == "warning") {
    *level = LogLevel::kWarning;
  } else if (lower == "error") {
    *level = LogLevel::kError;
  } else {
    return false;
  }
  return true;
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
void SetLogJson(bool json) { g_json.store(json); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }

void SetLogSecrets(std::vector<std::string> secrets) {
  std::vector<std::string> kept;
  for (std::string& secret : secrets) {
    if (secret.size() >= kMinScrubbedSecret) kept.push_back(std::move(secret));
  }
  // Longest first, so a secret that contains another is replaced whole.
  std::sort(kept.begin(), kept.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  absl::MutexLock lock(&g_secrets_mu);
  delete g_secrets;
  g_secrets = kept.empty() ? nullptr : new std::vector<std::string>(std::move(kept));
}

std::string RedactSecrets(absl::string_view text) {
  std::string out(text);
  absl::MutexLock lock(&g_secrets_mu);
  if (g_secrets == nullptr) return out;
  for (const std::string& secret : *g_secrets) absl::StrReplaceAll({{secret, "***"}}, &out);
  return out;
}

void SetThreadLogContext(std::string context) { t_context = std::move(context); }

const std::string& ThreadLogContext() { return t_context; }

void LogLine(LogLevel level, absl::string_view raw_message) {
  const std::string scrubbed = t_context.empty() || g_json.load()
                                   ? RedactSecrets(raw_message)
                                   : RedactSecrets(absl::StrCat("[", t_context, "] ", raw_message));
  const absl::string_view message = scrubbed;
  const absl::Time now = absl::Now();
  std::string line;
  line.reserve(message.size() + 64);
  if (g_json.load()) {
    line.append("{\"time\":\"");
    AppendLogTimestamp(&line, now);
    absl::StrAppend(&line, "\",\"level\":\"", LevelName(level), "\",");
    if (!t_context.empty()) {
      line.append("\"registry\":");
      AppendJsonString(&line, RedactSecrets(t_context));
      line.append(",");
    }
    line.append("\"msg\":");
    AppendJsonString(&line, message);
    line.append("}\n");
  } else {
    AppendLogTimestamp(&line, now);
    absl::StrAppend(&line, " ", LevelName(level), " ", message, "\n");
  }
  // One write per line keeps concurrent lines whole; a failed write has nowhere to be reported.
  [[maybe_unused]] ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace registrator
