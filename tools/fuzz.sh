#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs each libFuzzer target for a bounded time on a copy of its seed corpus.
# The targets live in the clang ASan + UBSan build of tools/sanitize.sh
# (coverage on the whole build), which this builds unless --no-build.
# A crash, leak, UB report, failed invariant or input slower than 10 s is a
# failure; its input is kept under BUILD/fuzz-artifacts/TARGET/ and must
# become a seed and a regression test (tests/fuzz/regressions_test.cpp).
#
#   tools/fuzz.sh [--seconds N] [--no-build] [TARGET...]
#     --seconds N   time per target (default 20; raise it for real hunts)
#     --no-build    use the build as it is (tools/test.sh built it already)
#     TARGET        fuzz target names (default: all; see tests/fuzz/meson.build)
# Environment: TF_ASAN_BUILD_DIR (default build-asan).
# Ends with "N passed, N failed", counting targets.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=20
build=1
targets=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
    --seconds=*) seconds=${1#*=}; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '3,15p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || { echo "--seconds needs a positive number" >&2; exit 2; }

builddir=${TF_ASAN_BUILD_DIR:-build-asan}
((build == 0)) || bash tools/sanitize.sh --build-only asan

if [[ ${#targets[@]} -eq 0 ]]; then
  for exe in "$builddir"/tests/fuzz/fuzz-*; do
    name=${exe##*/fuzz-}
    [[ -f $exe && -x $exe && $name != replay-* && $name != regressions ]] && targets+=("$name")
  done
  if [[ ${#targets[@]} -eq 0 ]]; then
    echo "no fuzz targets in $builddir/tests/fuzz (build it: tools/sanitize.sh --build-only asan)"
    echo "0 passed, 1 failed"
    exit 1
  fi
fi

# UB must stop the run like a crash; leaks are reported by libFuzzer itself.
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:allocator_may_return_null=1
passed=0
failed=0
for name in "${targets[@]}"; do
  exe=$builddir/tests/fuzz/fuzz-$name
  seeds=tests/fuzz/corpus/$name
  [[ -x $exe && -d $seeds ]] || { echo "FAILED: $name (no such target or corpus)"; failed=$((failed + 1)); continue; }
  # New inputs go to a working corpus in the build dir, never into the repo.
  work=$builddir/fuzz-corpus/$name
  artifacts=$builddir/fuzz-artifacts/$name
  mkdir -p "$work" "$artifacts"
  log=$builddir/fuzz-artifacts/$name.log
  start=$SECONDS
  if "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$artifacts/" "$work" "$seeds" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    echo "ok: $name (${runs:-?} runs in $((SECONDS - start)) s, corpus $(ls "$work" | wc -l) inputs)"
    passed=$((passed + 1))
  else
    echo "FAILED: $name — see $log; inputs in $artifacts/:"
    ls "$artifacts" | sed 's/^/  /'
    grep -m1 -E 'ERROR: |fuzz invariant failed|runtime error' "$log" | sed 's/^/  /' || true
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
