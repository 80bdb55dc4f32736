#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the build into a staging DESTDIR and checks what a user gets:
#  - no installed file names the build or source tree;
#  - the examples build against the staged install with pkg-config alone,
#    as README tells users to (examples/embed, examples/plugin);
#  - moved to another prefix, the install still finds its own files: the CLI
#    and the embedding example (built with no path to the plugins) load every
#    installed plugin from the moved copy, the CLI reads the moved copy's
#    configuration by default, and the out-of-tree plugin loads from a
#    drop-in directory;
#  - plugins built from the installed SDK, client libraries and plugin.map
#    alone load too.
set -euo pipefail
build=${TF_BUILD_ROOT:?} src=${TF_SOURCE_ROOT:?}
stage=$(mktemp -d /tmp/tf-install-XXXXXX)
trap 'rm -rf "$stage"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# Nothing of the build tree may help the install find its files.
unset TURTLEFINDER_PLUGIN_PATH LD_LIBRARY_PATH

# The configured directories: prefix absolute, the others relative to it
# (sysconfdir may be absolute, /etc).
read -r prefix bindir libdir sysconfdir < <(meson introspect "$build" --buildoptions | python3 -c '
import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print(o["prefix"], o["bindir"], o["libdir"], o["sysconfdir"])')

meson install -C "$build" --destdir "$stage/root" --no-rebuild --quiet >/dev/null
staged=$stage/root$prefix
pcdir=$staged/$libdir/pkgconfig
[[ -f $pcdir/turtlefinder.pc && -f $pcdir/turtlefinder-plugin.pc ]] || fail "pkg-config files not installed in $pcdir"
[[ -x $staged/$bindir/turtlefinder ]] || fail "CLI not installed"

# The systemd units install inside the prefix (a staged install stays staged),
# the service starting the installed CLI.
unit=$(find "$stage/root" -name turtlefinder.service)
[[ $unit == "$staged"/*/systemd/system/turtlefinder.service ]] || fail "turtlefinder.service not installed below $staged: $unit"
[[ -f ${unit%.service}.socket ]] || fail "turtlefinder.socket not installed beside $unit"
grep -qx "ExecStart=$prefix/$bindir/turtlefinder serve" "$unit" || fail "$unit does not start $prefix/$bindir/turtlefinder"

# No build path is compiled in (debug info aside: it records where the
# sources were compiled, and packagers strip it).
while IFS= read -r -d '' f; do
  objcopy --strip-debug "$f" "$stage/stripped" 2>/dev/null || cp "$f" "$stage/stripped"
  if grep -qaF -e "$build" -e "$src" "$stage/stripped"; then
    fail "${f#"$stage/root"} names the build or source tree: $(grep -aoF -e "$build" -e "$src" "$stage/stripped" | head -n1)"
  fi
done < <(find "$stage/root" -type f -print0)

# The README's embedding example is examples/embed/embed.cpp.
awk '/<!-- embed-example -->/{f=1;next} f&&/^```cpp/{g=1;next} g&&/^```/{exit} g' "$src/README.md" \
  > "$stage/readme_example.cpp"
diff -u "$src/examples/embed/embed.cpp" "$stage/readme_example.cpp" \
  || fail "README's embedding example differs from examples/embed/embed.cpp"

# Both examples build against the staged install, with pkg-config alone. The
# embedding program gets an rpath to the library only, where it will be moved.
moved=$stage/elsewhere/opt/tf
export PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$stage/root
make -s -C "$src/examples/embed" OUT="$stage/embed" CXXFLAGS=-Werror LDFLAGS="-Wl,-rpath,$moved/$libdir" \
  || fail "examples/embed does not build against the install"
mkdir -m 0755 "$stage/dropin"
make -s -C "$src/examples/plugin" OUT="$stage/dropin/example.so" CXXFLAGS=-Werror \
  || fail "examples/plugin does not build against the install"
# The installed client libraries are usable the same way: the moby and crio
# plugins build from the installed SDK, clients and plugin.map alone.
map=$(pkg-config --variable=plugin_map turtlefinder-plugin)
[[ $map == "$stage/root"/* ]] || map=$stage/root$map # pkg-config versions differ on the sysroot here
[[ -f $map ]] || fail "plugin.map not installed where turtlefinder-plugin.pc says: $map"
mkdir -m 0755 "$stage/clients"
for pair in moby:docker crio:grpc; do
  name=${pair%%:*} client=turtlefinder-${pair#*:}-client
  c++ -std=c++20 -shared -fPIC -fvisibility=hidden -fvisibility-inlines-hidden \
    $(pkg-config --cflags "$client") "$src/plugins/$name/$name.cpp" -o "$stage/clients/$name.so" \
    -Wl,--version-script="$map" -Wl,-z,defs $(pkg-config --libs "$client") -Wl,-rpath,"$moved/$libdir" \
    || fail "plugin $name does not build against the installed $client"
done
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR

# Another prefix, at another depth: nothing is left where it was installed.
mkdir -p "$(dirname "$moved")"
mv "$staged" "$moved"
cli=$moved/$bindir/turtlefinder
plugindir=$moved/$libdir/turtlefinder/plugins
mapfile -t plugins < <(find "$plugindir" -maxdepth 1 -name '*.so' | sort)
((${#plugins[@]} > 0)) || fail "no plugins installed in $plugindir"

# Each plugin links the client libraries next to it, not through the host
# program's rpath or the environment.
for so in "${plugins[@]}"; do
  while read -r line; do
    [[ $line == *"=> $moved/"* ]] || fail "moved $(basename "$so") does not link its own copy: $line"
  done < <(ldd "$so" | grep 'libtf-' || true)
done

# Every installed plugin is listed from the moved copy, none refused. A plugin
# with metadata is only dlopen'ed once a process it claims runs, so each is
# also dlopen'ed here, as the dynamic linker resolves it from the moved copy.
every_plugin_loaded() { # who, output
  local p
  if grep -q 'REFUSED' <<<"$2"; then fail "$1 refused plugins: $2"; fi
  for p in "${plugins[@]}"; do
    grep -qF "$p" <<<"$2" || fail "$1 did not list $p: $2"
  done
}
dlopens() { # plugin
  python3 -c 'import ctypes, os, sys; ctypes.CDLL(sys.argv[1], os.RTLD_NOW)' "$1" 2>&1
}
for p in "${plugins[@]}"; do
  why=$(dlopens "$p") || fail "the moved $p does not load: $why"
done
out=$("$cli" plugins 2>&1) || fail "moved CLI failed: $out"
every_plugin_loaded "moved CLI" "$out"
out=$("$stage/embed" 2>&1) || fail "embedding example failed: $out"
every_plugin_loaded "embedding example" "$(grep '^plugin ' <<<"$out")"

# The default configuration is the moved copy's (when sysconfdir is in the prefix).
if [[ $sysconfdir != /* ]]; then
  config=$moved/$sysconfdir/turtlefinder/turtlefinder.json
  [[ -f $config ]] || fail "configuration not installed in $config"
  cp "$config" "$stage/config.json"
  echo '{"no_such_key": 1}' >"$config"
  if out=$("$cli" plugins 2>&1); then fail "moved CLI did not read its configuration $config"; fi
  grep -qF "$config" <<<"$out" || fail "moved CLI read another configuration: $out"
  cp "$stage/config.json" "$config"
fi

# The out-of-tree detector loads from a drop-in directory.
out=$("$cli" plugins --plugin-dir "$stage/dropin" 2>&1) || fail "moved CLI failed: $out"
grep -q "^example " <<<"$out" || fail "out-of-tree plugin not loaded from the drop-in directory: $out"
out=$("$cli" plugins --plugin-dir "$stage/clients" 2>&1) || fail "moved CLI failed: $out"
# (the drop-in copies come first, so the installed ones of the same name step aside)
why=
grep -qxF "    $stage/clients/crio.so" <<<"$out" && ! grep -qF "REFUSED $stage/clients" <<<"$out" \
  && why=$(dlopens "$stage/clients/crio.so") || fail "crio built against the installed clients does not load: $out $why"
echo "install: ok"
