// POSIX-shell-like word splitting with a closed set of variables (see shell_split.h).
#include "registrator/shell_split.h"

#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace registrator {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\n'; }
bool IsNameStart(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

// Tries to expand the `$` at `command[i]`. On success appends the value, advances `i` past the
// reference and returns true; otherwise leaves both untouched (the `$` is then literal).
bool TryExpand(absl::string_view command, size_t& i,
               const std::map<std::string, std::string, std::less<>>& variables,
               std::string& word) {
  size_t j = i + 1;
  absl::string_view name;
  size_t end = 0;
  if (j < command.size() && command[j] == '{') {
    size_t close = command.find('}', j + 1);
    if (close == absl::string_view::npos) return false;
    name = command.substr(j + 1, close - j - 1);
    end = close + 1;
  } else {
    size_t k = j;
    if (k >= command.size() || !IsNameStart(command[k])) return false;
    while (k < command.size() && IsNameChar(command[k])) ++k;
    name = command.substr(j, k - j);
    end = k;
  }
  auto it = variables.find(std::string_view(name.data(), name.size()));
  if (it == variables.end()) return false;
  word += it->second;
  i = end;
  return true;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ShellSplit(
    absl::string_view command, const std::map<std::string, std::string, std::less<>>& variables) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;  // True once a word started, even if it is empty so far ('' or "").
  size_t i = 0;
  const size_t n = command.size();
  while (i < n) {
    const char c = command[i];
    if (IsBlank(c)) {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      ++i;
    } else if (c == '#' && !in_word) {
      while (i < n && command[i] != '\n') ++i;
    } else if (c == '\\') {
      if (i + 1 >= n) {
        return absl::InvalidArgumentError(
            absl::StrCat("command ends with a lone backslash at offset ", i));
      }
      if (command[i + 1] != '\n') {
        word += command[i + 1];
        in_word = true;
      }
      i += 2;
    } else if (c == '\'') {
      size_t close = command.find('\'', i + 1);
      if (close == absl::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrCat("unterminated single quote at offset ", i));
      }
      for (size_t j = i + 1; j < close;) {
        if (command[j] == '$' && TryExpand(command.substr(0, close), j, variables, word)) continue;
        word += command[j];
        ++j;
      }
      in_word = true;
      i = close + 1;
    } else if (c == '"') {
      const size_t open = i;
      ++i;
      bool closed = false;
      while (i < n) {
        const char d = command[i];
        if (d == '"') {
          closed = true;
          ++i;
          break;
        }
        if (d == '\\' && i + 1 < n &&
            (command[i + 1] == '$' || command[i + 1] == '`' || command[i + 1] == '"' ||
             command[i + 1] == '\\' || command[i + 1] == '\n')) {
          if (command[i + 1] != '\n') word += command[i + 1];
          i += 2;
        } else if (d == '$' && TryExpand(command, i, variables, word)) {
          // Expanded; `i` already advanced.
        } else {
          word += d;
          ++i;
        }
      }
      if (!closed) {
        return absl::InvalidArgumentError(
            absl::StrCat("unterminated double quote at offset ", open));
      }
      in_word = true;
    } else if (c == '$' && TryExpand(command, i, variables, word)) {
      // Like a shell, an unquoted expansion to nothing makes no word.
      if (!word.empty()) in_word = true;
    } else {
      word += c;
      in_word = true;
      ++i;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

}  // namespace registrator
