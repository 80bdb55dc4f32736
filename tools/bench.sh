#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The benchmarks in one command: installs what is missing, builds what they
# need (warnings are errors), runs every figure and prints one table of ratios
# against baselines measured in the same run. Needs root: it starts its own
# dockerd and containerd, with their own sockets and state, and removes them.
#
#   tools/bench.sh           the full run (under 10 minutes on 2 cores)
#   tools/bench.sh --quick   fewer repetitions, smaller sizes (a smoke run)
#
# The engine figures run in a PID and mount namespace of their own, so that
# engines already on the host are neither found nor measured, and whatever a
# failed run leaves behind dies with the namespace.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    *) echo "usage: tools/bench.sh [--quick]" >&2; exit 2 ;;
  esac
done
if [[ $(id -u) -ne 0 ]]; then
  echo "bench: needs root (it starts container engines)" >&2
  exit 1
fi

bash tools/setup.sh test
builddir=${TF_BUILD_DIR:-build}
if [[ ! -f $builddir/build.ninja ]]; then
  meson setup "$builddir" -Dwerror=true >/dev/null
fi
meson configure "$builddir" -Dtests=true -Dbenchmarks=true >/dev/null

# Only what the benchmarks run: the CLI, every plugin, the bench programs and
# the lab's runtime wrapper (not the test suites).
mapfile -t targets < <(meson introspect "$builddir" --targets | python3 -c '
import json, os, sys
wanted = {"turtlefinder", "tf-bench-procfs", "tf-bench-engines", "tf-bench-idle-finder", "tf-bench-serve", "tf-lab-runc"}
root = os.path.realpath(sys.argv[1])
for t in json.load(sys.stdin):
    path = os.path.relpath(t["filename"][0], root)
    if t["name"] in wanted or (t["type"] == "shared module" and not path.startswith("tests/")):
        print(path)
' "$builddir")
echo "bench: building ${#targets[@]} targets in $builddir" >&2
ninja -C "$builddir" "${targets[@]}" >/dev/null || ninja -C "$builddir" -j1 "${targets[@]}"

# The CLI and the idle Finder load the build tree's plugins, found through
# meson's developer environment.
eval "$(meson devenv -C "$builddir" --dump | grep -E '^(export )?TURTLEFINDER_PLUGIN_PATH\b')"
results=$(mktemp -d /tmp/tf-bench.XXXXXX)
trap 'rm -rf "$results"' EXIT
if ((quick)); then
  procfs_args=(--reps 3 --sizes host,1000)
  engines_args=(--reps 3 --stages 10,100 --sizes 1000 --cli-reps 3 --starts 10 --footprint-reps 1 --pairs 20)
  serve_args=(--seconds 10 --reps 3)
else
  procfs_args=(--reps 10)
  engines_args=()
  serve_args=()
fi

status=0
start=$SECONDS
echo "bench: figure 1 (process scan)" >&2
"$builddir/tests/bench/tf-bench-procfs" --out "$results/procfs.jsonl" "${procfs_args[@]}" || status=1
echo "bench: figures 2-5 (engines)" >&2
unshare --pid --fork --mount-proc \
  "$builddir/tests/bench/tf-bench-engines" --out "$results/engines.jsonl" "${engines_args[@]}" || status=1
echo "bench: figure 6 (the node service under load)" >&2
"$builddir/tests/bench/tf-bench-serve" --out "$results/serve.jsonl" "${serve_args[@]}" || status=1
echo "bench: ran in $((SECONDS - start)) s" >&2
echo
python3 tests/bench/report.py "$results/procfs.jsonl" "$results/engines.jsonl" "$results/serve.jsonl" || status=1
exit $status
