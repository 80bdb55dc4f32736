#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Debian packages: they build with dpkg-buildpackage (the product only,
# nocheck), lintian finds no error, each holds exactly its expected files, and
# the CLI extracted from them (dpkg-deb -x into a directory, never installed on
# this host) loads every plugin from the extracted tree and reads the shipped
# configuration; the -dev packages build the README's embedding example.
# Leaves the packages in BUILD/packaging/ for the container image test.
set -euo pipefail
src=${TF_SOURCE_ROOT:?} build=${TF_BUILD_ROOT:?}
out=$build/packaging
fail() { echo "FAIL: $*" >&2; exit 1; }
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
lib=usr/lib/$multiarch
plugins=(containerd crio moby podman systemd)

bash "$src/tests/packaging/build_debs.sh" "$src" "$out"
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -SVersion)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)

# lintian: errors fail, the rest is shown.
changes=$out/turtlefinder_${version}_$arch.changes
[[ -f $changes ]] || fail "no $changes"
lintian_out=$(lintian --fail-on error --display-level '>=warning' "$changes" 2>&1 | { grep -v 'running with root privileges' || true; }) \
  || fail "lintian reports errors:
$lintian_out"
[[ -z $lintian_out ]] || printf 'lintian:\n%s\n' "$lintian_out"

# Each package's files (directories left out), exactly.
expect() { # package, files...
  local deb=$out/${1}_${version}_$arch.deb
  [[ -f $deb ]] || fail "package $1 was not built"
  local got want
  got=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./||' | sort)
  want=$(printf '%s\n' "${@:2}" usr/share/doc/"$1"/copyright usr/share/doc/"$1"/changelog.gz | sort)
  [[ $got == "$want" ]] || fail "$1 holds other files than expected:
$(diff <(echo "$want") <(echo "$got") | grep '^[<>]' | sed 's/^</  missing:/; s/^>/  unexpected:/')"
  echo "$1: $(wc -l <<<"$got") files as expected"
}
expect turtlefinder usr/bin/turtlefinder etc/turtlefinder/turtlefinder.json \
  usr/share/man/man1/turtlefinder.1.gz usr/share/bash-completion/completions/turtlefinder \
  usr/share/turtlefinder/turtlefinder-v1.schema.json \
  usr/lib/systemd/system/turtlefinder.{service,socket} \
  $(printf "$lib/turtlefinder/plugins/%s.so " "${plugins[@]}")
expect libturtlefinder0 "$lib/libturtlefinder.so.0" "$lib/libturtlefinder.so.0.1.0"
expect libtf-grpc-client0 "$lib/libtf-grpc-client.so.0" "$lib/libtf-grpc-client.so.0.1.0"
expect libturtlefinder-dev usr/include/turtlefinder/{export,finder,model,options}.hpp usr/include/turtlefinder/turtlefinder.h \
  "$lib/libturtlefinder.so" "$lib/pkgconfig/turtlefinder.pc"
expect turtlefinder-plugin-dev usr/include/turtlefinder/plugin.{h,hpp} \
  $(cd "$out/src/debian/turtlefinder-plugin-dev" && find usr/include/turtlefinder/clients -type f | sort) \
  "$lib/libtf-docker-client.a" "$lib/libtf-grpc-client.so" usr/share/turtlefinder/plugin.map \
  "$lib"/pkgconfig/turtlefinder-{plugin,docker-client,grpc-client}.pc
# The SDK's client headers are every one the source has, not whatever got installed.
want_clients=$(cd "$src" && find . -path ./build -prune -o -path './build-*' -prune -o \
  -path '*/include/turtlefinder/clients/*' -name '*.hpp' -print \
  | sed 's|.*/include/||' | sort)
got_clients=$(cd "$out/src/debian/turtlefinder-plugin-dev/usr/include" && find turtlefinder/clients -type f | sort)
[[ $want_clients == "$got_clients" ]] || fail "plugin SDK client headers differ from the source's: $got_clients"

# The extracted tree runs: every plugin loads from it, the shipped configuration is valid.
root=$out/root
for deb in "$out"/*.deb; do dpkg-deb -x "$deb" "$root"; done
export LD_LIBRARY_PATH=$root/$lib
unset TURTLEFINDER_PLUGIN_PATH
listed=$("$root/usr/bin/turtlefinder" plugins --config "$root/etc/turtlefinder/turtlefinder.json") \
  || fail "the extracted CLI failed: $listed"
for p in "${plugins[@]}"; do
  grep -q "^$p " <<<"$listed" || fail "the extracted CLI did not load plugin $p:
$listed"
  grep -qx "    $root/$lib/turtlefinder/plugins/$p.so" <<<"$listed" || fail "plugin $p not loaded from the extracted tree:
$listed"
done
grep -q REFUSED <<<"$listed" && fail "the extracted CLI refused a plugin:
$listed"
"$root/usr/bin/turtlefinder" --version | grep -qx "turtlefinder ${version%%-*}" || fail "wrong --version"
echo "extracted CLI loads ${#plugins[@]} plugins from the extracted tree"
# The installed schema is the one of what the extracted CLI prints.
"$root/usr/bin/turtlefinder" plugins --json --config "$root/etc/turtlefinder/turtlefinder.json" \
  | "$src/tests/common/validate-json.py" "$root/usr/share/turtlefinder/turtlefinder-v1.schema.json" \
  || fail "plugins --json does not match the installed schema"

# The -dev packages: the README's embedding example compiles and links against them.
awk '/<!-- embed-example -->/{f=1;next} f&&/^```cpp/{g=1;next} g&&/^```/{exit} g' "$src/README.md" >"$out/embed.cpp"
[[ -s $out/embed.cpp ]] || fail "no embedding example in README.md"
export PKG_CONFIG_PATH=$root/$lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$root
c++ -std=c++20 "$out/embed.cpp" -o "$out/embed" $(pkg-config --cflags --libs turtlefinder) \
  || fail "the embedding example does not build against libturtlefinder-dev"
pkg-config --cflags turtlefinder-plugin >/dev/null \
  || fail "turtlefinder-plugin.pc unusable"
rm -rf "$out/src/obj-"* "$root"
echo "packaging: ok"
