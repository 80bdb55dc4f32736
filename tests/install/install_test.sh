#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the build into a staging DESTDIR, then, with nothing but the staged
# files and pkg-config: the installed CLI runs and finds the installed plugins,
# also once the installed tree is moved elsewhere; the README's embedding
# example compiles and runs; an out-of-tree detector, and plugins on the
# installed client libraries, build and load from drop-in directories.
set -euo pipefail
build=${TF_BUILD_ROOT:?} src=${TF_SOURCE_ROOT:?}
stage=$(mktemp -d /tmp/tf-install-XXXXXX)
trap 'rm -rf "$stage"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

meson install -C "$build" --destdir "$stage/root" --no-rebuild --quiet >/dev/null
pc=$(dirname "$(find "$stage/root" -name turtlefinder.pc | head -n1)")
[[ -f $pc/turtlefinder.pc && -f $pc/turtlefinder-plugin.pc ]] || fail "pkg-config files not installed"
cli=$(find "$stage/root" -path '*/bin/turtlefinder' -type f | head -n1)
[[ -x $cli ]] || fail "CLI not installed"
libdir=$(dirname "$(find "$stage/root" -name 'libturtlefinder.so' | head -n1)")
export LD_LIBRARY_PATH=$libdir
export PKG_CONFIG_PATH=$pc PKG_CONFIG_SYSROOT_DIR=$stage/root
unset TURTLEFINDER_PLUGIN_PATH

# The installed CLI finds the installed plugins, with no flags.
plugins=$("$cli" plugins)
for p in moby containerd crio; do
  grep -q "^$p " <<<"$plugins" || fail "installed CLI did not load plugin $p: $plugins"
done
grep -q "$stage/root" <<<"$plugins" || fail "plugins not loaded from the staged install: $plugins"
grep -q "$build" <<<"$plugins" && fail "installed CLI loaded plugins from the build tree: $plugins"
[[ -f $(find "$stage/root" -name turtlefinder.json | head -n1) ]] || fail "configuration not installed"

# A relocated install (the staged prefix copied elsewhere) loads every plugin
# with nothing from the environment: each plugin finds the client libraries
# it links relative to itself, not through the host program's rpath.
prefix=$stage/root$(env -u PKG_CONFIG_SYSROOT_DIR pkg-config --variable=prefix turtlefinder)
moved=$stage/moved
cp -a "$prefix" "$moved"
moved_plugindir=$(find "$moved" -type d -path '*/turtlefinder/plugins' | head -n1)
[[ -d $moved_plugindir ]] || fail "no plugin directory in the relocated install"
for so in "$moved_plugindir"/*.so; do
  while read -r line; do
    [[ $line == *"=> $moved/"* ]] || fail "relocated $(basename "$so") does not link its own copy: $line"
  done < <(env -u LD_LIBRARY_PATH ldd "$so" | grep 'libtf-')
done
for p in moby containerd crio podman systemd; do
  [[ -f $moved_plugindir/$p.so ]] || fail "plugin $p not installed"
done
moved_plugins=$(env -u LD_LIBRARY_PATH "$moved/${cli#"$prefix"/}" plugins)
grep -q '^REFUSED' <<<"$moved_plugins" && fail "relocated install refused plugins: $moved_plugins"
for so in "$moved_plugindir"/*.so; do
  grep -qxF "    $so" <<<"$moved_plugins" || fail "relocated CLI did not load $so: $moved_plugins"
done

# The README's embedding example is this file, and builds against the install.
awk '/<!-- embed-example -->/{f=1;next} f&&/^```cpp/{g=1;next} g&&/^```/{exit} g' "$src/README.md" \
  > "$stage/readme_example.cpp"
diff -u "$src/tests/install/embed_example.cpp" "$stage/readme_example.cpp" \
  || fail "README's embedding example differs from tests/install/embed_example.cpp"
c++ -std=c++20 -Wall -Wextra -Werror "$stage/readme_example.cpp" -o "$stage/embed" \
  $(pkg-config --cflags --libs turtlefinder)
"$stage/embed" >"$stage/embed.out" || fail "embedding example failed"

# An out-of-tree detector, built with the SDK's pkg-config alone, loads from a drop-in dir.
mkdir -m 0755 "$stage/dropin"
make -s -C "$src/tests/abi/example-plugin" OUT="$stage/dropin/example.so"
"$cli" plugins --plugin-dir "$stage/dropin" | grep -q "^example " \
  || fail "out-of-tree plugin not loaded from the drop-in directory"

# The installed client libraries are usable the same way: the moby and crio
# plugins build from the installed SDK, clients and plugin.map alone.
map=$(pkg-config --variable=plugin_map turtlefinder-plugin)
[[ -f $map ]] || fail "plugin.map not installed where turtlefinder-plugin.pc says: $map"
mkdir -m 0755 "$stage/clients"
for pair in moby:docker crio:grpc; do
  name=${pair%%:*} client=turtlefinder-${pair#*:}-client
  c++ -std=c++20 -shared -fPIC -fvisibility=hidden -fvisibility-inlines-hidden \
    $(pkg-config --cflags "$client") "$src/plugins/$name/$name.cpp" -o "$stage/clients/$name.so" \
    -Wl,--version-script="$map" -Wl,-z,defs $(pkg-config --libs "$client") \
    || fail "plugin $name does not build against the installed $client"
done
"$cli" plugins --plugin-dir "$stage/clients" | grep -qxF "    $stage/clients/crio.so" \
  || fail "crio built against the installed clients does not load"
echo "install: ok"
