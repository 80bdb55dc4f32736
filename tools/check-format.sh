#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fails, naming the files, when a tracked C or C++ source differs from what
# clang-format makes of it with the repository's .clang-format.
#   tools/check-format.sh          check (as the test 'format' does)
#   tools/check-format.sh --fix    rewrite the files in place
# Frozen ABI headers are left as they were published: their bytes are the promise.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.c' '*.h' '*.cpp' '*.hpp' \
  | grep -v -e '^tests/abi/frozen/' -e '^plugin-sdk/include/turtlefinder/plugin\.h$')
if [[ ${1:-} == --fix ]]; then
  clang-format -i "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if ((${#bad[@]})); then
  echo "not formatted as .clang-format says (run tools/check-format.sh --fix):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "format: ${#files[@]} files as .clang-format says"
