#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what is missing, builds (warnings are errors), runs every test
# suite, and ends with one line "N passed, N failed" counted from the test log.
# Extra arguments go to `meson test` (e.g. --suite unit).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
builddir=${TF_BUILD_DIR:-build}
if [[ ! -f $builddir/build.ninja ]]; then
  meson setup "$builddir" -Dwerror=true >/dev/null
fi
ninja -C "$builddir" >/dev/null || ninja -C "$builddir" -j1
status=0
meson test -C "$builddir" --print-errorlogs --num-processes 2 "$@" || status=$?
python3 tools/test_summary.py "$builddir/meson-logs/testlog.junit.xml" || status=1
exit $status
