// Splits a command line into argv words the way a POSIX shell does (quotes, backslashes,
// comments), expanding only the variables it is given. Used for check_script -> Consul
// ScriptArgs, which Consul execs directly without a shell.
#ifndef REGISTRATOR_SHELL_SPLIT_H_
#define REGISTRATOR_SHELL_SPLIT_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace registrator {

// Splits `command` into words:
// - blanks (space, tab, newline) separate words; a word may mix quoted and unquoted parts;
// - '...' keeps everything literally (no escapes), except the variables below;
// - "..." keeps everything except that \ escapes $ ` " \ and newline, and $NAME / ${NAME}
//   expand;
// - an unquoted \ escapes the next character (\<newline> is removed);
// - an unquoted # at the start of a word starts a comment up to the end of the line;
// - $NAME and ${NAME} expand only for names in `variables`, in every context, single quotes
//   included: they are registrator's placeholders, which upstream replaced textually anywhere
//   in the command, so existing labels like 'http://$SERVICE_IP/' keep working. An unquoted or
//   double-quoted \$NAME stays literal. Any other $... stays literal (Consul runs the args
//   without a shell, so nothing else would expand them).
// An unterminated quote or a trailing lone backslash is INVALID_ARGUMENT.
absl::StatusOr<std::vector<std::string>> ShellSplit(
    absl::string_view command, const std::map<std::string, std::string, std::less<>>& variables);

}  // namespace registrator

#endif  // REGISTRATOR_SHELL_SPLIT_H_
