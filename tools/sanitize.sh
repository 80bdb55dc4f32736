#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Sanitizer runs:
#   build-asan  ASan + UBSan (+ LeakSanitizer): the unit, abi and integration
#               suites, plugins dlopen'ed with the same instrumentation.
#   build-tsan  ThreadSanitizer: the watcher, Docker client and Finder
#               concurrency tests.
# Any sanitizer report fails the test it occurs in. Suppressions (third-party
# code only, each explained) are in tests/sanitizers/.
# Ends with one line "N passed, N failed" over both builds.
#
#   tools/sanitize.sh [asan|tsan]...   (default: both)
# Environment: TF_ASAN_BUILD_DIR, TF_TSAN_BUILD_DIR (default build-asan,
# build-tsan); TF_TSAN_TESTS overrides the TSan test names (space separated;
# a name in two suites, like docker-client, runs in both).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
supp=$root/tests/sanitizers

runs=("$@")
[[ ${#runs[@]} -gt 0 ]] || runs=(asan tsan)

# Every test under a sanitizer: halt on the first report with a stack.
common_env() {
  export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:suppressions=$supp/ubsan.supp"
  export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
  export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:detect_odr_violation=1"
  export TSAN_OPTIONS="halt_on_error=1:abort_on_error=1:second_deadlock_stack=1:history_size=4:suppressions=$supp/tsan.supp"
}

setup() { # dir, meson options...
  local dir=$1
  shift
  if [[ ! -f $dir/build.ninja ]]; then
    meson setup "$dir" -Dwerror=true -Dbenchmarks=false "$@" >/dev/null
  fi
  ninja -C "$dir" >/dev/null || ninja -C "$dir" -j1
}

results=()
status=0

summarize() { # dir
  local out
  out=$(python3 tools/test_summary.py "$1/meson-logs/testlog.junit.xml") || status=1
  printf '%s\n' "$out" | sed '$d'
  results+=("$(printf '%s\n' "$out" | tail -1)")
}

for run in "${runs[@]}"; do
  common_env
  case $run in
    asan)
      dir=${TF_ASAN_BUILD_DIR:-build-asan}
      start=$SECONDS
      setup "$dir" -Db_sanitize=address,undefined -Db_lundef=false
      echo "== ASan+UBSan: unit, abi, integration ($dir)"
      meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes 2 \
        --suite unit --suite abi --suite integration --timeout-multiplier 3 || status=1
      summarize "$dir"
      echo "== ASan+UBSan took $((SECONDS - start)) s"
      ;;
    tsan)
      dir=${TF_TSAN_BUILD_DIR:-build-tsan}
      start=$SECONDS
      # gcc warns (an error under -Werror) that TSan cannot model the atomic fences
      # Boost.Asio uses; its report would be about third-party code, not ours.
      setup "$dir" -Db_sanitize=thread -Db_lundef=false -Dcpp_args=-Wno-tsan
      read -r -a names <<<"${TF_TSAN_TESTS:-watcher docker-client fuzz-docker-http finder-docker finder-containerd}"
      echo "== TSan: ${names[*]} ($dir)"
      meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes 2 \
        --timeout-multiplier 3 "${names[@]}" || status=1
      summarize "$dir"
      echo "== TSan took $((SECONDS - start)) s"
      ;;
    *) echo "unknown run '$run' (asan, tsan)" >&2; exit 2 ;;
  esac
done

passed=0
failed=0
skipped=0
for line in "${results[@]}"; do
  [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)? ]] || { failed=$((failed + 1)); continue; }
  passed=$((passed + BASH_REMATCH[1]))
  failed=$((failed + BASH_REMATCH[2]))
  skipped=$((skipped + ${BASH_REMATCH[4]:-0}))
done
line="$passed passed, $failed failed"
[[ $skipped -eq 0 ]] || line+=", $skipped skipped"
echo "$line"
[[ $status -eq 0 && $failed -eq 0 ]]
