// Leveled logging for the daemon: one line per decision, plain text by default or JSON lines.
// Library code logs and returns a Status; it never exits.
#ifndef REGISTRATOR_COMMON_LOG_H_
#define REGISTRATOR_COMMON_LOG_H_

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace registrator {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Parses "debug", "info", "warn"/"warning", "error" (case-insensitive).
bool ParseLogLevel(absl::string_view text, LogLevel* level);

// Process-wide settings; set once from main before threads start.
void SetLogLevel(LogLevel level);
void SetLogJson(bool json);
LogLevel GetLogLevel();

// The operator's secrets (registry password, CONSUL_HTTP_TOKEN...): every log line, at every
// level, has each occurrence replaced by "***" before it is written. A second wall behind code
// that never formats a secret; set from main before threads start. Secrets shorter than
// kMinScrubbedSecret bytes are ignored (scrubbing "pw" would mangle every line).
inline constexpr size_t kMinScrubbedSecret = 4;
void SetLogSecrets(std::vector<std::string> secrets);
// `text` with the log secrets replaced by "***", for other outputs (the /health reasons).
std::string RedactSecrets(absl::string_view text);

// Names what the calling thread works for (with several registries: the registry's redacted
// URI); every line it logs then starts with "[<context>] " (JSON lines: a "registry" member).
// "" (the default) adds nothing. Each of a bridge's threads sets it once when it starts.
void SetThreadLogContext(std::string context);
const std::string& ThreadLogContext();

// Appends `now` as every log line starts, "2026-12-03T06:05:07.123Z" (UTC, milliseconds
// truncated): what absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", now, UTC) gives, cheaper.
void AppendLogTimestamp(std::string* out, absl::Time now);

// Writes one line to stderr atomically (a single write call), so lines of different threads
// never interleave.
void LogLine(LogLevel level, absl::string_view message);

template <typename... Args>
void Log(LogLevel level, const Args&... args) {
  if (level < GetLogLevel()) return;
  LogLine(level, absl::StrCat(args...));
}

#define REG_LOG_DEBUG(...) ::registrator::Log(::registrator::LogLevel::kDebug, __VA_ARGS__)
#define REG_LOG_INFO(...) ::registrator::Log(::registrator::LogLevel::kInfo, __VA_ARGS__)
#define REG_LOG_WARN(...) ::registrator::Log(::registrator::LogLevel::kWarning, __VA_ARGS__)
#define REG_LOG_ERROR(...) ::registrator::Log(::registrator::LogLevel::kError, __VA_ARGS__)

}  // namespace registrator

#endif  // REGISTRATOR_COMMON_LOG_H_
