#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Sanitizer runs:
#   build-asan  clang ASan + UBSan (+ LeakSanitizer): the unit, abi and
#               integration suites, plugins dlopen'ed with the same
#               instrumentation; also holds the libFuzzer targets (tools/fuzz.sh).
#   build-tsan  ThreadSanitizer: the watcher, Docker client and Finder
#               concurrency tests (churn: containers() from another thread
#               while 200 containers come and go; faults: engines killed
#               mid-stream, a thousand Finder lifecycles; process-events:
#               the trigger thread discovering while Finders are queried).
# Both build only what their tests need, at -O1 with line tables.
# Any sanitizer report fails the test it occurs in. Suppressions (third-party
# code only, each explained) are in tests/sanitizers/.
# Ends with one line "N passed, N failed" over both builds.
#
#   tools/sanitize.sh [--build-only|--no-build] [asan|tsan]...   (default: both)
# --build-only configures and builds, --no-build only runs the tests (CI
# builds while other tests run).
# Environment: TF_ASAN_BUILD_DIR, TF_TSAN_BUILD_DIR (default build-asan,
# build-tsan); TF_TSAN_TESTS overrides the TSan test names (space separated;
# a name in two suites, like docker-client, runs in both).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
supp=$root/tests/sanitizers

mode=all
runs=()
for arg in "$@"; do
  case $arg in
    --build-only) mode=build-only ;;
    --no-build) mode=no-build ;;
    *) runs+=("$arg") ;;
  esac
done
[[ ${#runs[@]} -gt 0 ]] || runs=(asan tsan)

# Every test under a sanitizer reports with a stack. ASan and UBSan halt on
# the first report; TSan reports every race and the test exits with status 66
# at the end, so a race still fails it but the test first stops the engines
# it started (an abort would leave them running).
common_env() {
  export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:suppressions=$supp/ubsan.supp"
  export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
  # intercept_tls_get_addr=0 works around a sanitizer runtime bug (gcc up to
  # 13, clang up to 16): it takes a dynamic TLS block that starts 16 bytes
  # into a page for one with a pre-2.25 glibc header, reads the heap word
  # before it as the block's bounds, and LeakSanitizer's tracer then faults
  # scanning that range at exit ("Tracer caught signal 11"). Plugins and the
  # gRPC libraries are dlopen'ed and have dynamic TLS, so whether it hits
  # depends on heap layout. Leak checking stays whole: glibc allocates those
  # blocks with malloc, and LeakSanitizer reaches them through each thread's
  # DTV like any other heap block; the interception only added them as roots.
  export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:detect_odr_violation=1:intercept_tls_get_addr=0"
  export TSAN_OPTIONS="halt_on_error=0:exitcode=66:second_deadlock_stack=1:history_size=4:suppressions=$supp/tsan.supp"
}

# Sanitized code is built at -O1 with line tables only (-g1): stacks still
# name file and line, and the build takes about as long as a plain one
# (-O2 -g takes about five times as long under a sanitizer).
setup() { # dir, meson options...
  local dir=$1
  shift
  # An existing directory keeps its options (it may be shared, e.g. with the
  # fuzzing build, which adds its own).
  if [[ ! -f $dir/build.ninja ]]; then
    meson setup "$dir" -Dwerror=true -Dbenchmarks=false -Doptimization=1 -Ddebug=false "$@" >/dev/null
  fi
  # Regenerate now if meson.build files changed, so the test list is current.
  ninja -C "$dir" build.ninja >/dev/null
}

# Builds only what the selected tests need: their executables and declared
# dependencies, plus what tests find by path at run time (plugins and
# activators, the lab's helper programs, the CLI).
build() { # dir, `meson test` selection (test names, --suite NAME)...
  local dir=$1
  shift
  local targets
  targets=$(meson introspect "$dir" --targets --tests | python3 -c '
import json, os, sys
dir, selection = sys.argv[1], sys.argv[2:]
info = json.load(sys.stdin)
targets, tests = info["targets"], info["tests"]
suites = {selection[i + 1] for i, s in enumerate(selection) if s == "--suite"}
names = {s for i, s in enumerate(selection)
         if not s.startswith("-") and (i == 0 or selection[i - 1] != "--suite")}
files = {t["id"]: t["filename"] for t in targets}
build = os.path.realpath(dir)
wanted = []
for t in tests:
    if t["name"] in names or suites & {s.split(":")[-1] for s in t["suite"]}:
        wanted.append(t["cmd"][0])
        for dep in t["depends"]:
            wanted += files.get(dep, [])
for t in targets:
    sub = os.path.relpath(t["filename"][0], build).split(os.sep)[0:2]
    if (t["type"] == "shared module" and sub[0] in ("plugins", "activators")) or \
       (t["type"] == "executable" and (sub[0] == "tools" or sub == ["tests", "lab"])):
        wanted += t["filename"]
print("\n".join(sorted({os.path.relpath(f, build) for f in wanted if f.startswith(build + os.sep)})))
' "$dir" "$@")
  # shellcheck disable=SC2086  # one target per line
  ninja -C "$dir" -j2 $targets >/dev/null || ninja -C "$dir" -j1 $targets
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
      # foreign-hosts: Python and Go programs, which cannot load an ASan library;
      # not-under-asan: see tests/abi/meson.build.
      selection=(--suite unit --suite abi --suite integration --no-suite foreign-hosts --no-suite not-under-asan)
      if [[ $mode != no-build ]]; then
        # clang, so that the same build holds tools/fuzz.sh's libFuzzer targets:
        # fuzzer-no-link gives every library coverage feedback for them (and
        # costs the tests little). b_lundef=false: clang links the sanitizer
        # runtimes into executables only, so plugins keep undefined symbols.
        CC=clang CXX=clang++ setup "$dir" -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false \
          "-Dc_args=-g1 -fsanitize=fuzzer-no-link" "-Dcpp_args=-g1 -fsanitize=fuzzer-no-link"
        build "$dir" "${selection[@]}"
        ninja -C "$dir" -j2 fuzzers >/dev/null || ninja -C "$dir" -j1 fuzzers
      fi
      built=$SECONDS
      [[ $mode != build-only ]] || { echo "== ASan+UBSan built in $((built - start)) s ($dir)"; continue; }
      echo "== ASan+UBSan: unit, abi, integration ($dir, built in $((built - start)) s)"
      meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes 2 \
        "${selection[@]}" --timeout-multiplier 3 || status=1
      summarize "$dir"
      echo "== ASan+UBSan took $((SECONDS - start)) s (tests $((SECONDS - built)) s)"
      ;;
    tsan)
      dir=${TF_TSAN_BUILD_DIR:-build-tsan}
      start=$SECONDS
      # gcc warns (an error under -Werror) that TSan cannot model the atomic fences
      # Boost.Asio uses; its report would be about third-party code, not ours.
      # clang has no such warning and rejects the option.
      cpp_args=-g1
      # shellcheck disable=SC2086  # CXX may carry arguments
      if ${CXX:-c++} -Wtsan -Werror -x c++ -fsyntax-only /dev/null 2>/dev/null; then
        cpp_args="-Wno-tsan -g1"
      fi
      read -r -a names <<<"${TF_TSAN_TESTS:-watcher docker-client fuzz-docker-http finder-docker finder-containerd churn faults process-events}"
      if [[ $mode != no-build ]]; then
        setup "$dir" -Db_sanitize=thread -Db_lundef=false -Dc_args=-g1 "-Dcpp_args=$cpp_args"
        build "$dir" "${names[@]}"
      fi
      built=$SECONDS
      [[ $mode != build-only ]] || { echo "== TSan built in $((built - start)) s ($dir)"; continue; }
      echo "== TSan: ${names[*]} ($dir, built in $((built - start)) s)"
      meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes 2 \
        --timeout-multiplier 3 "${names[@]}" || status=1
      summarize "$dir"
      echo "== TSan took $((SECONDS - start)) s (tests $((SECONDS - built)) s)"
      ;;
    *) echo "unknown run '$run' (asan, tsan)" >&2; exit 2 ;;
  esac
done

[[ $mode != build-only ]] || exit 0

printf '%s\n' "${results[@]}" | python3 tools/test_summary.py --total || status=1
exit $status
