#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The manual page and the bash completion say what `turtlefinder --help` says:
# the same options, commands and log levels, so they cannot drift apart. Also
# the page renders without warnings, the completion completes, and
# --procfs-root refuses what is not a procfs.
set -euo pipefail
cli=${1:?usage: man_test.sh TURTLEFINDER}
src=${TF_SOURCE_ROOT:?}
man=$src/doc/turtlefinder.1
completion=$src/doc/turtlefinder.bash-completion
fail() { echo "FAIL: $*" >&2; exit 1; }
same() { # what, expected (from --help), actual
  [[ $2 == "$3" ]] || fail "$1 differ from --help:
  --help: $(echo $2)
  here:   $(echo $3)"
}

help=$("$cli" --help)
help_options=$(grep -oE '^  --[a-z-]+' <<<"$help" | tr -d ' ' | sort)
help_commands=$(sed -n '/^Commands:/,/^$/p' <<<"$help" | grep -oE '^  [a-z]+' | tr -d ' ' | sort)
help_levels=$(grep -E '^  --log-level' <<<"$help" | sed 's/.*LEVEL *//; s/,\| or / /g' | tr ' ' '\n' | grep . | sort)
[[ -n $help_options && -n $help_commands && -n $help_levels ]] || fail "cannot read --help: $help"

# The page: the .B/.BI lines of OPTIONS and COMMANDS, with roff's \- as -.
section() { sed -n "/^\\.SH $1\$/,/^\\.SH /p" "$man" | sed 's/\\-/-/g'; }
man_options=$(section OPTIONS | grep -oE '^\.BI? --[a-z-]+' | sed 's/^\.BI\? //' | sort)
man_commands=$(section COMMANDS | grep -oE '^\.B [a-z]+$' | sed 's/^\.B //' | sort)
man_levels=$(section OPTIONS | sed -n '/^\.BI --log-level/,/^\.TP/p' | grep '^\.BR' | sed 's/^\.BR //; s/[" ,.]\+/\n/g' | grep . | sort)
same "the man page's options" "$help_options" "$man_options"
same "the man page's commands" "$help_commands" "$man_commands"
same "the man page's log levels" "$help_levels" "$man_levels"

comp_options=$(sed -n "s/.*local options='\\([^']*\\)'.*/\\1/p" "$completion" | tr ' ' '\n' | sort)
comp_commands=$(sed -n "s/.*local commands='\\([^']*\\)'.*/\\1/p" "$completion" | tr ' ' '\n' | sort)
comp_levels=$(sed -n "s/.*compgen -W '\\([^']*\\)'.*/\\1/p" "$completion" | tr ' ' '\n' | sort)
same "the completion's options" "$help_options" "$comp_options"
same "the completion's commands" "$help_commands" "$comp_commands"
same "the completion's log levels" "$help_levels" "$comp_levels"

# The page renders cleanly.
warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$man" 2>&1 >/dev/null || true)
[[ -z $warnings ]] || fail "the man page renders with warnings: $warnings"

# The completion completes, in a bash of its own.
complete_line() { # words...: the completions for the last word
  bash -c 'source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _turtlefinder; printf "%s\n" "${COMPREPLY[@]}"' \
    "$completion" turtlefinder "$@"
}
[[ $(complete_line --log-l) == --log-level ]] || fail "--log-l does not complete to --log-level"
[[ $(complete_line --log-level w | tr '\n' ' ') == "warn " ]] || fail "--log-level w does not complete to warn"
[[ $(complete_line en) == engines ]] || fail "en does not complete to engines"
[[ -z $(complete_line engines pl) ]] || fail "a second command is offered after engines"

# --procfs-root: a relative path is bad usage, a directory that is no procfs a failure.
rc=0; out=$("$cli" engines --procfs-root proc 2>&1) || rc=$?
[[ $rc -eq 2 && $out == *"--procfs-root takes an absolute path"* ]] || fail "relative --procfs-root: exit $rc: $out"
empty=$(mktemp -d /tmp/tf-man-XXXXXX)
trap 'rmdir "$empty"' EXIT
rc=0; out=$("$cli" engines --procfs-root "$empty" 2>&1) || rc=$?
[[ $rc -eq 1 && $out == *"$empty: not a procfs"* ]] || fail "--procfs-root at an empty directory: exit $rc: $out"
"$cli" sockets --procfs-root /proc >/dev/null || fail "--procfs-root /proc fails"
echo "man-completion: ok"
