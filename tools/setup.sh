#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs every build, test and engine dependency on Debian 12. Idempotent and
# quiet when everything is already there: apt is only asked for what is missing.
set -euo pipefail

packages=(
  # build
  meson ninja-build pkg-config g++ gcc clang lld
  libboost1.81-dev libboost-filesystem1.81-dev libboost-json1.81-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libspdlog-dev libfmt-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev python3 libclang-rt-14-dev
  # real engines for the integration tests
  docker.io containerd runc podman conmon catatonit busybox-static systemd
  util-linux iproute2 procps
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "setup: missing packages (${missing[*]}); run as root to install them" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Engines' own services must not start: the tests start their own instances.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"; created_policy=1
fi
trap '((created_policy)) && rm -f "$policy"' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
