#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The C, Python and Go examples, built against a staged install like a user
# would (pkg-config; ctypes; cgo with no module but the standard library),
# list the same containers as `turtlefinder --json` of that install, for the
# engines whose API ends in one of the SOCKETs (each must have containers).
# usage: bindings.sh SOCKET...   (TF_BUILD_ROOT, TF_SOURCE_ROOT set, as by meson test)
set -euo pipefail
(($# > 0)) || { echo "usage: bindings.sh SOCKET..." >&2; exit 2; }
sockets=("$@")
build=${TF_BUILD_ROOT:?} src=${TF_SOURCE_ROOT:?}
stage=$(mktemp -d /tmp/tf-bindings-XXXXXX)
trap 'rm -rf "$stage"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
unset TURTLEFINDER_PLUGIN_PATH LD_LIBRARY_PATH

read -r prefix bindir libdir < <(meson introspect "$build" --buildoptions | python3 -c '
import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print(o["prefix"], o["bindir"], o["libdir"])')
meson install -C "$build" --destdir "$stage/root" --no-rebuild --quiet >/dev/null
staged=$stage/root$prefix
lib=$staged/$libdir
export PKG_CONFIG_PATH=$lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$stage/root

make -s -C "$src/examples/c" OUT="$stage/list-c" CFLAGS=-Werror LDFLAGS="-Wl,-rpath,$lib" \
  || fail "examples/c does not build against the install"
# Off-network: no module is fetched, the build caches are ours alone.
(cd "$src/examples/go" &&
  GOFLAGS=-mod=mod GOPROXY=off GOCACHE="$stage/gocache" GOPATH="$stage/gopath" CGO_ENABLED=1 \
  CGO_LDFLAGS="-Wl,-rpath,$lib" go build -o "$stage/list-go" .) \
  || fail "examples/go does not build against the install"

# Every engine's containers, as "API PID PREFIX NAME PID" lines of ours.
"$staged/$bindir/turtlefinder" --json --no-service >"$stage/cli.json" || fail "turtlefinder --json failed"
python3 - "$stage/cli.json" >"$stage/want" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
engines = doc["engines"]
for c in doc["containers"]:
    e = engines[c["engine"]]
    print(f'{e["api"]}\t{e["pid"]}\t{e["prefix"] or "-"}\t{c["name"]}\t{c["pid"]}')
PY
ends_in() { # file, socket: the lines of the engine at socket
  awk -F'\t' -v s="$2" 'substr($1, length($1) - length(s) + 1) == s' "$1"
}
ours() { local s; for s in "${sockets[@]}"; do ends_in "$1" "$s"; done | sort; }
ours "$stage/want" >"$stage/want.ours"
for s in "${sockets[@]}"; do
  [[ -n $(ends_in "$stage/want" "$s") ]] \
    || fail "turtlefinder --json lists no container of the engine at $s: $(cat "$stage/cli.json")"
done

check() { # name, command...
  local name=$1
  shift
  "$@" >"$stage/$name.out" || fail "$name example failed"
  ours "$stage/$name.out" >"$stage/$name.ours"
  diff -u "$stage/want.ours" "$stage/$name.ours" || fail "$name example differs from turtlefinder --json"
  echo "ok: $name example lists $(wc -l <"$stage/$name.ours") containers like the CLI"
}
echo "turtlefinder --json, for the engines at ${sockets[*]}:"
cat "$stage/want.ours"
check c "$stage/list-c"
check python env TURTLEFINDER_LIBRARY="$lib/libturtlefinder.so.0" python3 "$src/examples/python/list.py"
check go "$stage/list-go"
