#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tools/setup.sh never removes or replaces a package, and tools/run.sh's set-up
# installs no engine. Checked against simulated machines, so that this host is
# left exactly as it is:
#   fresh    a fresh Debian 12: its Essential, required and important packages
#            (this host's dpkg database cut down to them and their dependencies)
#   ce       the same plus Docker CE (dummy docker-ce, docker-ce-cli and
#            containerd.io packages built here, declaring Docker's conflicts and
#            shipping stand-in dockerd, docker, containerd, ctr and runc)
#   ce-off   Docker CE whose commands are not on the usual paths
# Each machine is a directory with its own dpkg database: the dummy packages
# go in with `dpkg --root`, and tools/setup.sh --root plans against it with
# `apt-get -s` (apt's solver on that database and this host's package lists),
# so nothing is installed on this host and its dpkg database must not change.
set -euo pipefail
src=${TF_SOURCE_ROOT:?}
work=$(mktemp -d /tmp/tf-setup-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
engines='docker.io|containerd|runc|crun|podman|conmon|catatonit|busybox-static'
host_status=$(md5sum /var/lib/dpkg/status)

# A dummy .deb: name, control fields (one per line), files as PATH=CONTENT.
dummy() {
  local name=$1 fields=$2 dir=$work/pkg/$1
  shift 2
  mkdir -p "$dir/DEBIAN"
  printf 'Package: %s\nVersion: 5:99.0-1\nArchitecture: all\nMaintainer: turtlefinder tests <tests@invalid>\nDescription: stand-in for %s in the set-up test\n%s\n' \
    "$name" "$name" "$fields" >"$dir/DEBIAN/control"
  local f
  for f in "$@"; do
    mkdir -p "$dir/$(dirname "${f%%=*}")"
    printf '#!/bin/sh\necho %s\n' "${f#*=}" >"$dir/${f%%=*}"
    chmod 755 "$dir/${f%%=*}"
  done
  dpkg-deb --root-owner-group -Zgzip --build "$dir" "$work/$name.deb" >/dev/null
}
dummy docker-ce-cli 'Conflicts: docker.io, docker-engine' usr/bin/docker=docker-ce-cli
dummy containerd.io $'Provides: containerd, runc\nConflicts: containerd, runc\nReplaces: containerd, runc' \
  usr/bin/containerd=containerd.io usr/bin/ctr=ctr usr/bin/containerd-shim-runc-v2=shim usr/bin/runc=runc
dummy docker-ce $'Depends: containerd.io, docker-ce-cli\nConflicts: docker.io, docker-engine' \
  usr/bin/dockerd=docker-ce
mkdir -p "$work/pkg/off"
dummy docker-ce-off $'Provides: docker-ce\nConflicts: docker.io, docker-engine' \
  opt/docker-ce/bin/dockerd=docker-ce opt/docker-ce/bin/docker=docker-ce-cli

machine() { # name, dummy packages to install...
  local root=$work/$1
  shift
  mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
  python3 "$src/tests/setup/base_status.py" /var/lib/dpkg/status >"$root/var/lib/dpkg/status"
  # Empty file lists: dpkg only needs to know the packages have some.
  sed -n 's/^Package: //p' "$root/var/lib/dpkg/status" | while read -r p; do
    for f in /var/lib/dpkg/info/"$p".list /var/lib/dpkg/info/"$p":*.list; do
      [[ -e $f ]] && : >"$root/var/lib/dpkg/info/${f##*/}"
    done
  done
  [[ $# -eq 0 ]] || dpkg --root="$root" --force-not-root --force-script-chrootless -i "$@" >/dev/null \
    || fail "dpkg could not install the dummy packages into $root"
}
machine fresh
machine ce "$work/docker-ce-cli.deb" "$work/containerd.io.deb" "$work/docker-ce.deb"
machine ce-off "$work/docker-ce-off.deb"
[[ -x $work/ce/usr/bin/dockerd && ! -e $work/fresh/usr/bin/dockerd ]] || fail "dummy packages not unpacked"

plan() { # machine, profile: runs the set-up's plan, output in $out, stderr in $err
  local rc=0
  bash "$src/tools/setup.sh" "$2" --root "$work/$1" >"$work/out" 2>"$work/err" || rc=$?
  out=$(cat "$work/out") err=$(cat "$work/err")
  echo "== $1 $2 (exit $rc): $(grep -c '^Inst' <<<"$out" || true) packages to install"
  sed 's/^/   /' <<<"$err"
  return $rc
}

plan fresh run || fail "run set-up failed on a fresh machine: $err"
grep -qx 'Inst meson' <<<"$out" && grep -qx 'Inst g++' <<<"$out" || fail "fresh run set-up does not install the build tools: $out"
grep -Eqx "Inst ($engines)" <<<"$out" && fail "run set-up installs an engine on a fresh machine: $(grep -Ex "Inst ($engines)" <<<"$out")"
grep -Eqx 'Inst (libgtest-dev|libgmock-dev|libbenchmark-dev|clang|lintian)' <<<"$out" && fail "run set-up installs test-only packages"
grep -q '^Remv' <<<"$out" && fail "run set-up removes packages on a fresh machine"

plan fresh test || fail "test set-up failed on a fresh machine: $err"
grep -qx 'Inst docker.io' <<<"$out" || fail "test set-up does not install Debian's engines on a fresh machine"
grep -q '^Remv' <<<"$out" && fail "test set-up removes packages on a fresh machine"

for profile in run test; do
  plan ce $profile || fail "$profile set-up failed on a Docker CE machine: $err"
  grep -q '^Remv' <<<"$out" && fail "$profile set-up would remove on a Docker CE machine: $(grep '^Remv' <<<"$out")"
  grep -Eqx 'Inst (docker.io|containerd|runc)' <<<"$out" && fail "$profile set-up replaces Docker CE's engines: $out"
done
for used in 'dockerd instead of installing docker.io' 'containerd instead of installing containerd' \
            'runc instead of installing runc'; do
  grep -q "using the existing $used" <<<"$err" || fail "test set-up does not say it uses the existing $used: $err"
done

plan ce-off test && fail "test set-up went on although docker.io would remove docker-ce-off: $out"
[[ -z $out ]] || fail "a refused set-up still printed a plan: $out"
grep -q 'nothing was changed' <<<"$err" || fail "refusal does not say nothing was changed: $err"
grep -q 'docker.io would remove docker-ce-off' <<<"$err" || fail "refusal does not name the packages: $err"
grep -q 'docker.io Conflicts: .*docker-ce' <<<"$err" || fail "refusal does not name the conflict: $err"

# A real installation can never remove: every apt-get install is simulated or --no-remove.
grep -E 'apt-get( [^ ]+)* install' "$src/tools/setup.sh" | grep -v -- '-s' | grep -qv -- '--no-remove' \
  && fail "tools/setup.sh has an apt-get install without --no-remove"
grep -q 'bash tools/setup.sh run' "$src/tools/run.sh" || fail "tools/run.sh does not use the run set-up"

[[ $(md5sum /var/lib/dpkg/status) == "$host_status" ]] || fail "this host's dpkg database changed"
echo "setup: ok"
