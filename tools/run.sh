#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what is missing, builds, and runs `turtlefinder` on this host.
# Arguments go to turtlefinder (e.g. --json, engines, --watch).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
builddir=${TF_BUILD_DIR:-build}
if [[ ! -f $builddir/build.ninja ]]; then
  meson setup "$builddir" -Dwerror=true >/dev/null
fi
ninja -C "$builddir" >/dev/null || ninja -C "$builddir" -j1
# The build tree's plugins are found through meson's developer environment.
eval "$(meson devenv -C "$builddir" --dump | grep -E '^(export )?TURTLEFINDER_PLUGIN_PATH\b')"
exec "$builddir/tools/turtlefinder" "$@"
