#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what turtlefinder needs on Debian 12, and never removes or
# replaces anything. Idempotent and quiet when everything is already there.
#
#   tools/setup.sh run     building and running: compilers, meson, libraries
#   tools/setup.sh [test]  also what the tests need: test libraries, clang,
#                          packaging tools, and the engines the tests start
#   --dry-run              say what would be installed; change nothing
#   --root DIR             plan for the system in DIR (its dpkg database and
#                          commands) instead of this one; implies --dry-run
#
# Safety, because a discovery tool must never replace the engines it is meant
# to discover (Debian's docker.io conflicts with Docker CE, containerd with
# containerd.io):
# - an engine whose commands already exist (from any package: Docker CE's
#   dockerd, containerd.io's containerd, a podman built elsewhere) is used as
#   it is, and its Debian package is not installed;
# - apt first simulates the installation; if it would remove any package, the
#   set-up stops before changing anything and names the package to install,
#   the one it would remove and the declared conflict;
# - the real installation runs with --no-remove, so apt aborts rather than
#   remove something should the plan differ;
# - engines' own services must not start (the tests start their own): a
#   policy-rc.d denying starts is put in place only if none exists, and
#   removed afterwards.
set -euo pipefail

profile=test
dry_run=0
root=
while [[ $# -gt 0 ]]; do
  case $1 in
    run|test) profile=$1; shift ;;
    --dry-run) dry_run=1; shift ;;
    --root) root=${2:?--root needs a directory}; dry_run=1; shift 2 ;;
    --root=*) root=${1#*=}; dry_run=1; shift ;;
    -h|--help) sed -n '3,26p' "$0"; exit 0 ;;
    *) echo "setup: unknown argument '$1' (see tools/setup.sh --help)" >&2; exit 2 ;;
  esac
done
if [[ -n $root && ! -f $root/var/lib/dpkg/status ]]; then
  echo "setup: --root $root: no dpkg database ($root/var/lib/dpkg/status)" >&2
  exit 2
fi

# Building the library, the plugins and the CLI.
packages=(
  meson ninja-build pkg-config g++ gcc
  libboost1.81-dev libboost-filesystem1.81-dev libboost-json1.81-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libspdlog-dev libfmt-dev
)
# Engine packages and the commands the tests take from them: a package is
# left out when all its commands exist already, whatever package they come from.
declare -A engine_commands=()
if [[ $profile == test ]]; then
  packages+=(
    # test libraries, sanitizer and fuzzing builds, benchmarks
    clang lld libgtest-dev libgmock-dev libbenchmark-dev python3 libclang-rt-14-dev
    # tests/common/validate-json.py: the CLI's JSON against doc/schema
    python3-jsonschema
    # the format check; the Go example of the C API (cgo)
    clang-format golang-go
    # the packaging test: Debian packages, lintian, the container image
    debhelper dpkg-dev fakeroot lintian
    # what the lab uses besides engines
    busybox-static util-linux iproute2 procps
    # rootless engines (RootlessKit, newuidmap/newgidmap, user-mode networking)
    rootlesskit uidmap slirp4netns
    # the node service's clients: Prometheus (and promtool), a headless
    # browser; the deployment files' YAML
    prometheus chromium python3-yaml
  )
  engine_commands=(
    [docker.io]="dockerd docker"
    [containerd]="containerd ctr containerd-shim-runc-v2"
    [runc]="runc"
    [podman]="podman"
    [conmon]="conmon"
    [catatonit]="catatonit"
    [systemd]="systemd systemd-socket-activate"
  )
fi

dpkg_args=()
apt_args=(-o Debug::NoLocking=1)
if [[ -n $root ]]; then
  dpkg_args=(--admindir="$root/var/lib/dpkg")
  # Simulation against another dpkg database, with apt's cache kept apart.
  cache=$(mktemp -d /tmp/tf-setup-cache.XXXXXX)
  trap 'rm -rf "$cache"' EXIT
  apt_args+=(-o "Dir::State::status=$root/var/lib/dpkg/status" -o "Dir::Cache=$cache")
fi

have_command() { # name: in PATH, or in the usual directories of --root
  if [[ -n $root ]]; then
    local d
    for d in usr/local/sbin usr/local/bin usr/sbin usr/bin sbin bin; do
      [[ -x $root/$d/$1 && ! -d $root/$d/$1 ]] && return 0
    done
    return 1
  fi
  PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin command -v "$1" >/dev/null
}

installed() { # package
  [[ $(dpkg-query "${dpkg_args[@]}" -W -f='${Status}' "$1" 2>/dev/null || true) == "install ok installed" ]]
}

for p in "${!engine_commands[@]}"; do
  installed "$p" && continue
  all=1
  for c in ${engine_commands[$p]}; do have_command "$c" || all=0; done
  if ((all)); then
    echo "setup: using the existing ${engine_commands[$p]%% *} instead of installing $p" >&2
  else
    packages+=("$p")
  fi
done

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  ((dry_run)) && echo "setup: nothing to install" >&2
  exit 0
fi

if ((!dry_run)) && [[ $(id -u) -ne 0 ]]; then
  echo "setup: missing packages (${missing[*]}); run as root to install them" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
((dry_run)) || apt-get update -qq

# What apt would do, as "Inst PKG" and "Remv PKG" lines.
simulate() { # packages...
  local out
  if ! out=$(apt-get -s "${apt_args[@]}" install --no-install-recommends "$@" 2>&1); then
    printf '%s\n' "$out" | grep -E '^(E:| )' | sed 's/^/setup: apt: /' >&2
    echo "setup: stopping, nothing was changed: apt cannot install $*" >&2
    return 1
  fi
  sed -n 's/^\(Inst\|Remv\) \([^ ]*\).*/\1 \2/p' <<<"$out"
}
plan=$(simulate "${missing[@]}") || exit 1
removals=$(sed -n 's/^Remv //p' <<<"$plan")
if [[ -n $removals ]]; then
  echo "setup: stopping, nothing was changed: installing would remove $(echo $removals)" >&2
  # Name the package that causes each removal and the relation it declares;
  # engines first, as they are the usual cause.
  unexplained=" $(echo $removals) "
  for p in $(printf '%s\n' "${missing[@]}" | grep -Fxf <(printf '%s\n' "${!engine_commands[@]}")) \
           $(printf '%s\n' "${missing[@]}" | grep -vFxf <(printf '%s\n' "${!engine_commands[@]}" "")); do
    [[ $unexplained == *[![:space:]]* ]] || break
    removes=$(simulate "$p" 2>/dev/null | sed -n 's/^Remv //p')
    [[ -n $removes ]] || continue
    for r in $removes; do unexplained=${unexplained/ $r / }; done
    echo "setup:   $p would remove $(echo $removes)" >&2
    apt-cache "${apt_args[@]}" show --no-all-versions "$p" 2>/dev/null |
      grep -E '^(Conflicts|Breaks):' | sed "s/^/setup:     $p /" >&2 || true
  done
  echo "setup: install what provides those commands another way, or remove the conflicting package yourself" >&2
  exit 1
fi

if ((dry_run)); then
  echo "setup: would install ${missing[*]}" >&2
  printf '%s\n' "$plan"
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
policy=/usr/sbin/policy-rc.d
created_policy=0
# noclobber: an existing policy-rc.d, even one appearing meanwhile, stays as it is.
if (set -C; printf '#!/bin/sh\nexit 101\n' >"$policy") 2>/dev/null; then
  created_policy=1
  chmod 755 "$policy"
fi
trap '((created_policy)) && rm -f "$policy"' EXIT
apt-get install -y -qq --no-install-recommends --no-remove "${missing[@]}" >/dev/null
