#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what building turtlefinder needs (compilers, meson, libraries: never
# a container engine, never a test-only package, never removing anything; see
# tools/setup.sh), builds the product only (library, plugins, CLI; no tests) in
# its own build directory, and runs `turtlefinder` on this host.
# Arguments go to turtlefinder (e.g. --json, engines, --watch).
# Environment: TF_RUN_BUILD_DIR (default build-run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh run
builddir=${TF_RUN_BUILD_DIR:-build-run}
if [[ ! -f $builddir/build.ninja ]]; then
  meson setup "$builddir" -Dtests=false -Dbenchmarks=false >/dev/null
fi
ninja -C "$builddir" >/dev/null || ninja -C "$builddir" -j1
# The build tree's plugins are found through meson's developer environment.
eval "$(meson devenv -C "$builddir" --dump | grep -E '^(export )?TURTLEFINDER_PLUGIN_PATH\b')"
exec "$builddir/tools/turtlefinder" "$@"
