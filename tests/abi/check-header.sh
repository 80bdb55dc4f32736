#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# plugin.h must compile on its own as C11 and as C++20, warning-free, with
# every compiler given: a plugin author includes nothing else.
# The C API's turtlefinder.h is held to the same rule (--header).
# usage: check-header.sh [--header turtlefinder/NAME.h] INCLUDE_DIR COMPILER...
set -eu
header=turtlefinder/plugin.h
if [ "${1:-}" = --header ]; then
    header=$2
    shift 2
fi
include=$1
shift
[ $# -gt 0 ] || { echo "no compiler given" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#include <%s>\n' "$header" >"$tmp/only.c"
cp "$tmp/only.c" "$tmp/only.cpp"
status=0
for compiler in "$@"; do
    command -v "$compiler" >/dev/null 2>&1 || { echo "compiler $compiler not found" >&2; exit 2; }
    for mode in c11 c++20; do
        case $mode in
        c11) src=$tmp/only.c lang=c ;;
        *) src=$tmp/only.cpp lang=c++ ;;
        esac
        if "$compiler" -x "$lang" -std="$mode" -Wall -Wextra -pedantic -Werror -fsyntax-only -I"$include" "$src"; then
            echo "ok: $compiler -std=$mode"
        else
            echo "FAIL: $header does not compile alone with $compiler -std=$mode" >&2
            status=1
        fi
    done
done
exit $status
