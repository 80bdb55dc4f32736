#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole test run, as CI does it: installs what is missing, then
#   1. plain     the shipped build (gcc, warnings are errors): every suite
#   2. tsan      ThreadSanitizer: the watcher and Finder concurrency tests
#   3. asan      clang ASan + UBSan: the unit, abi and integration suites
#   4. fuzz      a bounded libFuzzer run of every target (same clang build)
# and ends with one line "N passed, N failed" summed over the stages, each
# counted from the real results (GoogleTest cases from meson's logs, fuzz
# targets from their runs). Exits non-zero on any failure.
#
# The sanitizer builds compile in the background (niced) while the plain
# tests run, which mostly wait on engines; fuzzing likewise runs beside the
# ASan tests. Engine tests themselves never overlap.
#
#   tools/test.sh                  everything (about 20 minutes on 2 cores)
#   tools/test.sh MESON-TEST-ARGS  only the plain build, e.g. --suite unit
# Environment: TF_BUILD_DIR (default build), TF_FUZZ_SECONDS (per target,
# default 15); see tools/sanitize.sh and tools/fuzz.sh for theirs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh test
builddir=${TF_BUILD_DIR:-build}
if [[ ! -f $builddir/build.ninja ]]; then
  meson setup "$builddir" -Dwerror=true >/dev/null
fi
ninja -C "$builddir" >/dev/null || ninja -C "$builddir" -j1

if [[ $# -gt 0 ]]; then
  status=0
  meson test -C "$builddir" --print-errorlogs --num-processes 2 "$@" || status=$?
  python3 tools/test_summary.py "$builddir/meson-logs/testlog.junit.xml" || status=1
  exit $status
fi

logs=$builddir/test-stages
mkdir -p "$logs"
status=0
summaries=()

# Keeps a stage's "N passed, N failed" line for the total; a stage that died
# before printing one counts as one failure.
record() { # stage, output file
  local line
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$2" | tail -1 || true)
  [[ -n $line ]] || { line="0 passed, 1 failed"; echo "$1: no result line (see $2)"; }
  echo "== $1: $line"
  summaries+=("$line")
}

bg_build() {
  nice -n 19 bash tools/sanitize.sh --build-only tsan asan >"$logs/sanitizer-build.log" 2>&1
}
bg_build &
build_pid=$!
# An interrupted run must not leave a build or a fuzzer running.
trap 'for job in $(jobs -p); do pkill -TERM -P "$job"; kill "$job"; done 2>/dev/null || true' EXIT

echo "== plain ($builddir)"
meson test -C "$builddir" --no-rebuild --print-errorlogs --num-processes 2 || status=1
python3 tools/test_summary.py "$builddir/meson-logs/testlog.junit.xml" | tee "$logs/plain.txt" || status=1
record plain "$logs/plain.txt"

if ! wait $build_pid; then
  status=1
  echo "== sanitizer builds failed:"
  tail -n 40 "$logs/sanitizer-build.log"
fi

bash tools/sanitize.sh --no-build tsan 2>&1 | tee "$logs/tsan.txt" || status=1
record tsan "$logs/tsan.txt"

nice -n 19 bash tools/fuzz.sh --no-build --seconds "${TF_FUZZ_SECONDS:-15}" >"$logs/fuzz.txt" 2>&1 &
fuzz_pid=$!
bash tools/sanitize.sh --no-build asan 2>&1 | tee "$logs/asan.txt" || status=1
wait $fuzz_pid || status=1
echo "== fuzz"
cat "$logs/fuzz.txt"
record asan "$logs/asan.txt"
record fuzz "$logs/fuzz.txt"

printf '%s\n' "${summaries[@]}" | python3 tools/test_summary.py --total || status=1
exit $status
