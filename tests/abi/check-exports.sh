#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Every plugin must export exactly one defined dynamic symbol, tf_plugin_entry:
# anything more (a gRPC, Protobuf or Boost symbol) can clash with another plugin.
# usage: check-exports.sh NM BUILD_ROOT (PLUGIN.so | name:NAME)...
# name:NAME is a built plugin, found as BUILD_ROOT/{plugins,activators}/*/NAME.so.
set -eu
nm=$1
root=$2
shift 2
[ $# -gt 0 ] || { echo "no plugin given" >&2; exit 2; }
status=0
for arg in "$@"; do
    case $arg in
    name:*)
        name=${arg#name:}
        plugin=$(find "$root/plugins" "$root/activators" -mindepth 2 -maxdepth 2 -name "$name.so" 2>/dev/null | head -n 1)
        [ -n "$plugin" ] || plugin="$root/plugins/$name/$name.so (not found)"
        ;;
    *) plugin=$arg ;;
    esac
    if [ ! -f "$plugin" ]; then
        echo "FAIL: $plugin does not exist" >&2
        status=1
        continue
    fi
    # The third column is the symbol name; versioned names carry @VERSION.
    symbols=$("$nm" -D --defined-only "$plugin" | awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }' | sort -u)
    if [ "$symbols" = "tf_plugin_entry" ]; then
        echo "ok: $plugin"
    else
        echo "FAIL: $plugin exports more or other than tf_plugin_entry:" >&2
        echo "$symbols" | sed 's/^/    /' >&2
        status=1
    fi
done
exit $status
