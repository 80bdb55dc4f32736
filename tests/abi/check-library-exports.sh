#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# libturtlefinder.so exports its public C++ API and nothing else: no spdlog,
# fmt, Boost or std code, and none of the core's internals. The allow rule,
# for every defined dynamic symbol (demangled):
#   - it is a function, directly in namespace turtlefinder (no sub-namespace)
#     or a member of a class directly in it (no nested class): no data, no
#     typeinfo or vtable, no template instantiation of another namespace;
#   - its name, and its class's name, appear in the installed public headers.
# usage: check-library-exports.sh NM CXXFILT LIBRARY PUBLIC_INCLUDE_DIR
set -eu
nm=$1 cxxfilt=$2 lib=$3 include=$4
[ -f "$lib" ] || { echo "FAIL: $lib does not exist" >&2; exit 1; }
headers=$(find "$include" -name '*.hpp' -o -name '*.h')
[ -n "$headers" ] || { echo "FAIL: no public headers under $include" >&2; exit 1; }

declared() { # is the identifier $1 a word of the public headers?
    # shellcheck disable=SC2086
    grep -qw -- "$1" $headers
}

status=0 count=0
symbols=$("$nm" -D --defined-only "$lib" | awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }' | "$cxxfilt" | sort -u)
while IFS= read -r symbol; do
    [ -n "$symbol" ] || continue
    count=$((count + 1))
    # turtlefinder::NAME(  or  turtlefinder::Class::NAME(  (also ~Class, Class ctor)
    # ([abi:cxx11] tags a function returning std::string.)
    rest=$(printf '%s\n' "$symbol" |
        sed -n 's/^turtlefinder::\(\([A-Z][A-Za-z0-9_]*\)::\)\{0,1\}\(~\{0,1\}[A-Za-z_][A-Za-z0-9_]*\)\(\[abi:[a-z0-9]*\]\)*(.*$/\2 \3/p')
    if [ -z "$rest" ]; then
        echo "FAIL: not a function of namespace turtlefinder or of a class directly in it: $symbol" >&2
        status=1
        continue
    fi
    class=${rest% *} name=${rest#* }
    name=${name#\~}
    if { [ -n "$class" ] && ! declared "$class"; } || ! declared "$name"; then
        echo "FAIL: not declared in the public headers: $symbol" >&2
        status=1
    fi
done <<EOT
$symbols
EOT
[ "$count" -gt 0 ] || { echo "FAIL: $lib exports nothing" >&2; exit 1; }
[ "$status" -eq 0 ] && echo "ok: $count public symbols exported by $lib"
exit $status
