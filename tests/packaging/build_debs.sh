#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the Debian packages from a copy of the source tree (the tracked files
# and new untracked ones, no build directories) into OUT/, with
# `dpkg-buildpackage -b -us -uc`: the product only (debian/rules configures
# -Dtests=false), nocheck, noddebs, parallel=2. OUT/src stays at the same path from run
# to run, so ccache can reuse earlier compilations.
#   build_debs.sh SOURCE OUT
set -euo pipefail
src=${1:?usage: build_debs.sh SOURCE OUT} out=${2:?usage: build_debs.sh SOURCE OUT}
rm -rf "$out"
mkdir -p "$out/src"
(
  cd "$src"
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard
  else
    find . -path ./build -prune -o -path './build-*' -prune -o -type f -print0
  fi
) | (cd "$src" && tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -C "$out/src" -xf -
start=$SECONDS
(cd "$out/src" && DEB_BUILD_OPTIONS="nocheck noddebs parallel=2" dpkg-buildpackage -b -us -uc) >"$out/build.log" 2>&1 \
  || { tail -n 40 "$out/build.log"; echo "FAIL: dpkg-buildpackage failed (log: $out/build.log)" >&2; exit 1; }
echo "packages built in $((SECONDS - start)) s"
